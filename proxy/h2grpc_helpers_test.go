package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoService is a gRPC service written for these tests with grpc-go's
// own server: every kind of RPC, echoing what it got. A message
// "fail:N" answers status code N; "hold" waits for the call's context to
// end and reports why. Each call's incoming metadata is kept.
type echoService struct {
	mu    sync.Mutex
	md    []metadata.MD
	ended chan error // a held call's context error
}

const echoName = "cellgate.test.Echo"

func newEchoService() *echoService { return &echoService{ended: make(chan error, 16)} }

func (e *echoService) note(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	if d, ok := ctx.Deadline(); ok {
		md.Set("x-deadline-in", time.Until(d).String()) // grpc-go takes grpc-timeout out of the metadata
	}
	e.mu.Lock()
	e.md = append(e.md, md)
	e.mu.Unlock()
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", "t1"))
}

func (e *echoService) lastMD() metadata.MD {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.md) == 0 {
		return nil
	}
	return e.md[len(e.md)-1]
}

// answer turns one request message into a reply or a status.
func (e *echoService) answer(ctx context.Context, s string) (*wrapperspb.StringValue, error) {
	switch {
	case strings.HasPrefix(s, "fail:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(s, "fail:"))
		return nil, status.Error(codes.Code(n), "asked to fail")
	case s == "hold":
		<-ctx.Done()
		e.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	return wrapperspb.String("echo:" + s), nil
}

func (e *echoService) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: echoName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			e.note(ctx)
			return e.answer(ctx, in.Value)
		}}},
		Streams: []grpc.StreamDesc{
			{StreamName: "Server", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				e.note(s.Context())
				in := new(wrapperspb.StringValue)
				if err := s.RecvMsg(in); err != nil {
					return err
				}
				for i := range 3 {
					if err := s.SendMsg(wrapperspb.String(fmt.Sprintf("%s-%d", in.Value, i))); err != nil {
						return err
					}
				}
				_, err := e.answer(s.Context(), in.Value)
				return err
			}},
			{StreamName: "Client", ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				e.note(s.Context())
				var got []string
				for {
					in := new(wrapperspb.StringValue)
					err := s.RecvMsg(in)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
					got = append(got, in.Value)
				}
				return s.SendMsg(wrapperspb.String(strings.Join(got, ",")))
			}},
			{StreamName: "Bidi", ClientStreams: true, ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				e.note(s.Context())
				for {
					in := new(wrapperspb.StringValue)
					err := s.RecvMsg(in)
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						return err
					}
					out, err := e.answer(s.Context(), in.Value)
					if err != nil {
						return err
					}
					if err := s.SendMsg(out); err != nil {
						return err
					}
				}
			}},
		},
	}
}

// startGRPC serves svc with grpc-go on loopback, over h2c or (with cert)
// TLS, and returns its address.
func startGRPC(t testing.TB, svc *echoService, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	s := grpc.NewServer(opts...)
	s.RegisterService(svc.desc(), nil)
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// dialGRPC is a grpc-go client for addr: plaintext (h2c) or TLS with pool.
func dialGRPC(t testing.TB, addr string, tc *tls.Config) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// unary calls Echo/Unary with s and returns the reply, the trailer and the
// header metadata.
func unary(ctx context.Context, cc *grpc.ClientConn, s string) (string, metadata.MD, metadata.MD, error) {
	out := new(wrapperspb.StringValue)
	var hdr, tr metadata.MD
	err := cc.Invoke(ctx, "/"+echoName+"/Unary", wrapperspb.String(s), out, grpc.Header(&hdr), grpc.Trailer(&tr))
	return out.GetValue(), hdr, tr, err
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// unaryKeyed is unary with an X-User-ID sticky key.
func unaryKeyed(ctx context.Context, cc *grpc.ClientConn, key string) (string, metadata.MD, metadata.MD, error) {
	return unary(metadata.AppendToOutgoingContext(ctx, "x-user-id", key), cc, "k")
}
