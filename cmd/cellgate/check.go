package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/proxy"
)

// check validates a config file: every problem with file:line and exit 1,
// or a one-line summary and exit 0.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to validate (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: cellgate check -config FILE")
		return 2
	}
	cfg, err := configs.Load(*path)
	if err == nil {
		err = cellgate.CheckPlans(cfg)
	}
	if err != nil {
		var ce *configs.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *path, len(ce.Problems))
		} else {
			fmt.Fprintf(stderr, "cellgate check: %v\n", err)
		}
		return 1
	}
	weight := 0.0
	for _, c := range cfg.Cells {
		weight += c.Weight
	}
	fmt.Fprintf(stdout, "%s: ok: %d cells, total weight %g, %d plans, listen %s on the %s core\n",
		*path, len(cfg.Cells), weight, len(cfg.Plans), cfg.Listen.Addr, proxy.ResolveCore(cfg.Listen.Core, cfg.Listen.TLSCert != ""))
	return 0
}
