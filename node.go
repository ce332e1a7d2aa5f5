package cellgate

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/gossip"
	"github.com/cellgate/cellgate/history"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/proxy/frontdoor"
	"github.com/cellgate/cellgate/rollout"
	"github.com/cellgate/cellgate/slo"
	"github.com/cellgate/cellgate/spans"
)

// defaultSeed keys the sticky hash when routing.seed is 0. It is a constant,
// not a random value, so every node and every restart agrees.
const defaultSeed = 0x63656c6c67617465 // "cellgate"

// Options are a Node's collaborators beyond its config. Every field is
// optional; its comment says what zero means.
type Options struct {
	// Logger receives the node's operational log. Nil: text logs on stderr.
	Logger *slog.Logger
	// Now is the clock for the SLO engine and the controller. Nil: time.Now.
	Now func() time.Time
	// Listener and AdminListener are already-bound listeners to serve on
	// instead of binding listen.addr and admin.addr: a graceful handover's
	// successor inherits them from its predecessor. Nil: bind.
	Listener, AdminListener net.Listener
	// JournalWait is how long New keeps retrying while another process
	// holds the journal (a handover's predecessor). Zero: fail fast.
	JournalWait time.Duration
	// Gossip adjusts the gossip config derived from [gossip] before the
	// node joins: tests inject a partitioning transport (gossip/gossiptest)
	// and faster failure detection. Nil: as derived.
	Gossip func(*gossip.Config)
}

// Node is one running cellgate: data plane, SLO engine, rollout controller,
// admin API. Build it with New, run it with Start, stop it with Shutdown.
type Node struct {
	log   *slog.Logger
	opts  Options
	now   func() time.Time
	name  string
	proxy *proxy.Proxy
	disc  *discoverer // dns:/srv: endpoints; runs beside the data plane
	cells cellWatch   // journals cell health, tells the proxy rollout targets
	slo   *slo.Registry
	flags *flags.Engine // feature flags: variants by key, weights from the controller (nodeflags.go)
	reg   *prometheus.Registry
	alog  *accesslog.Log  // the access log (off without access_log.path); closed after the data plane stops
	hist  historian       // per-second history of the cells (history.go)
	spans *spans.Exporter // [tracing] otlp_endpoint's exporter; nil: none

	// ctrl is the rollout controller and its journal. It is replaced only
	// when a failed graceful handover takes the journal back.
	ctrl atomic.Pointer[rollout.Controller]

	// mu guards cfg and serialises reloads.
	mu  sync.Mutex
	cfg *configs.Config

	// The long-lived parts, each with its own start and stop (lifecycle.go
	// states the order). dp and admin are set by Start; admin is replaced
	// when a failed handover takes the control plane back.
	dp           *dataPlane
	rawLn        net.Listener                // the client socket itself, for handing over
	admin        atomic.Pointer[adminServer] // nil when admin.addr is empty or during a handover
	adminFile    *os.File                    // the admin socket kept while a handover is tried; handover sequence only
	fleet        atomic.Pointer[fleet]       // nil on a single node; set in Start (again after a failed handover)
	fleetMetrics sync.Once                   // registers fleetCollector with the first cluster

	cert      atomic.Pointer[tls.Certificate] // served on TLS listeners; reload replaces it
	gossipKey []byte                          // gossip.secret_key_file's key as started, so a reload can tell a new one; set in New
	started   time.Time
	ready     atomic.Bool   // serving: /readyz
	configGen atomic.Uint64 // successful config loads
	stopOnce  sync.Once
}

// The SLO engine's cells record a request's flag cohorts at its end time
// (flags.Set.Record): one clock reading per request, not one per cohort.
var _ flags.EndRecorder = (*slo.Cell)(nil)

