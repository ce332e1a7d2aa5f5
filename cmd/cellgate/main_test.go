package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/configs"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestCheckExamples runs `cellgate check` on every example config.
func TestCheckExamples(t *testing.T) {
	dir := t.TempDir()
	for name, src := range configs.Examples() {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI("check", "-config", path)
		// The examples listen on plain TCP and leave listen.core out: the
		// loop core on Linux.
		core := map[bool]string{true: "loop", false: "goroutine"}[runtime.GOOS == "linux"]
		if code != 0 || !strings.Contains(out, ": ok: ") || !strings.Contains(out, " on the "+core+" core") {
			t.Errorf("check %s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
}

func TestCheckReportsProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	src := "[listen]\naddr = \"x\"\n[[cell]]\nname = \"a\"\nweight = 0\nendpoints = []\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("check", "-config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{path + ":2: listen.addr", path + ":6: cell.0.endpoints", "problem(s)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"check"}, {"check", "-bogus"}} {
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "cellgate ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCheckReportsBadPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.toml")
	src := "[[cell]]\nname = \"a\"\nweight = 1\nendpoints = [\"127.0.0.1:1\"]\n\n[[plan]]\nname = \"p\"\ntargets = [\"ghost\"]\nbaseline = [\"a\"]\nsteps = [50, 100]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("check", "-config", path)
	if code != 1 || !strings.Contains(errOut, path+":6: plan.0:") || !strings.Contains(errOut, "ghost") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
}
