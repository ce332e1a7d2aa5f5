package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/rollout"
)

const journalUsage = `usage: cellgate journal check|export|compact [-config FILE | -path JOURNAL] [flags]
  check     verify the journal (meta pages, bbolt consistency, every entry decodes); exit 1 if damaged
  export    write every readable entry as JSON lines (-o FILE, default stdout)
  compact   copy every readable entry into a fresh, verified journal and swap it in;
            the original is kept as JOURNAL.<time>.bak
The node must be stopped: the tools fail fast while it holds the journal.
`

// journalCmd runs the offline journal tools (docs/CONTRACT.md, "Journal
// recovery"). Exit codes: 0 ok, 1 damaged or failed, 2 usage.
func journalCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, journalUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("journal "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file whose state.path names the journal")
	dbPath := fs.String("path", "", "the journal file (instead of -config)")
	out := fs.String("o", "", "export: output file (default stdout)")
	asJSON := fs.Bool("json", false, "check: print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path, err := journalPath(*cfgPath, *dbPath)
	if err != nil || fs.NArg() > 0 {
		if err != nil {
			fmt.Fprintf(stderr, "cellgate journal: %v\n", err)
		}
		fmt.Fprint(stderr, journalUsage)
		return 2
	}
	switch sub {
	case "check":
		return journalCheck(path, *asJSON, stdout, stderr)
	case "export":
		return journalExport(path, *out, stderr)
	case "compact":
		return journalCompact(path, stdout, stderr)
	}
	fmt.Fprintf(stderr, "cellgate journal: unknown command %q\n%s", sub, journalUsage)
	return 2
}

// journalPath picks the journal file from -path or the config's state.path.
func journalPath(cfgPath, dbPath string) (string, error) {
	switch {
	case dbPath != "" && cfgPath != "":
		return "", errors.New("give -config or -path, not both")
	case dbPath != "":
		return dbPath, nil
	case cfgPath != "":
		cfg, err := configs.Load(cfgPath)
		if err != nil {
			return "", err
		}
		return cfg.State.Path, nil
	}
	return "", errors.New("-config or -path is required")
}

func journalCheck(path string, asJSON bool, stdout, stderr io.Writer) int {
	r, err := rollout.CheckJournal(path)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate journal check: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		fmt.Fprintf(stdout, "%s: %d bytes, checked in %s\n", r.Path, r.Size, r.Took.Round(time.Millisecond))
		for _, b := range []string{"rollouts", "audit", "audit_by_rollout", "releases", "cells"} {
			fmt.Fprintf(stdout, "  %-17s %d entries\n", b, r.Entries[b])
		}
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "  PROBLEM: %s\n", p)
		}
	}
	if !r.OK() {
		fmt.Fprintf(stderr, "%s: damaged (%d problem(s)); `cellgate journal compact` keeps what is readable, see docs/CONTRACT.md \"Journal recovery\"\n", path, len(r.Problems))
		return 1
	}
	if !asJSON {
		fmt.Fprintf(stdout, "%s: ok\n", path)
	}
	return 0
}

func journalExport(path, out string, stderr io.Writer) int {
	w := io.Writer(os.Stdout)
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "cellgate journal export: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	st, err := rollout.ExportJournal(path, w)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate journal export: %v\n", err)
		return 1
	}
	for _, p := range st.Problems {
		fmt.Fprintf(stderr, "skipped: %s\n", p)
	}
	fmt.Fprintf(stderr, "%s: exported %d entries, skipped %d unreadable\n", path, st.Entries, len(st.Problems))
	if len(st.Problems) > 0 {
		return 1
	}
	return 0
}

func journalCompact(path string, stdout, stderr io.Writer) int {
	tmp := path + ".compact"
	st, err := rollout.CompactJournal(path, tmp)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate journal compact: %v\n", err)
		return 1
	}
	for _, p := range st.Problems {
		fmt.Fprintf(stderr, "left out: %s\n", p)
	}
	bak := fmt.Sprintf("%s.%s.bak", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, bak); err != nil {
		os.Remove(tmp)
		fmt.Fprintf(stderr, "cellgate journal compact: keep the original: %v\n", err)
		return 1
	}
	if err := os.Rename(tmp, path); err != nil {
		fmt.Fprintf(stderr, "cellgate journal compact: %v (the original is at %s, the copy at %s)\n", err, bak, tmp)
		return 1
	}
	fmt.Fprintf(stdout, "%s: compacted %d → %d bytes, %d entries kept, %d left out; original kept as %s\n",
		path, st.SizeBefore, st.After, st.Entries, len(st.Problems), bak)
	return 0
}