// New builds a node from a validated config: it opens the journal (failing
// fast if another process holds it) and resumes any rollout in it, but
// binds no socket until Start.
func New(cfg *configs.Config, opts Options) (*Node, error) {
	if err := CheckPlans(cfg); err != nil {
		return nil, err
	}
	n := &Node{log: opts.Logger, now: opts.Now, cfg: cfg, name: cfg.NodeName, opts: opts}
	if f := cfg.Gossip.SecretKeyFile; f != "" {
		key, err := readSecretKey(f)
		if err != nil {
			return nil, err
		}
		n.gossipKey = key
	}
	if n.log == nil {
		n.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.name == "" {
		n.name, _ = os.Hostname()
	}
	n.log = n.log.With("node", n.name)
	popts, err := proxyOptions(cfg)
	if err != nil {
		return nil, err
	}
	// opts.Now, not n.now: without an injected clock the registry reads
	// the real one itself (its cheaper monotonic reading), and a flag
	// cohort recorded at the request path's end time (slo.Cell.RecordEnded)
	// shares that clock reading instead of reading it again.
	n.slo = slo.NewRegistry(sloConfig(cfg), opts.Now)
	seed := cfg.Routing.Seed
	if seed == 0 {
		seed = defaultSeed
	}
	n.flags = flags.NewEngine(seed, func(name string) flags.Recorder { return n.slo.Cell(name) })
	n.flags.SetPins(flagPinConfig(cfg))
	if err := n.flags.SetDefs(flagDefs(cfg), nil); err != nil {
		n.flags.Close()
		return nil, err
	}
	n.disc, n.cells.n = &discoverer{n: n}, n
	n.hist.n, n.hist.store = n, history.NewStore()
	n.disc.configure(cfg)
	if n.alog, err = n.newAccessLog(cfg); err != nil {
		n.flags.Close()
		return nil, err
	}
	if n.spans, err = n.newSpans(cfg); err != nil {
		n.alog.Close()
		n.flags.Close()
		return nil, err
	}
	n.proxy, err = proxy.New(popts, seed, n.specs(cfg, nil), proxy.Hooks{
		Recorder:  func(cell string) proxy.CellRecorder { return endedRecorder(n.slo.Cell(cell)) },
		Logger:    n.log.With("component", "proxy"),
		AccessLog: n.alog,
		Spans:     n.spans,
		Flags:     n.flags,
		OFREP:     n.ofrep(),
	})
	if err != nil {
		n.closeObservers()
		n.flags.Close()
		return nil, err
	}
	ctrl, err := n.openControl(cfg, opts.JournalWait)
	if err != nil {
		n.closeObservers()
		n.flags.Close()
		return nil, err
	}
	n.ctrl.Store(ctrl)
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(
		n.slo.Collector(),
		n.proxy,
		rolloutCollector{n},
		n.alog,
		discoveryCollector{n.disc},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if n.spans != nil {
		n.reg.MustRegister(n.spans)
	}
	return n, nil
}

// SetWeight sets a cell's weight by hand (admin API). The controller
// journals it with the actor and reason as one document and publishes that
// to the fleet (rollout/manual.go); a cell under a running rollout pauses
// that rollout.
func (n *Node) SetWeight(cell string, w float64, actor, reason string) error {
	return n.Controller().SetWeight(cell, w, actor, reason)
}

// Start binds the client listener, the admin listener and the gossip
// socket, then starts the parts in the order lifecycle.go states, and
// returns once all serve. If any step fails, everything already started
// is stopped again, the journal is closed (so a fixed config can start at
// once) and the error says which step failed.
func (n *Node) Start() error {
	if err := n.start(n.config()); err != nil {
		if serr := n.Shutdown(context.Background()); serr != nil {
			n.log.Warn("stop after a failed start", "err", serr)
		}
		return err
	}
	n.log.Info("serving", "addr", n.Addr(), "admin", n.AdminAddr(), "cells", len(n.config().Cells), "core", n.proxy.Core())
	return nil
}

// start binds what can fail first and serves last: client listener,
// admin listener (and tokens), controller ticker, gossip, data plane,
// readiness, admin API — so a successor's first /readyz answer is "ready".
func (n *Node) start(cfg *configs.Config) error {
	ln := n.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Listen.Addr, err)
		}
	}
	n.rawLn = ln
	if cfg.Listen.TLSCert != "" {
		tcfg, err := n.tlsConfig(cfg)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tcfg)
	}
	// The front door validates every request's framing strictly before
	// fasthttp parses it (see proxy/frontdoor).
	n.dp = &dataPlane{p: n.proxy, ln: frontdoor.Listen(ln, frontDoorConfig(cfg)), log: n.log, onFail: n.dataPlaneFailed}
	if cfg.Admin.Addr != "" {
		a, err := n.bindAdmin(cfg, n.opts.AdminListener)
		if err != nil {
			return err
		}
		n.admin.Store(a)
	}
	n.Controller().Run(context.Background()) // stopped by Controller.Close
	if err := n.joinFleet(cfg); err != nil {
		return err
	}
	n.disc.start()
	n.cells.start()
	n.hist.start()
	n.dp.start()
	n.started = n.now()
	n.configGen.Store(1)
	n.ready.Store(true)
	if a := n.admin.Load(); a != nil {
		a.start()
	}
	return nil
}

// dataPlaneFailed is told when the data plane's Serve ends by itself:
// nothing accepts clients any more, so readiness goes false at once and
// load balancers stop sending.
func (n *Node) dataPlaneFailed(err error) {
	n.ready.Store(false)
	n.log.Error("data plane stopped accepting; not ready", "err", err)
}

// Ready reports whether the node serves traffic (/readyz): started, not
// draining, and its data plane accepting connections.
func (n *Node) Ready() bool { return n.ready.Load() && n.proxy.Serving() }

// Addr is the bound client address ("" before Start).
func (n *Node) Addr() string {
	if n.dp == nil {
		return ""
	}
	return n.dp.ln.Addr().String()
}

// AdminAddr is the bound admin address ("" when off or before Start).
func (n *Node) AdminAddr() string {
	if a := n.admin.Load(); a != nil {
		return a.addr()
	}
	return ""
}

// Name is the node's name in the cluster and the journal.
func (n *Node) Name() string { return n.name }

// Proxy, SLO and Controller expose the parts for in-process use (demo,
// bench scenarios, tests).
func (n *Node) Proxy() *proxy.Proxy             { return n.proxy }
func (n *Node) SLO() *slo.Registry              { return n.slo }
func (n *Node) Controller() *rollout.Controller { return n.ctrl.Load() }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

func (n *Node) config() *configs.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// HasMajority reports whether this node may promote as far as the cluster
// goes: true on a single node; in a fleet, whether it sees a majority of
// the last known membership.
func (n *Node) HasMajority() bool {
	if f := n.fleet.Load(); f != nil {
		return f.c.HasMajority()
	}
	return true
}

// DrainTimeout is listen.drain_timeout as last loaded (a reload changes
// it for the next drain).
func (n *Node) DrainTimeout() time.Duration { return n.config().Listen.DrainTimeout.Duration }

// Members are the alive gossip members, this node included, sorted (nil
// on a single node).
func (n *Node) Members() []string {
	if f := n.fleet.Load(); f != nil {
		return f.c.Members()
	}
	return nil
}

// GossipAddr is the bound gossip address ("" on a single node).
func (n *Node) GossipAddr() string {
	if f := n.fleet.Load(); f != nil {
		return f.c.Addr()
	}
	return ""
}

// endedRecorder is a cell's SLO recorder as the proxy takes it: an
// EndedRecorder, which records a request at the end the proxy read (on the
// loop core its batch clock) without a clock read of its own.
func endedRecorder(c *slo.Cell) proxy.EndedRecorder { return c }
