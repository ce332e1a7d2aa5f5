//go:build linux

package proxy

// "Expect: 100-continue" on the loop core. A client that asks it waits
// for "100 Continue" before it sends the body (curl waits up to a second,
// and asks it of any body over 1 KiB). The goroutine core's server answers
// it itself once the head is read — unless the Content-Length is past
// max_request_body, which gets 413 and a close instead (Proxy.expect) —
// and then reads the body; the request goes upstream without Expect
// (reqhead.go). The loop does the same for the requests it serves with
// their body (loopbody.go: a Content-Length body up to 8 KiB that fits the
// read buffer with its head and max_request_body): it writes the same
// bytes as soon as it has the head and has decided to serve the request,
// then reads the body as any other. A body past those bounds is handed
// over at the head, as before, and the goroutine core answers the
// expectation. Any other expectation is handed over too (the goroutine
// core does not answer it, and forwards the request without it).
//
// The 100 Continue goes out before anything else the request gets: it is
// the first write for it, and a later write waits behind what of it the
// socket has not taken (toClient). Should the configuration change while
// the body is on its way so that the loop no longer serves it (a reload
// adding an h2c cell), the request is handed over with its head and the
// goroutine core answers 100 Continue a second time, which HTTP allows
// (RFC 9110 §15.2: a client must accept any number of 1xx before the
// final answer).

// continue100 answers the parsed request's "Expect: 100-continue" once.
func (l *loop) continue100(c *lconn) {
	if c.expect100 && !c.continued {
		c.continued = true
		l.toClient(c, continueHead, false)
	}
}

// continueHead is fasthttp's interim answer (its strResponseContinue).
var continueHead = []byte("HTTP/1.1 100 Continue\r\n\r\n")
