package configs

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/discovery"
)

// validate checks the decoded config and returns every problem, located
// through loc. It is pure: it reads no files and opens no sockets.
func (c *Config) validate(loc lines) []Problem {
	v := &validator{loc: loc}
	c.validateListen(v)
	c.validateRouting(v)
	c.validateCells(v)
	c.validateSLO(v)
	c.validateRollout(v)
	c.validateGossip(v)
	c.validateDiscovery(v)
	c.validateObserve(v)
	c.validateFlags(v)
	return v.probs
}

type validator struct {
	loc   lines
	probs []Problem
}

func (v *validator) add(key, format string, args ...any) {
	v.probs = append(v.probs, Problem{Line: v.loc.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) duration(key string, d Duration, positive bool) {
	switch {
	case d.err != nil:
		v.add(key, "%v", d.err)
	case positive && d.Duration <= 0:
		v.add(key, "must be positive")
	}
}

func (v *validator) hostPort(key, addr string) {
	if err := checkHostPort(addr); err != nil {
		v.add(key, "%v", err)
	}
}

func (v *validator) ratio(key string, x float64) {
	if !(x > 0 && x < 1) {
		v.add(key, "must be between 0 and 1 (exclusive), got %v", x)
	}
}

// checkHostPort accepts "host:port" with a non-empty host and a port in
// 1–65535 (0 is allowed only for listeners, see checkListenAddr).
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: want host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("bad address %q: empty host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad address %q: port must be a number 0-65535", addr)
	}
	return nil
}

func (c *Config) validateListen(v *validator) {
	l := c.Listen
	v.hostPort("listen.addr", l.Addr)
	v.duration("listen.read_timeout", l.ReadTimeout, false)
	v.duration("listen.write_timeout", l.WriteTimeout, false)
	v.duration("listen.idle_timeout", l.IdleTimeout, false)
	v.duration("listen.drain_timeout", l.DrainTimeout, false)
	v.duration("listen.tunnel_idle_timeout", l.TunnelIdleTimeout, false)
	if l.MaxRequestBody <= 0 {
		v.add("listen.max_request_body", "must be positive (bytes)")
	}
	if l.MaxHeaderBytes < 1024 {
		v.add("listen.max_header_bytes", "must be at least 1024 bytes")
	}
	if l.MaxConns < 0 {
		v.add("listen.max_conns", "must not be negative")
	}
	if (l.TLSCert == "") != (l.TLSKey == "") {
		v.add("listen.tls_cert", "tls_cert and tls_key go together")
	}
	switch l.Core {
	case "", CoreAuto, CoreGoroutine:
	case CoreLoop:
		if l.TLSCert != "" {
			v.add("listen.core", `"loop" serves plain TCP only; with tls_cert use "goroutine"`)
		}
	default:
		v.add("listen.core", `must be "auto", "goroutine" or "loop", not %q`, l.Core)
	}
	u := c.Upstream
	v.duration("upstream.connect_timeout", u.ConnectTimeout, true)
	v.duration("upstream.response_timeout", u.ResponseTimeout, true)
	v.duration("upstream.idle_timeout", u.IdleTimeout, true)
	v.duration("upstream.eject_backoff", u.EjectBackoff, true)
	if u.MaxConnsPerEndpoint <= 0 {
		v.add("upstream.max_conns_per_endpoint", "must be positive")
	}
	if u.EjectAfter < 0 {
		v.add("upstream.eject_after", "must not be negative (0 turns ejection off)")
	}
	if u.MaxEjectionPercent < 0 || u.MaxEjectionPercent > 100 {
		v.add("upstream.max_ejection_percent", "must be 0-100 (percent of a cell's endpoints)")
	}
	if c.Admin.Addr != "" {
		v.hostPort("admin.addr", c.Admin.Addr)
	}
	if c.State.Path == "" {
		v.add("state.path", "must name the journal file")
	}
	v.duration("state.audit_retention.age", c.State.AuditRetention.Age, false)
	if c.State.AuditRetention.Age.Duration < 0 {
		v.add("state.audit_retention.age", "must not be negative (0 keeps events of any age)")
	}
	if c.State.AuditRetention.Events < 0 {
		v.add("state.audit_retention.events", "must not be negative (0 keeps any number)")
	}
}

