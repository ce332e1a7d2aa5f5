package cellgate

import (
	"context"
	"sync"
	"time"
)

// cellWatchEvery is how often the node looks at its cells' health and the
// running rollouts. Routing never waits for it — the data plane fails over
// on its own evidence at once — it only journals what happened and tells
// the data plane which cells rollouts hold.
const cellWatchEvery = 250 * time.Millisecond

// cellWatch runs watchCells. It writes to the journal, so it lives with
// the controller: started after it, stopped before it (lifecycle.go),
// also around a handover.
type cellWatch struct {
	n *Node

	mu     sync.Mutex         // guards cancel and done
	cancel context.CancelFunc // nil when not running
	done   chan struct{}
}

func (w *cellWatch) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		w.n.watchCells(ctx)
	}(w.done)
}

// stop ends the watch and waits for it.
func (w *cellWatch) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// watchCells runs until ctx ends: it keeps the targets of running
// rollouts out of failover (a canary's share is what its plan says) and
// journals each cell going down or coming back up on this node, as a
// routing fact with no weight change.
func (n *Node) watchCells(ctx context.Context) {
	tick := time.NewTicker(cellWatchEvery)
	defer tick.Stop()
	up := map[string]bool{}
	for {
		n.syncRolloutTargets()
		n.journalCellHealth(up)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// syncRolloutTargets tells the proxy which cells running rollouts target.
func (n *Node) syncRolloutTargets() {
	n.proxy.SetFailoverExcluded(n.Controller().ActiveTargets())
	n.syncAccessLogRollouts()
}

// journalCellHealth records each change of a cell's up state since the
// last call (prev is updated). A cell first seen down is recorded too.
func (n *Node) journalCellHealth(prev map[string]bool) {
	for name, up := range n.proxy.CellsUp() {
		was, seen := prev[name]
		prev[name] = up
		if (seen && was == up) || (!seen && up) {
			continue
		}
		reason := "an endpoint is in rotation again; its users are back"
		if !up {
			reason = "no endpoint in rotation; its users are served by their failover cells"
		}
		n.log.Warn("cell health changed", "cell", name, "up", up)
		if err := n.Controller().RecordCellHealth(name, up, "health:"+n.name, reason); err != nil {
			n.log.Warn("journal cell health", "cell", name, "err", err)
		}
	}
}
