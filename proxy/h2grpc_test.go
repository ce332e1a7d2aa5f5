package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testcert"
	"github.com/cellgate/cellgate/internal/testwait"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestGRPCEndToEnd runs every kind of RPC from a grpc-go client through
// the proxy to a grpc-go server, over h2c and over TLS on both hops.
func TestGRPCEndToEnd(t *testing.T) {
	cert, pool := testcert.New(t, "cellgate test")
	for _, tc := range []struct {
		name   string
		tls    bool
		proto  string
		upTLS  *UpstreamTLS
		upCert *tls.Certificate
	}{
		{name: "h2c", proto: ProtoH2C},
		{name: "tls", tls: true, proto: ProtoH2, upTLS: &UpstreamTLS{InsecureSkipVerify: true}, upCert: cert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newEchoService()
			up := startGRPC(t, svc, tc.upCert)
			opts := testOptions()
			opts.H2C = true
			var edgeCert *tls.Certificate
			var clientTLS *tls.Config
			if tc.tls {
				edgeCert, clientTLS = cert, &tls.Config{RootCAs: pool}
			}
			p, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: tc.proto, TLS: tc.upTLS}}, Hooks{}, edgeCert)
			cc := dialGRPC(t, addr, clientTLS)
			ctx := testCtx(t)

			got, hdr, tr, err := unary(ctx, cc, "hi")
			if err != nil || got != "echo:hi" {
				t.Fatalf("unary: %q %v", got, err)
			}
			if tr.Get("x-echo-trailer")[0] != "t1" || hdr.Get("x-cellgate-cell")[0] != "g" {
				t.Fatalf("unary trailer %v header %v", tr, hdr)
			}
			if md := svc.lastMD(); len(md.Get("x-forwarded-for")) == 0 {
				t.Fatalf("upstream metadata %v: want x-forwarded-for", md)
			}
			_, _, _, err = unary(ctx, cc, "fail:5")
			if status.Code(err) != codes.NotFound {
				t.Fatalf("unary fail:5: %v, want NotFound", err)
			}

			// Server streaming.
			ss, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/"+echoName+"/Server")
			if err != nil {
				t.Fatal(err)
			}
			if err := ss.SendMsg(wrapperspb.String("s")); err != nil {
				t.Fatal(err)
			}
			_ = ss.CloseSend()
			var n int
			for {
				m := new(wrapperspb.StringValue)
				if err := ss.RecvMsg(m); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("server stream: %v", err)
				}
				n++
			}
			if n != 3 {
				t.Fatalf("server stream: %d messages, want 3", n)
			}

			// Client streaming.
			cs, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/"+echoName+"/Client")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"a", "b", "c"} {
				if err := cs.SendMsg(wrapperspb.String(s)); err != nil {
					t.Fatal(err)
				}
			}
			_ = cs.CloseSend()
			m := new(wrapperspb.StringValue)
			if err := cs.RecvMsg(m); err != nil || m.Value != "a,b,c" {
				t.Fatalf("client stream: %q %v", m.Value, err)
			}

			// Bidi: each reply arrives before the next message is sent, so
			// both directions stream through at once.
			bs, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/"+echoName+"/Bidi")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"x", "y"} {
				if err := bs.SendMsg(wrapperspb.String(s)); err != nil {
					t.Fatal(err)
				}
				m := new(wrapperspb.StringValue)
				if err := bs.RecvMsg(m); err != nil || m.Value != "echo:"+s {
					t.Fatalf("bidi: %q %v", m.Value, err)
				}
			}
			_ = bs.CloseSend()
			if err := bs.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
				t.Fatalf("bidi end: %v", err)
			}
			testwait.For(t, 10*time.Second, "five calls counted", func() bool { return p.Status()[0].Protocols["grpc"] == 5 })
			if got := p.Status()[0].Protocols; got["h1"] != 0 || got["h2"] != 0 {
				t.Errorf("requests by protocol %v, want gRPC only", got)
			}
		})
	}
}

// TestGRPCDeadlineAndCancel: grpc-timeout reaches the upstream unchanged
// and ends the call there; a client's cancellation resets the upstream
// stream.
func TestGRPCDeadlineAndCancel(t *testing.T) {
	svc := newEchoService()
	up := startGRPC(t, svc, nil)
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}}, Hooks{}, nil)
	cc := dialGRPC(t, addr, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, _, err := unary(ctx, cc, "hold")
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("held call: %v, want DeadlineExceeded", err)
	}
	if err := awaitEnded(t, svc); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("upstream call ended with %v", err)
	}
	if md := svc.lastMD(); len(md.Get("x-deadline-in")) == 0 {
		t.Fatalf("upstream metadata %v: want a deadline (grpc-timeout)", md)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, _, err = unary(ctx2, cc, "hold")
	}()
	testwait.For(t, 10*time.Second, "the held call to reach the upstream", func() bool { svc.mu.Lock(); defer svc.mu.Unlock(); return len(svc.md) >= 2 })
	cancel2()
	wg.Wait()
	if status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
	if err := awaitEnded(t, svc); !errors.Is(err, context.Canceled) {
		t.Fatalf("upstream call ended with %v, want Canceled", err)
	}
}

func awaitEnded(t *testing.T, svc *echoService) error {
	t.Helper()
	select {
	case err := <-svc.ended:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream call never ended")
		return nil
	}
}
