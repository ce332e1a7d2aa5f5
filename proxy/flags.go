package proxy

import (
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/flags"
)

// Feature flags on the request path (issue 17): each proxied request gets
// its variants from the same key hash as its cell (flags.Set.Assign), the
// upstream learns them in X-Cellgate-Flags, and the request is recorded in
// each variant's cohort when it finishes. A client's X-Cellgate-Flags is
// never forwarded (forwardedOwned), and the upstream's X-Cellgate-Exposed is
// read for flags with exposure = "marked", then stripped (scrub.visit).

var (
	hdrFlags    = []byte("X-Cellgate-Flags")
	hdrExposed  = []byte("X-Cellgate-Exposed")
	hdrOverride = []byte("X-Cellgate-Override")
)

// assignFlags assigns the request's variants and writes the header value
// into st.flagsVal; nothing when no flag is configured.
func (p *Proxy) assignFlags(st *reqState, keyHash uint64, keyed bool) {
	e := p.hooks.Flags
	if e == nil {
		return
	}
	fs := st.flagSet // the snapshot an override was read against, if any
	if fs == nil {
		fs = e.Load()
	}
	if fs.Len() == 0 {
		return
	}
	st.flagSet = fs
	fs.Assign(keyHash, st.start.UnixNano(), keyed, &st.choices)
	if st.overridden {
		st.override.Apply(&st.choices)
	}
	st.flagsVal = fs.AppendHeader(st.flagsVal[:0], &st.choices)
}

// noteExposed reads which flags the response marked as exposed, for flags
// that count only those (the header itself was stripped by the scrub).
func (st *reqState) noteExposed() {
	if st.flagSet != nil && st.flagSet.HasMarked() {
		st.exposed = st.flagSet.Exposed(st.scrub.bytes(st.scrub.exposed))
	}
}

// FlagVariants returns the variants a request was assigned (the
// X-Cellgate-Flags value sent upstream), for the access log. The slice is
// valid until the request's state is released.
func (st *reqState) FlagVariants() []byte { return st.flagsVal }

// Flags is the flag engine the proxy assigns from (nil: flags off).
func (p *Proxy) Flags() *flags.Engine { return p.hooks.Flags }

// appendFlagsField appends "X-Cellgate-Flags: value\r\n" when v is not empty.
func appendFlagsField(dst, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	return appendField(dst, hdrFlags, v)
}

// readOverride reads an override into st.override: X-Cellgate-Override
// when the peer is a trusted proxy (routing.trusted_proxies), else a valid
// cellgate_override cookie bound to the request's sticky key (st.acc.key;
// flags.OverrideCookie, signed with routing.pin_secret_file's key).
// Anything from anyone else, anything forged, expired or bound to another
// key, and anything that names no known cell or variant, is ignored (the
// header never reaches the upstream either way: forwardedOwned; the cookie
// is forwarded as it came, like the pin cookie). It reports whether an
// override applies.
func (p *Proxy) readOverride(ctx *fasthttp.RequestCtx, st *reqState, peer netip.Addr) bool {
	v := p.overrideValue(ctx, st, peer)
	if v == nil {
		return false
	}
	var fs *flags.Set
	if p.hooks.Flags != nil {
		fs = p.hooks.Flags.Load()
	}
	st.overridden = fs.ParseOverride(v, &st.override)
	if st.overridden {
		st.flagSet = fs // assignFlags applies the override to this snapshot
	}
	return st.overridden
}

// overrideValue returns the override dictionary the request may use: a
// trusted proxy's header, else a verified cookie's (decoded into
// st.overrideBuf, which st.override then aliases), else nil.
func (p *Proxy) overrideValue(ctx *fasthttp.RequestCtx, st *reqState, peer netip.Addr) []byte {
	if len(st.set.opts.TrustedProxies) > 0 && st.set.keys.isTrusted(peer) {
		if v := peekFold(&ctx.Request.Header, "X-Cellgate-Override", hdrOverride); v != nil {
			return v
		}
	}
	if p.overrideCookie == nil || len(st.acc.key) == 0 {
		return nil
	}
	c := ctx.Request.Header.Cookie(flags.OverrideCookieName)
	if len(c) == 0 {
		return nil
	}
	now := st.start.Unix() // the request's time (ctx.Time() on the goroutine core; the loop's batch clock)
	if p.hooks.Now != nil {
		now = p.hooks.Now().Unix()
	}
	dict, buf, ok := p.overrideCookie.Parse(c, st.acc.key, now, st.overrideBuf)
	st.overrideBuf = buf
	if !ok {
		return nil
	}
	return dict
}

// Overrides is how many requests an override (trusted header or signed
// cookie) steered;
// they are recorded for no cell and no variant.
func (p *Proxy) Overrides() uint64 { return p.overrides.Load() }
