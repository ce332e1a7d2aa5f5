package cellgate

import (
	"context"
	"encoding/json"
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
	ln  net.Listener
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
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &adminServer{ln: ln, srv: srv, log: n.log.With("component", "admin")}, nil
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
	err := a.srv.Serve(a.ln)
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

// stop shuts the server down (in-flight requests finish, up to 5 s or
// ctx) and closes the listener; it waits for Serve to return and returns
// Serve's error if it had failed by itself. Safe to call more than once
// and on a server never started.
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
	err := a.srv.Shutdown(ctx) // a Serve that has not begun returns at once
	var serveErr error
	select {
	case serveErr = <-done:
	case <-ctx.Done():
		return fmt.Errorf("admin shutdown: serve did not return: %w", ctx.Err())
	}
	if err != nil {
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
