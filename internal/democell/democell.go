// Package democell runs in-process upstream cells on loopback for the demo,
// the bench scenarios and end-to-end tests: real fasthttp servers whose
// faults (an error ratio, added latency) can be switched at run time.
package democell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Server is one demo endpoint. Its fault knobs are atomics, so a test or the
// demo can turn a fault on mid-run without a lock.
type Server struct {
	Name    string // cell name it serves, echoed in X-Demo-Cell
	Version string

	ln       net.Listener // a *trackingListener
	srv      *fasthttp.Server
	errPPM   atomic.Int64                 // share of requests answered 500, in parts per million
	delay    atomic.Int64                 // added latency, ns
	variant  atomic.Pointer[variantFault] // a flag variant's own fault; nil: none
	requests atomic.Int64
	failed   atomic.Int64
	done     chan struct{}
	grace    time.Duration // Close's graceful part; 0: closeGrace
}

// Start listens on 127.0.0.1:0 and serves until Close.
func Start(name, version string) (*Server, error) { return StartAt(name, version, "127.0.0.1:0") }

// StartAt listens on addr (to restart an endpoint where it was) and serves
// until Close or Kill.
func StartAt(name, version, addr string) (*Server, error) {
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("democell %s: listen: %w", name, err)
	}
	ln := &trackingListener{Listener: inner, conns: map[net.Conn]struct{}{}}
	s := &Server{Name: name, Version: version, ln: ln, done: make(chan struct{})}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		Name:                         "democell",
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		IdleTimeout:                  60 * time.Second,
		CloseOnShutdown:              true,
		ReduceMemoryUsage:            false,
		DisablePreParseMultipartForm: true,
	}
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer close(s.done)
	_ = s.srv.Serve(s.ln)
}

// Addr is the endpoint's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetErrorRatio makes that share of requests (0–1) answer 500.
func (s *Server) SetErrorRatio(r float64) { s.errPPM.Store(int64(r * 1e6)) }

// SetDelay adds d to every response.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// FlagFault is a release whose new code path is broken on every cell:
// requests that carry flag Flag's variant Variant (in X-Cellgate-Flags)
// and touch the flagged code fail with 500 at Ratio. With Expose in (0, 1)
// only that share of requests touch the flagged code — whatever their
// variant — and those responses say so in X-Cellgate-Exposed (issue 17's
// exposure = "marked"); with Expose 0 every request touches it and none
// is marked.
type FlagFault struct {
	Flag, Variant string
	Ratio         float64
	Expose        float64
}

// variantFault is a FlagFault ready for the request path.
type variantFault struct {
	flag      []byte // "flag=" prefix of the dictionary member
	member    []byte // "flag=variant"
	ppm       int64
	exposePPM int64
}

// SetFlagFault installs f (a zero FlagFault removes it).
func (s *Server) SetFlagFault(f FlagFault) {
	if f.Flag == "" {
		s.variant.Store(nil)
		return
	}
	s.variant.Store(&variantFault{flag: []byte(f.Flag + "="), member: []byte(f.Flag + "=" + f.Variant),
		ppm: int64(f.Ratio * 1e6), exposePPM: int64(f.Expose * 1e6)})
}

// Requests is how many requests this endpoint received; Failed how many it
// answered 500 on purpose.
func (s *Server) Requests() int64 { return s.requests.Load() }
func (s *Server) Failed() int64   { return s.failed.Load() }

// Kill stops the endpoint the way a crash does: the listener and every
// connection close at once, requests in flight included.
func (s *Server) Kill() {
	s.ln.(*trackingListener).killAll()
	<-s.done
}

// closeGrace bounds Close's graceful part (Server.grace, when set, in
// this package's tests).
const closeGrace = 10 * time.Second

// Close stops the server gracefully and waits for it, also when it comes
// before the server began: requests in flight finish and idle connections
// close. fasthttp's Shutdown alone waits
// without limit for a connection that is neither — a request whose rest
// never comes (the server has no read timeout), a proxy that stopped
// mid-request — so a test that failed half-way would hang in its cleanup
// until go test's timeout; after closeGrace such connections are cut
// (as Kill does) and Close says so.
func (s *Server) Close() error {
	grace := s.grace
	if grace == 0 {
		grace = closeGrace
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := s.srv.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.ln.(*trackingListener).killAll()
		err = fmt.Errorf("democell %s: connections still open %v after Close were cut", s.Name, grace)
	}
	// A Shutdown that came before the serve goroutine ran (a test that
	// failed right after Start) returns at once and the Serve after it
	// would serve for ever: closing the listener ends that Serve at its
	// first Accept.
	_ = s.ln.Close()
	<-s.done
	return err
}

var body = []byte(`{"ok":true}` + "\n")

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	s.requests.Add(1)
	if d := s.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	ctx.Response.Header.Set("X-Demo-Cell", s.Name)
	ctx.Response.Header.Set("X-Demo-Version", s.Version)
	flags := ctx.Request.Header.Peek("X-Cellgate-Flags")
	if len(flags) > 0 {
		ctx.Response.Header.SetBytesV("X-Demo-Flags", flags) // what the upstream saw, for tests and the demo
	}
	if f := s.variant.Load(); f != nil && hasMember(flags, f.flag, nil) {
		touched := true
		if f.exposePPM > 0 {
			touched = rand.Int64N(1_000_000) < f.exposePPM
			if touched {
				ctx.Response.Header.SetBytesV("X-Cellgate-Exposed", f.flag[:len(f.flag)-1])
			}
		}
		if touched && hasMember(flags, nil, f.member) && f.ppm > 0 && rand.Int64N(1_000_000) < f.ppm {
			s.failed.Add(1)
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			ctx.SetBodyString("injected variant fault\n")
			return
		}
	}
	if ppm := s.errPPM.Load(); ppm > 0 && rand.Int64N(1_000_000) < ppm {
		s.failed.Add(1)
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetBodyString("injected fault\n")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// trackingListener remembers open connections so Kill can close them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *trackingListener) killAll() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as when the process dies mid-response
		}
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// hasMember reports whether the dictionary v has a member starting with
// prefix (when not nil) or equal to m.
func hasMember(v, prefix, m []byte) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		item := v
		if i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		item = bytes.TrimSpace(item)
		if (prefix != nil && bytes.HasPrefix(item, prefix)) || (m != nil && bytes.Equal(item, m)) {
			return true
		}
	}
	return false
}
