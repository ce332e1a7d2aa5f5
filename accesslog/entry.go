package accesslog

import (
	"net/netip"
	"time"
)

// Protocol is the client-side protocol of a request.
type Protocol uint8

// The protocols an Entry names; the zero value is HTTP/1.x.
const (
	H1   Protocol = iota // HTTP/1.0 or HTTP/1.1
	H2                   // HTTP/2
	WS                   // a WebSocket handshake (the tunnel that follows is not logged)
	GRPC                 // gRPC over HTTP/2
)

var protocolNames = [...]string{H1: "h1", H2: "h2", WS: "ws", GRPC: "grpc"}

// String is the protocol's name in the log ("h1", "h2", "ws", "grpc").
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "unknown"
}

// Entry is one request's record, filled by the data plane and formatted by
// the writer. Byte-slice fields are the Entry's own buffers: fill them with
// append(e.Field[:0], …) so their capacity is reused; a handler must not
// keep an Entry after Publish. String fields must be immutable strings
// (cell names and the like from a routing snapshot), never converted from
// a request buffer.
type Entry struct {
	Start    time.Time     // when the request began
	Duration time.Duration // until the last response byte was handed to the client
	TTFB     time.Duration // until the upstream's response head arrived; 0: none did

	Method   []byte
	Host     []byte
	Path     []byte // the request target; its query is cut unless the config keeps it
	Protocol Protocol

	Status     int // what the client got
	GRPCStatus int // the grpc-status answered; -1: none (not gRPC, or no status)
	BytesIn    int64
	BytesOut   int64
	Client     netip.Addr

	Cell     string
	Version  string
	Endpoint string
	// Flags are the request's flag variants as the data plane sends them
	// upstream (X-Cellgate-Flags, an RFC 8941 dictionary); empty: none.
	Flags      []byte
	Pinned     bool // a session pin held the request on its cell
	Overridden bool // an override header or cookie chose the cell or a variant
	Retried    bool // a second attempt went to another endpoint
	// Error is the X-Cellgate-Error cause of a response the proxy made
	// itself (or of a body cut mid-stream); empty: none.
	Error string

	TraceID   [16]byte // W3C trace-id; all zero: none
	RequestID []byte   // X-Request-Id as forwarded; empty: none
	// StickyKey is the raw sticky key. The writer replaces it by its HMAC;
	// the key itself is never written.
	StickyKey []byte
}

// entrySlab is the bytes an Entry starts with, shared among its buffers:
// room for a typical method, host, path (with query), flags, request id
// and sticky key. A longer field gets a buffer of its own, kept on reuse.
const entrySlab = 512

// newEntry returns an empty entry whose buffers are cut from one slab.
func newEntry() *Entry {
	slab := make([]byte, entrySlab)
	cut := func(off, n int) []byte { return slab[off : off : off+n] }
	e := &Entry{}
	e.reset()
	e.Method, e.Host, e.Path = cut(0, 16), cut(16, 80), cut(96, 256)
	e.Flags, e.RequestID, e.StickyKey = cut(352, 64), cut(416, 48), cut(464, 48)
	return e
}

// reset clears e for reuse, keeping its buffers' capacity.
func (e *Entry) reset() {
	*e = Entry{
		Method:    e.Method[:0],
		Host:      e.Host[:0],
		Path:      e.Path[:0],
		Flags:     e.Flags[:0],
		RequestID: e.RequestID[:0],
		StickyKey: e.StickyKey[:0],
	}
	e.GRPCStatus = -1
}

// maxKeptField is the largest field buffer a recycled Entry keeps, so one
// huge path does not pin its memory in the pool.
const maxKeptField = 8 << 10

// trim drops buffers that grew past maxKeptField.
func (e *Entry) trim() {
	for _, b := range []*[]byte{&e.Method, &e.Host, &e.Path, &e.Flags, &e.RequestID, &e.StickyKey} {
		if cap(*b) > maxKeptField {
			*b = nil
		}
	}
}

// Rollout names the rollout that holds a cell, for the entries of its
// requests.
type Rollout struct {
	ID   string
	Step int // index of the plan's current step
}
