package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// logPaths returns the path field of every line of an access log file
// (each line parsed as JSON; a missing file has none).
func logPaths(t *testing.T, file string) map[string]bool {
	t.Helper()
	raw, _ := os.ReadFile(file)
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m struct{ Path string }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q: %v", file, sc.Text(), err)
		}
		out[m.Path] = true
	}
	return out
}

// TestSIGUSR1ReopensAccessLog: logrotate's move-then-signal. After the file
// is renamed, lines keep going to the renamed file until SIGUSR1; then
// they go to a new file at the configured path.
func TestSIGUSR1ReopensAccessLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	logFile := filepath.Join(t.TempDir(), "access.log")
	p := serveOneCell(t, "[admin]\naddr = \"127.0.0.1:0\"\n[access_log]\npath = \""+logFile+"\"\n")
	get := func(path string) {
		t.Helper()
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/before")
	testwait.For(t, 20*time.Second, "/before logged", func() bool { return logPaths(t, logFile)["/before"] })
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	get("/moved")
	testwait.For(t, 20*time.Second, "/moved logged to the moved file", func() bool { return logPaths(t, logFile+".1")["/moved"] })
	p.cmd.Process.Signal(syscall.SIGUSR1)
	// The signal is handled asynchronously: request until a line lands in
	// the new file.
	testwait.For(t, 20*time.Second, "a line in the reopened file", func() bool {
		get("/after")
		return logPaths(t, logFile)["/after"]
	})
	if old := logPaths(t, logFile+".1"); !old["/before"] || !old["/moved"] {
		t.Errorf("the rotated file lost lines: %v", old)
	}
	if code, _ := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, p.logs.text())
	}
}
