package gossip

import (
	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist's Delegate, EventDelegate,
// ConflictDelegate and AliveDelegate for a Cluster, keeping those methods
// off the Cluster's public API. memberlist may call any of them with its
// node lock held, so none of them may call back into memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
)

// NodeMeta carries nothing: all application data travels as messages.
func (d *delegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg receives a user message from memberlist's packet loop (UDP) or a
// stream handler (TCP). It copies the bytes (memberlist reuses them) and
// hands them to runDeliver without blocking; a full inbox drops the message.
func (d *delegate) NotifyMsg(b []byte) {
	c := d.c
	if len(b) == 0 {
		return
	}
	frame := append([]byte(nil), b...)
	select {
	case c.inbox <- frame:
	default:
		c.stats.dropped(dropInboxFull)
	}
}

// GetBroadcasts hands memberlist our queued documents for the next packet.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState frames this node's full state for a push/pull. A refused node
// sends nothing.
func (d *delegate) LocalState(join bool) []byte {
	c := d.c
	if c.hooks.State == nil || c.refused() {
		return nil
	}
	c.stats.sent(msgState, pathTCP)
	return encodeMessage(message{Type: msgState, From: c.self, Payload: c.hooks.State()})
}

// MergeRemoteState hands a peer's full state to the MergeState hook.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := d.c
	if len(buf) == 0 || c.hooks.MergeState == nil {
		return
	}
	m, err := decodeMessage(buf)
	if err != nil || m.Type != msgState {
		c.stats.dropped(dropDecode)
		c.log.Debug("gossip: dropped a malformed push/pull state", "err", err)
		return
	}
	if m.From == c.self {
		return
	}
	c.stats.received(msgState)
	c.hooks.MergeState(m.Payload, m.From)
}
