package proxy

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2FrontDoorMusts mounts the RFC 9113 §8.2 violations the HTTP/2
// server must refuse, each on its own stream of a raw connection, and
// checks that none reaches the upstream and each stream is refused (a
// RST_STREAM, or a 400 with END_STREAM); a valid request after them on the
// same connection is still served.
func TestH2FrontDoorMusts(t *testing.T) {
	var upstream atomic.Int64
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{okUpstream(t, &upstream)}, Weight: 1}}, Hooks{}, nil)
	c, fr := h2cConn(t, addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	cases := []struct {
		name  string
		extra []string
		data  []byte // DATA after the HEADERS (nil: none, END_STREAM on HEADERS)
	}{
		{"connection field", []string{"connection", "keep-alive"}, nil},
		{"transfer-encoding", []string{"transfer-encoding", "chunked"}, nil},
		{"upgrade", []string{"upgrade", "websocket"}, nil},
		{"te other than trailers", []string{"te", "gzip"}, nil},
		{"uppercase name", []string{"X-Upper", "1"}, nil},
		{"content-length above DATA", []string{"content-length", "10"}, []byte("abc")},
		{"content-length below DATA", []string{"content-length", "1"}, []byte("abc")},
	}
	for i, tc := range cases {
		id := uint32(2*i + 1)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock("/"+tc.name, tc.extra...), EndStream: tc.data == nil, EndHeaders: true})
		if tc.data != nil {
			_ = fr.WriteData(id, true, tc.data)
		}
	}
	good := uint32(2*len(cases) + 1)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: good, BlockFragment: headerBlock("/good"), EndStream: true, EndHeaders: true})

	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	outcome := map[uint32]string{} // stream → RST code or :status
	ended := map[uint32]bool{}
	for len(ended) < len(cases)+1 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames (outcomes %v): %v", outcome, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			outcome[f.StreamID], ended[f.StreamID] = "RST_STREAM "+f.ErrCode.String(), true
		case *http2.MetaHeadersFrame:
			outcome[f.StreamID] = f.PseudoValue("status")
			ended[f.StreamID] = ended[f.StreamID] || f.StreamEnded()
		case *http2.DataFrame:
			ended[f.StreamID] = ended[f.StreamID] || f.StreamEnded()
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v: one bad stream closed the connection", f.ErrCode)
		}
	}
	if outcome[good] != "200" {
		t.Errorf("the valid request after them: %q, want 200", outcome[good])
	}
	for i, tc := range cases {
		got := outcome[uint32(2*i+1)]
		t.Logf("%s: %s", tc.name, got)
		if got != "400" && !strings.HasPrefix(got, "RST_STREAM") {
			t.Errorf("%s: %q, want 400 or RST_STREAM", tc.name, got)
		}
	}
	if n := upstream.Load(); n != 1 {
		t.Errorf("upstream got %d requests, want 1 (the valid one only)", n)
	}
}
