package proxy

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/prometheus/client_golang/prometheus"
)

// tunnelSet owns a proxy's open WebSocket tunnels. It registers each tunnel
// from its handshake to its end, counts them per cell for the metrics,
// closes a cell's tunnels with 1012 once the cell has had no weight for
// routing.tunnel_drain (so a release moves long-lived connections, not only
// new requests), and on drain closes the rest with 1001.
//
// Lifetime: New builds it and calls start; Shutdown calls stop, after which
// no tunnel opens. Lock order: Proxy.mu before tunnelSet.mu (weightsChanged
// runs under Proxy.mu); tunnelSet never takes Proxy.mu.
type tunnelSet struct {
	log *slog.Logger

	// idle and drain are listen.tunnel_idle_timeout and routing.tunnel_drain
	// in nanoseconds, swapped by a reload; tunnels read idle on every
	// deadline they set.
	idle  atomic.Int64
	drain atomic.Int64

	// mu guards the fields below.
	mu      sync.Mutex
	running bool                     // between start and stop
	open    map[*tunnel]struct{}     // registered tunnels
	cells   map[string]*cellTunnels  // per-cell counters; kept across reloads
	pending map[string]*pendingClose // cells at weight 0 whose tunnels close when the timer fires
	zeroed  map[string]bool          // cells at weight 0 whose tunnels were closed: a late tunnel closes at once
	emptied chan struct{}            // closed when open becomes empty, while stop waits
}

// pendingClose is a cell's armed drain timer. Its address identifies it, so
// a timer that fires after being superseded does nothing.
type pendingClose struct{ timer *time.Timer }

// cellTunnels are one cell's tunnel counters.
type cellTunnels struct {
	open  int64
	total map[int]uint64 // handshake status → handshakes
}

func newTunnelSet(log *slog.Logger, idle, drain time.Duration) *tunnelSet {
	s := &tunnelSet{
		log:     log,
		open:    map[*tunnel]struct{}{},
		cells:   map[string]*cellTunnels{},
		pending: map[string]*pendingClose{},
		zeroed:  map[string]bool{},
	}
	s.setTimeouts(idle, drain)
	return s
}

// setTimeouts applies new idle and drain durations (SetOptions, on a
// reload): open tunnels take the idle timeout at their next read; a drain
// already counting down keeps its length.
func (s *tunnelSet) setTimeouts(idle, drain time.Duration) {
	s.idle.Store(int64(idle))
	s.drain.Store(int64(drain))
}

// start lets tunnels open.
func (s *tunnelSet) start() {
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
}

// countLocked returns the cell's counters, creating them on first sight.
func (s *tunnelSet) countLocked(cell string) *cellTunnels {
	c := s.cells[cell]
	if c == nil {
		c = &cellTunnels{total: map[int]uint64{}}
		s.cells[cell] = c
	}
	return c
}

// handshake counts one WebSocket handshake of cell answered with status.
func (s *tunnelSet) handshake(cell string, status int) {
	s.mu.Lock()
	s.countLocked(cell).total[status]++
	s.mu.Unlock()
}

// add registers t. It reports false once the set is stopped (the proxy
// drains): the caller then refuses the tunnel. A tunnel to a cell whose
// tunnels were already closed for weight 0 (a pinned session may still
// reach it) is told to close at once.
func (s *tunnelSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return false
	}
	s.open[t] = struct{}{}
	s.countLocked(t.cell).open++
	if s.zeroed[t.cell] {
		t.shut(closeServiceRestart, reasonRestart)
	}
	return true
}

// remove unregisters t when it has ended.
func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.open[t]; !ok {
		return
	}
	delete(s.open, t)
	s.countLocked(t.cell).open--
	if len(s.open) == 0 && s.emptied != nil {
		close(s.emptied)
		s.emptied = nil
	}
}

// weightsChanged compares two routing tables. A cell whose weight went to
// 0, or that the new table dropped, has its tunnels closed with 1012 after
// routing.tunnel_drain; a cell that has weight again keeps its tunnels.
// Callers hold Proxy.mu, so changes arrive in order.
func (s *tunnelSet) weightsChanged(old, cur *balancer.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range old.Len() {
		c := old.Cell(i)
		j := cur.Index(c.Name)
		switch {
		case j < 0 && c.Weight > 0:
			s.scheduleLocked(c.Name)
		case j >= 0 && c.Weight > 0 && cur.Cell(j).Weight == 0:
			s.scheduleLocked(c.Name)
		}
	}
	for i := range cur.Len() {
		if c := cur.Cell(i); c.Weight > 0 {
			s.cancelLocked(c.Name)
		}
	}
}

