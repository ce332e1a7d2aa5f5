package cellgate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/configs"
)

// adminServer is the admin listener and its server.
type adminServer struct {
	ln       net.Listener
	srv      *admin.Server
	log      *slog.Logger
	done     chan struct{} // closed when Serve has returned
	serveErr error         // Serve's result, set before done is closed
}

// startAdmin binds admin.addr and serves the admin API, /metrics and the
// status page on it.
func (n *Node) startAdmin(cfg *configs.Config, ln net.Listener) (*adminServer, error) {
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
	a := &adminServer{ln: ln, srv: srv, log: n.log.With("component", "admin"), done: make(chan struct{})}
	go a.serve()
	return a, nil
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

// serve runs the admin server until shutdown. A failure before that (the
// listener broke) takes the admin API, /metrics and /readyz away while the
// data plane goes on: it is logged when it happens, and shutdown returns it
// so the process's exit says so too.
func (a *adminServer) serve() {
	err := a.srv.Serve(a.ln)
	if err != nil {
		a.log.Error("admin server stopped: the admin API, /metrics and /readyz are down", "err", err)
	}
	a.serveErr = err
	close(a.done)
}

func (a *adminServer) addr() string { return a.ln.Addr().String() }

func (a *adminServer) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	select {
	case <-a.done:
		return a.serveErr // nil after a clean shutdown; wrapped by admin.Serve
	case <-ctx.Done():
		return fmt.Errorf("admin shutdown: serve did not return: %w", ctx.Err())
	}
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
