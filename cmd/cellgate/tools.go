package main

import (
	"io"

	"github.com/cellgate/cellgate/admin/ctl"
	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/bench/scenario"
)

// benchCmd runs `cellgate bench`; `cellgate bench scenario …` runs a
// scenario (a node, demo cells and a rollout under load) instead.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "scenario" {
		return scenario.Main(args[1:], stdout, stderr)
	}
	return bench.Main(args, stdout, stderr)
}

// ctlCmd runs `cellgate ctl`.
func ctlCmd(args []string, stdout, stderr io.Writer) int { return ctl.Main(args, stdout, stderr) }