func (c *Config) validateRouting(v *validator) {
	r := c.Routing
	for i, s := range r.StickyKey {
		if _, err := balancer.ParseSource(s); err != nil {
			v.add(fmt.Sprintf("routing.sticky_key[%d]", i), "%v", err)
		}
	}
	for i, p := range r.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.add(fmt.Sprintf("routing.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if r.SetCookie && r.CookieName == "" {
		v.add("routing.cookie_name", "set_cookie needs a cookie_name")
	}
	if r.PinMemory < 0 || (r.PinMemory > 0 && r.PinMemory < balancer.MinPinMemory) {
		v.add("routing.pin_memory", "want 0 (pins off) or at least %d bytes", balancer.MinPinMemory)
	}
	v.duration("routing.pin_idle", r.PinIdle, r.PinMemory > 0)
	v.duration("routing.tunnel_drain", r.TunnelDrain, false)
	if !(r.FailoverPanic >= 0 && r.FailoverPanic <= 100) {
		v.add("routing.failover_panic", "must be 0-100 (percent of the total weight)")
	}
}

// ParsePrefix parses a CIDR or a bare address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *Config) validateCells(v *validator) {
	if len(c.Cells) == 0 {
		v.add("cell", "at least one [[cell]] is needed")
		return
	}
	seen := map[string]int{}
	total := 0.0
	for i, cell := range c.Cells {
		key := fmt.Sprintf("cell.%d", i)
		switch {
		case cell.Name == "":
			v.add(key+".name", "a cell needs a name")
		case !isCellName(cell.Name):
			v.add(key+".name", "cell name %q must be 1 to %d letters, digits, '-', '_' or '.', starting with a letter or digit", clipName(cell.Name), maxCellName)
		default:
			if j, dup := seen[cell.Name]; dup {
				v.add(key+".name", "duplicate cell name %q (also cell %d, line %d)", cell.Name, j+1, v.loc.line(fmt.Sprintf("cell.%d.name", j)))
			}
			seen[cell.Name] = i
		}
		if math.IsNaN(cell.Weight) || math.IsInf(cell.Weight, 0) || cell.Weight < 0 {
			v.add(key+".weight", "weight must be a non-negative number, got %v", cell.Weight)
		} else {
			total += cell.Weight
		}
		if len(cell.Endpoints) == 0 {
			v.add(key+".endpoints", "cell %q has no endpoints", cell.Name)
		}
		for _, ep := range cell.Endpoints {
			if _, ok, err := discovery.Parse(ep); ok {
				if err != nil {
					v.add(key+".endpoints", "%v", err)
				}
				continue
			}
			if err := checkHostPort(ep); err != nil {
				v.add(key+".endpoints", "%v", err)
			} else if _, port, _ := net.SplitHostPort(ep); port == "0" {
				v.add(key+".endpoints", "bad address %q: port 0", ep)
			}
		}
	}
	if total == 0 {
		v.add("cell", "all cell weights are zero: no request could be served")
	}
	for i, cell := range c.Cells {
		if h := cell.Health; h != nil {
			validateHealth(v, fmt.Sprintf("cell.%d.health", i), h)
		}
		validateProtocol(v, fmt.Sprintf("cell.%d", i), &cell)
	}
}

// validateProtocol checks a cell's protocol and TLS settings (the files
// themselves are read when the proxy checks the cells).
func validateProtocol(v *validator, key string, c *Cell) {
	switch c.Protocol {
	case "", "http1", "h2c", "h2":
	default:
		v.add(key+".protocol", "protocol %q: want \"http1\", \"h2c\" or \"h2\"", c.Protocol)
	}
	if t := c.TLS; t != nil {
		if c.Protocol == "h2c" {
			v.add(key+".tls", "protocol h2c is HTTP/2 without TLS; use protocol = \"h2\" with [cell.tls]")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.add(key+".tls", "cert_file and key_file go together")
		}
	}
}

// validateHealth checks one cell's active health check.
func validateHealth(v *validator, key string, raw *Health) {
	h := raw.WithDefaults()
	v.duration(key+".interval", h.Interval, true)
	v.duration(key+".timeout", h.Timeout, true)
	if h.Timeout.err == nil && h.Interval.err == nil && h.Timeout.Duration > h.Interval.Duration {
		v.add(key+".timeout", "must not exceed the interval")
	}
	if h.Unhealthy < 1 {
		v.add(key+".unhealthy", "must be at least 1 (failed checks in a row that take an endpoint out; omitted: 3)")
	}
	if h.Healthy < 1 {
		v.add(key+".healthy", "must be at least 1 (passing checks in a row that put it back; omitted: 2)")
	}
	if h.Expect != 0 && (h.Expect < 100 || h.Expect > 599) {
		v.add(key+".expect", "%d is not an HTTP status (0: any 2xx)", h.Expect)
	}
	if h.Path != "" && h.Path[0] != '/' {
		v.add(key+".path", "must start with / (empty: TCP connect check)")
	}
}

