package main

import (
	"io"

	"github.com/cellgate/cellgate/admin/ctl"
	"github.com/cellgate/cellgate/bench"
)

// benchCmd runs `cellgate bench`.
func benchCmd(args []string, stdout, stderr io.Writer) int { return bench.Main(args, stdout, stderr) }

// ctlCmd runs `cellgate ctl`.
func ctlCmd(args []string, stdout, stderr io.Writer) int { return ctl.Main(args, stdout, stderr) }
