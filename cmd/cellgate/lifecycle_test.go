package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// TestServeStartFailureExits: every way a start can fail after the
// journal is open — admin address in use, an empty token file, the gossip
// port in use — ends the process promptly with exit 1 and the journal
// released, so the fixed config starts at once. (Shutdown once waited for
// ever on a data plane that had never started, with SIGTERM ignored and
// the journal lock held.)
func TestServeStartFailureExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cell, _ := democell.Start("stable-a", "v1")
	defer cell.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name, head, want string
		files            map[string]string
	}{
		{name: "admin address in use", head: fmt.Sprintf("[admin]\naddr = %q\n", taken.Addr()), want: "admin listen"},
		{name: "empty token file", head: "[admin]\naddr = \"127.0.0.1:0\"\ntoken_file = \"TOKENS\"\n", want: "admin.token_file", files: map[string]string{"TOKENS": ""}},
		{name: "gossip port in use", head: fmt.Sprintf("node_name = \"n1\"\n[admin]\naddr = \"127.0.0.1:0\"\n[gossip]\nbind = %q\n", taken.Addr()), want: "gossip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			head := tc.head
			for name, body := range tc.files {
				path := filepath.Join(dir, name)
				os.WriteFile(path, []byte(body), 0o600)
				head = strings.ReplaceAll(head, `"`+name+`"`, fmt.Sprintf("%q", path))
			}
			journal := filepath.Join(dir, "j.db")
			cfg := filepath.Join(dir, "bad.toml")
			os.WriteFile(cfg, []byte(serveConfig(head, journal, cell.Addr())), 0o644)
			p := launch(t, bin, cfg)
			code, took := p.wait(15 * time.Second)
			t.Logf("%s: exit %d after %v", tc.name, code, took.Round(time.Millisecond))
			if code != 1 {
				p.cmd.Process.Kill()
				t.Fatalf("exit %d after %v, want 1 promptly\n%s", code, took, p.logs.text())
			}
			testwait.For(t, 20*time.Second, "the error in the log", func() bool { return strings.Contains(p.logs.text(), tc.want) })
			j, err := rollout.OpenJournal(journal, 100*time.Millisecond)
			if err != nil {
				t.Fatalf("journal after the failed start: %v", err)
			}
			j.Close()
			fixed := filepath.Join(dir, "fixed.toml")
			os.WriteFile(fixed, []byte(serveConfig("[admin]\naddr = \"127.0.0.1:0\"\n", journal, cell.Addr())), 0o644)
			ok := startServe(t, bin, fixed)
			if code, took := ok.term(t, 15*time.Second); code != 0 {
				t.Fatalf("the fixed config: exit %d after %v\n%s", code, took, ok.logs.text())
			}
		})
	}
}

// serveConfig is a one-cell config with head's tables on top.
func serveConfig(head, journal, cell string) string {
	return fmt.Sprintf("%s[listen]\naddr = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n[state]\npath = %q\n", head, journal) +
		testtoml.Cell("stable-a", "", 1, cell)
}

// oneCell is a cellgate process serving serveConfig's one cell, a demo
// cell named stable-a, with its files in dir.
type oneCell struct {
	*served
	bin, dir, cfg, journal string
	cell                   *democell.Server
}

// serveOneCell builds the binary, starts the demo cell and serves cellgate
// in front of it with serveConfig(head, …) written to a fresh dir (config
// c.toml, journal j.db). The cell and the process stop at the end of the
// test.
func serveOneCell(t *testing.T, head string) oneCell {
	t.Helper()
	bin := buildBinary(t)
	cell, err := democell.Start("stable-a", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cell.Close() })
	dir := t.TempDir()
	o := oneCell{bin: bin, dir: dir, cfg: filepath.Join(dir, "c.toml"), journal: filepath.Join(dir, "j.db"), cell: cell}
	if err := os.WriteFile(o.cfg, []byte(serveConfig(head, o.journal, cell.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	o.served = startServe(t, bin, o.cfg)
	return o
}

// TestDrainCutShortExitsZero: SIGTERM drains and exits 0, as the README
// says, also when a request outlives drain_timeout and the drain is cut
// short (it once exited 1).
func TestDrainCutShortExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := serveOneCell(t, "[admin]\naddr = \"127.0.0.1:0\"\n")
	cell := p.cell
	cell.SetDelay(4 * time.Second)
	go func() {
		if resp, err := http.Get("http://" + p.addr + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	testwait.For(t, 20*time.Second, "the slow request at the cell", func() bool { return cell.Requests() > 0 })
	code, took := p.term(t, 15*time.Second)
	t.Logf("drain with a request outliving drain_timeout (1s): exit %d after %v", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, p.logs.text())
	}
}
