package proxy

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cellgate/cellgate/balancer"
)

// snapshot is the immutable routing state the request path reads: the
// balancer table and, index-aligned with it, the cells, plus the table's
// pin rules (nil when pins are off) and the long-lived session state. It
// is replaced whole, never edited.
type snapshot struct {
	table    *balancer.Table
	cells    []*cell
	pins     *balancer.PinView
	sessions *sessions
	// loopable is set when every cell is plain HTTP/1.1 (no TLS, no
	// HTTP/2): the loop core (loopcore.go) serves its fast path only then.
	loopable bool
}

// cell is one routing target as the request path needs it. Its header
// values are precomputed so responses are labelled without allocating.
type cell struct {
	name      string
	version   string
	nameB     []byte
	versionB  []byte
	endpoints []*endpoint
	rec       CellRecorder   // nil: not recorded
	served    *atomic.Uint64 // requests routed here; survives reloads
	stats     *cellStats     // failover counters; survive reloads
	state     *cellState     // down or up on this node (cellhealth.go)
	proto     string         // ProtoHTTP1, ProtoH2C or ProtoH2 (h2upstream.go)
	// tiers group endpoints by SRV priority with their weights (tiers.go);
	// nil when all have the defaults, the plain path.
	tiers []tier
}

// pickEndpoint chooses an endpoint by power of two choices on outstanding
// requests among endpoints in rotation, skipping exclude (the endpoint a
// retry must avoid); by priority and weight when the cell has tiers
// (tiers.go). It returns nil when none is available.
func (c *cell) pickEndpoint(r uint64, exclude *endpoint, now func() int64) *endpoint {
	if c.tiers != nil {
		return c.pickTiered(r, exclude, now)
	}
	eps := c.endpoints
	n := uint64(len(eps))
	if n == 0 { // a discovered cell that resolves to nothing
		return nil
	}
	if n == 1 {
		if e := eps[0]; e != exclude && e.available(now) {
			return e
		}
		return nil
	}
	i := (r & 0xffffffff) % n
	j := (r >> 32) % (n - 1)
	if j >= i {
		j++
	}
	a, b := eps[i], eps[j]
	okA := a != exclude && a.available(now)
	okB := b != exclude && b.available(now)
	switch {
	case okA && okB:
		if b.outstanding.Load() < a.outstanding.Load() {
			return b
		}
		return a
	case okA:
		return a
	case okB:
		return b
	}
	// Both samples are out: scan the rest from a random start so a mostly
	// ejected cell still spreads load over what is left.
	for k := range n {
		e := eps[(i+k)%n]
		if e != exclude && e.available(now) {
			return e
		}
	}
	return nil
}

// buildSnapshot makes a snapshot for specs, reusing endpoints and recorders
// from the registry so reloads keep pools, connections and health.
// p.mu must be held.
func (p *Proxy) buildSnapshotLocked(specs []CellSpec) *snapshot {
	old := p.snap.Load()
	s := &snapshot{cells: make([]*cell, len(specs)), loopable: true}
	if old != nil {
		s.sessions = old.sessions
	} else {
		s.sessions = p.newSessions()
	}
	bc := make([]balancer.Cell, len(specs))
	live := make(map[string]*endpoint, len(p.endpoints))
	for i, sp := range specs {
		c := &cell{
			name: sp.Name, version: sp.Version,
			nameB: []byte(sp.Name), versionB: []byte(sp.Version),
			rec:    p.recorderLocked(sp.Name),
			served: s.sessions.servedLocked(sp.Name),
			stats:  p.statsLocked(sp.Name),
			state:  new(cellState),
			proto:  ProtoHTTP1,
		}
		if sp.Protocol != "" {
			c.proto = sp.Protocol
		}
		if c.proto != ProtoHTTP1 || sp.TLS != nil {
			s.loopable = false
		}
		for _, addr := range sp.Endpoints {
			key := endpointKey(&sp, addr)
			e := p.endpoints[key]
			if e == nil {
				e = p.newEndpointFor(&sp, addr)
			}
			live[key] = e
			p.setCheckLocked(e, sp.Health)
			c.endpoints = append(c.endpoints, e)
		}
		c.tiers = buildTiers(c.endpoints, sp.Weights)
		c.refresh(p.health.nowNano())
		s.cells[i] = c
		bc[i] = balancer.Cell{Name: sp.Name, Weight: sp.Weight}
	}
	s.table = balancer.NewTable(p.seed, bc)
	s.pins = s.sessions.view(old, s.table, false)
	for key, e := range p.endpoints {
		if live[key] == nil {
			p.setCheckLocked(e, nil)
			e.removed.Store(true)
			go p.drainEndpoint(e)
		}
	}
	p.endpoints = live
	return s
}

// recorderLocked returns the cell's recorder, creating it on first sight.
// p.mu must be held.
func (p *Proxy) recorderLocked(name string) CellRecorder {
	if r, ok := p.recorders[name]; ok {
		return r
	}
	var r CellRecorder
	if p.hooks.Recorder != nil {
		r = p.hooks.Recorder(name)
	}
	p.recorders[name] = r
	return r
}

