package cellgate

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/discovery"
	"github.com/cellgate/cellgate/proxy"
)

// discoverer owns the node's discovery watcher: it resolves the config's
// `dns:` and `srv:` endpoints and, when a set changes, rebuilds the
// routing snapshot through the same path as a reload (Proxy.SetCells), so
// pools of endpoints that stay are kept and removed ones drain. A reload
// that changes [discovery] replaces the watcher. It feeds the data plane,
// so it runs beside it: started just before it, stopped just after it
// (lifecycle.go).
type discoverer struct {
	n *Node

	// mu guards the fields below.
	mu      sync.Mutex
	cfg     configs.Discovery
	w       *discovery.Watcher
	running bool               // between start and stop
	cancel  context.CancelFunc // stops w's Run (nil when none runs)
	done    chan struct{}      // closed when that Run has returned
}

// startupResolveTimeout bounds the first resolution of the config's names
// at start and reload: DNS that does not answer leaves a cell empty (and
// down, so its users fail over) rather than holding the node.
const startupResolveTimeout = 5 * time.Second

// targets lists the config's discovery targets (validated already).
func targets(cfg *configs.Config) []discovery.Target {
	var out []discovery.Target
	seen := map[string]bool{}
	for _, c := range cfg.Cells {
		for _, ep := range c.Endpoints {
			if t, ok, err := discovery.Parse(ep); ok && err == nil && !seen[ep] {
				seen[ep] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// newWatcher builds a watcher for cfg's [discovery].
func (d *discoverer) newWatcher(cfg configs.Discovery) *discovery.Watcher {
	var res discovery.Resolver = discovery.System{}
	if cfg.Resolver != "" {
		res = discovery.Server{Addr: cfg.Resolver}
	}
	return discovery.New(discovery.Config{Interval: cfg.Interval.Duration, Grace: cfg.Grace.Duration}, res,
		discovery.Hooks{Changed: d.n.rediscover, Logger: d.n.log.With("component", "discovery")})
}

// configure makes the watcher match cfg and resolves new names once; it
// is called by New and by Apply (under the node's mu) before the cell
// specs are built.
func (d *discoverer) configure(cfg *configs.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil || d.cfg != cfg.Discovery {
		if d.cancel != nil {
			// Not waited for: its last Changed may be waiting for the
			// node's lock, which the reload calling this holds.
			d.cancel()
			d.cancel = nil
		}
		d.w, d.cfg = d.newWatcher(cfg.Discovery), cfg.Discovery
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupResolveTimeout)
	defer cancel()
	d.w.SetTargets(ctx, targets(cfg))
	d.runLocked()
}

// start runs the watcher until stop.
func (d *discoverer) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = true
	d.runLocked()
}

// stop ends the watcher's re-resolution and waits for it: no snapshot is
// rebuilt for discovery after it returns. The node's lock must not be held.
func (d *discoverer) stop() {
	d.mu.Lock()
	d.running = false
	cancel, done := d.cancel, d.done
	d.cancel, d.done = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (d *discoverer) runLocked() {
	if !d.running || d.cancel != nil || d.w == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.cancel, d.done = cancel, done
	go func(w *discovery.Watcher) {
		defer close(done)
		w.Run(ctx)
	}(d.w)
}

func (d *discoverer) watcher() *discovery.Watcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w
}

// expand replaces each discovery endpoint of specs with its current
// addresses, with their SRV priorities and weights; a cell with one marks
// itself Discovered, so it may be empty.
func (d *discoverer) expand(specs []proxy.CellSpec) []proxy.CellSpec {
	w := d.watcher()
	for i := range specs {
		var eps []string
		for _, ep := range specs[i].Endpoints {
			if _, ok, _ := discovery.Parse(ep); ok {
				specs[i].Discovered = true
				eps = append(eps, w.Addrs(ep)...)
				for addr, wt := range w.Weights(ep) { // srv: priority and weight
					if specs[i].Weights == nil {
						specs[i].Weights = map[string]proxy.EndpointWeight{}
					}
					if _, dup := specs[i].Weights[addr]; !dup {
						specs[i].Weights[addr] = proxy.EndpointWeight{Priority: int(wt.Priority), Weight: wt.Weight}
					}
				}
				continue
			}
			eps = append(eps, ep)
		}
		specs[i].Endpoints = dedupe(eps)
	}
	return specs
}

// withoutDiscovery is specs with discovery entries left out (cells that
// had one marked Discovered), for checking a config before its names are
// resolved.
func withoutDiscovery(specs []proxy.CellSpec) []proxy.CellSpec {
	out := make([]proxy.CellSpec, len(specs))
	for i, sp := range specs {
		out[i] = sp
		out[i].Endpoints = nil
		for _, ep := range sp.Endpoints {
			if _, ok, _ := discovery.Parse(ep); ok {
				out[i].Discovered = true
				continue
			}
			out[i].Endpoints = append(out[i].Endpoints, ep)
		}
	}
	return out
}

// dedupe drops repeated addresses (two names resolving to one address are
// one endpoint), keeping the first.
func dedupe(eps []string) []string {
	seen := make(map[string]bool, len(eps))
	out := eps[:0]
	for _, e := range eps {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// specs builds the proxy's cells for cfg with discovery applied; live
// weights as for cellSpecs.
func (n *Node) specs(cfg *configs.Config, live map[string]float64) []proxy.CellSpec {
	return n.disc.expand(cellSpecs(cfg, live))
}

// rediscover applies changed discovery sets: the current config's cells
// with their live weights, rebuilt beside the old snapshot and swapped.
func (n *Node) rediscover() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.proxy.SetCells(n.specs(n.cfg, n.proxy.Weights())); err != nil {
		n.log.Error("discovery: new endpoint sets not applied", "err", err)
	}
}

// discoveryCollector exports each target's endpoint count and failures.
type discoveryCollector struct{ d *discoverer }

var (
	discEndpointsDesc = prometheus.NewDesc("cellgate_discovery_endpoints",
		"Endpoints the discovery target currently resolves to (the last good set while lookups fail).",
		[]string{"target"}, nil)
	discFailuresDesc = prometheus.NewDesc("cellgate_discovery_failures_total",
		"Failed lookups of the discovery target.", []string{"target"}, nil)
	discFailingDesc = prometheus.NewDesc("cellgate_discovery_failing",
		"1 while the target's last lookup failed (its last good set is in use).", []string{"target"}, nil)
)

func (c discoveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- discEndpointsDesc
	ch <- discFailuresDesc
	ch <- discFailingDesc
}

func (c discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.d.watcher().Status() {
		failing := 0.0
		if s.Error != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(discEndpointsDesc, prometheus.GaugeValue, float64(len(s.Endpoints)), s.Target)
		ch <- prometheus.MustNewConstMetric(discFailuresDesc, prometheus.CounterValue, float64(s.Failures), s.Target)
		ch <- prometheus.MustNewConstMetric(discFailingDesc, prometheus.GaugeValue, failing, s.Target)
	}
}
