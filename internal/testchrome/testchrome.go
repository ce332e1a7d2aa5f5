// Package testchrome runs Debian's headless Chromium for tests that check
// what a real browser does with cellgate's pages and tunnels.
//
// Only tests import it (internal/testwait's TestOnlyTestsImport checks).
package testchrome

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Bin is Debian's chromium; tests skip without it (Need).
const Bin = "/usr/bin/chromium"

// Need skips the test when Chromium is not installed; what says what the
// test needs the browser for.
func Need(t testing.TB, what string) {
	t.Helper()
	if _, err := os.Stat(Bin); err != nil {
		t.Skipf("no %s: %s needs Debian's chromium", Bin, what)
	}
}

// Run runs headless Chromium with args after the flags every run needs
// (no sandbox, GPU, QUIC or background traffic; a fresh profile and HOME in
// a temporary directory), for at most 90 s, and returns its standard
// output. A failed run fails the test with Chromium's standard error.
func Run(t testing.TB, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check",
		"--user-data-dir=" + dir}
	cmd := exec.CommandContext(ctx, Bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}