// drainEndpoint closes a removed endpoint's pool once its in-flight requests
// are done (or DrainTimeout passes); idle connections close at once.
func (p *Proxy) drainEndpoint(e *endpoint) {
	deadline := time.Now().Add(max(p.drainTimeout(), time.Second))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for e.outstanding.Load() > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
	e.closeIdle()
}

// SetWeights publishes a new routing table in which the named cells carry
// the given weights; other cells keep theirs. Requests already routed
// finish on the old snapshot. With pins on, the change is a promotion
// unless it undoes one (see RevertWeights).
//
// A weight that is not a finite number >= 0 refuses the whole change. Names
// of cells the proxy does not have are an error too, but the named cells it
// has still get their weights: the caller (the rollout controller) holds
// the truth and re-sends everything after an error, and a revert must not
// wait for a cell set that a reload is changing underneath it.
func (p *Proxy) SetWeights(w map[string]float64) error { return p.setWeights(w, false) }

func (p *Proxy) setWeights(w map[string]float64, revert bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.snap.Load()
	var unknown []string
	for name, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("set weights: cell %s: weight %g is not a finite number >= 0", name, v)
		}
		if old.table.Index(name) < 0 {
			unknown = append(unknown, name)
		}
	}
	t := old.table.WithWeights(w)
	p.snap.Store(&snapshot{table: t, cells: old.cells, sessions: old.sessions, pins: old.sessions.view(old, t, revert), loopable: old.loopable})
	p.tunnels.weightsChanged(old.table, t)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("set weights: no cell %s (the others were applied)", strings.Join(unknown, ", "))
	}
	return nil
}

// SetCells reloads the cell set: a new snapshot is built beside the old and
// swapped in. Endpoints whose (cell, address) stays are reused with their
// keep-alive connections and passive-health state; removed endpoints drain.
// Weights come from specs. On error nothing changes.
func (p *Proxy) SetCells(specs []CellSpec) error {
	if err := validateCells(specs); err != nil {
		return fmt.Errorf("set cells: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.snap.Load()
	s := p.buildSnapshotLocked(specs)
	p.snap.Store(s)
	p.tunnels.weightsChanged(old.table, s.table)
	return nil
}

// Weights returns the current weight of every cell.
func (p *Proxy) Weights() map[string]float64 {
	t := p.snap.Load().table
	w := make(map[string]float64, t.Len())
	for i := range t.Len() {
		c := t.Cell(i)
		w[c.Name] = c.Weight
	}
	return w
}

// CellStatus is one cell as the admin API shows it. Weight is what the
// cell is configured to get; Share is what it actually served over the
// last minute, which differs while session pins hold users elsewhere; Pins
// is the sessions pinned to it on this node.
type CellStatus struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Weight  float64 `json:"weight"`
	Share   float64 `json:"share"`
	Pins    int64   `json:"pins"`
	// Up is false when none of the cell's endpoints is in rotation on this
	// node: its users are served by their failover cells.
	Up bool `json:"up"`
	// Failovers counts requests of this cell's users served elsewhere
	// because it was down; InflightFailed those in flight when it died
	// that could not be retried; Panics those kept on it because the
	// failover panic threshold held.
	Failovers      uint64           `json:"failovers"`
	InflightFailed uint64           `json:"inflight_failed"`
	Panics         uint64           `json:"panics"`
	Endpoints      []EndpointStatus `json:"endpoints"`
	// Protocols counts the cell's requests since the node started by
	// protocol: "h1", "h2" (HTTP/2 other than gRPC) and "grpc".
	Protocols map[string]uint64 `json:"protocols"`
}

// EndpointStatus is one endpoint's health and load.
type EndpointStatus struct {
	Addr        string `json:"addr"`
	Up          bool   `json:"up"`
	Outstanding int64  `json:"outstanding"`
	// CheckDown is set while active health checks hold the endpoint out.
	CheckDown    bool      `json:"check_down,omitempty"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
}

// Status returns the cells of the current snapshot in configured order.
func (p *Proxy) Status() []CellStatus {
	s := p.snap.Load()
	now := p.health.nowNano()
	shares, pins := p.Shares(), p.Pins()
	out := make([]CellStatus, len(s.cells))
	for i, c := range s.cells {
		cs := CellStatus{Name: c.name, Version: c.version, Weight: s.table.Cell(i).Weight,
			Share: shares[c.name], Pins: pins[c.name], Up: !c.downAt(now),
			Failovers: c.stats.failovers.Load(), InflightFailed: c.stats.inflightFailed.Load(),
			Panics: c.stats.panics.Load(), Protocols: c.protocolCounts()}
		for _, e := range c.endpoints {
			es := EndpointStatus{Addr: e.addr, Outstanding: e.outstanding.Load(), CheckDown: e.checkDown.Load()}
			until := e.ejectedUntil.Load()
			es.Up = e.availableAt(now)
			if until != 0 && now < until {
				es.EjectedUntil = time.Unix(0, until)
			}
			cs.Endpoints = append(cs.Endpoints, es)
		}
		out[i] = cs
	}
	return out
}

// validHostPort reports whether s is host:port with a numeric port.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}
