// Package gossip joins cellgate proxy nodes into one cluster with
// hashicorp/memberlist and replicates opaque data between them: documents
// (the rollout state), every node's per-tick SLI payloads, and full state by
// push/pull. What the bytes mean and how versions merge belongs to the
// Hooks; this package only moves them, tracks membership, and answers the
// two questions the rollout controller asks of the fleet: who decides
// (Decider: the alive member with the lowest name) and may it promote
// (HasMajority: alive members are a majority of the last known membership).
//
// Three paths, chosen by size and purpose (see README.md):
//   - UDP gossip broadcast for documents up to maxBroadcastBytes: a
//     memberlist packet is ~1400 bytes shared with memberlist's own
//     messages. Named by key, so a newer document replaces an older one
//     still queued; receivers that learned something relay it.
//   - SendReliable (TCP) to every member for larger documents and for SLI
//     payloads, which carry histogram slices of several KB.
//   - TCP push/pull for full state, on join and every PushPullInterval:
//     the anti-entropy that repairs lost broadcasts and heals partitions.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxBroadcastBytes is the largest framed document sent by UDP broadcast.
// A gossip packet is UDPBufferSize (1400) bytes, minus the compound header,
// minus 29 bytes of AES-GCM overhead; memberlist's own alive/suspect/dead
// messages go first and users get what is left. 1024 leaves ~340 bytes for
// those, so a document is rarely held back; anything larger goes by TCP.
const maxBroadcastBytes = 1024

// inboxDepth bounds messages waiting for the hooks. memberlist's packet loop
// must never block on a slow hook, so past this a message is dropped and
// counted; push/pull repairs a dropped document.
const inboxDepth = 4096

// ErrNameConflict means another live node holds this node's name at another
// address, so the cluster refused this node. It stays refused (publishes
// nothing) until the cluster accepts its address, which happens when a
// restart's old address has been dead for DeadNodeReclaimTime.
var ErrNameConflict = errors.New("gossip: node name is taken by another live member")

// ErrClosed is returned by Leave after Shutdown.
var ErrClosed = errors.New("gossip: cluster is shut down")

// Cluster is this node's membership in the fleet. Its methods are safe for
// concurrent use.
type Cluster struct {
	cfg   Config
	hooks Hooks
	log   *slog.Logger
	self  string
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	stats stats
	seen  *dedup

	// selfAddr is our advertised ip:port, set once memberlist is up; alive
	// messages about us carrying it confirm that the cluster accepted us.
	selfAddr atomic.Pointer[string]

	// mu guards peers, conflict, confirmed and joinErr.
	mu sync.Mutex
	// peers is the last known membership: every member seen alive (self
	// included), minus those that left gracefully. Dead members stay, so a
	// minority cannot forget the majority it was cut off from.
	peers     map[string]*peer
	conflict  error
	confirmed bool
	joinErr   error

	joined     chan struct{} // closed once confirmed
	joinedOnce sync.Once

	inbox  chan []byte
	events eventQueue

	// lifeMu guards closed, so no goroutine is added to wg after Shutdown.
	lifeMu sync.RWMutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// peer is one member of the last known membership.
type peer struct {
	addr    string
	node    memberlist.Node // name and address, for sends (copied in the event callbacks)
	alive   bool
	leaving bool // announced a graceful leave (msgLeave)
}

// New creates this node's memberlist, then joins Config.Join in the
// background (retried with backoff). Use WaitJoined to learn whether the
// cluster accepted it.
func New(cfg Config, hooks Hooks) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, hooks: hooks, log: cfg.Logger.With("node", cfg.NodeName), self: cfg.NodeName,
		seen:   newDedup(4096),
		peers:  map[string]*peer{},
		joined: make(chan struct{}),
		inbox:  make(chan []byte, inboxDepth),
		stop:   make(chan struct{}),
	}
	c.events.init()
	mc := cfg.memberlistConfig(&delegate{c: c})
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numAlive, RetransmitMult: docRetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist for %s on %s: %w", cfg.NodeName, cfg.Bind, err)
	}
	c.ml = ml
	addr := ml.LocalNode().Address()
	c.selfAddr.Store(&addr)
	c.log.Info("gossip: node started", "addr", addr, "encrypted", len(cfg.SecretKey) > 0)

	seeds := c.seedsWithoutSelf()
	if len(seeds) == 0 {
		c.confirm() // founder: there is nobody to refuse us
	}
	c.spawn(c.runDeliver)
	c.spawn(c.runEvents)
	if len(seeds) > 0 {
		c.spawn(func() { c.runJoin(seeds) })
	}
	if cfg.ReconnectInterval > 0 {
		c.spawn(c.runReconnect)
	}
	return c, nil
}

