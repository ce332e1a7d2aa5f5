package ctl

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/proxy"
)

// TestOverrideMintAcceptedByProxy: what `override mint` prints is a
// Set-Cookie value whose cookie a proxy keyed with the same secret file
// honours for the minted key (the request reaches the named cell, counted
// as overridden), and ignores for another key.
func TestOverrideMintAcceptedByProxy(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "pin.key")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCtl(t, "", "", "override", "mint", "-secret-file", secretFile, "-key", "tester-1", "-ttl", "1h", "cell=canary")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cookie, attrs, _ := strings.Cut(strings.TrimSpace(out), "; ")
	if !strings.HasPrefix(cookie, "cellgate_override=") || !strings.Contains(attrs, "Max-Age=3600") {
		t.Fatalf("not a Set-Cookie value for cellgate_override: %q", out)
	}

	upstream := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) }))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	opts := proxy.DefaultOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	secret, _ := os.ReadFile(secretFile)
	opts.PinSecret = []byte(strings.TrimSpace(string(secret)))
	p, err := proxy.New(opts, 1, []proxy.CellSpec{
		{Name: "stable", Weight: 1, Endpoints: []string{upstream("stable")}},
		{Name: "canary", Weight: 0, Endpoints: []string{upstream("canary")}},
	}, proxy.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	client := &http.Client{Timeout: 30 * time.Second}
	for _, tc := range []struct{ user, want string }{{"tester-1", "canary"}, {"someone-else", "stable"}} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		req.Header.Set("X-User-ID", tc.user)
		req.Header.Set("Cookie", cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != tc.want {
			t.Errorf("key %s: served by %q (%v), want %q", tc.user, body, err, tc.want)
		}
	}
	if p.Overrides() != 1 {
		t.Errorf("%d overridden requests counted, want 1", p.Overrides())
	}
}

// TestOverrideMintUsage: a missing secret file or key is a usage error.
func TestOverrideMintUsage(t *testing.T) {
	for _, args := range [][]string{
		{"override", "mint", "-key", "k", "cell=canary"},
		{"override", "mint", "-secret-file", "x", "cell=canary"},
		{"override", "cell=canary"},
	} {
		if code, _, _ := runCtl(t, "", "", args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
