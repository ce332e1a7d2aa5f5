package flags

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"

	"github.com/cellgate/cellgate/internal/strictb64"
)

// OverrideCookieName is the cookie that carries a signed override, for
// testers who cannot come through a trusted proxy. `cellgate ctl override
// mint` issues its value.
const OverrideCookieName = "cellgate_override"

// OverrideCookie signs and verifies override cookies. A value is
//
//	base64url(payload) "." base64url(MAC)
//
// where payload is the expiry (Unix seconds, 8 bytes big-endian) followed
// by the override dictionary as X-Cellgate-Override spells it, and MAC is
// HMAC-SHA256 over a domain tag, the sticky key it is bound to and the
// payload. The key is in the MAC, not the payload: a cookie copied to
// another user's requests verifies for no one else, and it does not reveal
// whose key it was minted for. The secret is the pin cookie's
// (routing.pin_secret_file), so every node of a fleet honours it.
type OverrideCookie struct {
	macs sync.Pool // *overrideMAC keyed with the secret
}

type overrideMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
	n   [4]byte
	dom []byte // overrideDomain, written without a conversion per call
}

// overrideDomain separates override MACs from pin MACs under one secret.
const overrideDomain = "cellgate-override-v1"

// maxOverridePayload bounds a cookie's payload (the dictionary is short).
const maxOverridePayload = 8 + 1024

// NewOverrideCookie returns a codec keyed with secret, or nil when secret
// is empty (no key: no override cookies, as an unsigned one would let any
// client pick its cell).
func NewOverrideCookie(secret []byte) *OverrideCookie {
	if len(secret) == 0 {
		return nil
	}
	key := append([]byte(nil), secret...)
	c := &OverrideCookie{}
	c.macs.New = func() any { return &overrideMAC{h: hmac.New(sha256.New, key), dom: []byte(overrideDomain)} }
	return c
}

func (c *OverrideCookie) mac(m *overrideMAC, key, payload []byte) []byte {
	m.h.Reset()
	m.h.Write(m.dom)
	binary.BigEndian.PutUint32(m.n[:], uint32(len(key)))
	m.h.Write(m.n[:])
	m.h.Write(key)
	m.h.Write(payload)
	return m.h.Sum(m.sum[:0])
}

// Mint returns the cookie value binding dict to the sticky key until
// expiry (Unix seconds).
func (c *OverrideCookie) Mint(key []byte, dict string, expiry int64) (string, error) {
	if c == nil {
		return "", errors.New("override cookie: no secret")
	}
	payload := binary.BigEndian.AppendUint64(nil, uint64(expiry))
	payload = append(payload, dict...)
	if len(payload) > maxOverridePayload {
		return "", errors.New("override cookie: dictionary too long")
	}
	m := c.macs.Get().(*overrideMAC)
	sum := c.mac(m, key, payload)
	v := base64.RawURLEncoding.AppendEncode(nil, payload)
	v = append(v, '.')
	v = base64.RawURLEncoding.AppendEncode(v, sum)
	c.macs.Put(m)
	return string(v), nil
}

// Parse verifies value for the request's sticky key at now (Unix seconds)
// and returns the override dictionary, decoded into scratch (which it may
// grow). A malformed, forged, expired or foreign cookie gives ok = false:
// it is ignored, never an error. Parse never panics (FuzzOverrideCookie)
// and, once scratch has grown, does not allocate. The base64 fields are
// decoded by strictb64, so each cookie has exactly one accepted spelling.
func (c *OverrideCookie) Parse(value, key []byte, now int64, scratch []byte) (dict, _ []byte, ok bool) {
	if c == nil {
		return nil, scratch, false
	}
	dot := indexDot(value)
	if dot < 0 || dot > base64.RawURLEncoding.EncodedLen(maxOverridePayload) ||
		len(value)-dot-1 != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return nil, scratch, false
	}
	scratch, err := strictb64.AppendRawURL(scratch[:0], value[:dot])
	if err != nil || len(scratch) < 8 {
		return nil, scratch, false
	}
	end := len(scratch)
	scratch, err = strictb64.AppendRawURL(scratch, value[dot+1:])
	if err != nil || len(scratch)-end != sha256.Size {
		return nil, scratch, false
	}
	m := c.macs.Get().(*overrideMAC)
	good := hmac.Equal(c.mac(m, key, scratch[:end]), scratch[end:])
	c.macs.Put(m)
	if !good || int64(binary.BigEndian.Uint64(scratch)) <= now {
		return nil, scratch, false
	}
	return scratch[8:end], scratch, true
}

func indexDot(b []byte) int {
	for i, c := range b {
		if c == '.' {
			return i
		}
	}
	return -1
}
