package frontdoor

import "bytes"

// state is where the validator stands in the request stream.
type state uint8

const (
	stRequestLine state = iota // expecting a request line (or a leading empty line)
	stHeader                   // inside the header section
	stBody                     // inside a Content-Length body
	stChunkSize                // expecting a chunk-size line
	stChunkData                // inside chunk data
	stChunkCR                  // expecting the CR after chunk data
	stChunkLF                  // expecting the LF after chunk data
	stTrailer                  // inside the trailer section
)

const (
	// maxLeadingBlanks is how many empty lines may precede a request line.
	// RFC 9112 §2.2 asks servers to ignore at least one (old clients send a
	// CRLF after a POST body); a few more cost nothing, an endless stream of
	// them is a way to hold a connection without sending a request.
	maxLeadingBlanks = 4
	// maxChunkLine bounds a chunk-size line with its extensions. No real
	// client sends kilobytes of chunk extensions; without a bound a client
	// could make the carry buffer grow without limit.
	maxChunkLine = 4 << 10
	// maxChunkHexDigits matches fasthttp's 64-bit limit (maxHexIntChars), so
	// the two parsers agree on which sizes exist; 15 hex digits cannot
	// overflow an int64.
	maxChunkHexDigits = 15
	// maxAuthority bounds an absolute-form authority: a DNS name is at most
	// 253 octets, plus a port.
	maxAuthority = 262
	// keepCarry is the largest carry buffer kept between messages; a larger
	// one (grown by a huge split header) is dropped to keep idle
	// connections small.
	keepCarry = 4 << 10
)

// Validator checks an HTTP/1.1 request byte stream incrementally. Feed it the
// bytes in the order they arrive, split anywhere; it never looks back at
// bytes it has already returned, and holds only the current unfinished line.
// A Validator is not safe for concurrent use; the zero value is not ready,
// use NewValidator.
type Validator struct {
	cfg      Config
	state    state
	carry    []byte   // the unfinished line, when a line spans Feed calls
	refusal  *Refusal // the verdict once the stream is refused; sticky
	requests int      // complete requests seen
	ended    bool     // a request ended during the current feed

	msg message // the request being read

	// authority is the absolute-form target's authority, lower-cased, valid
	// up to msg.authLen. It lives outside message so that resetting a
	// message does not copy it.
	authority [maxAuthority]byte
}

// message is the per-request state, zeroed at each request's start.
type message struct {
	blanks     int   // empty lines before the request line
	http10     bool  // version is HTTP/1.0
	hosts      int   // Host field lines seen
	clSeen     bool  // a Content-Length field was seen
	teSeen     bool  // a (valid, chunked-final) Transfer-Encoding was seen
	fieldBytes int   // bytes of the header or trailer section so far
	fieldCount int   // field lines of the header or trailer section so far
	remaining  int64 // bytes left in the Content-Length body or current chunk

	authLen int // length of Validator.authority; >0 when the target is absolute-form
}

// NewValidator returns a Validator enforcing cfg's limits.
func NewValidator(cfg Config) *Validator {
	v := &Validator{}
	v.init(cfg)
	return v
}

func (v *Validator) init(cfg Config) {
	*v = Validator{cfg: cfg.withDefaults()}
}

// Requests returns how many complete requests the validator has passed.
func (v *Validator) Requests() int { return v.requests }

// Idle reports whether the stream stands between requests: no partial
// request has been fed.
func (v *Validator) Idle() bool {
	return v.state == stRequestLine && len(v.carry) == 0 && v.msg.blanks == 0
}

// Refusal returns the verdict once the stream has been refused, else nil.
func (v *Validator) Refusal() *Refusal { return v.refusal }

// Feed validates p, the next bytes of the stream. It returns how many leading
// bytes of p may be handed to the HTTP parser, and the refusal if p holds a
// violation. Bytes of a line are handed over before the line is complete, but
// never the LF that completes an invalid line, so a parser downstream cannot
// act on it. Once refused, Feed returns 0 and the same refusal forever.
func (v *Validator) Feed(p []byte) (int, *Refusal) {
	return v.feed(p, false)
}

// FeedMessage is Feed that stops after the first request that ends in p: it
// returns how many bytes it consumed (the rest of p is unread and must be
// fed again), or the refusal. A reader that hands each request over on its
// own makes the server finish and flush the previous response before it
// reads the next request, so a refusal never shares a write with an earlier
// response.
func (v *Validator) FeedMessage(p []byte) (int, *Refusal) {
	return v.feed(p, true)
}

