// Package discovery turns endpoint names into endpoint sets and keeps them
// current: `dns:NAME:PORT` (every A/AAAA address of NAME is an endpoint at
// PORT) and `srv:_service._proto.NAME` (every SRV target address at its
// port). This is how Kubernetes headless Services and Consul DNS are used.
//
// A Watcher re-resolves each name every Config.Interval — sooner when the
// answer's TTL says so, which only a configured resolver reports (the
// system resolver exposes no TTLs) — and calls its change hook when a set
// changed; the node then rebuilds its routing snapshot exactly as a reload
// does, so pools of endpoints that stay are kept and removed ones drain. A
// failed lookup keeps the last good set (for Config.Grace, when set) and is
// reported in Status.
package discovery