// spawn runs f on a tracked goroutine unless the cluster is shut down.
func (c *Cluster) spawn(f func()) bool {
	c.lifeMu.RLock()
	defer c.lifeMu.RUnlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Name is this node's name.
func (c *Cluster) Name() string { return c.self }

// Addr is this node's advertised host:port, the address peers join.
func (c *Cluster) Addr() string { return *c.selfAddr.Load() }

// seedsWithoutSelf drops our own address from the join list, so every node
// of a fleet can share one seed list.
func (c *Cluster) seedsWithoutSelf() []string {
	self := c.Addr()
	var out []string
	for _, s := range c.cfg.Join {
		if s == self || s == c.cfg.Bind && !isUnspecified(s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// isUnspecified reports whether host:port binds all interfaces (0.0.0.0 /
// ::), which can never be our own seed address.
func isUnspecified(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// Leave announces a graceful leave, so peers drop this node from the last
// known membership instead of counting it as failed, then broadcasts
// memberlist's leave and waits up to timeout for it to go out. Call Shutdown
// afterwards.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.RLock()
	closed := c.closed
	c.lifeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	frame := encodeMessage(message{Type: msgLeave, From: c.self})
	var wg sync.WaitGroup
	for _, n := range c.otherMembers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.sendReliable(n, frame, msgLeave)
		}()
	}
	waitTimeout(&wg, timeout)
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	c.log.Info("gossip: left the cluster")
	return nil
}

// waitTimeout waits for wg or until d passes, whichever comes first.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Shutdown stops this node without a leave announcement (peers see a
// failure, as after a crash) and waits for its goroutines. Idempotent.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	c.lifeMu.Unlock()
	err := c.ml.Shutdown()
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

// Err reports ErrNameConflict (wrapped, naming the other address) while the
// cluster refuses this node's name; nil otherwise.
func (c *Cluster) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errLocked()
}

func (c *Cluster) errLocked() error {
	if c.confirmed {
		return nil
	}
	return c.conflict
}

// WaitJoined blocks until the cluster has accepted this node (a peer
// gossiped our own alive state back at our address; immediately for a node
// with no seeds) or ctx ends. On ctx's end it returns ErrNameConflict if
// our name is taken, else the last join error, else ctx's error.
func (c *Cluster) WaitJoined(ctx context.Context) error {
	select {
	case <-c.joined:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.errLocked(); err != nil {
		return err
	}
	if c.joinErr != nil {
		return fmt.Errorf("gossip: not joined: %w (last attempt: %w)", ctx.Err(), c.joinErr)
	}
	return fmt.Errorf("gossip: not joined: %w", ctx.Err())
}

// confirm records that the cluster accepted this node.
func (c *Cluster) confirm() {
	c.mu.Lock()
	wasConflict := c.conflict != nil && !c.confirmed
	c.confirmed = true
	c.mu.Unlock()
	c.joinedOnce.Do(func() { close(c.joined) })
	if wasConflict {
		c.log.Info("gossip: the cluster accepted this node's address; name conflict resolved")
	}
}

// refused reports whether outgoing data must be held back: a node whose
// name is held by another live member must not inject state under it.
func (c *Cluster) refused() bool { return c.Err() != nil }

// otherMembers returns every live member but this node, as the event
// callbacks recorded them. Not from memberlist's Members: it returns
// pointers to nodes that memberlist goes on updating under its own lock,
// so reading them races with its packet handler (the race detector caught
// fanOut doing so).
func (c *Cluster) otherMembers() []*memberlist.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*memberlist.Node
	for name, p := range c.peers {
		if name != c.self && p.alive {
			n := p.node
			out = append(out, &n)
		}
	}
	return out
}

// addrString formats a memberlist node address.
func addrString(ip net.IP, port uint16) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

// sortedNames returns the names of m's entries accepted by keep, sorted.
func sortedNames(m map[string]*peer, keep func(*peer) bool) []string {
	out := make([]string, 0, len(m))
	for name, p := range m {
		if keep(p) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// docRetransmitMult sets how often each node (origin and every relay) sends
// a document: docRetransmitMult × ceil(log10(N+1)) times, to random members.
// With memberlist's own value (4), a 50-node run now and then left a member
// unreached by the epidemic round, waiting up to a push/pull interval
// (which memberlist stretches past 32 nodes). Documents are rare and small,
// so we pay twice the packets to make such misses rare.
const docRetransmitMult = 8
