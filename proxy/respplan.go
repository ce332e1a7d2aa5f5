package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

var hdrTrailer = []byte("Trailer")

// headPlan is what the loop core decides from an upstream's final response
// head: the status, fasthttp's reading of the length (≥0 a
// Content-Length, -1 chunked, -2 until the upstream closes), whether the
// upstream connection closes after it, and how the body is relayed
// (loopresp.go). planParsed decides it from fasthttp's parsed header,
// planSimple from a simple head's own scan (respsimple.go); both must
// agree where the simple one applies.
type headPlan struct {
	status  int
	cl      int
	upClose bool
	mode    relayMode
	left    int64 // relayLength: the body's length
}

// relayMode is how a response body goes from the upstream to the client
// (loopresp.go's relay).
type relayMode uint8

const (
	relayNone relayMode = iota
	relayLength
	relayChunked
	relayClose
)

// planParsed decides from h, fasthttp's parse of the head, and fr, the raw
// head's framing fields (scanHead), with the framing the goroutine core's
// server writes (fasthttp's Response.Write and writeBodyStream): a bodiless
// response keeps the parsed length, a known length is sent as such, the
// rest chunked. It reads h before prepareResponse changes it.
func planParsed(h *fasthttp.ResponseHeader, fr headFraming, isHead bool) headPlan {
	p := headPlan{
		status:  h.StatusCode(),
		cl:      h.ContentLength(),
		upClose: h.ConnectionClose() || fr&headBothLengths != 0,
	}
	switch {
	case isHead || p.status == fasthttp.StatusNoContent || p.status == fasthttp.StatusNotModified:
	case p.cl >= 0:
		p.mode, p.left = relayLength, int64(p.cl)
	case p.cl == -1:
		p.mode = relayChunked
	default:
		p.mode = relayClose
	}
	return p
}

// appendServerHead appends the client's head for a head that is not simple
// to dst: the one written from the upstream's bytes (rh, respwrite.go) with
// the framing fasthttp's server chooses for h under plan p (closing: the
// client's connection closes after it), as headswap.go carries it over;
// fasthttp's own head when the upstream's could not be used. hb is
// scratch for fasthttp's head.
func appendServerHead(dst []byte, h *fasthttp.ResponseHeader, rh *respHead, p *headPlan, closing bool, hb *[]byte) []byte {
	switch p.mode {
	case relayLength:
		h.SetContentLength(p.cl)
	case relayChunked, relayClose:
		h.SetContentLength(-1)
	}
	if closing {
		h.SetConnectionClose()
	}
	// The bytes Header.Write writes (it writes AppendBytes' output), built
	// in place: no copy through a bufio.Writer.
	*hb = h.AppendBytes((*hb)[:0])
	if len(rh.buf) == 0 {
		return append(dst, *hb...)
	}
	end := bytes.Index(*hb, headTerm)
	if end < 0 {
		return append(dst, *hb...)
	}
	var f framing
	readFraming((*hb)[:end+2], &f)
	return rh.appendFinal(dst, &f)
}
