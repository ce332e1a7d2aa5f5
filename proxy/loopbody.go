//go:build linux

package proxy

// Request bodies on the loop core. Model-inference traffic is mostly POSTs
// with small JSON bodies; handing each of those to the goroutine core would
// keep it off the loop for good. So a Content-Length body small enough to
// buffer is read whole into the connection's read buffer (c.in) behind its
// head — a body arriving in pieces waits for more bytes like an unfinished
// head, under the same read_timeout — and then sent upstream right behind
// the head, in the same write.
//
// The loop serves a body exactly as the goroutine core serves one it has
// read whole before the handler ran (fasthttp's prefetch of up to 8 KiB,
// ContinueReadBodyStream): the same bytes upstream (the head as the
// goroutine core writes it, Content-Length kept, the body as is), and the
// same rules after a failed attempt. st.bodyRead becomes the body's length
// when the first write to a connected upstream begins (sendHead) — where
// the goroutine core reads the body from the client, once its connection
// is made — so a body once sent is never sent again (roundTrip's lost
// needs no body byte read; staleRepeat and nextRound follow from it),
// while a request whose dials all failed still goes to another endpoint or
// its failover cell with its body, as nothing was sent. A client that
// stops sending mid-body gets what fasthttp answers a prefetch that timed
// out: read_timeout's 408 and a close (loopconn.go, expired).
//
// Everything else is still handed over at the head, before any byte of
// the body is read: chunked bodies, upgrades, and bodies past
// loopBodyMax, past what the read buffer holds with the head, or past
// max_request_body (the goroutine core answers that 413). A request the
// loop serves that asks "Expect: 100-continue" gets its 100 Continue from
// the loop (loopexpect.go).

// loopBodyMax is the largest request body the loop serves: fasthttp's
// prefetch, which the goroutine core reads whole before its handler runs.
// Within it, a client that stalls mid-body gets the same answer from both
// cores (fasthttp's 408 at read_timeout), and the body costs the loop no
// more than a head: its read buffer holds it (bounded by maxHead, the
// read buffer size, head included).
const loopBodyMax = 8 << 10

// bodyFits reports whether the loop serves a request whose head is
// headLen bytes and whose body has Content-Length cl > 0.
func (l *loop) bodyFits(headLen, cl int) bool {
	if cl > loopBodyMax || headLen+cl > l.maxHead() {
		return false
	}
	m := l.p.options().MaxRequestBody
	return m <= 0 || cl <= m
}

// appendBody puts the buffered body (the last c.body bytes of the request
// in c.in[:c.fed]) behind the upstream head in st.head, so one write sends
// both and a permitted retry (after a failed dial) sends both again.
func (c *lconn) appendBody(st *reqState) {
	if c.body > 0 {
		st.head = append(st.head, c.in[c.fed-c.body:c.fed]...)
	}
}

// bodySent marks the body read, as the goroutine core's sendBody does once
// it is connected: from here on no attempt repeats the request (lost,
// staleRepeat, nextRound).
func (c *lconn) bodySent(st *reqState) { st.bodyRead = int64(c.body) }
