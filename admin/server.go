package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server. Only Backend is required; every other field
// has a working zero value.
type Options struct {
	// Backend answers every /v1 route. Required.
	Backend Backend
	// Gatherer is served at GET /metrics. Nil serves an empty registry.
	Gatherer prometheus.Gatherer
	// Tokens authenticate mutations. Nil or empty: no token configured,
	// so mutations are accepted only on a loopback listener. Replace
	// later with SetTokens (e.g. on config reload).
	Tokens *Tokens
	// ListenAddr is the admin listener's address (admin.addr). It decides
	// the loopback rule. Empty: Serve takes it from its listener; a server
	// used only through Handler with no ListenAddr is treated as not
	// loopback (mutations need a token).
	ListenAddr string
	// MaxBodyBytes bounds request bodies (413 above). Zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MapError turns backend errors that are not *Error into one (e.g. the
	// rollout package's sentinels into 404/409). Nil, or a nil result:
	// 500 "internal".
	MapError func(error) *Error
	// Logger receives internal errors and serve failures. Nil discards.
	Logger *slog.Logger
	// UIAutotest lets the status page honour its ?autotest= query
	// parameter (it clicks its own buttons; see ui/index.html). Only the
	// headless-browser test sets it: a link must not be able to drive an
	// operator's browser.
	UIAutotest bool
	// History answers GET /v1/history: the per-second history of the
	// node's cells and the decisions since a time, or one rollout's
	// journalled history, as one JSON document.
	// Nil: the route answers 404.
	History func(ctx context.Context, q HistoryQuery) (any, error)
	// OFREP serves the OpenFeature Remote Evaluation Protocol under
	// /ofrep/ (flags.OFREP): evaluations are reads for SDKs acting for
	// users, so they need no token and are outside the cross-origin guard.
	// Nil: /ofrep/ is not routed.
	OFREP http.Handler
}

// Server is the admin HTTP server. It is safe for concurrent use.
type Server struct {
	opts    Options
	handler http.Handler
	ui      []byte // the status page, with the autotest switch applied
	tokens  atomic.Pointer[Tokens]
	// loopback says whether the admin listener is bound to loopback.
	loopback atomic.Bool

	// mu guards srv and shut.
	mu   sync.Mutex
	srv  *http.Server
	shut bool // Shutdown was called: a later Serve returns at once
}

// Server timeouts. The admin API answers small JSON documents, so tight
// limits cost nothing and keep slow clients from holding connections.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// New builds a Server from opts.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("admin: Options.Backend is required")
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.NewRegistry()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, ui: uiPage(opts.UIAutotest)}
	s.tokens.Store(opts.Tokens)
	s.loopback.Store(opts.ListenAddr != "" && isLoopbackAddr(opts.ListenAddr))
	s.handler = s.routes()
	return s, nil
}

// SetTokens replaces the token set (nil: no token configured). Requests
// already past authentication are not affected.
func (s *Server) SetTokens(t *Tokens) { s.tokens.Store(t) }

// Handler returns the server's HTTP handler, for use in another server or
// a test. The loopback rule follows Options.ListenAddr.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on l until Shutdown; it returns nil after a Shutdown
// (also one that came first: then it closes l and returns at once, so a
// caller waiting for Serve's result is not left waiting). With no
// Options.ListenAddr, l's address decides the loopback rule.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.ListenAddr == "" {
		s.loopback.Store(isLoopbackAddr(l.Addr().String()))
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	if s.srv != nil {
		s.mu.Unlock()
		return errors.New("admin: Serve called twice")
	}
	s.srv = srv
	s.mu.Unlock()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}

// Shutdown stops Serve gracefully: it stops accepting and waits for
// in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.shut = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// routes builds the handler tree: the mux, wrapped so that unrouted
// requests get JSON 404/405 answers, inside cross-origin protection.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/cells", s.cells)
	mux.HandleFunc("PUT /v1/cells/{name}/weight", s.mutation(s.setWeight))
	mux.HandleFunc("POST /v1/rollouts", s.mutation(s.startRollout))
	mux.HandleFunc("GET /v1/rollouts", s.rollouts)
	mux.HandleFunc("GET /v1/rollouts/{id}", s.rollout)
	mux.HandleFunc("POST /v1/rollouts/{id}/{action}", s.mutation(s.rolloutAction))
	mux.HandleFunc("GET /v1/audit", s.audit)
	mux.HandleFunc("GET /v1/history", s.history)
	mux.HandleFunc("POST /v1/config/reload", s.mutation(s.reload))
	mux.HandleFunc("POST /v1/signals", s.mutation(s.signal))
	mux.HandleFunc("GET /ui/", s.uiHandler)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: CodeCrossOrigin,
			Msg: "cross-origin request refused: use the admin API from the same origin or a non-browser client"})
	}))
	guarded := cop.Handler(&jsonMux{mux: mux})
	if s.opts.OFREP == nil {
		return guarded
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ofrep/") {
			s.opts.OFREP.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}
