package cellgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cellgate/cellgate/configs"
)

// adminServer is the admin listener and its HTTP server.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// startAdmin binds admin.addr and serves the admin API on it.
func (n *Node) startAdmin(cfg *configs.Config) (*adminServer, error) {
	ln, err := net.Listen("tcp", cfg.Admin.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", cfg.Admin.Addr, err)
	}
	a := &adminServer{ln: ln, err: make(chan error, 1)}
	a.srv = &http.Server{
		Handler:           n.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go a.serve()
	return a, nil
}

func (a *adminServer) serve() { a.err <- a.srv.Serve(a.ln) }

func (a *adminServer) addr() string { return a.ln.Addr().String() }

func (a *adminServer) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}

// adminHandler is the admin API.
func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return mux
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
