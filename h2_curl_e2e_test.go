package cellgate_test

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testcert"
)

// curl runs curl (a client nobody here wrote) with args and returns its
// output: the response head (-D -) then the body.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "20", "-D", "-"}, args...)...).Output()
	if err != nil {
		vout, _ := exec.Command("curl", append([]string{"-v", "--max-time", "20"}, args...)...).CombinedOutput()
		t.Fatalf("curl %v: %v\n%s", args, err, vout)
	}
	return string(out)
}

// headAndBody splits curl's output into the status line, the header
// fields as lowercase "name: value" lines (sorted, Date left out: it moves)
// and the body.
func headAndBody(out string) (status string, fields []string, body string) {
	head, body, _ := strings.Cut(out, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	status = lines[0]
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		name = strings.ToLower(name)
		if name == "date" {
			continue
		}
		fields = append(fields, name+": "+strings.TrimSpace(value))
	}
	slices.Sort(fields)
	return status, fields, body
}

// TestCurlHTTP2OverTLS: curl --http2 over TLS negotiates h2 and gets the
// same status, fields and body curl --http1.1 gets.
func TestCurlHTTP2OverTLS(t *testing.T) {
	certFile, keyFile, _ := testcert.Write(t, t.TempDir(), "cellgate test")
	c := startCluster(t, "", cellDef{"stable-a", "v1", 1, 1})
	c.stop()
	tc := startFromText(t, fmt.Sprintf("[listen]\naddr = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\n[admin]\naddr = \"\"\n[state]\npath = %q\n[routing]\nsticky_key = [\"header:X-User-ID\"]\n[[cell]]\nname = \"stable-a\"\nversion = \"v1\"\nweight = 1\nendpoints = [%q]\n",
		certFile, keyFile, filepath.Join(t.TempDir(), "j.db"), c.cells["stable-a"].Addr()))
	url := "https://" + tc.node.Addr() + "/hello?x=1"
	s2, f2, b2 := headAndBody(curl(t, "-k", "--http2", "-H", "X-User-ID: u1", url))
	s1, f1, b1 := headAndBody(curl(t, "-k", "--http1.1", "-H", "X-User-ID: u1", url))
	if !strings.HasPrefix(s2, "HTTP/2 200") || !strings.HasPrefix(s1, "HTTP/1.1 200") {
		t.Fatalf("status lines %q and %q, want HTTP/2 200 and HTTP/1.1 200", s2, s1)
	}
	if !slices.Equal(f1, f2) || b1 != b2 {
		t.Errorf("HTTP/2 and HTTP/1.1 answers differ:\nh2:   %q %q\nh1.1: %q %q", f2, b2, f1, b1)
	}
	t.Logf("both versions: %s fields %q", s2, f2)
}

// TestCurlPriorKnowledge: curl --http2-prior-knowledge is served with
// listen.h2c on; with it off curl fails, and the preface it sent is
// answered 505 naming listen.h2c (read raw: curl cannot show HTTP/1.1
// bytes on an HTTP/2 connection).
func TestCurlPriorKnowledge(t *testing.T) {
	c := startCluster(t, "", cellDef{"stable-a", "v1", 1, 1})
	if out, err := exec.Command("curl", "-sS", "--max-time", "20", "--http2-prior-knowledge", "http://"+c.node.Addr()+"/").CombinedOutput(); err == nil {
		t.Errorf("h2c off: curl --http2-prior-knowledge succeeded: %s", out)
	}
	conn, err := net.Dial("tcp", c.node.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	raw, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(raw), "HTTP/1.1 505") || !strings.Contains(string(raw), "listen.h2c") {
		t.Errorf("h2c off: the preface got %q, want 505 naming listen.h2c", raw)
	}

	c.stop()
	cfg := *c.cfg
	cfg.Listen.H2C = true
	c.start(&cfg)
	status, _, body := headAndBody(curl(t, "--http2-prior-knowledge", "http://"+c.node.Addr()+"/"))
	if !strings.HasPrefix(status, "HTTP/2 200") || body == "" {
		t.Errorf("h2c on: %q %q", status, body)
	}
}
