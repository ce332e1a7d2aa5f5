package cellgate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/proxy"
)

// Health views: each node routes on its own health evidence (as Envoy
// does: a cell may be down on one node and up on another, e.g. across a
// network split), and the fleet shares each node's view for status, so an
// operator sees on any node where the views differ. A view is not
// replicated state — there is nothing to merge: a node speaks only for
// itself, every tick (gossip msgHealth, TCP), and peers keep the newest
// view per sender until that sender is no longer alive.

// Bounds of a view, so one message stays small (≤ maxHealthViewBytes)
// however many cells and endpoints a config has: cells past the first
// maxViewCells and out-of-rotation endpoints past maxViewOut per cell are
// counted, not listed; names are clipped to maxViewName bytes.
const (
	maxViewCells       = 64
	maxViewOut         = 4
	maxViewName        = 96
	maxHealthViewBytes = 48 << 10
)

// healthView is one node's view as it travels. Epoch (when the sender
// joined the fleet, Unix ns) and Seq order views from one sender: TCP sends of successive
// ticks may overtake each other, and a restarted sender starts Seq again.
type healthView struct {
	Epoch     int64                  `json:"epoch"`
	Seq       uint64                 `json:"seq"`
	At        time.Time              `json:"at"`
	Cells     []admin.CellHealthView `json:"cells"`
	MoreCells int                    `json:"more_cells,omitempty"`
}

// newer reports whether v supersedes old from the same sender.
func (v *healthView) newer(old *healthView) bool {
	return v.Epoch > old.Epoch || v.Epoch == old.Epoch && v.Seq > old.Seq
}

// viewOf builds a bounded view from the proxy's cells.
func viewOf(cells []proxy.CellStatus) []admin.CellHealthView {
	out := make([]admin.CellHealthView, 0, min(len(cells), maxViewCells))
	for _, c := range cells[:min(len(cells), maxViewCells)] {
		v := admin.CellHealthView{Name: clip(c.Name), Up: c.Up, Endpoints: len(c.Endpoints)}
		for _, e := range c.Endpoints {
			switch {
			case e.Up:
				v.InRotation++
			case len(v.Out) == maxViewOut:
				v.MoreOut++
			default:
				why := "ejected"
				if e.CheckDown {
					why = "check"
				}
				v.Out = append(v.Out, admin.EndpointOut{Addr: clip(e.Addr), Why: why})
			}
		}
		out = append(out, v)
	}
	return out
}

// clip bounds a name taken into a view.
func clip(s string) string { return s[:min(len(s), maxViewName)] }

// decodeHealthView parses a peer's view (outside input: a peer may run
// another version or be broken) and holds it to the same bounds as our
// own, so a view kept for status is never larger than one we would send.
func decodeHealthView(b []byte) (healthView, error) {
	var v healthView
	if len(b) > maxHealthViewBytes {
		return v, fmt.Errorf("health view of %d bytes: over %d", len(b), maxHealthViewBytes)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("health view: %w", err)
	}
	if len(v.Cells) > maxViewCells {
		v.MoreCells += len(v.Cells) - maxViewCells
		v.Cells = v.Cells[:maxViewCells]
	}
	v.MoreCells = max(v.MoreCells, 0)
	for i := range v.Cells {
		c := &v.Cells[i]
		c.Name = clip(c.Name)
		if len(c.Out) > maxViewOut {
			c.MoreOut += len(c.Out) - maxViewOut
			c.Out = c.Out[:maxViewOut]
		}
		c.Endpoints, c.InRotation, c.MoreOut = max(c.Endpoints, 0), max(c.InRotation, 0), max(c.MoreOut, 0)
		for j := range c.Out {
			o := &c.Out[j]
			o.Addr = clip(o.Addr)
			if o.Why != "check" && o.Why != "ejected" {
				o.Why = "unknown"
			}
		}
	}
	return v, nil
}

// peerView is a peer's newest view and when it arrived.
type peerView struct {
	view     healthView
	received time.Time
}

// healthViews keeps the newest view of every alive peer. It is written by
// the gossip delivery goroutine and read by status requests.
type healthViews struct {
	mu    sync.Mutex           // guards peers
	peers map[string]*peerView // by node name
}

// store keeps v from node when it is newer than what is held.
func (h *healthViews) store(node string, v healthView, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers == nil {
		h.peers = map[string]*peerView{}
	}
	if old := h.peers[node]; old != nil && !v.newer(&old.view) {
		return
	}
	h.peers[node] = &peerView{view: v, received: now}
}

// keep drops the views of nodes not in alive: a failed or departed node's
// view says nothing about the fleet any more.
func (h *healthViews) keep(alive []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.peers {
		if !slices.Contains(alive, name) {
			delete(h.peers, name)
		}
	}
}

// list returns the peers' views sorted by node name.
func (h *healthViews) list() []admin.NodeHealthView {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]admin.NodeHealthView, 0, len(h.peers))
	for name, p := range h.peers {
		out = append(out, admin.NodeHealthView{Node: name, At: p.view.At, Received: p.received,
			Cells: p.view.Cells, MoreCells: p.view.MoreCells})
	}
	slices.SortFunc(out, func(a, b admin.NodeHealthView) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// ownHealthView is this node's view now, bounded like every view.
func (n *Node) ownHealthView() healthView {
	cells := n.proxy.Status()
	v := healthView{At: n.now(), Cells: viewOf(cells)}
	v.MoreCells = max(len(cells)-maxViewCells, 0)
	return v
}

// healthViewsStatus is /v1/status's health_views: this node's view, then
// its alive peers'.
func (n *Node) healthViewsStatus() []admin.NodeHealthView {
	own := n.ownHealthView()
	out := []admin.NodeHealthView{{Node: n.name, Self: true, At: own.At, Cells: own.Cells, MoreCells: own.MoreCells}}
	if f := n.fleet.Load(); f != nil {
		out = append(out, f.views.list()...)
	}
	return out
}

// sendHealth shares this node's view with every peer (each tick).
func (f *fleet) sendHealth() {
	v := f.n.ownHealthView()
	v.Epoch, v.Seq = f.epoch, f.healthSeq.Add(1)
	b, err := json.Marshal(v)
	if err != nil {
		f.log.Warn("encode health view", "err", err)
		return
	}
	f.c.SendHealth(b)
}

// health keeps a peer's view for status.
func (f *fleet) health(from string, payload []byte) {
	v, err := decodeHealthView(payload)
	if err != nil {
		f.log.Warn("bad health view", "from", from, "err", err)
		return
	}
	f.views.store(from, v, f.n.now())
}
