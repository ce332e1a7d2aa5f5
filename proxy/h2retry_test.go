package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// How startRefuser refuses.
type refusal int

const (
	refuseStream    refusal = iota // RST_STREAM REFUSED_STREAM
	refuseGoAway                   // GOAWAY (last stream 0) on the first HEADERS, then close
	refuseGoAwayNow                // GOAWAY (last stream 0) as the connection opens, then close: before the request, or with it
)

// startRefuser serves HTTP/2 with prior knowledge and refuses every stream
// it is offered (RFC 9113 §8.7: not processed either way), counting the
// streams, or the connections for refuseGoAwayNow. It speaks through
// x/net's Framer.
func startRefuser(t *testing.T, how refusal) (addr string, refused *atomic.Int64) {
	t.Helper()
	refused = new(atomic.Int64)
	addr = serveRaw(t, func(c net.Conn) {
		t.Cleanup(func() { c.Close() })
		defer c.Close()
		fr := http2.NewFramer(c, c)
		if how == refuseGoAwayNow {
			refused.Add(1)
			if fr.WriteSettings() == nil && fr.WriteGoAway(0, http2.ErrCodeNo, nil) == nil {
				lingerClose(c)
			}
			return
		}
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.PingFrame:
				if !f.IsAck() && fr.WritePing(true, f.Data) != nil {
					return
				}
			case *http2.HeadersFrame:
				refused.Add(1)
				if how == refuseGoAway {
					if fr.WriteGoAway(0, http2.ErrCodeNo, nil) != nil { // no stream processed
						return
					}
					lingerClose(c)
					return
				}
				if fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream) != nil {
					return
				}
			}
		}
	})
	return addr, refused
}

// lingerClose ends a connection after GOAWAY the way servers do (RFC 9113
// §6.8; nginx's lingering close): FIN after the GOAWAY, then whatever the
// client still sends is read and dropped until it closes. Closing at once
// with its frames unread (a SETTINGS ack, the request's DATA) makes the
// kernel answer them with RST, and the client's next write can fail before
// its reader has seen the GOAWAY: x/net then reports that write error,
// after which the request may have been processed, and the proxy rightly
// answers 502 (the GOAWAY case failed 22 of 400 -race runs so).
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
}

// TestH2RetryRefusedStream: a cell of two h2c endpoints, one refusing every
// stream: by REFUSED_STREAM, by GOAWAY, or by a GOAWAY as the connection
// opens (the first request on it then finds it closed before writing a
// byte, or is left out by the GOAWAY). Requests with a body that land on
// the refuser are retried once on the other endpoint, body and all, and
// every one succeeds.
func TestH2RetryRefusedStream(t *testing.T) {
	for _, c := range []struct {
		name string
		how  refusal
	}{{"REFUSED_STREAM", refuseStream}, {"GOAWAY", refuseGoAway}, {"GOAWAY_at_open", refuseGoAwayNow}} {
		t.Run(c.name, func(t *testing.T) { testH2RetryRefused(t, c.how) })
	}
}

func testH2RetryRefused(t *testing.T, how refusal) {
	refuser, refused := startRefuser(t, how)
	var served atomic.Int64
	good := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		_, _ = w.Write(b)
	})
	_, addr := startEdge(t, testOptions(), []CellSpec{{Name: "h", Version: "v1", Weight: 1, Protocol: ProtoH2C,
		Endpoints: []string{refuser, good}}}, Hooks{}, nil)

	const n = 40 // each lands on the refuser with probability ½ (no ejection in testOptions)
	for i := range n {
		body := fmt.Sprintf("payload-%d", i)
		r := rawRequest(t, addr, fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if r.StatusCode() != 200 || string(r.Body()) != body || string(r.Header.Peek("X-Proto")) != "HTTP/2.0" {
			t.Fatalf("request %d: %d %q (proto %q, error %q), want 200 %q", i, r.StatusCode(), r.Body(), r.Header.Peek("X-Proto"), r.Header.Peek("X-Cellgate-Error"), body)
		}
	}
	if refused.Load() == 0 {
		t.Fatalf("the refuser was never tried in %d requests: nothing was retried", n)
	}
	if served.Load() != n {
		t.Errorf("the good endpoint served %d requests, want %d", served.Load(), n)
	}
	t.Logf("%d requests: %d refused streams (connections for GOAWAY_at_open) retried on the other endpoint", n, refused.Load())
}

// TestGRPCRetryRefusedStream: gRPC unary calls (grpc-go client and server)
// through a cell whose other endpoint refuses every stream all succeed:
// the refused ones are retried on the gRPC server.
func TestGRPCRetryRefusedStream(t *testing.T) {
	refuser, refused := startRefuser(t, refuseStream)
	svc := newEchoService()
	up := startGRPC(t, svc, nil)
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Weight: 1, Protocol: ProtoH2C,
		Endpoints: []string{refuser, up}}}, Hooks{}, nil)
	cc := dialGRPC(t, addr, nil)
	const n = 40
	for i := range n {
		msg := fmt.Sprintf("call-%d", i)
		got, _, _, err := unary(testCtx(t), cc, msg)
		if err != nil || got != "echo:"+msg {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, "echo:"+msg)
		}
	}
	if refused.Load() == 0 {
		t.Fatalf("the refuser was never offered a stream in %d calls: nothing was retried", n)
	}
	t.Logf("%d calls: %d refused streams retried", n, refused.Load())
}
