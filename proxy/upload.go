package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// Request bodies stream: the server hands the handler the head as soon as it
// is read (fasthttp StreamRequestBody, at most 8 KiB of body prefetched), and
// sendRequest copies the body to the upstream as it arrives through one
// uploadBuf-sized buffer per request. Memory per upload is therefore a
// constant — the client connection's read buffer, the prefetch and this
// buffer — whatever the body's size (TestUploadMemory measures it).

// uploadBuf is the largest body piece read from the client and written
// upstream in one go. Large enough that a fast upload costs few syscalls,
// small enough that thousands of concurrent uploads fit in memory. On
// loopback a 64 KiB buffer came back full from nearly every read (63.7 KiB
// on average), so the buffer, not the socket, set the piece size; at
// 256 KiB reads averaged 220 KiB, a quarter of the read and write calls and
// deadline renewals, and BenchmarkUpload's CPU per GB fell by about an
// eighth (bench/README.md "Big bodies").
const uploadBuf = 256 << 10

// chunkRoom is the space kept in front of each piece for a chunk-size line
// (up to 16 hex digits and CRLF) and after it for the chunk's CRLF.
const chunkRoom = 18

// clientBodyError is a failure of the client's side of an upload: the body
// grew past max_request_body, stalled past the progress timeout or ended
// early. It is the client's doing, so it neither retries nor counts against
// the endpoint or the cell (an SLI counts what the cell did).
type clientBodyError struct {
	c   cause
	err error
}

func (e *clientBodyError) Error() string { return "client request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

var errBodyTooLarge = errors.New("body exceeds max_request_body")

// sendRequest writes the prepared head and the client's body (if any) to
// the upstream through w.
func (st *reqState) sendRequest(ctx *fasthttp.RequestCtx, w *bufio.Writer, deadline func()) error {
	deadline()
	if _, err := w.Write(st.head); err != nil {
		return err
	}
	if r := ctx.RequestBodyStream(); r != nil && st.bodyLen != -2 {
		if err := st.sendBody(w, r, &ctx.Request.Header, deadline); err != nil {
			return err
		}
	}
	return w.Flush()
}

// sendBody copies the body from r to w: as is for a Content-Length body,
// re-chunked for a chunked one (chunk extensions are not forwarded; the
// trailer fields are, after the last chunk, as h holds them once the body
// has been read — the front door has refused framing, routing and
// credential fields in a trailer). Each client read gets
// a fresh read deadline (a progress timeout, so a slow upload that keeps
// moving is not cut by read_timeout) and each upstream write a fresh write
// deadline. A chunked body is held to MaxRequestBody as it streams.
func (st *reqState) sendBody(w *bufio.Writer, r io.Reader, h *fasthttp.RequestHeader, deadline func()) error {
	opts := &st.set.opts
	if st.upBuf == nil {
		st.upBuf = make([]byte, chunkRoom+uploadBuf+2)
	}
	buf, chunked := st.upBuf, st.bodyLen == -1
	for {
		if opts.ReadTimeout > 0 && st.client != nil {
			_ = st.client.SetReadDeadline(time.Now().Add(opts.ReadTimeout))
		}
		n, rerr := r.Read(buf[chunkRoom : chunkRoom+uploadBuf])
		if n > 0 {
			st.bodyRead += int64(n)
			if chunked && opts.MaxRequestBody > 0 && st.bodyRead > int64(opts.MaxRequestBody) {
				return &clientBodyError{causeTooLarge, errBodyTooLarge}
			}
			out := buf[chunkRoom : chunkRoom+n]
			if chunked {
				out = appendChunkFrame(buf, n)
			}
			deadline()
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &clientBodyError{clientCause(rerr), rerr}
		}
	}
	if !chunked && st.bodyRead != st.bodyLen {
		// fasthttp reports a Content-Length body cut short by the client as
		// a clean end; the upstream would wait for the rest.
		return &clientBodyError{causeClientBody, fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, st.bodyRead, st.bodyLen)}
	}
	if chunked {
		if _, err := w.WriteString("0\r\n"); err != nil {
			return err
		}
		_, err := w.Write(h.TrailerHeader()) // the trailer lines and the final CRLF
		return err
	}
	return nil
}

// appendChunkFrame frames the n bytes at buf[chunkRoom:] as one chunk in
// place: the hex size and CRLF just before them, CRLF just after.
func appendChunkFrame(buf []byte, n int) []byte {
	const hex = "0123456789abcdef"
	end := chunkRoom + n
	buf[end], buf[end+1] = '\r', '\n'
	i := chunkRoom - 2
	buf[i], buf[i+1] = '\r', '\n'
	for v := n; ; v >>= 4 {
		i--
		buf[i] = hex[v&0xf]
		if v < 16 {
			break
		}
	}
	return buf[i : end+2]
}

// clientCause names a failed client body read: a stall past the progress
// timeout is 408, anything else (a malformed chunk, the front door's
// refusal, a reset) 400.
func clientCause(err error) cause {
	if isTimeout(err) {
		return causeClientTimeout
	}
	return causeClientBody
}
