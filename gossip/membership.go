package gossip

import (
	"slices"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Members returns the alive members (this node included), sorted by name.
// A suspect member still counts as alive until memberlist declares it dead.
func (c *Cluster) Members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedNames(c.peers, func(p *peer) bool { return p.alive })
}

// KnownMembers returns the last known membership: every member seen alive,
// minus those that left gracefully, sorted. Failed members stay in it.
func (c *Cluster) KnownMembers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedNames(c.peers, func(*peer) bool { return true })
}

// MemberAddrs returns the gossip address (host:port) of every member in
// KnownMembers, by name.
func (c *Cluster) MemberAddrs() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.peers))
	for name, p := range c.peers {
		out[name] = p.addr
	}
	return out
}

// Decider returns the alive member with the lowest name: the one node that
// may promote a rollout. Every node computes it from its own view, so during
// a partition each side has its own decider; HasMajority keeps the minority's
// from promoting.
func (c *Cluster) Decider() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deciderLocked()
}

func (c *Cluster) deciderLocked() string {
	best := ""
	for name, p := range c.peers {
		if p.alive && (best == "" || name < best) {
			best = name
		}
	}
	return best
}

// IsDecider reports whether this node is the decider. A node the cluster
// has not accepted yet (see WaitJoined) is never the decider: before its
// first join it would see only itself and be the decider of a cluster of one.
func (c *Cluster) IsDecider() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.confirmed && c.deciderLocked() == c.self
}

// HasMajority reports whether the alive members are more than half of the
// last known membership (the largest membership seen, minus members that
// left gracefully). Promotions require it; reverts never do. A member that
// fails keeps counting, so a side cut off from the majority stays without
// one until the partition heals, however long it lasts. Between a partition
// and its detection (about ProbeInterval × SuspicionMult) both sides still
// see everyone; that window is inherent to failure detection. A node the
// cluster has not accepted yet has no majority: alone, it would be all of
// the membership it knows.
func (c *Cluster) HasMajority() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.confirmed {
		return false
	}
	alive := 0
	for _, p := range c.peers {
		if p.alive {
			alive++
		}
	}
	return 2*alive > len(c.peers)
}

// numAlive sizes the broadcast queue's retransmit limit.
func (c *Cluster) numAlive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.peers {
		if p.alive {
			n++
		}
	}
	return n
}

// eventKind is a membership change, for logs, metrics and the Members hook.
type eventKind string

const (
	evJoin   eventKind = "join"
	evLeave  eventKind = "leave"
	evFail   eventKind = "fail"
	evUpdate eventKind = "update"
)

// event is one membership change waiting for runEvents.
type event struct {
	kind eventKind
	name string
	addr string
}

// eventQueue is unbounded: memberlist calls the EventDelegate with its node
// lock held, so the delegate only appends here and never waits; runEvents
// does the logging and calls the hook outside memberlist's locks.
type eventQueue struct {
	mu     sync.Mutex // guards items
	items  []event
	notify chan struct{}
}

func (q *eventQueue) init() { q.notify = make(chan struct{}, 1) }

func (q *eventQueue) push(e event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) drain() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// runEvents logs membership changes and tells the Members hook.
func (c *Cluster) runEvents() {
	for {
		select {
		case <-c.stop:
			return
		case <-c.events.notify:
		}
		evs := c.events.drain()
		for _, e := range evs {
			c.stats.event(e.kind)
			switch e.kind {
			case evJoin:
				c.log.Info("gossip: member joined", "member", e.name, "addr", e.addr)
			case evLeave:
				c.log.Info("gossip: member left", "member", e.name, "addr", e.addr)
			case evFail:
				c.log.Warn("gossip: member failed", "member", e.name, "addr", e.addr)
			case evUpdate:
				c.log.Info("gossip: member updated", "member", e.name, "addr", e.addr)
			}
		}
		if len(evs) > 0 && c.hooks.Members != nil {
			c.hooks.Members(c.Members())
		}
	}
}

// nodeCopy keeps what a send needs of n. memberlist calls its event
// delegate with its node lock held, so n may be read here but not kept.
func nodeCopy(n *memberlist.Node) memberlist.Node {
	return memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
}

// NotifyJoin records a member seen alive (memberlist's EventDelegate).
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	c := d.c
	addr := addrString(n.Addr, n.Port)
	c.mu.Lock()
	c.peers[n.Name] = &peer{addr: addr, node: nodeCopy(n), alive: true}
	c.mu.Unlock()
	if n.Name != c.self {
		c.events.push(event{kind: evJoin, name: n.Name, addr: addr})
	}
}

// NotifyLeave records a member gone: removed from the last known membership
// if it announced its leave, kept as failed otherwise.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := d.c
	kind := evFail
	c.mu.Lock()
	if p, ok := c.peers[n.Name]; ok {
		if p.leaving {
			delete(c.peers, n.Name)
			kind = evLeave
		} else {
			p.alive = false
		}
	}
	c.mu.Unlock()
	c.events.push(event{kind: kind, name: n.Name, addr: addrString(n.Addr, n.Port)})
}

// NotifyUpdate records a member's new address or metadata.
func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	c := d.c
	addr := addrString(n.Addr, n.Port)
	c.mu.Lock()
	if p, ok := c.peers[n.Name]; ok {
		p.addr, p.node = addr, nodeCopy(n)
	}
	c.mu.Unlock()
	c.events.push(event{kind: evUpdate, name: n.Name, addr: addr})
}

// handleLeaveIntent marks a member as leaving gracefully. If memberlist
// already reported it gone (the TCP intent lost the race with the UDP
// leave), it is dropped from the last known membership now.
func (c *Cluster) handleLeaveIntent(from string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.peers[from]
	if !ok {
		return
	}
	if !p.alive {
		delete(c.peers, from)
		return
	}
	p.leaving = true
}

// NotifyConflict is memberlist's ConflictDelegate: two addresses claim one
// name. When the name is ours and the cluster has not accepted our address,
// we are the newcomer and are refused.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	c := d.c
	if existing.Name != c.self {
		c.log.Warn("gossip: refused a node claiming a live member's name",
			"member", existing.Name, "addr", addrString(existing.Addr, existing.Port),
			"claimant", addrString(other.Addr, other.Port))
		return
	}
	c.mu.Lock()
	confirmed := c.confirmed
	if !confirmed && c.conflict == nil {
		c.conflict = &conflictError{addr: addrString(other.Addr, other.Port)}
	}
	c.mu.Unlock()
	if confirmed {
		c.log.Warn("gossip: another node claims this node's name", "claimant", addrString(other.Addr, other.Port))
		return
	}
	c.log.Error("gossip: this node's name is held by another live member; refusing to publish",
		"other", addrString(other.Addr, other.Port))
}

// conflictError names the address that holds our name.
type conflictError struct{ addr string }

func (e *conflictError) Error() string {
	return ErrNameConflict.Error() + " at " + e.addr
}

func (e *conflictError) Unwrap() error { return ErrNameConflict }

// NotifyAlive is memberlist's AliveDelegate, called for every alive message
// before memberlist applies it. An alive message about us at our own
// address can only come from a peer that accepted us, which confirms the
// join. It never rejects: name conflicts are memberlist's to settle.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	c := d.c
	if n.Name != c.self {
		return nil
	}
	self := c.selfAddr.Load()
	if self != nil && *self == addrString(n.Addr, n.Port) {
		c.confirm()
	}
	return nil
}
