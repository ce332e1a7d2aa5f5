package cellgate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/gossip"
	"github.com/cellgate/cellgate/rollout"
	"github.com/cellgate/cellgate/slo"
)

// fleet connects a node to the other proxy nodes: the controller's
// documents (rollouts and cells' manual weights, one kind with one merge
// rule, published only by the controller) are replicated through gossip,
// and every tick the node's per-cell SLI deltas go to every peer so the
// decider judges on the traffic of the whole fleet.
type fleet struct {
	n   *Node
	c   *gossip.Cluster
	log *slog.Logger

	stopRun context.CancelFunc // ends run
	runDone chan struct{}      // closed when run has returned

	// mu guards sent.
	mu   sync.Mutex
	sent map[string]time.Time // cell → Through of the last SLI delta sent

	// peak is the most members seen alive at once (written by the
	// gossip events goroutine only).
	peak atomic.Int64

	// views are the peers' health views (healthviews.go); epoch (set
	// once, in startFleet) and healthSeq order this node's own.
	views     healthViews
	epoch     int64
	healthSeq atomic.Uint64
}

// fleetState is what push/pull exchanges: the controller's documents
// (recentDocuments says which).
type fleetState struct {
	Rollouts []rollout.Document `json:"rollouts"`
}

// docRolloutPrefix starts every document key on the wire.
const docRolloutPrefix = "rollout/"

// startFleet joins the cluster named in cfg.Gossip.
func (n *Node) startFleet(cfg *configs.Config) (*fleet, error) {
	f := &fleet{n: n, log: n.log.With("component", "gossip"), sent: map[string]time.Time{}, epoch: time.Now().UnixNano()}
	gc := gossip.DefaultConfig()
	gc.NodeName, gc.Bind, gc.Advertise, gc.Join = n.name, cfg.Gossip.Bind, cfg.Gossip.Advertise, cfg.Gossip.Join
	gc.Logger = f.log
	if cfg.Gossip.SecretKeyFile != "" {
		key, err := readSecretKey(cfg.Gossip.SecretKeyFile)
		if err != nil {
			return nil, err
		}
		gc.SecretKey = key
	}
	if n.opts.Gossip != nil {
		n.opts.Gossip(&gc)
	}
	c, err := gossip.New(gc, gossip.Hooks{
		State:           f.state,
		MergeState:      f.mergeState,
		Document:        f.document,
		SLI:             f.sli,
		Health:          f.health,
		Members:         f.members,
		StateGeneration: f.generation,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	f.c = c
	return f, nil
}

// members logs a membership change and sizes the judge for the fleet:
// every member may revert on its own evidence, so each judges at slo Alpha
// / N (slo.Registry.SetFleetSize). N is the most members seen alive at
// once: a partition hides members that still judge on their side, so N
// does not shrink when they fail.
func (f *fleet) members(alive []string) {
	n := max(f.peak.Load(), int64(len(alive)))
	f.peak.Store(n)
	f.n.slo.SetFleetSize(int(n))
	f.views.keep(alive)
	f.log.Info("members", "alive", strings.Join(alive, ","), "judge_fleet_size", n)
}

// readSecretKey reads an AES key (16, 24 or 32 bytes) stored raw or as hex.
func readSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip secret key: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && (len(k) == 16 || len(k) == 24 || len(k) == 32) {
		return k, nil
	}
	if n := len(s); n == 16 || n == 24 || n == 32 {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("gossip secret key %s: want 16, 24 or 32 bytes (raw or hex)", path)
}

// start begins sending this node's SLI deltas every tick, in a goroutine
// that belongs to the fleet (not to the node): stop ends it.
func (f *fleet) start(tick time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	f.stopRun, f.runDone = cancel, make(chan struct{})
	go f.run(ctx, tick)
}

// stop ends the SLI sender and waits for it, then leaves the cluster
// (waiting up to leave for the message to spread) and shuts memberlist
// down. Nothing is sent after stop returns.
func (f *fleet) stop(leave time.Duration) error {
	if f.stopRun != nil {
		f.stopRun()
		<-f.runDone
	}
	if err := f.c.Leave(leave); err != nil {
		f.log.Warn("gossip leave", "err", err)
	}
	if err := f.c.Shutdown(); err != nil {
		return fmt.Errorf("gossip shutdown: %w", err)
	}
	return nil
}

// run sends this node's SLI deltas and health view every tick until ctx
// ends.
func (f *fleet) run(ctx context.Context, tick time.Duration) {
	defer close(f.runDone)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.sendSLI()
			f.sendHealth()
		}
	}
}

