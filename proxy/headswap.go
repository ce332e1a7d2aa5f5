package proxy

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
)

// fasthttp's server writes every response head itself, from its parsed
// header, and has no way to send a head given as bytes (respwrite.go says
// why that head is not good enough). So the handler builds the head it
// wants and arms the client connection with it (armHeadSwap); the next
// Write on the connection — the server's flush of the head it serialised,
// perhaps with the start of the body behind it — is rewritten: the server's
// head is replaced by ours, with the server's own framing decisions
// (Content-Length or chunked, Connection) read back from its head and
// carried over, and the body bytes behind it pass untouched.
//
// This rests on two properties of the server, both pinned by tests
// (TestResponseHeadPipelined, TestResponseHeadSwapFallsBack):
//   - with ReduceMemoryUsage the server flushes each response before it
//     reads the next request and takes a fresh write buffer, and it writes
//     nothing to the connection while the handler runs; so the first bytes
//     written after the handler returns are that response's head, whole
//     (its head fits the writer's buffer, or goes out in one direct write);
//   - the server's head ends at the first empty line (it writes no obs-fold
//     and refuses CR and LF in values).
//
// Anything else — bytes not starting with a status line of the armed
// status code, or no end of head in the write — is passed through as the
// server wrote it and counted (connTracker.swapMissed): the client then gets
// fasthttp's reordered head, still a valid response, never a corrupt one.
//
// The loop core (loopresp.go) writes its heads itself, with the framing
// read back from fasthttp's serialisation the same way (appendServerHead),
// except for a simple upstream head, whose framing is known without
// asking (respsimple.go).

// headSwap is a client response head waiting for the server's write: the
// head, and the buffer the rewritten write is assembled in. Pooled in the
// connTracker; a connection holds one only between its handler's return
// and the head's write.
type headSwap struct {
	head   respHead
	status [3]byte // the status code the head carries
	out    []byte
}

// maxKeptSwap is the largest assembly buffer a pooled headSwap keeps.
const maxKeptSwap = 64 << 10

var (
	statusPrefix = []byte("HTTP/1.")
	headTerm     = []byte("\r\n\r\n")
)

// swapPool hands out headSwaps and counts the writes it could not rewrite.
type swapPool struct {
	pool   sync.Pool
	missed atomic.Uint64 // armed heads passed through unrewritten
}

func (sp *swapPool) get() *headSwap {
	if hs, ok := sp.pool.Get().(*headSwap); ok {
		return hs
	}
	return new(headSwap)
}

func (sp *swapPool) put(hs *headSwap) {
	if cap(hs.out) > maxKeptSwap || cap(hs.head.buf) > maxKeptSwap {
		return
	}
	hs.out = hs.out[:0]
	sp.pool.Put(hs)
}

// swapConn returns the tracked connection beneath c (the connection the
// server writes to), or nil when c is not one (a bare listener in tests).
func swapConn(c net.Conn) *trackedConn {
	switch c := c.(type) {
	case *trackedConn:
		return c
	case *trackedTLSConn:
		return c.trackedConn
	}
	return nil
}

// armHeadSwap makes the next write on tc carry hs's head; the response's
// status code must be status. It runs on the connection's serving goroutine,
// as the write does.
//
// A head still armed from the previous response means the server has not
// written that response yet: it batches responses (pipelining without
// ReduceMemoryUsage), so which head the next write starts with is unknown.
// The connection then stops swapping for good and the server's heads go
// as written.
func (tc *trackedConn) armHeadSwap(hs *headSwap, status int) {
	if old := tc.swap; old != nil || tc.noSwap {
		tc.swap, tc.noSwap = nil, true
		if old != nil {
			tc.t.swaps.put(old)
		}
		tc.t.swaps.put(hs)
		tc.t.swaps.missed.Add(1)
		return
	}
	hs.status = [3]byte{byte('0' + status/100%10), byte('0' + status/10%10), byte('0' + status%10)}
	tc.swap = hs
}

// Write writes b, rewriting the head in it when the connection is armed.
func (tc *trackedConn) Write(b []byte) (int, error) {
	hs := tc.swap
	if hs == nil {
		return tc.Conn.Write(b)
	}
	tc.swap = nil
	defer tc.t.swaps.put(hs)
	end := bytes.Index(b, headTerm)
	if end < 0 || !bytes.HasPrefix(b, statusPrefix) || len(b) < 12 || !bytes.Equal(b[9:12], hs.status[:]) {
		tc.t.swaps.missed.Add(1)
		return tc.Conn.Write(b)
	}
	var f framing
	readFraming(b[:end+2], &f)
	hs.out = hs.head.appendFinal(hs.out[:0], &f)
	hs.out = append(hs.out, b[end+4:]...)
	n, err := tc.Conn.Write(hs.out)
	if n == len(hs.out) {
		return len(b), err
	}
	return 0, err
}

// readFraming reads the framing fields of the server's head (through the
// last field's CRLF) into f. The server writes them under these names;
// the upstream's own Connection and Transfer-Encoding fields were deleted
// from the parsed header (prepareResponse), so these are the server's.
func readFraming(head []byte, f *framing) {
	i := bytes.IndexByte(head, '\n')
	nconn := 0
	for rest := head[i+1:]; len(rest) > 0; {
		k, v, line, next := nextField(rest)
		rest = next
		switch {
		case equalFold(k, hdrContentLengthB):
			f.cl = v
		case equalFold(k, hdrTE):
			f.chunked = equalFold(v, tokChunked)
		case equalFold(k, hdrConnection) && nconn < len(f.conn):
			f.conn[nconn] = line
			nconn++
		}
	}
}
