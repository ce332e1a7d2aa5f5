//go:build linux

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// relay is how a response body goes from the upstream to the client, in
// the framing the goroutine core's server gives it: a known length passes
// as it is; a chunked body is passed chunk by chunk (extensions dropped,
// trailer fields passed after the last chunk, as fasthttp's decoder and
// chunked writer do); a body delimited by the upstream's close is chunked.
type relay struct {
	mode    relayMode
	left    int64 // relayLength: body bytes still to come; relayChunked: of the current chunk
	state   chunkState
	line    []byte // relayChunked: a size or trailer line split across reads
	trailer []byte // relayChunked: the trailer fields, until the last CRLF
	buf     []byte // what goes to the client from one read
	lastOut bool   // c.out holds the end of the response
	sent    int64  // body bytes relayed (for the access log)
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkData
	chunkDataEnd
	chunkTrailer
)

// readHead reads the upstream's response head (roundTrip's readResponse:
// interim 1xx heads skipped) and, once it is whole, labels the response
// and writes its head to the client with what body bytes came with it. A
// simple head (respsimple.go) is decided from its own bytes; any other is
// parsed by fasthttp as well.
func (l *loop) readHead(c *lconn, u *lup) {
	st := c.st
	if len(u.buf) == cap(u.buf) {
		st.respByte = true
		l.attemptFailed(c, classify(errUpstreamHeadTooLarge, true), true, false)
		return
	}
	n, err := rawRecv(u.fd, u.buf[len(u.buf):cap(u.buf)])
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		e := readErr(n, err)
		st.respByte = st.respByte || len(u.buf) > 0 // part of a head, then the error
		l.attemptFailed(c, classify(e, true), true, !st.respByte && connLost(e))
		return
	}
	u.buf = u.buf[:len(u.buf)+n]
	resp := &c.ctx.Response
	isHead, cookies := c.ctx.IsHead(), c.rt.cookie || st.pinCookie
	for {
		end := headEnd(u.buf, 0)
		if end < 0 {
			return // more to come
		}
		raw := u.buf[:end]
		st.respByte = true
		if p, ok := st.upHead.simpleHead(raw, isHead, cookies, st.set.opts.ResponseHeaders, l.br.Size()); ok {
			st.upFraming = simpleFraming(&p)
			u.buf = u.buf[:copy(u.buf, u.buf[end:])]
			resp.SetStatusCode(p.status)
			l.gotHead(c, u, &p, true)
			return
		}
		st.upFraming = scanHead(raw)
		st.upHead.build(raw, &st.scrub, st.set.opts.ResponseHeaders)
		l.src.Reset(raw)
		l.br.Reset(&l.src)
		resp.Header.Reset()
		resp.Header.DisableNormalizing()
		if err := readHeadInto(&resp.Header, l.br, raw); err != nil {
			l.attemptFailed(c, classify(err, true), true, false)
			return
		}
		sc := resp.StatusCode()
		if sc == fasthttp.StatusSwitchingProtocols {
			l.attemptFailed(c, classify(errUnaskedSwitch, true), true, false)
			return
		}
		u.buf = u.buf[:copy(u.buf, u.buf[end:])]
		if sc >= 200 {
			break
		}
	}
	l.parsed.Add(1)
	p := planParsed(&resp.Header, st.upFraming, c.ctx.IsHead())
	l.gotHead(c, u, &p, false)
}