// sendSLI ships every cell's complete intervals since the last send.
func (f *fleet) sendSLI() {
	var deltas []slo.Delta
	f.mu.Lock()
	for _, cell := range f.n.slo.Cells() {
		since := f.sent[cell]
		if since.IsZero() {
			since = f.n.now().Add(-time.Minute)
		}
		d := f.n.slo.ExportDelta(f.n.name, cell, since)
		if len(d.Counts) == 0 && len(d.Hists) == 0 {
			continue
		}
		f.sent[cell] = d.Through
		deltas = append(deltas, d)
	}
	f.mu.Unlock()
	if len(deltas) == 0 {
		return
	}
	b, err := json.Marshal(deltas)
	if err != nil {
		f.log.Warn("encode SLI deltas", "err", err)
		return
	}
	f.c.SendSLI(b)
}

// sli merges a peer's deltas into the judge's view.
func (f *fleet) sli(from string, payload []byte) {
	var deltas []slo.Delta
	if err := json.Unmarshal(payload, &deltas); err != nil {
		f.log.Warn("bad SLI payload", "from", from, "err", err)
		return
	}
	for _, d := range deltas {
		if d.Node != from {
			continue // a node speaks only for itself
		}
		if err := f.n.slo.MergeRemote(d); err != nil {
			f.log.Warn("SLI delta refused", "from", from, "cell", d.Cell, "err", err)
		}
	}
}

// publish sends a rollout document after a local change.
func (f *fleet) publish(doc rollout.Document) {
	b, err := json.Marshal(doc)
	if err != nil {
		f.log.Warn("encode rollout document", "id", doc.ID, "err", err)
		return
	}
	f.c.Publish(docRolloutPrefix+doc.ID, b)
}

// document hands a peer's document to the controller, which merges it.
func (f *fleet) document(key string, b []byte, from string) bool {
	if !strings.HasPrefix(key, docRolloutPrefix) {
		return false
	}
	var doc rollout.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		f.log.Warn("bad rollout document", "from", from, "err", err)
		return false
	}
	news, err := f.n.Controller().ApplyRemote(doc, from)
	if err != nil {
		f.log.Warn("remote rollout refused", "from", from, "id", doc.ID, "err", err)
	}
	return news
}

// state is this node's full replicated state for push/pull.
func (f *fleet) state() []byte {
	var st fleetState
	if docs, err := f.n.Controller().Documents(); err == nil {
		st.Rollouts = recentDocuments(docs, stateFinished)
	}
	b, _ := json.Marshal(st)
	return b
}

// stateFinished is how many finished rollouts push/pull carries besides
// the running ones: enough for a restarted node to learn how recent
// rollouts ended, without the exchange growing with the journal's history.
const stateFinished = 16

// recentDocuments keeps every running rollout, every cell's manual-weight
// document (one per cell, so bounded) and the newest finished rollouts.
func recentDocuments(docs []rollout.Document, finished int) []rollout.Document {
	slices.SortFunc(docs, func(a, b rollout.Document) int { return b.Updated.Compare(a.Updated) })
	out := docs[:0]
	for _, d := range docs {
		if !d.Status.Terminal() || d.Manual() {
			out = append(out, d)
		} else if finished > 0 {
			out = append(out, d)
			finished--
		}
	}
	return out
}

// mergeState merges a peer's full state, oldest document first: the cell
// clock makes the order irrelevant for the outcome, and oldest first keeps
// the audit of a node that learns several at once in the order they were made.
func (f *fleet) mergeState(b []byte, from string) {
	var st fleetState
	if err := json.Unmarshal(b, &st); err != nil {
		f.log.Warn("bad push/pull state", "from", from, "err", err)
		return
	}
	slices.SortFunc(st.Rollouts, func(a, b rollout.Document) int { return a.Updated.Compare(b.Updated) })
	for _, doc := range st.Rollouts {
		if _, err := f.n.Controller().ApplyRemote(doc, from); err != nil {
			f.log.Debug("remote document refused", "from", from, "id", doc.ID, "err", err)
		}
	}
}

// generation is the highest rollout generation this node holds.
func (f *fleet) generation() float64 {
	g := uint64(0)
	if docs, err := f.n.Controller().Documents(); err == nil {
		for _, d := range docs {
			g = max(g, d.Generation)
		}
	}
	return float64(g)
}

// joinFleet joins the gossip cluster when the config names one, and starts
// sending this node's SLI deltas every tick.
func (n *Node) joinFleet(cfg *configs.Config) error {
	if cfg.Gossip.Bind == "" {
		return nil
	}
	f, err := n.startFleet(cfg)
	if err != nil {
		return err
	}
	n.fleet.Store(f)
	n.fleetMetrics.Do(func() { n.reg.MustRegister(fleetCollector{n}) })
	f.start(cfg.Rollout.Tick.Duration)
	return nil
}

// fleetCollector exports the current cluster's gossip metrics. It is
// registered once and follows n.fleet, so a cluster rejoined after a
// failed handover is the one reported. It describes nothing up front
// (an unchecked collector) because the cluster may not exist yet.
type fleetCollector struct{ n *Node }

func (fleetCollector) Describe(chan<- *prometheus.Desc) {}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.n.fleet.Load(); f != nil {
		f.c.Collector().Collect(ch)
	}
}
