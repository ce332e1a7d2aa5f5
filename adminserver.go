package cellgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/configs"
)

// adminServer is the admin listener and the server on it. It is bound
// (bindAdmin) separately from served (start), so a node can find out that
// admin.addr is taken before anything runs, and answer its first /readyz
// only once it serves traffic.
type adminServer struct {
	ln  net.Listener // the socket itself (handed over as is)
	tl  *answerListener
	srv *admin.Server
	log *slog.Logger

	// mu guards done and stopped.
	mu      sync.Mutex
	done    chan error // Serve's result; nil until start
	stopped bool
}

// bindAdmin reads the admin tokens and binds admin.addr (or takes ln, an
// inherited listener). It serves nothing until start.
func (n *Node) bindAdmin(cfg *configs.Config, ln net.Listener) (*adminServer, error) {
	tokens, err := loadTokens(cfg)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Admin.Addr)
		if err != nil {
			return nil, fmt.Errorf("admin listen %s: %w", cfg.Admin.Addr, err)
		}
	}
	srv, err := admin.New(admin.Options{
		Backend:    backend{n},
		Gatherer:   n.reg,
		Tokens:     tokens,
		ListenAddr: cfg.Admin.Addr,
		MapError:   mapError,
		Logger:     n.log.With("component", "admin"),
		History:    n.historyAnswer,
		OFREP:      n.ofrep(),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &adminServer{ln: ln, tl: newAnswerListener(ln), srv: srv, log: n.log.With("component", "admin")}, nil
}

// loadTokens reads admin.token_file (nil when none is configured: then
// mutations are accepted only on a loopback admin address).
func loadTokens(cfg *configs.Config) (*admin.Tokens, error) {
	if cfg.Admin.TokenFile == "" {
		return nil, nil
	}
	t, err := admin.LoadTokens(cfg.Admin.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	return t, nil
}

// start serves the admin API in its own goroutine. A Serve that ends by
// itself (its listener broke) takes the admin API, /metrics and /readyz
// away while the data plane goes on: it is logged when it happens, and
// stop returns it so the process's exit says so too.
func (a *adminServer) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done != nil || a.stopped {
		return
	}
	a.done = make(chan error, 1)
	go a.serve(a.done)
}

func (a *adminServer) serve(done chan<- error) {
	err := a.srv.Serve(a.tl)
	a.mu.Lock()
	stopped := a.stopped
	a.mu.Unlock()
	if stopped && err != nil {
		err = nil // stop closed the listener under a Serve that had not begun
	}
	if err != nil {
		a.log.Error("admin server stopped: the admin API, /metrics and /readyz are down", "err", err)
	}
	done <- err
}

func (a *adminServer) addr() string { return a.ln.Addr().String() }

// stop shuts the server down and waits for Serve to return; it returns
// Serve's error if Serve had failed by itself. Safe to call more than once
// and on a server never started.
//
// It first stops accepting and lets every connection already accepted
// get its first answer (up to answerWait), and only then shuts the HTTP
// server down (idle connections closed, in-flight requests finish, up to
// 5 s or ctx): net/http drops, without an answer, a request it reads
// after Shutdown began, and during a handover a client's request may just
// have been accepted here when this process hands the admin socket over.
// Connections still queued in the socket are not touched: the successor
// accepts them.
func (a *adminServer) stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	done := a.done
	a.mu.Unlock()
	if done == nil {
		return a.ln.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a.tl.Close()
	a.tl.waitAnswered(ctx, answerWait)
	err := a.srv.Shutdown(ctx) // a Serve that has not begun returns at once
	var serveErr error
	select {
	case serveErr = <-done:
	case <-ctx.Done():
		return fmt.Errorf("admin shutdown: serve did not return: %w", ctx.Err())
	}
	if err != nil && !errors.Is(err, net.ErrClosed) { // stop closed the listener first
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return serveErr
}

// mustJSON encodes v, or returns nil if it cannot be encoded (audit
// numbers are best effort; a decision must never fail on them).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// answerWait bounds how long stop waits for accepted connections to get
// their first answer before it shuts the server down.
const answerWait = time.Second

// answerListener tracks the connections it accepted until each has written
// something (its first answer) or closed.
type answerListener struct {
	net.Listener
	mu      sync.Mutex // guards pending and accepting
	pending map[*answerConn]struct{}
	// accepting counts Accept calls under way: a connection the socket
	// has handed over but Accept has not yet put in pending must be
	// waited for too, or stop could find nothing pending and shut the
	// server down under it (its request then got EOF during a handover).
	accepting int
}

func newAnswerListener(ln net.Listener) *answerListener {
	return &answerListener{Listener: ln, pending: map[*answerConn]struct{}{}}
}

func (l *answerListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.accepting++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepting--
	if err != nil {
		return nil, err
	}
	ac := &answerConn{Conn: c, l: l}
	l.pending[ac] = struct{}{}
	return ac, nil
}

func (l *answerListener) answered(c *answerConn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// waitAnswered polls until no accepted connection waits for its first
// answer and no Accept is under way, ctx ends or max passes. Called after
// the listener is closed, so an Accept still blocked returns at once.
func (l *answerListener) waitAnswered(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		l.mu.Lock()
		n := len(l.pending) + l.accepting
		l.mu.Unlock()
		if n == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// answerConn reports its first write or its close to its listener.
type answerConn struct {
	net.Conn
	l    *answerListener
	once sync.Once
}

func (c *answerConn) Write(b []byte) (int, error) {
	c.once.Do(func() { c.l.answered(c) })
	return c.Conn.Write(b)
}

func (c *answerConn) Close() error {
	c.once.Do(func() { c.l.answered(c) })
	return c.Conn.Close()
}
