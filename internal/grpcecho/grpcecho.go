// Package grpcecho runs an in-process gRPC cell on loopback for end-to-end
// tests: a grpc-go server (h2c) with one unary method whose failures — a
// share of calls answered with a chosen status code, HTTP 200 around it —
// can be switched at run time, and a client that calls it with a sticky
// key.
package grpcecho

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Method is the full name of the unary method.
const Method = "/cellgate.test.Echo/Unary"

// Server is one gRPC endpoint; its fault knobs are atomics.
type Server struct {
	Name  string
	ln    net.Listener
	srv   *grpc.Server
	code  atomic.Int32 // the status code failing calls get
	ppm   atomic.Int64 // share of calls that fail, in parts per million
	calls atomic.Int64
}

// Start serves on 127.0.0.1:0 until Close. Replies carry the cell's name.
func Start(name string) (*Server, error) { return StartAt(name, "127.0.0.1:0") }

// StartAt is Start on addr.
func StartAt(name, addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpcecho %s: listen: %w", name, err)
	}
	s := &Server{Name: name, ln: ln, srv: grpc.NewServer()}
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "cellgate.test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			s.calls.Add(1)
			if p := s.ppm.Load(); p > 0 && rand.Int64N(1_000_000) < p {
				return nil, status.Error(codes.Code(s.code.Load()), "grpcecho: fault")
			}
			return wrapperspb.String(s.Name + ":" + in.Value), nil
		}}},
	}, nil)
	go s.srv.Serve(ln) //nolint:errcheck // Serve ends with Close
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Calls counts the calls received.
func (s *Server) Calls() int64 { return s.calls.Load() }

// SetFault makes a share (0..1) of calls fail with code.
func (s *Server) SetFault(code codes.Code, share float64) {
	s.code.Store(int32(code))
	s.ppm.Store(int64(share * 1_000_000))
}

// Close stops the server.
func (s *Server) Close() { s.srv.Stop() }

// Client calls the echo method through addr (plaintext HTTP/2).
type Client struct{ cc *grpc.ClientConn }

// Dial returns a client for addr.
func Dial(addr string) (*Client, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpcecho: dial %s: %w", addr, err)
	}
	return &Client{cc: cc}, nil
}

// Call makes one call with sticky key key (metadata x-user-id) and returns
// the reply, the cell that answered by X-Cellgate-Cell, and the error.
func (c *Client) Call(ctx context.Context, key, msg string) (reply, cell string, err error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "x-user-id", key)
	out := new(wrapperspb.StringValue)
	var hdr, tr metadata.MD
	err = c.cc.Invoke(ctx, Method, wrapperspb.String(msg), out, grpc.Header(&hdr), grpc.Trailer(&tr))
	if v := append(hdr.Get("x-cellgate-cell"), tr.Get("x-cellgate-cell")...); len(v) > 0 {
		cell = v[0]
	}
	return out.GetValue(), cell, err
}

// Close closes the client's connections.
func (c *Client) Close() error { return c.cc.Close() }
