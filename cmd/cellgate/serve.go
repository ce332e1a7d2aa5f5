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

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
)

// serve runs a node until SIGTERM or SIGINT (drain, then exit 0); SIGHUP
// reloads the config file.
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
	node, err := cellgate.New(cfg, cellgate.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := node.Start(); err != nil {
		fmt.Fprintf(stderr, "cellgate serve: %v\n", err)
		node.Shutdown(context.Background())
		return 1
	}
	fmt.Fprintf(stdout, "cellgate serving on %s (admin %s)\n", node.Addr(), node.AdminAddr())
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if err := node.Reload(); err != nil {
				log.Error("reload refused; the old config keeps serving", "err", err)
			}
			continue
		}
		log.Info("draining", "signal", sig.String())
		if err := node.Shutdown(context.Background()); err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		return 0
	}
	return 0
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