// scheduleLocked arms the cell's close timer unless one is pending.
func (s *tunnelSet) scheduleLocked(cell string) {
	if _, ok := s.pending[cell]; ok || !s.running {
		return
	}
	pc := &pendingClose{}
	s.pending[cell] = pc
	// The timer's function takes mu, which the caller holds, so it sees
	// pc.timer set even when the drain is 0.
	pc.timer = time.AfterFunc(time.Duration(s.drain.Load()), func() { s.closeCell(cell, pc) })
}

// cancelLocked forgets a cell's pending close: it has weight again.
func (s *tunnelSet) cancelLocked(cell string) {
	if pc, ok := s.pending[cell]; ok {
		pc.timer.Stop()
		delete(s.pending, cell)
	}
	delete(s.zeroed, cell)
}

// closeCell is the drain timer of cell firing: unless the cell got weight
// back meanwhile (then pc is no longer pending), every tunnel of the cell
// gets a 1012 close frame.
func (s *tunnelSet) closeCell(cell string, pc *pendingClose) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[cell] != pc {
		return
	}
	delete(s.pending, cell)
	s.zeroed[cell] = true
	n := 0
	for t := range s.open {
		if t.cell == cell {
			t.shut(closeServiceRestart, reasonRestart)
			n++
		}
	}
	s.log.Info("websocket tunnels closed: cell has no weight", "cell", cell, "tunnels", n)
}

// stop ends the set for a drain. Tunnels already open may run on until ctx
// ends (the drain timeout); then each gets a 1001 close frame and
// closeLinger to finish the closing handshake before it is cut.
func (s *tunnelSet) stop(ctx context.Context) {
	s.mu.Lock()
	s.running = false
	for cell, pc := range s.pending {
		pc.timer.Stop()
		delete(s.pending, cell)
	}
	s.mu.Unlock()
	if s.wait(ctx.Done()) {
		return
	}
	s.mu.Lock()
	n := len(s.open)
	for t := range s.open {
		t.shut(closeGoingAway, reasonDrain)
	}
	s.mu.Unlock()
	s.log.Info("websocket tunnels closed: proxy draining", "tunnels", n)
	linger, cancel := context.WithTimeout(context.Background(), closeLinger+time.Second)
	defer cancel()
	if s.wait(linger.Done()) {
		return
	}
	s.mu.Lock()
	for t := range s.open {
		t.endBy(time.Now()) // past its linger: cut
	}
	s.mu.Unlock()
}

// wait blocks until no tunnel is open (true) or done fires (false).
func (s *tunnelSet) wait(done <-chan struct{}) bool {
	s.mu.Lock()
	if len(s.open) == 0 {
		s.mu.Unlock()
		return true
	}
	if s.emptied == nil {
		s.emptied = make(chan struct{})
	}
	ch := s.emptied
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// openCount is the number of registered tunnels (tests).
func (s *tunnelSet) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

var (
	descTunnels = prometheus.NewDesc("cellgate_tunnels",
		"WebSocket tunnels open to the cell.",
		[]string{"cell"}, nil)
	descTunnelsTotal = prometheus.NewDesc("cellgate_tunnels_total",
		"WebSocket handshakes to the cell, by the status the client got (101: a tunnel opened).",
		[]string{"cell", "code"}, nil)
)

func (s *tunnelSet) describe(ch chan<- *prometheus.Desc) {
	ch <- descTunnels
	ch <- descTunnelsTotal
}

// collect reports every cell of the current routing table (0 when it has no
// tunnel) and every cell that still has tunnels or handshakes counted.
func (s *tunnelSet) collect(ch chan<- prometheus.Metric, cells []*cell) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.cells)+len(cells))
	seen := make(map[string]bool, cap(names))
	for _, c := range cells {
		names, seen[c.name] = append(names, c.name), true
	}
	for name := range s.cells {
		if !seen[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names[len(cells):])
	for _, name := range names {
		c := s.cells[name]
		if c == nil {
			ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, 0, name)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(c.open), name)
		for code, n := range c.total {
			ch <- prometheus.MustNewConstMetric(descTunnelsTotal, prometheus.CounterValue, float64(n), name, strconv.Itoa(code))
		}
	}
}