func (c *Config) validateDiscovery(v *validator) {
	d := c.Discovery
	v.duration("discovery.interval", d.Interval, true)
	v.duration("discovery.grace", d.Grace, false)
	if d.Resolver != "" {
		v.hostPort("discovery.resolver", d.Resolver)
	}
}

// maxCellName bounds a cell name: it is a DNS-label-sized token.
const maxCellName = 63

// isCellName reports whether s is a safe cell name: it appears in URL paths
// (/v1/cells/{name}), headers, metric labels and the journal, so it is a
// token that starts with a letter or digit — never "." or "..", which a
// URL path resolves away — of at most maxCellName bytes.
func isCellName(s string) bool {
	if s == "" || len(s) > maxCellName || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isAlnum(b) && b != '-' && b != '_' && b != '.' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// clipName shortens a bad name for its error message.
func clipName(s string) string {
	if len(s) > maxCellName+8 {
		return s[:maxCellName] + "…"
	}
	return s
}

func (c *Config) validateSLO(v *validator) {
	s := c.SLO
	v.ratio("slo.availability", s.Availability)
	v.ratio("slo.latency_objective", s.LatencyObjective)
	v.duration("slo.latency_threshold", s.LatencyThreshold, true)
	v.duration("slo.ttfb_threshold", s.TTFBThreshold, false)
	if s.TTFBThreshold.Duration > 0 {
		v.ratio("slo.ttfb_objective", s.TTFBObjective)
	}
	v.duration("slo.interval", s.Interval, true)
	for name, r := range map[string]BurnRule{"slo.fast_burn": s.FastBurn, "slo.slow_burn": s.SlowBurn} {
		v.duration(name+".long", r.Long, true)
		v.duration(name+".short", r.Short, true)
		if r.Short.Duration >= r.Long.Duration && r.Long.err == nil && r.Short.err == nil {
			v.add(name, "short window (%v) must be shorter than long (%v)", r.Short.Duration, r.Long.Duration)
		}
		if r.Short.Duration > 0 && s.Interval.Duration > r.Short.Duration {
			v.add(name+".short", "window %v is shorter than slo.interval %v", r.Short.Duration, s.Interval.Duration)
		}
		if !(r.Rate > 0) {
			v.add(name+".rate", "must be positive")
		}
	}
	if s.MinRequests < 0 {
		v.add("slo.min_requests", "must not be negative")
	}
	if !(s.FailRatio > 0 && s.FailRatio <= 1) {
		v.add("slo.fail_ratio", "must be in (0, 1], got %v", s.FailRatio)
	}
	for _, name := range s.GRPCErrorCodes {
		if _, ok := GRPCCodes[name]; !ok {
			v.add("slo.grpc_error_codes", "%q is not a gRPC status name (UNAVAILABLE, DEADLINE_EXCEEDED, …)", name)
		}
	}
}

func (c *Config) validateRollout(v *validator) {
	r := c.Rollout
	v.duration("rollout.tick", r.Tick, true)
	v.duration("rollout.bake", r.Bake, false)
	if r.DegradedTicks < 1 {
		v.add("rollout.degraded_ticks", "must be at least 1")
	}
	if !(r.MaxStepPerTick > 0 && r.MaxStepPerTick <= 100) {
		v.add("rollout.max_step_per_tick", "must be in (0, 100] percent, got %v", r.MaxStepPerTick)
	}
	if r.MinRequests < 0 {
		v.add("rollout.min_requests", "must not be negative")
	}
	names := map[string]bool{}
	for i, p := range c.Plans {
		key := fmt.Sprintf("plan.%d", i)
		name, _ := p["name"].(string)
		if name == "" {
			v.add(key+".name", "a [[plan]] needs a name")
		} else if names[name] {
			v.add(key+".name", "duplicate plan name %q", name)
		}
		names[name] = true
	}
}

func (c *Config) validateGossip(v *validator) {
	g := c.Gossip
	if g.Bind == "" {
		if len(g.Join) > 0 {
			v.add("gossip.join", "join needs gossip.bind")
		}
		return
	}
	v.hostPort("gossip.bind", g.Bind)
	if g.Advertise != "" {
		v.hostPort("gossip.advertise", g.Advertise)
	}
	for i, j := range g.Join {
		if err := checkHostPort(j); err != nil {
			v.add(fmt.Sprintf("gossip.join[%d]", i), "%v", err)
		}
	}
}
