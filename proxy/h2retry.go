package proxy

import (
	"errors"
	"io"
	"strings"
	"sync"

	"golang.org/x/net/http2"
)

// An HTTP/2 request is retried once, on another endpoint of its cell, when
// the upstream cannot have processed it (RFC 9113 §8.7): the connection
// could not be dialled, the stream was refused (RST_STREAM REFUSED_STREAM)
// or the connection's GOAWAY left the stream out (also when the GOAWAY and
// the close came before the request's first byte). x/net's Transport retries
// those itself only for requests without a body, on the same endpoint; a
// request with a body comes back as an error, and the body, which streams
// from the client, is replayed from what replayBody kept of it — at most
// maxReplay bytes, else the request is not retried.

// maxReplay bounds the request body kept for a retry.
const maxReplay = 64 << 10

// errBodyDetached ends reads by an abandoned attempt's body writer.
var errBodyDetached = errors.New("request body moved to a retry")

// unprocessed reports an HTTP/2 round-trip error after which the upstream
// has not processed the request. x/net turns the stream errors of a
// request with a body into a message ("cannot retry err [...] after
// Request.Body was written") that keeps only their text, hence the text
// checks (pinned by TestH2RetryRefusedStream).
func unprocessed(err error) bool {
	if isDialError(err) || errors.Is(err, errH2ConnLimit) {
		return true
	}
	var se http2.StreamError
	if errors.As(err, &se) {
		return se.Code == http2.ErrCodeRefusedStream
	}
	s := err.Error()
	return strings.Contains(s, "REFUSED_STREAM") ||
		strings.Contains(s, "received Server's graceful shutdown GOAWAY") || // x/net errClientConnGotGoAway: the stream was above the GOAWAY's last stream ID
		s == "http2: client conn could not be established" // x/net errClientConnNotEstablished: the first request on a connection found it closed (a GOAWAY, then EOF) before writing anything; x/net does not retry that one itself
}

// replayBody passes a request body to the transport and keeps what was
// read (up to maxReplay) so that a retry can send it again. One attempt
// reads it at a time: replay detaches this one first.
type replayBody struct {
	mu     sync.Mutex
	src    io.Reader
	prefix []byte // replayed before src (a retry's body)
	kept   []byte
	over   bool // more than maxReplay read, or a retry: nothing kept
	gone   bool // detached: the attempt was abandoned
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return 0, errBodyDetached
	}
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	n, err := b.src.Read(p)
	if !b.over {
		if len(b.kept)+n <= maxReplay {
			b.kept = append(b.kept, p[:n]...)
		} else {
			b.over, b.kept = true, nil
		}
	}
	return n, err
}

// Close does nothing: the client's body belongs to the request, not to an
// attempt.
func (b *replayBody) Close() error { return nil }

// replay detaches b and returns a body that sends what b read, then the
// rest. ok is false when that cannot be done: too much was read, or the
// abandoned attempt is still inside a read (blocked on the client).
func (b *replayBody) replay() (next *replayBody, ok bool) {
	if !b.mu.TryLock() {
		return nil, false
	}
	defer b.mu.Unlock()
	b.gone = true
	if b.over {
		return nil, false
	}
	return &replayBody{src: b.src, prefix: append(b.prefix[:len(b.prefix):len(b.prefix)], b.kept...), over: true}, true
}