// gotHead is readResponse's and handle's work after the head (decided as
// pl; simple: by buildSimple, fasthttp's header unread): the attempt's
// success, the labels, the client's head.
func (l *loop) gotHead(c *lconn, u *lup, pl *headPlan, simple bool) {
	st, ctx, p := c.st, c.ctx, l.p
	resp := &ctx.Response
	st.gotHead = true
	st.ttfb = l.headClock(st.start)
	st.upClose = pl.upClose
	st.attemptDone(st.ep, pl.status)

	st.status = pl.status
	if simple {
		// Nothing for prepareResponse to remove, no exposed flags, no
		// cookies: label would only set the cell fields on a header no
		// one writes (the loop serves HTTP/1.1 only).
		st.scrub.reset()
		st.noteExposed()
	} else {
		st.scrub.prepareResponse(&resp.Header, st.upFraming&headHTTP10 != 0)
		st.noteExposed()
		p.label(ctx, st, c.snap.sessions, c.rt.cookie)
	}
	p.appendOwnFields(ctx, st, c.rt.cookie)

	rs := &c.rs
	*rs = relay{mode: pl.mode, left: pl.left, buf: rs.buf[:0], line: rs.line[:0], trailer: rs.trailer[:0]}
	if rs.mode == relayNone {
		resp.SkipBody = ctx.IsHead()
	}
	closing := c.closeAfter || l.p.draining.Load()
	c.closeAfter = closing
	var out []byte
	if simple {
		out = st.upHead.appendSimple(rs.buf[:0], closing)
	} else {
		out = appendServerHead(rs.buf[:0], &resp.Header, &st.upHead, pl, closing, &l.hb)
	}
	if rs.mode == relayNone {
		l.putUp(u, !st.upClose)
		rs.buf = out
		l.toClient(c, out, true)
		return
	}
	body := u.buf
	u.buf = u.buf[:0]
	l.relayBody(c, u, out, body, false)
}

// readBody reads more of the response body and relays it.
func (l *loop) readBody(c *lconn, u *lup) {
	n, err := rawRecv(u.fd, u.buf[:cap(u.buf)])
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		if c.rs.mode == relayClose && n == 0 {
			l.relayBody(c, u, c.rs.buf[:0], nil, true)
			return
		}
		l.truncated(c, fmt.Errorf("upstream body: %w", readErr(n, err)))
		return
	}
	l.upDeadline(u, l.p.options().UpstreamReadTimeout)
	l.relayBody(c, u, c.rs.buf[:0], u.buf[:n], false)
}

// relayBody appends what data (body bytes from the upstream) becomes for
// the client to out and writes it; eof says the upstream closed (the end of
// a close-delimited body). Bytes past the end of the body are dropped and
// the connection is not reused (the goroutine core's pool drops them with
// the connection's reader).
func (l *loop) relayBody(c *lconn, u *lup, out, data []byte, eof bool) {
	rs := &c.rs
	done, extra := false, false
	switch rs.mode {
	case relayLength:
		if int64(len(data)) > rs.left {
			data, extra = data[:rs.left], true
		}
		rs.left -= int64(len(data))
		rs.sent += int64(len(data))
		done = rs.left == 0
		if len(out) == 0 {
			out = data // straight from the read buffer
		} else {
			out = append(out, data...)
			rs.buf = out[:0]
		}
	case relayClose:
		out = appendChunk(out, data)
		rs.sent += int64(len(data))
		if eof {
			out = append(out, "0\r\n\r\n"...)
			done = true
		}
		rs.buf = out[:0]
	case relayChunked:
		var err error
		out, done, extra, err = l.dechunk(c, out, data)
		rs.buf = out[:0]
		if err != nil {
			// What came before the bad bytes goes out first — the head
			// and whole chunks, as the goroutine core's server has
			// written them when its decoder fails — then the reset.
			if c.queued {
				c.out = append(c.out, out...)
				l.sendQueued(c)
			} else if len(c.out) == 0 && len(out) > 0 {
				_, _ = rawSend(c.fd, out)
			}
			l.truncated(c, err)
			return
		}
	}
	if done {
		st := c.st
		st.eof = true
		st.acc.bytesOut = rs.sent
		l.putUp(u, !st.upClose && rs.mode != relayClose && !extra)
	}
	l.toClient(c, out, done)
}

