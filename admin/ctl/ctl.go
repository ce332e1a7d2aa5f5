// Package ctl is the admin API's command-line client, run as
// `cellgate ctl [flags] COMMAND`. It prints human tables by default and
// the server's JSON with -o json, and its exit codes tell scripts what
// happened: 0 ok, 1 the server answered an error, 2 usage error, 3 the
// server could not be reached.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitServer      = 1 // the server answered an error (its message and code are printed)
	exitUsage       = 2
	exitUnreachable = 3
)

// DefaultAdmin is the admin API address ctl talks to without -admin; it
// matches the default admin.addr.
const DefaultAdmin = "http://127.0.0.1:9901"

const usage = `usage: cellgate ctl [-admin URL] [-token-file F] [-o table|json] [-timeout D] COMMAND

commands:
  status                          node, members, cells and the rollout
  cells                           cells with weights and SLIs
  weight CELL N [-reason R]       set a cell's weight by hand
  rollout start FILE.json|-       start a plan (- reads stdin)
  rollout get ID                  one rollout with its decisions
  rollouts                        every rollout
  pause|resume|approve|abort|promote ID [-reason R]
                                  operator actions on a rollout
  audit [-since N] [-limit N]     the journal, newest last: the newest
                                  page, or every event after N
  reload                          reload the config file
  signal CELL NAME VALUE          feed an external signal to the judge
  report ID -o FILE.html|FILE.json
                                  a rollout's report: plan, release, steps
                                  with verdicts, charts, audit, outcome
  override mint -secret-file F -key K [-ttl D] 'cell=NAME, FLAG=VARIANT'
                                  print a Set-Cookie value for a signed
                                  override cookie (F: the node's
                                  routing.pin_secret_file; no server call)

The token for mutations comes from -token-file or $CELLGATE_TOKEN.
Exit codes: 0 ok, 1 the server answered an error, 2 usage error,
3 cannot reach the server.
`

// usageError is a command-line mistake: exit 2 with the usage text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// env is what a run needs from the process; tests replace it.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
}

// Main runs `cellgate ctl` with args (after "ctl") and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, env{stdout: stdout, stderr: stderr, stdin: os.Stdin, getenv: os.Getenv})
}

// cmd is one invocation: the client and output mode for a command.
type cmd struct {
	env
	c    *client
	json bool
}

func run(args []string, e env) int {
	fs := flag.NewFlagSet("cellgate ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	admin := fs.String("admin", DefaultAdmin, "admin API base URL")
	tokenFile := fs.String("token-file", "", "file holding the bearer token (default $CELLGATE_TOKEN)")
	output := fs.String("o", "table", "output: table or json")
	timeout := fs.Duration("timeout", defaultTimeout, "timeout of each request")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) || (err == nil && fs.NArg() > 0 && isHelp(fs.Arg(0))) {
		fmt.Fprint(e.stdout, usage)
		return exitOK
	}
	if err == nil {
		err = checkGlobal(fs, *admin, *output)
	}
	var c *cmd
	if err == nil {
		c, err = newCmd(e, *admin, *tokenFile, *output, *timeout)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		err = c.dispatch(ctx, fs.Arg(0), fs.Args()[1:])
	}
	return report(e.stderr, err)
}

func isHelp(s string) bool { return s == "help" || s == "-h" || s == "--help" }

// checkGlobal validates the global flags.
func checkGlobal(fs *flag.FlagSet, admin, output string) error {
	if fs.NArg() == 0 {
		return usagef("no command")
	}
	if output != "table" && output != "json" {
		return usagef("-o %q: want table or json", output)
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("-admin %q: want a URL like %s", admin, DefaultAdmin)
	}
	return nil
}

func newCmd(e env, admin, tokenFile, output string, timeout time.Duration) (*cmd, error) {
	tok, err := loadToken(tokenFile, e.getenv)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return &cmd{
		env:  e,
		c:    &client{base: strings.TrimRight(admin, "/"), token: tok, http: &http.Client{Timeout: timeout}},
		json: output == "json",
	}, nil
}

// report prints err and returns the exit code.
func report(stderr io.Writer, err error) int {
	var ae *apiError
	var ue *usageError
	switch {
	case err == nil:
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "cellgate ctl: error: %s (code %s, HTTP %d)\n", ae.Msg, ae.Code, ae.Status)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cellgate ctl: %s\n\n%s", ue.msg, usage)
	default:
		fmt.Fprintf(stderr, "cellgate ctl: %v\n", err)
	}
	return exitCode(err)
}

// dispatch runs one command.
func (c *cmd) dispatch(ctx context.Context, name string, args []string) error {
	switch name {
	case "pause", "resume", "approve", "abort", "promote":
		return c.action(ctx, name, args) // one method, told which action
	case "override":
		return c.overrideCmd(args) // no server call
	}
	commands := map[string]func(context.Context, []string) error{
		"status": c.status, "cells": c.cells, "weight": c.weight,
		"rollout": c.rolloutCmd, "rollouts": c.rollouts, "audit": c.audit,
		"reload": c.reload, "signal": c.signal, "report": c.report,
	}
	if run, ok := commands[name]; ok {
		return run(ctx, args)
	}
	return usagef("unknown command %q", name)
}

// parseArgs parses a command's flags wherever they appear among its
// positional arguments (flag stops at the first non-flag) and checks the
// positional count.
func parseArgs(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		// A negative number (a signal value) is an argument, not a flag.
		if len(args) > 0 && isNegativeNumber(args[0]) {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != want {
		return nil, usagef("usage: cellgate ctl %s %s", fs.Name(), what)
	}
	return pos, nil
}

func isNegativeNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && strings.HasPrefix(s, "-")
}
