package proxy

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestResponseHeadRealUpstreams fetches the same resource from upstreams
// nobody here wrote — nginx serving a file, Go's net/http answering with
// repeated Set-Cookie fields and a field that sorts after them — once
// directly and once through cellgate, and compares the two heads line by
// line: cellgate's must be the upstream's own, in its order and spelling,
// less the hop-by-hop fields, plus Via and cellgate's framing. Date values
// are masked (the two fetches may straddle a second).
func TestResponseHeadRealUpstreams(t *testing.T) {
	goUp := startGoUpstream(t)
	ups := map[string]string{"net/http": goUp}
	if nginx, www := startNginxIfInstalled(t); nginx != "" {
		if err := os.WriteFile(filepath.Join(www, "f.txt"), []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ups["nginx"] = nginx
	}
	for name, up := range ups {
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			opts.ResponseHeaders = false
			p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			addr := serveProxy(t, p, nil)
			path := "/f.txt"
			if name == "net/http" {
				path = "/cookies"
			}
			req := "GET " + path + " HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n"
			direct := maskDate(rawExchange(t, up, req, nil))
			via := maskDate(rawExchange(t, addr, req, nil))
			dHead, dBody := headOf(direct)
			vHead, vBody := headOf(via)
			// The direct answer's own hop-by-hop field goes; cellgate adds
			// Via and its own Connection: close after the upstream's fields.
			var kept []string
			for _, l := range strings.Split(dHead, "\r\n") {
				if k, _, _ := strings.Cut(l, ":"); !strings.EqualFold(k, "Connection") && !strings.EqualFold(k, "Keep-Alive") {
					kept = append(kept, l)
				}
			}
			want := strings.Join(kept, "\r\n") + "\r\nVia: 1.1 cellgate\r\nConnection: close"
			if vHead != want || vBody != dBody {
				t.Errorf("through cellgate:\n%q\nwant (the upstream's head, less hop-by-hop, plus Via):\n%q", via, want+"\r\n\r\n"+dBody)
			}
			if n := p.conns.swaps.missed.Load(); n != 0 {
				t.Errorf("%d response heads went out as the server wrote them", n)
			}
		})
	}
}

var dateLine = regexp.MustCompile(`(?m)^Date: .*\r$`)

func maskDate(s string) string { return dateLine.ReplaceAllString(s, "Date: *\r") }

// startGoUpstream serves /cookies from Go's net/http: two Set-Cookie
// fields and an X-Zeta field that its writer sorts after them.
func startGoUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", `b="2 3"; HttpOnly`)
		h.Set("X-Zeta", "last")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("go\n"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// startNginxIfInstalled is startNginx without the skip: "" when nginx is
// not installed.
func startNginxIfInstalled(t *testing.T) (addr, www string) {
	t.Helper()
	if !nginxInstalled() {
		return "", ""
	}
	return startNginx(t)
}

func nginxInstalled() bool {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	return false
}
