package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
)

// serve runs a node until SIGTERM or SIGINT (drain, then exit 0); SIGHUP
// reloads the config file; SIGUSR1 reopens the access log file (after
// logrotate moved it); SIGUSR2 hands the listening sockets to a new
// process started from the same executable, then drains (see handover.go).
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded default config)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit (for performance work)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
			return 1
		}
		defer stop()
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	in, err := inheritListeners()
	if err != nil {
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		return 1
	}
	opts := cellgate.Options{Logger: log, Listener: in.client, AdminListener: in.admin}
	if in.client != nil {
		// The predecessor is releasing the journal; it takes control back
		// if this process is not ready within the same bound.
		opts.JournalWait = cellgate.HandoverReadyWait(cfg)
	}
	node, err := cellgate.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if err := node.Start(); err != nil {
		// Start has stopped what it started and closed the journal.
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "cellgate serving on %s (admin %s)\n", node.Addr(), node.AdminAddr())
	in.reportReady()
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			if err := node.Reload(); err != nil {
				log.Error("reload refused; the old config keeps serving", "err", err)
			}
			continue
		case syscall.SIGUSR1:
			// logrotate moved the access log: write to a new file.
			if err := node.ReopenLogs(); err != nil {
				log.Error("access log not reopened; still writing to the old file", "err", err)
			}
			continue
		case syscall.SIGUSR2:
			// Graceful handover to a new process (e.g. a new binary at
			// the same path): it takes the sockets, this one drains.
			if !handover(node, log) {
				continue
			}
		}
		log.Info("draining", "signal", sig.String())
		return drain(node, node.DrainTimeout(), log)
	}
	return 0
}

// drainGrace is how long past listen.drain_timeout a drain may take to
// stop the admin API, leave the cluster and close the journal.
const drainGrace = 10 * time.Second

// drain shuts the node down and returns the exit code: 0 when it drained
// (a drain cut short at drain_timeout included, as the README promises),
// 1 when a part failed to stop. A drain that overruns drain_timeout by
// drainGrace is abandoned with exit 1, so an old process never lingers
// (answering nothing useful) long after its successor took over.
func drain(node *cellgate.Node, timeout time.Duration, log *slog.Logger) int {
	done := make(chan error, 1)
	go func() { done <- node.Shutdown(context.Background()) }()
	limit := drainGrace
	if timeout > 0 {
		limit += timeout
	}
	select {
	case err := <-done:
		if err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		log.Info("drained")
		return 0
	case <-time.After(limit):
		log.Error("drain overran; exiting", "limit", limit)
		return 1
	}
}

// loadConfig reads path, or the embedded default when path is empty.
func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.LoadDefault()
	}
	return configs.Load(path)
}

// startCPUProfile profiles the process into path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
