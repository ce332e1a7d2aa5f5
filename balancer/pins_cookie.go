package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"math"
	"strconv"
	"sync"

	"github.com/cellgate/cellgate/internal/strictb64"
)

// PinCookie signs and verifies the cookie that carries a session pin from
// node to node, so any node of a fleet that shares the secret (and the hash
// seed) honours a pin another node made, under the same rules as its own.
//
// A value is five dot-separated fields, all cookie-octets (RFC 6265 §4.1.1):
//
//	1.<assigned ms>.<seen ms>.<cell, base64url>.<MAC, base64url>
//
// The MAC is HMAC-SHA256, truncated to 128 bits (RFC 2104 §5 allows
// truncation to half the output), over a domain tag, the sticky key's hash
// and the other fields. Binding the key hash means a cookie copied to
// another user's requests pins nothing. Times are Unix milliseconds; seen is
// refreshed by the proxy while the session is active, so an idle session's
// cookie expires under the same pin_idle rule as a local pin.
type PinCookie struct {
	macs sync.Pool // *macState keyed with the secret
}

// macState is a keyed HMAC with scratch space, pooled so signing and
// verifying do not allocate.
type macState struct {
	h   hash.Hash
	buf [64 + maxPinCell]byte
	sum [sha256.Size]byte
}

// pinDomain separates pin MACs from any other use of the secret.
const pinDomain = "cellgate-pin-v1"

// macHeader is the length of the MAC message before the cell name: the
// domain, key hash, two times and the name's length.
const macHeader = len(pinDomain) + 8 + 8 + 8 + 4

// pinMACLen is the truncated MAC length in bytes.
const pinMACLen = 16

// maxPinCell bounds a cell name in a cookie; longer names are not pinned
// by cookie (config names are short).
const maxPinCell = 128

// NewPinCookie returns a codec keyed with secret, or nil when secret is
// empty (no key, no cookie pins: an unsigned pin would let any client pick
// its cell).
func NewPinCookie(secret []byte) *PinCookie {
	if len(secret) == 0 {
		return nil
	}
	key := append([]byte(nil), secret...)
	c := &PinCookie{}
	c.macs.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return c
}

// mac computes the truncated MAC into m.sum. The message is built in
// m.buf, so cell (≤ maxPinCell bytes) may be a string or bytes without a
// conversion that allocates.
func mac[S string | []byte](m *macState, keyHash uint64, assigned, seen int64, cell S) []byte {
	m.h.Reset()
	b := append(m.buf[:0], pinDomain...)
	b = binary.BigEndian.AppendUint64(b, keyHash)
	b = binary.BigEndian.AppendUint64(b, uint64(assigned))
	b = binary.BigEndian.AppendUint64(b, uint64(seen))
	b = binary.BigEndian.AppendUint32(b, uint32(len(cell)))
	b = append(b, cell...)
	m.h.Write(b)
	return m.h.Sum(m.sum[:0])[:pinMACLen]
}

// Append appends the cookie value pinning keyHash to cell, assigned and
// last seen at the given times (ns since the Unix epoch), to dst.
func (c *PinCookie) Append(dst []byte, keyHash uint64, cell string, assignedAt, seenAt int64) []byte {
	if len(cell) > maxPinCell {
		return dst
	}
	assigned, seen := assignedAt/1e6, seenAt/1e6
	m := c.macs.Get().(*macState)
	dst = append(dst, "1."...)
	dst = strconv.AppendInt(dst, assigned, 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, seen, 10)
	dst = append(dst, '.')
	sum := mac(m, keyHash, assigned, seen, cell)
	dst = base64.RawURLEncoding.AppendEncode(dst, m.buf[macHeader:macHeader+len(cell)]) // the cell as mac copied it
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, sum)
	c.macs.Put(m)
	return dst
}

// Parse verifies value for keyHash and returns the cell name (decoded into
// scratch, which it may grow) and the times in ns. A malformed, forged or
// foreign cookie gives ok = false; Parse never panics (FuzzPinCookie) and,
// once scratch has grown, does not allocate. Each pin has exactly one
// accepted spelling: the base64 fields are decoded by strictb64, which
// refuses the newlines and non-zero padding bits encoding/base64 lets
// through (FuzzPinCookie found both).
func (c *PinCookie) Parse(value []byte, keyHash uint64, scratch []byte) (cell []byte, assignedAt, seenAt int64, _ []byte, ok bool) {
	var f [5][]byte
	n := 0
	for n < 4 {
		i := indexByte(value, '.')
		if i < 0 {
			return nil, 0, 0, scratch, false
		}
		f[n], value = value[:i], value[i+1:]
		n++
	}
	f[4] = value
	if string(f[0]) != "1" {
		return nil, 0, 0, scratch, false
	}
	assigned, ok1 := parseMillis(f[1])
	seen, ok2 := parseMillis(f[2])
	if !ok1 || !ok2 || len(f[3]) > base64.RawURLEncoding.EncodedLen(maxPinCell) ||
		len(f[4]) != base64.RawURLEncoding.EncodedLen(pinMACLen) {
		return nil, 0, 0, scratch, false
	}
	scratch, err := strictb64.AppendRawURL(scratch[:0], f[3])
	if err != nil || len(scratch) == 0 {
		return nil, 0, 0, scratch, false
	}
	cellEnd := len(scratch)
	scratch, err = strictb64.AppendRawURL(scratch, f[4])
	if err != nil || len(scratch)-cellEnd != pinMACLen {
		return nil, 0, 0, scratch, false
	}
	m := c.macs.Get().(*macState)
	good := hmac.Equal(mac(m, keyHash, assigned, seen, scratch[:cellEnd]), scratch[cellEnd:])
	c.macs.Put(m)
	if !good {
		return nil, 0, 0, scratch, false
	}
	return scratch[:cellEnd], assigned * 1e6, seen * 1e6, scratch, true
}

// parseMillis parses a non-negative decimal of milliseconds small enough
// that ×1e6 (to ns) cannot overflow.
func parseMillis(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 13 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, v <= math.MaxInt64/1_000_000
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}