// appendChunk appends data as one chunk (none when empty).
func appendChunk(out, data []byte) []byte {
	if len(data) == 0 {
		return out
	}
	out = strconv.AppendInt(out, int64(len(data)), 16)
	out = append(out, crlf...)
	out = append(out, data...)
	return append(out, crlf...)
}

// dechunk passes the chunks in data to out and reports the end of the
// body (the last chunk and its trailer section) and bytes after it.
func (l *loop) dechunk(c *lconn, out, data []byte) (_ []byte, done, extra bool, _ error) {
	rs := &c.rs
	for len(data) > 0 {
		switch rs.state {
		case chunkData:
			n := int(min(int64(len(data)), rs.left))
			out = appendChunk(out, data[:n])
			rs.sent += int64(n)
			rs.left -= int64(n)
			data = data[n:]
			if rs.left == 0 {
				rs.state = chunkDataEnd
			}
			continue
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			rs.line = append(rs.line, data...)
			if len(rs.line) > maxChunkLine {
				return out, false, false, fmt.Errorf("upstream body: chunk line too long: %w", io.ErrUnexpectedEOF)
			}
			return out, false, false, nil
		}
		line := data[:i+1]
		if len(rs.line) > 0 {
			rs.line = append(rs.line, line...)
			line = rs.line
		}
		data = data[i+1:]
		body := bytes.TrimRight(line, "\r\n")
		switch rs.state {
		case chunkSize:
			size, ok := chunkSizeLine(line)
			if !ok {
				return out, false, false, fmt.Errorf("upstream body: bad chunk size line %q", body)
			}
			if size == 0 {
				rs.state = chunkTrailer
			} else {
				rs.state, rs.left = chunkData, size
			}
		case chunkDataEnd:
			if !bytes.Equal(line, crlf) {
				return out, false, false, fmt.Errorf("upstream body: chunk data not followed by CRLF")
			}
			rs.state = chunkSize
		case chunkTrailer:
			if len(body) == 0 {
				out = append(out, "0\r\n"...)
				out = appendTrailer(out, rs.trailer)
				out = append(out, crlf...)
				rs.line = rs.line[:0]
				return out, true, len(data) > 0, nil
			}
			rs.trailer = append(rs.trailer, line...)
			if len(rs.trailer) > maxChunkLine {
				return out, false, false, fmt.Errorf("upstream body: trailer section too large")
			}
		}
		rs.line = rs.line[:0]
	}
	return out, false, false, nil
}

// appendTrailer appends the upstream's trailer fields as fasthttp's writer
// puts them ("Name: value").
func appendTrailer(out, tr []byte) []byte {
	for rest := tr; len(rest) > 0; {
		var k, v []byte
		k, v, _, rest = nextField(rest)
		if len(k) == 0 {
			continue
		}
		out = appendField(out, k, v)
	}
	return out
}

// truncated ends a response whose upstream body failed after its head
// went out, as the goroutine core's reqState.Close does: logged, counted
// 502 upstream-truncated, and the client connection reset so no client
// takes a cut body for a whole one.
func (l *loop) truncated(c *lconn, err error) {
	st := c.st
	l.p.log.Warn("upstream response incomplete; client connection aborted",
		"cause", causes[causeTruncated].header, "cell", st.cell.name, "endpoint", st.ep.addr, "err", err)
	l.p.noteFailure(st.cell, st.ep, causeTruncated, false)
	if u := c.u; u != nil {
		l.closeUp(u)
	}
	c.st = nil
	st.acc.cause = causeTruncated
	st.acc.bytesOut = c.rs.sent
	st.finish(causes[causeTruncated].status, true)
	l.sendQueued(c)
	_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	l.closeConn(c)
}

// responseOut finishes a request whose whole response is written.
func (l *loop) responseOut(c *lconn) {
	if st := c.st; st != nil {
		if c.u != nil {
			return // the body is not all read yet
		}
		c.st = nil
		st.end = l.endClock(st.start)
		st.finish(st.status, false)
	}
	l.requestDone(c)
}
