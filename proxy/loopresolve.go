//go:build linux

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// An endpoint given as a host name (written by hand in the config:
// discovery hands the proxy addresses) must be looked up before a loop can
// dial it. A lookup blocks, and a loop must not, so it runs on a goroutine
// of its own while the loop goes on serving; the requests that need the
// address wait in the endpoint's pool (lpool.waiting) and go on when the
// result comes back through the loop's command word (cmdResolved). The
// lookup is bounded by connect_timeout, as the goroutine core's dialer
// bounds its own. An address found is kept for resolveFor, then looked up
// again in the background while the old one is dialled (the goroutine
// core's dialer looks up at every dial); a failed lookup is not kept: the
// requests waiting for it fail as a failed dial does, and the next request
// looks up again.

// resolveFor is how long a loop dials an address found for a host name
// before it looks the name up again.
const resolveFor = time.Minute

// errResolving tells getUp's caller that the endpoint's address is being
// looked up: the request waits for it (lpool.waiting).
var errResolving = errors.New("loop core: endpoint address being looked up")

// resolveResult is a lookup's outcome for a pool.
type resolveResult struct {
	pl  *lpool
	sa  unix.Sockaddr
	err error
}

// waiter is a request waiting for its endpoint's address; gen tells it
// from a connection since recycled.
type waiter struct {
	c   *lconn
	gen uint64
}

// newPool makes a loop's pool for ep; an address is used as it is, a host
// name is looked up off the loop at the first dial.
func newPool(ep *endpoint) *lpool {
	pl := &lpool{ep: ep, gen: ep.loopGen.Load()}
	if ap, err := netip.ParseAddrPort(ep.addr); err == nil {
		pl.sa = sockaddrOf(ap)
	} else {
		pl.named = true
	}
	return pl
}

// sockaddrOf is ap as a socket address.
func sockaddrOf(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

// resolve starts a lookup of pl's host name unless one is under way.
func (l *loop) resolve(pl *lpool) {
	if pl.resolving {
		return
	}
	pl.resolving = true
	lookup, addr, timeout := l.p.lookupIP, pl.ep.addr, l.p.options().ConnectTimeout
	go func() {
		sa, err := lookupSockaddr(lookup, addr, timeout)
		queueFor(l, &l.resolved, resolveResult{pl: pl, sa: sa, err: err}, cmdResolved)
	}()
}

// lookupSockaddr looks host:port up, bounded by timeout (none when zero):
// the first IPv4 address, else the first, as net.ResolveTCPAddr chooses.
func lookupSockaddr(lookup func(context.Context, string) ([]netip.Addr, error), addr string, timeout time.Duration) (unix.Sockaddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loop core: endpoint %s: %w", addr, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("loop core: endpoint %s: port: %w", addr, err)
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	ips, err := lookup(ctx, host)
	if err == nil && len(ips) == 0 {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%s: %w", addr, err)}
	}
	ip := ips[0]
	for _, a := range ips {
		if a.Unmap().Is4() {
			ip = a
			break
		}
	}
	return sockaddrOf(netip.AddrPortFrom(ip, uint16(pn))), nil
}

// resolveNow is the time an address's age is measured by: the batch's
// clock, or the test's (Proxy.resolveClock).
func (l *loop) resolveNow() int64 {
	if f := l.p.resolveClock; f != nil {
		return f()
	}
	return l.now
}

// resolvedDone takes the lookups' results and carries on with the requests
// that waited for them: a dial, or the attempt's failure.
func (l *loop) resolvedDone() {
	for _, r := range takeQueued(l, &l.resolved) {
		pl := r.pl
		pl.resolving = false
		if r.err == nil {
			pl.sa, pl.resolvedAt = r.sa, l.resolveNow()
		} else if pl.sa != nil {
			l.p.log.Warn("loop core: looking an endpoint up again failed; its last address is kept", "endpoint", pl.ep.addr, "err", r.err)
		}
		ws := pl.waiting
		pl.waiting = nil
		for _, w := range ws {
			c := w.c
			if c.gen != w.gen || c.waiting != pl || c.st == nil {
				continue // the client went away meanwhile
			}
			c.waiting = nil
			if pl.sa == nil {
				l.attemptFailed(c, classify(r.err, false), false, false)
				continue
			}
			l.connect(c, c.st.ep)
		}
	}
}
