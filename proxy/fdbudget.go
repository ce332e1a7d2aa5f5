package proxy

import (
	"fmt"
)

// Descriptor budget. Every client connection costs a descriptor, and while
// it has a request in flight (or a tunnel open) one more for its upstream
// connection; idle upstream keep-alive connections never outnumber the
// client connections that opened them once the cap is reached (below it,
// the loop core keeps idle ones in the room absent clients leave:
// loopup.go, idleRoom). So a proxy needs at most two
// descriptors per client connection, plus a few for refusals being answered,
// plus a fixed reserve for everything else the process holds. A max_conns
// above what RLIMIT_NOFILE leaves room for would not give clients the
// promised 503 too-many-connections: accept would fail with EMFILE first and
// new clients would wait in the kernel's backlog.
const (
	// fdReserveBase covers what the process holds besides proxied
	// connections: stdio, the journal file, the client, admin and gossip
	// listeners, gossip's UDP socket and push/pull connections, admin API
	// connections, DNS lookups, the access log and a handover's extra
	// files. Generous on purpose: running short here breaks the control
	// plane, not just one client.
	fdReserveBase = 64
	// fdPerConn is what one client connection may hold: itself and one
	// upstream connection.
	fdPerConn = 2
	// fdRefusalShare is the share (1/n) of what is left after the reserve
	// kept for answering refused connections (at most maxLingering).
	fdRefusalShare = 8
)

// FDBudget is how the proxy spends the process's descriptor limit.
type FDBudget struct {
	// Limit is RLIMIT_NOFILE's soft limit; 0 when unknown (no clamp).
	Limit uint64
	// Reserve is kept for everything but client connections and refusals:
	// fdReserveBase plus one per upstream endpoint (health checks, a
	// connection being dialled while another closes).
	Reserve int
	// Refusals is how many over-the-cap connections may be answered 503
	// at once; more are closed without an answer.
	Refusals int
	// MaxConns is the client connection cap the budget allows: the
	// configured one, or less when the limit has no room for it.
	MaxConns int
	// Configured is Options.MaxConns as given (0: no cap was asked for).
	Configured int
}

// Clamped reports whether the limit lowered the configured cap.
func (b FDBudget) Clamped() bool { return b.MaxConns != b.Configured }

// fitConns fits a configured connection cap into a descriptor limit.
// endpoints is the number of upstream endpoints. It fails when the limit
// leaves no room for a single client connection.
func fitConns(limit uint64, configured, endpoints int) (FDBudget, error) {
	b := FDBudget{Limit: limit, Configured: configured, MaxConns: configured, Refusals: maxLingering,
		Reserve: fdReserveBase + endpoints}
	if limit == 0 {
		return b, nil
	}
	room := int(min(limit, 1<<30)) - b.Reserve
	b.Refusals = min(maxLingering, max(room/fdRefusalShare, 0))
	fit := (room - b.Refusals) / fdPerConn
	if fit < 1 {
		return b, fmt.Errorf("descriptor limit (RLIMIT_NOFILE) %d leaves no room for client connections: %d are reserved for the journal, gossip, admin and %d upstream endpoints; raise it (ulimit -n, LimitNOFILE=)", limit, b.Reserve, endpoints)
	}
	if configured == 0 || configured > fit {
		b.MaxConns = fit
	}
	return b, nil
}

// FDBudget returns the descriptor budget the proxy was built with.
func (p *Proxy) FDBudget() FDBudget { return p.budget }
