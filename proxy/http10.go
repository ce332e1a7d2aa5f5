package proxy

import (
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// An HTTP/1.0 client cannot read chunked framing (RFC 9112 §6.1), and
// fasthttp's server writes every streamed body of unknown length chunked.
// So a streamed response of unknown length to a 1.0 client is sent
// close-delimited (RFC 9112 §6.3 item 8) over the connection taken from the
// server: head without Content-Length or Transfer-Encoding, body until the
// upstream's ends, then close. The connection would close after such a body
// anyway, so nothing is lost by leaving the server's keep-alive loop. An
// upstream body that fails midway resets the connection (Close, abortConn):
// a clean close would pass a cut body off as a whole one.

var connCloseLine = []byte("Connection: close\r\n")

// sendCloseDelimited serialises the response head now (the server reuses
// ctx once the handler returns) and hands the connection to writeBody.
func (st *reqState) sendCloseDelimited(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentLength(-2) // identity: no Content-Length, no chunking
	h.SetConnectionClose()
	if len(st.upHead.buf) > 0 {
		st.head = st.upHead.appendFinal(st.head[:0], &framing{conn: [2][]byte{connCloseLine}})
	} else {
		st.head = h.AppendBytes(st.head[:0])
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(st.writeCloseDelimited)
}

// writeCloseDelimited runs on the taken connection: the head, then the body
// copied through st (which renews deadlines per read), then Close.
func (st *reqState) writeCloseDelimited(c net.Conn) {
	if st.upBuf == nil {
		st.upBuf = make([]byte, chunkRoom+uploadBuf+2)
	}
	if _, err := c.Write(st.head); err == nil {
		_, _ = io.CopyBuffer(onlyWriter{c}, st, st.upBuf)
	}
	_ = st.Close()
}

// onlyWriter hides a connection's ReadFrom so io.CopyBuffer goes through
// st.Read (and its deadlines) with the given buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(b []byte) (int, error) { return o.w.Write(b) }
