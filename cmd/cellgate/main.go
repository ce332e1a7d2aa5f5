// Command cellgate is the one binary: serve, demo, bench, ctl, check and
// version. It is thin: flags and output only; the work is in the packages.
package main

import (
	"fmt"

	"github.com/cellgate/cellgate"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `cellgate — an edge proxy that releases new versions by shifting traffic

usage:
  cellgate serve [-config FILE]     run a node (embedded default config without -config)
  cellgate demo [-fault] [-duration D] [-keep]
                                    a node, demo cells, load and a rollout on this machine
  cellgate bench [flags] URL…       load generator and proxy comparison
  cellgate ctl [flags] COMMAND      admin API client
  cellgate check -config FILE       validate a config and exit
  cellgate journal check|export|compact [-config FILE | -path JOURNAL]
                                    verify, salvage or compact a stopped node's journal
  cellgate version                  print the version
`

func main() {
	cellgate.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code: 0 ok,
// 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stdout, stderr)
	case "demo":
		return demoCmd(rest, stdout, stderr)
	case "bench":
		return benchCmd(rest, stdout, stderr)
	case "ctl":
		return ctlCmd(rest, stdout, stderr)
	case "check":
		return check(rest, stdout, stderr)
	case "journal":
		return journalCmd(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "cellgate %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "cellgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}
