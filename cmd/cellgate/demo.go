package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cellgate/cellgate/demo"
	"github.com/cellgate/cellgate/rollout"
)

// demoCmd runs `cellgate demo`; it exits 1 when the rollout did not end as
// the demo intends (promoted, or rolled back with -fault).
func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fault := fs.Bool("fault", false, "make the canary fail midway and watch the automatic revert")
	duration := fs.Duration("duration", time.Minute, "how long the rollout may take; bake times scale to fit")
	keep := fs.Bool("keep", false, "keep serving after the rollout ends, until Ctrl-C")
	rate := fs.Float64("rate", 400, "load in requests per second")
	admin := fs.String("admin", "", "admin/status page address (default 127.0.0.1:9901 if free)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := demo.Run(ctx, demo.Options{
		Duration: *duration, Fault: *fault, Keep: *keep, Rate: *rate, AdminAddr: *admin,
		View: stdout, Terminal: isTerminal(stdout),
	})
	if err != nil {
		fmt.Fprintf(stderr, "cellgate demo: %v\n", err)
		return 1
	}
	sum.Print(stdout)
	want := rollout.StatusPromoted
	if *fault {
		want = rollout.StatusRolledBack
	}
	if sum.Status != want && !*keep {
		fmt.Fprintf(stderr, "cellgate demo: rollout ended %q, expected %q\n", sum.Status, want)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
