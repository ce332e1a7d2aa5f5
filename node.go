package cellgate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/gossip"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/proxy/frontdoor"
	"github.com/cellgate/cellgate/rollout"
	"github.com/cellgate/cellgate/slo"
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
	slo   *slo.Registry
	reg   *prometheus.Registry

	// ctrl is the rollout controller and its journal. It is replaced only
	// when a failed graceful handover takes the journal back.
	ctrl atomic.Pointer[rollout.Controller]

	// mu guards cfg and serialises reloads.
	mu  sync.Mutex
	cfg *configs.Config

	ln           net.Listener // client listener, behind the front door
	rawLn        net.Listener // the socket itself, for handing over
	admin        *adminServer
	fleet        atomic.Pointer[fleet] // nil on a single node; set in Start (again after a failed handover)
	fleetMetrics sync.Once             // registers fleetCollector with the first cluster

	cert      atomic.Pointer[tls.Certificate] // served on TLS listeners; reload replaces it
	gossipKey []byte                          // gossip.secret_key_file's key as started, so a reload can tell a new one; set in New
	started   time.Time
	ready     atomic.Bool   // serving: /readyz
	configGen atomic.Uint64 // successful config loads
	serveErr  chan error
	stopOnce  sync.Once
	ctx       context.Context // lives from Start to Shutdown
	cancel    context.CancelFunc
}

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
	n.slo = slo.NewRegistry(sloConfig(cfg), n.now)
	seed := cfg.Routing.Seed
	if seed == 0 {
		seed = defaultSeed
	}
	n.proxy, err = proxy.New(popts, seed, cellSpecs(cfg, nil), proxy.Hooks{
		Recorder: func(cell string) proxy.CellRecorder { return n.slo.Cell(cell) },
		Logger:   n.log.With("component", "proxy"),
	})
	if err != nil {
		return nil, err
	}
	ctrl, err := n.openControl(cfg, opts.JournalWait)
	if err != nil {
		return nil, err
	}
	n.ctrl.Store(ctrl)
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(
		n.slo.Collector(),
		n.proxy,
		rolloutCollector{n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return n, nil
}

// SetWeight sets a cell's weight by hand (admin API), journals it with the
// actor and reason, and replicates it to the fleet. A cell under a running
// rollout pauses that rollout.
func (n *Node) SetWeight(cell string, w float64, actor, reason string) error {
	if err := n.Controller().SetWeight(cell, w, actor, reason); err != nil {
		return err
	}
	if f := n.fleet.Load(); f != nil {
		f.setWeight(cell, w, reason)
	}
	return nil
}

// Start binds the client and admin listeners and starts serving and the
// controller's ticker. It returns once both listeners are bound.
func (n *Node) Start() error {
	cfg := n.config()
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
	ln = frontdoor.Listen(ln, frontDoorConfig(cfg))
	n.ln = ln
	if cfg.Admin.Addr != "" {
		var err error
		n.admin, err = n.startAdmin(cfg, n.opts.AdminListener)
		if err != nil {
			ln.Close()
			return err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.joinFleet(cfg); err != nil {
		n.cancel()
		ln.Close()
		if n.admin != nil {
			n.admin.shutdown(context.Background())
		}
		return err
	}
	n.Controller().Run(n.ctx)
	n.serveErr = make(chan error, 1)
	go n.serve(ln)
	n.started = n.now()
	n.configGen.Store(1)
	n.ready.Store(true)
	n.log.Info("serving", "addr", ln.Addr().String(), "admin", n.AdminAddr(), "cells", len(cfg.Cells))
	return nil
}

// serve runs the data plane until Shutdown. Serve returning early means
// nothing accepts clients any more: readiness goes false at once, so load
// balancers stop sending, and the error is logged here; Shutdown collects it.
func (n *Node) serve(ln net.Listener) {
	err := n.proxy.Serve(ln)
	if err != nil {
		n.ready.Store(false)
		n.log.Error("data plane stopped accepting; not ready", "err", err)
	}
	n.serveErr <- err
}

// Ready reports whether the node serves traffic (/readyz): started, not
// draining, and its data plane accepting connections.
func (n *Node) Ready() bool { return n.ready.Load() && n.proxy.Serving() }

// Addr is the bound client address ("" before Start).
func (n *Node) Addr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// AdminAddr is the bound admin address ("" when off or before Start).
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.addr()
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

// Shutdown drains the node: stop accepting, let in-flight requests finish
// (up to listen.drain_timeout or ctx), stop the controller and close the
// journal. It is safe to call more than once.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	n.stopOnce.Do(func() {
		n.ready.Store(false)
		if n.ln != nil {
			if err := n.proxy.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
			if err := <-n.serveErr; err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("serve: %w", err))
			}
		}
		if n.admin != nil {
			if err := n.admin.shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if n.cancel != nil {
			n.cancel()
		}
		if f := n.fleet.Load(); f != nil {
			if err := f.c.Leave(2 * time.Second); err != nil {
				n.log.Warn("gossip leave", "err", err)
			}
			if err := f.c.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
			}
		}
		if err := n.Controller().Close(); err != nil {
			errs = append(errs, fmt.Errorf("close controller: %w", err))
		}
	})
	return errors.Join(errs...)
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

// GossipAddr is the bound gossip address ("" on a single node).
func (n *Node) GossipAddr() string {
	if f := n.fleet.Load(); f != nil {
		return f.c.Addr()
	}
	return ""
}