func (v *Validator) feed(p []byte, stop bool) (int, *Refusal) {
	if v.refusal != nil {
		return 0, v.refusal
	}
	v.ended = false
	for i := 0; i < len(p); {
		if stop && v.ended {
			return i, nil
		}
		switch v.state {
		case stBody, stChunkData:
			i += v.body(len(p) - i)
		case stChunkCR:
			if p[i] != '\r' {
				return v.refuse(i, refuseChunkData)
			}
			i++
			v.state = stChunkLF
		case stChunkLF:
			if p[i] != '\n' {
				return v.refuse(i, refuseChunkData)
			}
			i++
			v.state = stChunkSize
		default:
			start := i
			if len(v.carry) > 0 {
				start = 0 // the line began in an earlier Feed, already handed over
			}
			next, r := v.line(p, i)
			if r != nil {
				return v.refuse(start, r)
			}
			i = next
		}
	}
	return len(p), nil
}

func (v *Validator) refuse(n int, r *Refusal) (int, *Refusal) {
	v.refusal = r
	v.carry = nil
	return n, r
}

// body consumes up to avail bytes of a Content-Length body or chunk data and
// returns how many it took.
func (v *Validator) body(avail int) int {
	k := avail
	if int64(k) > v.msg.remaining {
		k = int(v.msg.remaining)
	}
	v.msg.remaining -= int64(k)
	if v.msg.remaining == 0 {
		if v.state == stBody {
			v.endMessage()
		} else {
			v.state = stChunkCR
		}
	}
	return k
}

// line consumes one line (or the rest of p, if the line does not end in p)
// starting at p[i], and returns where the next unread byte is.
func (v *Validator) line(p []byte, i int) (int, *Refusal) {
	budget, over := v.lineBudget()
	rest := p[i:]
	lf := bytes.IndexByte(rest, '\n')
	if lf < 0 {
		if len(v.carry)+len(rest) > budget {
			return 0, over
		}
		v.carry = append(v.carry, rest...)
		return len(p), nil
	}
	line := rest[:lf+1]
	if len(v.carry) > 0 {
		v.carry = append(v.carry, line...)
		line = v.carry
	}
	if len(line) > budget {
		return 0, over
	}
	// RFC 9112 §2.2: a bare LF is a line terminator only to lenient parsers;
	// treating it as one where another hop does not is a smuggling vector.
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, refuseBareLF
	}
	r := v.dispatch(line[:len(line)-2])
	v.carry = v.carry[:0]
	return i + lf + 1, r
}

// lineBudget returns the longest line, CRLF included, the current state
// accepts, and the refusal for a longer one.
func (v *Validator) lineBudget() (int, *Refusal) {
	switch v.state {
	case stRequestLine:
		return v.cfg.MaxRequestLine, refuseRequestLineTooLong
	case stHeader:
		return max(v.cfg.MaxHeaderBytes-v.msg.fieldBytes, 2), refuseHeadersTooLarge
	case stTrailer:
		return max(v.cfg.MaxHeaderBytes-v.msg.fieldBytes, 2), refuseTrailersTooLarge
	default:
		return maxChunkLine, refuseChunkLineTooLong
	}
}

// dispatch checks one complete line, CRLF removed, in the current state.
func (v *Validator) dispatch(line []byte) *Refusal {
	switch v.state {
	case stRequestLine:
		return v.requestLine(line)
	case stHeader:
		return v.headerLine(line)
	case stChunkSize:
		return v.chunkSizeLine(line)
	default: // stTrailer
		return v.trailerLine(line)
	}
}

// endHead runs the checks that need the whole header section and picks how
// the body is framed (RFC 9112 §6.3).
func (v *Validator) endHead() *Refusal {
	m := &v.msg
	if !m.http10 && m.hosts == 0 {
		return refuseHostMissing
	}
	if m.teSeen {
		if m.http10 {
			return refuseTEHTTP10
		}
		if m.clSeen {
			return refuseCLAndTE
		}
		m.fieldBytes, m.fieldCount = 0, 0 // the trailer section has its own budget
		v.state = stChunkSize
		return nil
	}
	if m.remaining > 0 {
		v.state = stBody
		return nil
	}
	v.endMessage()
	return nil
}

// endMessage records a complete request and readies for the next.
func (v *Validator) endMessage() {
	v.requests++
	v.ended = true
	v.state = stRequestLine
	v.msg = message{}
	if cap(v.carry) > keepCarry {
		v.carry = nil
	}
}

// Reset makes v a fresh validator for cfg, for a new connection: the loop
// core (proxy/loopconn.go) keeps one per pooled connection.
func (v *Validator) Reset(cfg Config) { v.init(cfg) }
