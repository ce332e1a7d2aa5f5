package scenario

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of Main, as `cellgate bench`'s.
const (
	exitOK    = 0
	exitFail  = 1 // the scenario did not end as expected, or could not run
	exitUsage = 2
)

const usageText = `usage: cellgate bench scenario rollout [-fault errors|latency] [flags]

Starts three loopback demo cells (stable-a, stable-b, canary-1) and a node,
drives open-loop keyed load through it and runs a canary rollout
(1, 5, 25, 50, 100 %%). With -fault the canary breaks at -fault-step and
the node must revert it by itself. Reports failed requests and latency per
phase, the time from the fault to canary weight 0, and a stickiness audit
from the responses. Exit 0 when the rollout ended as expected (promoted, or
rolled back with -fault) and the audit is clean, 1 otherwise.

flags:
`

// Main is `cellgate bench scenario …` (args without those two words). It
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "rollout" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintf(stdout, usageText)
			return exitOK
		}
		fmt.Fprintf(stderr, "cellgate bench scenario: want a scenario name: rollout\n")
		return exitUsage
	}
	o, output, err := parseFlags(args[1:], stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		fmt.Fprintf(stderr, "cellgate bench scenario rollout: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Rollout(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench scenario: %v\n", err)
		return exitFail
	}
	if output == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench scenario: %v\n", err)
		return exitFail
	}
	if !rep.OK {
		return exitFail
	}
	return exitOK
}

// parseFlags parses the rollout scenario's flags.
func parseFlags(args []string, stderr io.Writer) (Options, string, error) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("cellgate bench scenario rollout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Fault, "fault", "", "break the canary midway: errors or latency")
	fs.IntVar(&o.FaultStep, "fault-step", o.FaultStep, "1-based step at which the fault starts")
	fs.Float64Var(&o.FaultRatio, "fault-ratio", o.FaultRatio, "-fault errors: share of canary requests answered 500")
	fs.DurationVar(&o.FaultDelay, "fault-delay", o.FaultDelay, "-fault latency: added to every canary response")
	fs.DurationVar(&o.LatencyThreshold, "latency-threshold", o.LatencyThreshold, "the node's slo.latency_threshold")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "open-loop load in requests/s")
	fs.IntVar(&o.Keys, "keys", o.Keys, "distinct sticky keys (X-User-ID)")
	fs.IntVar(&o.Connections, "c", o.Connections, "connections (the most requests in flight)")
	fs.DurationVar(&o.Tick, "tick", o.Tick, "the node's rollout tick")
	fs.DurationVar(&o.Bake, "bake", o.Bake, "healthy time per step")
	fs.IntVar(&o.MinRequests, "min-requests", o.MinRequests, "minimum canary and baseline requests per step")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "load before the rollout starts")
	fs.DurationVar(&o.Tail, "tail", o.Tail, "load after the rollout ended")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on the rollout")
	output := fs.String("o", "text", "output: text or json")
	verbose := fs.Bool("v", false, "log the node to stderr")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *output != "text" && *output != "json" {
		return o, "", fmt.Errorf("-o %q: want text or json", *output)
	}
	if err := o.validate(); err != nil {
		return o, "", err
	}
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if !*quiet {
		o.Progress = stderr
	}
	return o, *output, nil
}
