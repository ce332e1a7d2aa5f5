package proxy

import (
	"fmt"
	"io"
	"net"
	"time"
)

// A large response body is the proxy's hot loop in bytes. fasthttp's server
// copies a body stream through a 4 KiB buffer unless the stream can write
// itself out (io.WriterTo), so reqState does: through a 64 KiB buffer in
// general, and — for a known-length body from a plain TCP upstream to a
// client whose connection layers all pass ReadFrom down to the socket —
// by splice(2): the kernel moves the bytes from one socket to the other
// without copying them through user space (*net.TCPConn.ReadFrom with an
// io.LimitedReader around a *net.TCPConn). The bytes cross in slices of
// spliceSlice, each with fresh deadlines, so the write-progress timeout and
// the upstream read timeout still bound every stall.

// spliceSlice is how much one deadline covers in the splice path: a client
// must take this much within WriteTimeout (1 MiB in 30 s ≈ 35 KB/s).
const spliceSlice = 1 << 20

var _ io.WriterTo = (*reqState)(nil)

// WriteTo copies the rest of the upstream body to w (the server's body
// writer). Errors are those Read would give: an upstream body that ends
// early is io.ErrUnexpectedEOF and sets upErr (see Close).
func (st *reqState) WriteTo(w io.Writer) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok && st.body == &st.lim {
		if raw := tcpConn(st.conn.conn); raw != nil {
			return st.spliceTo(w, rf, raw)
		}
	}
	return st.copyTo(w)
}

// copyTo is the general path: Read (deadlines, truncation, trailers) into
// the request's 64 KiB buffer, then Write.
func (st *reqState) copyTo(w io.Writer) (int64, error) {
	buf := st.uploadBuffer()[:uploadBuf]
	var total int64
	for {
		n, err := st.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// spliceTo sends a known-length body: first what the upstream reader has
// buffered, then the rest socket to socket, a slice at a time.
func (st *reqState) spliceTo(w io.Writer, rf io.ReaderFrom, raw *net.TCPConn) (int64, error) {
	opts := st.p.options()
	var total int64
	if b := st.conn.br.Buffered(); b > 0 && st.lim.N > 0 {
		// What the reader already holds is written from its buffer.
		if opts.WriteTimeout > 0 && st.client != nil {
			_ = st.client.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		}
		held, _ := st.conn.br.Peek(int(min(int64(b), st.lim.N)))
		n, err := w.Write(held)
		_, _ = st.conn.br.Discard(n)
		st.lim.N -= int64(n)
		st.upRead += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	for st.lim.N > 0 {
		now := time.Now()
		if opts.UpstreamReadTimeout > 0 {
			_ = raw.SetReadDeadline(now.Add(opts.UpstreamReadTimeout))
		}
		if opts.WriteTimeout > 0 && st.client != nil {
			_ = st.client.SetWriteDeadline(now.Add(opts.WriteTimeout))
		}
		want := min(st.lim.N, spliceSlice)
		st.slice = io.LimitedReader{R: raw, N: want}
		n, err := rf.ReadFrom(&st.slice)
		total += n
		st.lim.N -= n
		st.upRead += n
		if err == nil && n < want && st.slice.N > 0 {
			err = fmt.Errorf("upstream body: %w after %d of %d bytes", io.ErrUnexpectedEOF, st.upRead, st.upLen)
			st.upErr = err
		}
		if err != nil {
			if st.upErr == nil && upstreamStalled(err, time.Since(now), opts) {
				st.upErr = err
			}
			return total, err
		}
	}
	st.eof = true
	return total, nil
}

// upstreamStalled reports whether a splice that failed after elapsed timed
// out on the upstream's read deadline rather than the client's write
// deadline. splice(2) reports either the same way, so the deadline whose
// length is nearer the elapsed time is taken to have fired. A reset is
// taken to be the client's (a client going away is the common case); an
// upstream that closes early is caught as a short copy instead.
func upstreamStalled(err error, elapsed time.Duration, opts *Options) bool {
	if !isTimeout(err) || opts.UpstreamReadTimeout <= 0 {
		return false
	}
	if opts.WriteTimeout <= 0 {
		return true
	}
	dist := func(d time.Duration) time.Duration { return max(d-elapsed, elapsed-d) }
	return dist(opts.UpstreamReadTimeout) < dist(opts.WriteTimeout)
}

// uploadBuffer returns the request's body buffer, made on first use.
func (st *reqState) uploadBuffer() []byte {
	if st.upBuf == nil {
		st.upBuf = make([]byte, chunkRoom+uploadBuf+2)
	}
	return st.upBuf
}
