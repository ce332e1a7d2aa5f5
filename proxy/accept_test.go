package proxy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// flakyListener fails Accept with err while fail says so, then passes
// through to a real listener.
type flakyListener struct {
	net.Listener
	fail  atomic.Int64 // accepts still to fail; < 0: fail for ever
	err   error
	calls atomic.Int64
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	if n := l.fail.Load(); n != 0 {
		if n > 0 {
			l.fail.Add(-1)
		}
		return nil, l.err
	}
	return l.Listener.Accept()
}

// acceptErr is what net.TCPListener returns for errno e.
func acceptErr(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
}

// serveFlaky serves a proxy on a flaky loopback listener and returns it,
// the listener and a channel that yields Serve's result.
func serveFlaky(t *testing.T, fail int64, err error) (*Proxy, *flakyListener, <-chan error) {
	t.Helper()
	p, e := New(testOptions(), 42, []CellSpec{{Name: "a", Endpoints: []string{okUpstream(t, nil)}, Weight: 1}}, Hooks{})
	if e != nil {
		t.Fatal(e)
	}
	ln, e := net.Listen("tcp", "127.0.0.1:0")
	if e != nil {
		t.Fatal(e)
	}
	fl := &flakyListener{Listener: ln, err: err}
	fl.fail.Store(fail)
	done := make(chan error, 1)
	go func() { done <- p.Serve(fl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p, fl, done
}

// TestAcceptRetriesTemporaryErrors: EMFILE, ENFILE and ECONNABORTED from
// accept are retried after a pause; Serve keeps running and the next client
// is served. (fasthttp alone returns from Serve on the first one.)
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED} {
		t.Run(e.Error(), func(t *testing.T) {
			p, fl, done := serveFlaky(t, 3, acceptErr(e))
			k := dialKeepAlive(t, fl.Addr().String())
			if status, _, err := k.get(); err != nil || status != 200 {
				t.Fatalf("after %d failed accepts: status %d, %v", p.AcceptErrors(), status, err)
			}
			select {
			case err := <-done:
				t.Fatalf("Serve returned on a temporary accept error: %v", err)
			default:
			}
			if got := p.AcceptErrors(); got != 3 {
				t.Errorf("accept errors counted %d, want 3", got)
			}
			if !p.Serving() {
				t.Error("Serving false after accepts recovered")
			}
		})
	}
}

// TestAcceptStuckIsNotServing: accepts that keep failing make Serving false
// (readiness), and it comes back once they succeed; Shutdown interrupts the
// backoff pause.
func TestAcceptStuckIsNotServing(t *testing.T) {
	p, fl, done := serveFlaky(t, -1, acceptErr(syscall.EMFILE))
	testwait.For(t, 10*time.Second, "Serving false while accept fails", func() bool { return !p.Serving() })
	fl.fail.Store(0)
	k := dialKeepAlive(t, fl.Addr().String())
	if status, _, err := k.get(); err != nil || status != 200 {
		t.Fatalf("after accepts recovered: status %d, %v", status, err)
	}
	if !p.Serving() {
		t.Error("Serving still false after accepts recovered")
	}
	fl.fail.Store(-1)
	k.c.Close()
	testwait.For(t, 10*time.Second, "accept pausing again", func() bool { return p.AcceptErrors() > 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown during a backoff pause: %v", err)
	}
}

// TestServeEndsOnPermanentError: a permanent accept error ends Serve with
// that error, and Serving turns false so the node's /readyz does too.
func TestServeEndsOnPermanentError(t *testing.T) {
	perm := errors.New("listener broken")
	p, _, done := serveFlaky(t, -1, perm)
	if err := <-done; !errors.Is(err, perm) {
		t.Fatalf("Serve returned %v, want %v", err, perm)
	}
	if p.Serving() {
		t.Error("Serving true after Serve returned")
	}
}

// TestFitConns pins the descriptor budget: two per connection after the
// reserve and the refusal slots; a cap that fits is kept; a limit with no
// room is refused.
func TestFitConns(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		limit                 uint64
		configured, endpoints int
		wantMax, wantRefusals int
		wantErr, wantClamped  bool
	}{
		{name: "unknown limit keeps the cap", limit: 0, configured: 50_000, wantMax: 50_000, wantRefusals: maxLingering},
		{name: "default cap over 20000", limit: 20_000, configured: 50_000, endpoints: 6, wantMax: (20_000 - 70 - 512) / 2, wantRefusals: 512, wantClamped: true},
		{name: "ulimit 256", limit: 256, configured: 50_000, endpoints: 1, wantMax: (256 - 65 - 23) / 2, wantRefusals: 23, wantClamped: true},
		{name: "no cap asked", limit: 1024, configured: 0, wantMax: (1024 - 64 - 120) / 2, wantRefusals: 120, wantClamped: true},
		{name: "cap that fits", limit: 1 << 20, configured: 50_000, wantMax: 50_000, wantRefusals: 512},
		{name: "no room", limit: 64, configured: 10, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := fitConns(tc.limit, tc.configured, tc.endpoints)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if b.MaxConns != tc.wantMax || b.Refusals != tc.wantRefusals || b.Clamped() != tc.wantClamped {
				t.Errorf("budget %+v, want max %d, refusals %d, clamped %v", b, tc.wantMax, tc.wantRefusals, tc.wantClamped)
			}
			if tc.limit > 0 && uint64(2*b.MaxConns+b.Refusals+b.Reserve) > tc.limit {
				t.Errorf("budget %+v spends more than the limit %d", b, tc.limit)
			}
		})
	}
}

// TestNewClampsMaxConns: New applies the budget to the connection cap.
func TestNewClampsMaxConns(t *testing.T) {
	opts := testOptions()
	opts.MaxConns = 50_000
	p, err := New(opts, 42, []CellSpec{{Name: "a", Endpoints: []string{"127.0.0.1:1"}, Weight: 1}}, Hooks{NoFileLimit: func() uint64 { return 256 }})
	if err != nil {
		t.Fatal(err)
	}
	if b := p.FDBudget(); b.MaxConns != 84 || p.conns.max != 84 || p.conns.maxLingering != 23 {
		t.Errorf("budget %+v, tracker max %d lingering %d; want 84 and 23", b, p.conns.max, p.conns.maxLingering)
	}
	cells := []CellSpec{{Name: "a", Endpoints: []string{"127.0.0.1:1"}, Weight: 1}}
	if _, err := New(opts, 42, cells, Hooks{NoFileLimit: func() uint64 { return 40 }}); err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
		t.Errorf("New with a descriptor limit of 40: %v, want a refusal naming RLIMIT_NOFILE", err)
	}
}

// TestDescriptorFitLogLevel: lowering the default max_conns to the
// descriptor limit is the expected fit, one info line; lowering a cap an
// operator asked for is a warning.
func TestDescriptorFitLogLevel(t *testing.T) {
	for _, tc := range []struct {
		isDefault bool
		want      slog.Level
	}{{true, slog.LevelInfo}, {false, slog.LevelWarn}} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		opts := testOptions()
		opts.MaxConns, opts.MaxConnsDefault = 50_000, tc.isDefault
		if _, err := New(opts, 42, []CellSpec{{Name: "a", Endpoints: []string{"127.0.0.1:1"}, Weight: 1}}, Hooks{Logger: log, NoFileLimit: func() uint64 { return 256 }}); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if strings.Contains(l, "max_conns") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "level="+tc.want.String()) || !strings.Contains(lines[0], "max_conns=84") {
			t.Errorf("default %v: descriptor fit logged as %q, want one %s line with max_conns=84", tc.isDefault, lines, tc.want)
		}
	}
}
