package proxy

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// TestH2DrainGoAway: a drain sends GOAWAY on an HTTP/2 connection and lets
// the stream already open finish with its whole answer.
func TestH2DrainGoAway(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	arrived := make(chan struct{}, 1)
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		ctx.SetBodyString("finished")
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the upstream's shutdown: never leave it held
	opts := testOptions()
	opts.H2C = true
	p, err := New(opts, 42, []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()

	c, fr := h2cConn(t, ln.Addr().String())
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/slow"), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	<-arrived
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(context.Background()) }()

	var goAway bool
	var body []byte
	for ended := false; !ended; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames (goaway %v, body %q): %v", goAway, body, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			if f.LastStreamID < 1 {
				t.Fatalf("GOAWAY with last stream %d: the open stream would be dropped", f.LastStreamID)
			}
			goAway = true
			once.Do(func() { close(release) }) // the stream finishes after the GOAWAY
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			ended = f.StreamEnded()
		case *http2.HeadersFrame:
			ended = f.StreamEnded()
		}
	}
	if !goAway || string(body) != "finished" {
		t.Fatalf("goaway %v, body %q: want GOAWAY, then the open stream's whole answer", goAway, body)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}
