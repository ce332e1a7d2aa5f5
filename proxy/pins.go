package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/valyala/fasthttp"
)

// sessions is the routing state that outlives snapshots: the session pin
// table (nil when pins are off), the cookie codec that carries pins between
// nodes (nil without a secret or without set_cookie), and the per-cell
// served counters behind cellgate_cell_share. Every snapshot points to the
// same sessions; only its PinView changes with the table.
type sessions struct {
	pins   *balancer.Pins
	cookie *balancer.PinCookie
	// cookieRefresh is how old a cookie's last-seen may get before a
	// pinned response re-issues it, so a session's cookie expires no
	// earlier than its pin.
	cookieRefresh int64

	// mu guards served, which survives reloads like the recorders do.
	mu     sync.Mutex
	served map[string]*atomic.Uint64
	shares shareWindow
}

// newSessions builds the pin table from opts. A pin table that cannot be
// built (only a ristretto failure; the sizes were validated) leaves pins
// off and says so in the log.
func (p *Proxy) newSessions() *sessions {
	s := &sessions{served: map[string]*atomic.Uint64{}}
	s.shares.init(p.clock())
	if p.opts.PinMemory <= 0 {
		return s
	}
	pins, err := balancer.NewPins(balancer.PinConfig{MaxBytes: p.opts.PinMemory, Idle: p.opts.PinIdle, Now: p.clock})
	if err != nil {
		p.log.Error("session pins off", "err", err)
		return s
	}
	s.pins = pins // closed by Shutdown; snapshots share one sessions
	// The codec is built whenever pins are on; routing.set_cookie, which a
	// reload may change, decides per request whether pins travel in it.
	s.cookie = balancer.NewPinCookie(p.opts.PinSecret)
	s.cookieRefresh = int64(p.opts.PinIdle / 8)
	return s
}

// clock is the proxy's injected clock (Hooks.Now), else time.Now.
func (p *Proxy) clock() time.Time {
	if p.hooks.Now != nil {
		return p.hooks.Now()
	}
	return time.Now()
}

// servedLocked returns the cell's served counter, creating it on first
// sight. Callers hold p.mu (it runs while a snapshot is built).
func (s *sessions) servedLocked(name string) *atomic.Uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.served[name]
	if c == nil {
		c = new(atomic.Uint64)
		s.served[name] = c
	}
	return c
}

// view builds the pin rules for table t replacing prev's (nil when pins
// are off).
func (s *sessions) view(prev *snapshot, t *balancer.Table, revert bool) *balancer.PinView {
	if s.pins == nil {
		return nil
	}
	var pv *balancer.PinView
	if prev != nil {
		pv = prev.pins
	}
	return s.pins.Swap(pv, t, revert)
}

// routePinned picks the cell for a keyed request with pins on: a valid pin
// cookie, else the local pin table, else the table. When the answer is a
// pin and cookies are on, it marks the response to carry the (refreshed)
// pin cookie.
func (p *Proxy) routePinned(ctx *fasthttp.RequestCtx, st *reqState, snap *snapshot, keyHash uint64) int {
	now := st.start.UnixNano() // the request's time, as overrideValue's
	if p.hooks.Now != nil {
		now = p.hooks.Now().UnixNano()
	}
	ss := snap.sessions
	cookies := ss.cookie != nil && st.set.opts.SetCookie
	claim := balancer.NoClaim
	if cookies {
		if v := ctx.Request.Header.Cookie(p.opts.PinCookieName); len(v) > 0 {
			var cell []byte
			var ok bool
			cell, claim.AssignedAt, claim.SeenAt, st.pinBuf, ok = ss.cookie.Parse(v, keyHash, st.pinBuf)
			if ok {
				claim.Cell = snap.table.IndexBytes(cell)
			}
		}
	}
	d := snap.pins.Route(keyHash, now, claim)
	st.acc.pinned = d.Pinned
	if d.Pinned && cookies && (claim.Cell != d.Cell || now-claim.SeenAt >= ss.cookieRefresh) {
		st.pinCookie, st.pinHash, st.pinAssigned, st.pinNow = true, keyHash, d.AssignedAt, now
	}
	return d.Cell
}

// setPinCookie sends the session's pin as a signed cookie, valid for
// pin_idle from now, so every node of the fleet honours it.
func (p *Proxy) setPinCookie(ctx *fasthttp.RequestCtx, st *reqState, ss *sessions) {
	st.pinBuf = ss.cookie.Append(st.pinBuf[:0], st.pinHash, st.cell.name, st.pinAssigned, st.pinNow)
	c := fasthttp.AcquireCookie()
	c.SetKey(p.opts.PinCookieName)
	c.SetValueBytes(st.pinBuf)
	c.SetPath("/")
	c.SetMaxAge(int(p.opts.PinIdle / time.Second))
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	ctx.Response.Header.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}

// Pins returns the number of sessions pinned to each cell (pins made on
// this node and still holding; pins carried only by cookies from other
// nodes are not seen here). Nil when pins are off. It walks the pin table:
// for status and scrapes, not per request.
func (p *Proxy) Pins() map[string]int64 {
	s := p.snap.Load()
	if s.pins == nil {
		return nil
	}
	counts := s.pins.Counts(p.clock().UnixNano())
	out := make(map[string]int64, len(counts))
	for i, n := range counts {
		out[s.cells[i].name] = n
	}
	return out
}

// RevertWeights is SetWeights for a change known to be a revert or an
// abort: every cell whose share falls loses its pins on this swap and makes
// none until promoted again. SetWeights infers this from the rollout's own
// history (see balancer.Pins.Swap); callers that know should say so (the
// rollout controller does, through its Apply hook). Errors as SetWeights.
func (p *Proxy) RevertWeights(w map[string]float64) error { return p.setWeights(w, true) }
