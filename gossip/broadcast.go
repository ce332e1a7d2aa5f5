package gossip

import (
	"hash/maphash"
	"sync"

	"github.com/hashicorp/memberlist"
)

// docBroadcast is one queued document. It is a NamedBroadcast named by the
// document's key, so queueing a newer version drops the older one still
// waiting to be sent (memberlist compares names for NamedBroadcasts).
type docBroadcast struct {
	key   string
	frame []byte
}

var _ memberlist.NamedBroadcast = (*docBroadcast)(nil)

func (b *docBroadcast) Name() string    { return b.key }
func (b *docBroadcast) Message() []byte { return b.frame }
func (b *docBroadcast) Finished()       {}
func (b *docBroadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.key
}

// Publish replicates a document to every member. key names it (e.g. a
// rollout id): a newer Publish for the same key replaces an older one still
// queued. A small document goes by UDP gossip and spreads epidemically; one
// larger than a packet can carry goes to every member by TCP. Either way the
// next push/pull repairs whatever was lost. Nothing is sent while the
// cluster refuses this node's name. doc may be reused after Publish returns.
func (c *Cluster) Publish(key string, doc []byte) {
	if c.refused() {
		c.log.Debug("gossip: publish held back: name conflict", "key", key)
		return
	}
	frame := encodeMessage(message{Type: msgDocument, Key: key, From: c.self, Payload: doc})
	c.seen.add(frame)
	if len(frame) <= maxBroadcastBytes {
		c.stats.sent(msgDocument, pathUDP)
		c.queue.QueueBroadcast(&docBroadcast{key: key, frame: frame})
		return
	}
	c.fanOut(frame, msgDocument)
}

// SendSLI sends this node's per-tick SLI payload to every other alive
// member over TCP (SendReliable): payloads carry histogram slices of
// several KB, far beyond a UDP packet, and a lost delta would skew the
// decider's merged view. It returns at once; the sends run in the
// background, each bounded by TCPTimeout.
func (c *Cluster) SendSLI(payload []byte) {
	if c.refused() {
		return
	}
	c.fanOut(encodeMessage(message{Type: msgSLI, From: c.self, Payload: payload}), msgSLI)
}

// SendHealth sends this node's health view (its cells and the endpoints
// it has in rotation, encoded by the caller) to every other alive member
// over TCP, like SendSLI: each node decides from its own evidence, and the
// fleet shares each node's view for status. The caller bounds the payload;
// receivers keep the newest view per sender. It returns at once.
func (c *Cluster) SendHealth(payload []byte) {
	if c.refused() {
		return
	}
	c.fanOut(encodeMessage(message{Type: msgHealth, From: c.self, Payload: payload}), msgHealth)
}

// fanOut sends frame to every other alive member over TCP, concurrently.
// Sends to one member may overtake each other; the merge rule (for
// documents) and per-tick sequence (for SLIs) make order irrelevant.
func (c *Cluster) fanOut(frame []byte, t msgType) {
	for _, n := range c.otherMembers() {
		c.spawn(func() { c.sendReliable(n, frame, t) })
	}
}

// sendReliable sends one frame to one member over TCP.
func (c *Cluster) sendReliable(n *memberlist.Node, frame []byte, t msgType) {
	if err := c.ml.SendReliable(n, frame); err != nil {
		c.stats.dropped(dropSend)
		c.log.Debug("gossip: reliable send failed", "member", n.Name, "type", t, "err", err)
		return
	}
	c.stats.sent(t, pathTCP)
}

// runDeliver calls the hooks for received messages, one at a time, off
// memberlist's packet loop.
func (c *Cluster) runDeliver() {
	for {
		select {
		case <-c.stop:
			return
		case frame := <-c.inbox:
			c.deliver(frame)
		}
	}
}

// deliver dispatches one received frame.
func (c *Cluster) deliver(frame []byte) {
	m, err := decodeMessage(frame)
	if err != nil {
		c.stats.dropped(dropDecode)
		c.log.Debug("gossip: dropped a malformed message", "err", err)
		return
	}
	if m.From == c.self {
		return
	}
	c.stats.received(m.Type)
	switch m.Type {
	case msgDocument:
		c.deliverDocument(m, frame)
	case msgSLI:
		if c.hooks.SLI != nil {
			c.hooks.SLI(m.From, m.Payload)
		}
	case msgHealth:
		if c.hooks.Health != nil {
			c.hooks.Health(m.From, m.Payload)
		}
	case msgLeave:
		c.handleLeaveIntent(m.From)
	}
}

// deliverDocument hands a document to the hook once, and relays it when it
// was news: memberlist's own broadcasts are sent only by their origin, to a
// few random members a few times, which may miss some; relaying makes the
// spread epidemic, so it reaches everyone in O(log N) gossip rounds.
func (c *Cluster) deliverDocument(m message, frame []byte) {
	if !c.seen.add(frame) || c.hooks.Document == nil {
		return
	}
	if c.hooks.Document(m.Key, m.Payload, m.From) && len(frame) <= maxBroadcastBytes && !c.refused() {
		c.stats.relayed()
		c.queue.QueueBroadcast(&docBroadcast{key: m.Key, frame: frame})
	}
}

// dedup remembers the hashes of the last size frames, so a document that
// arrives again (relayed by several members) is delivered and relayed once.
type dedup struct {
	seed maphash.Seed
	mu   sync.Mutex // guards set, ring, next
	set  map[uint64]struct{}
	ring []uint64
	next int
}

func newDedup(size int) *dedup {
	return &dedup{seed: maphash.MakeSeed(), set: make(map[uint64]struct{}, size), ring: make([]uint64, 0, size)}
}

// add records frame and reports whether it was new.
func (d *dedup) add(frame []byte) bool {
	h := maphash.Bytes(d.seed, frame)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[h]; ok {
		return false
	}
	d.set[h] = struct{}{}
	if len(d.ring) < cap(d.ring) {
		d.ring = append(d.ring, h)
		return true
	}
	delete(d.set, d.ring[d.next])
	d.ring[d.next] = h
	d.next = (d.next + 1) % len(d.ring)
	return true
}
