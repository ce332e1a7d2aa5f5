package cellgate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/rollout"
	"github.com/cellgate/cellgate/slo"
)

// ErrNoConfigFile is returned by Reload when the node runs on a config that
// did not come from a file (the embedded default, or one built in code).
var ErrNoConfigFile = errors.New("the node's config did not come from a file")

// ErrNeedsRestart marks a reload refused because it changes a key that a
// running node cannot take; the message names every such key.
var ErrNeedsRestart = errors.New("needs a restart")

// Reload re-reads the node's config file and applies it (SIGHUP,
// POST /v1/config/reload). An invalid file changes nothing; the error
// lists every problem with file:line.
func (n *Node) Reload() error {
	file := n.config().File
	if file == "" || file == embeddedName {
		return ErrNoConfigFile
	}
	cfg, err := configs.Load(file)
	if err != nil {
		return err
	}
	return n.Apply(cfg)
}

// embeddedName marks the embedded default config's File.
const embeddedName = "default.toml (embedded)"

// hotKeys are the config keys a reload applies to the running node, each
// with how. Every other key is restart-only: a reload that changes it is
// refused with "needs a restart" naming the key (restartKeys says why; a
// key in neither list is refused too, so a key added to the schema is never
// accepted and ignored). The table test in reload_keys_test.go holds a row
// per key and checks each against a running node.
var hotKeys = map[string]string{
	"listen.drain_timeout":       "the next drain",
	"listen.read_timeout":        "new connections: a new HTTP server beside the old, which keeps its open connections",
	"listen.write_timeout":       "new connections: a new HTTP server beside the old, which keeps its open connections",
	"listen.idle_timeout":        "new connections: a new HTTP server beside the old, which keeps its open connections",
	"listen.max_request_body":    "the next request; new connections get a new HTTP server beside the old",
	"listen.tunnel_idle_timeout": "open WebSocket tunnels at their next read",
	"listen.tls_cert":            "a renewed certificate, to new connections (TLS stays on)",
	"listen.tls_key":             "a renewed certificate, to new connections (TLS stays on)",
	"listen.h2c":                 "new connections",

	"upstream.connect_timeout":        "the next upstream connection",
	"upstream.response_timeout":       "the next request (and a stream's next read)",
	"upstream.idle_timeout":           "new endpoint pools beside the old, which drain",
	"upstream.max_conns_per_endpoint": "new endpoint pools beside the old, which drain",
	"upstream.eject_after":            "the next failure",
	"upstream.eject_backoff":          "the next ejection",
	"upstream.max_ejection_percent":   "the next ejection",

	"admin.token_file": "the next admin request",

	"routing.sticky_key":       "the next request",
	"routing.response_headers": "the next request",
	"routing.set_cookie":       "the next request",
	"routing.cookie_name":      "the next request",
	"routing.trusted_proxies":  "the next request",
	"routing.tunnel_drain":     "the next cell taken to weight 0 (a drain counting down keeps its length)",
	"routing.failover_panic":   "the next request of a down cell",

	"cell.name":      "one routing snapshot swap",
	"cell.version":   "one routing snapshot swap",
	"cell.weight":    "one routing snapshot swap (cells no rollout holds)",
	"cell.endpoints": "one routing snapshot swap; removed endpoints drain",
	"cell.health":    "one routing snapshot swap; the cell's checks restart with the new settings",
	"cell.protocol":  "one routing snapshot swap; the cell's endpoints get new pools, the old drain",
	"cell.tls":       "one routing snapshot swap; the cell's endpoints get new pools, the old drain",

	"discovery.interval": "a new watcher; names are resolved again at once",
	"discovery.resolver": "a new watcher; names are resolved again at once",
	"discovery.grace":    "a new watcher; names are resolved again at once",

	"slo.availability":      "the next verdict",
	"slo.latency_threshold": "the next verdict",
	"slo.latency_objective": "the next verdict",
	"slo.ttfb_threshold":    "the next verdict",
	"slo.ttfb_objective":    "the next verdict",
	"slo.fast_burn.long":    "the next verdict, while the windows fit the running rings",
	"slo.fast_burn.short":   "the next verdict, while the windows fit the running rings",
	"slo.fast_burn.rate":    "the next verdict",
	"slo.slow_burn.long":    "the next verdict, while the windows fit the running rings",
	"slo.slow_burn.short":   "the next verdict, while the windows fit the running rings",
	"slo.slow_burn.rate":    "the next verdict",
	"slo.min_requests":      "the next verdict",
	"slo.fail_ratio":        "the next verdict",
	"slo.grpc_error_codes":  "the next gRPC call",

	"rollout.tick":              "the controller's ticker is reset (a single node; in a fleet the SLI export runs at it too)",
	"rollout.degraded_ticks":    "the next verdict",
	"rollout.max_step_per_tick": "the next promotion",
	"rollout.bake":              "plans started from now on",
	"rollout.min_requests":      "plans started from now on",
	"plan":                      "plans started by name from now on",

	"access_log.path":        "the next line: the new destination is opened, the old one closed",
	"access_log.format":      "the next line",
	"access_log.sample":      "the next request",
	"access_log.query":       "the next line",
	"access_log.secret_file": "the next line (hashes change with the key)",
	"tracing.generate":       "the next request",
	"tracing.sample":         "the next request",

	"flag.name":          "one flag snapshot swap; a rollout of a removed flag is aborted",
	"flag.variants":      "one flag snapshot swap (variants no rollout holds take the new weights)",
	"flag.control":       "one flag snapshot swap; plans started from now on",
	"flag.type":          "one flag snapshot swap (OFREP values)",
	"flag.exposure":      "one flag snapshot swap: the next requests",
	"flags.ofrep_prefix": "the next request on the data-plane listener",

	"state.audit_retention.age":    "the next retention pass (within a minute)",
	"state.audit_retention.events": "the next retention pass (within a minute)",
}

// restartKeys are the keys a reload refuses to change, each with why.
var restartKeys = map[string]string{
	"node_name":               "it names the node in the cluster, the journal and the audit",
	"listen.addr":             "the listener is bound once",
	"listen.max_header_bytes": "the front door and read buffers are sized once per listener",
	"listen.max_conns":        "the connection cap is fitted to the descriptor limit once",
	"listen.core":             "the server core owns the listener and its connections from the start",
	"admin.addr":              "the admin listener is bound once",
	"state.path":              "the journal is opened once",
	"routing.seed":            "it would move every user",
	"routing.pin_memory":      "the pin table is built once; rebuilding it forgets every pin",
	"routing.pin_idle":        "the pin table is built once; rebuilding it forgets every pin",
	"routing.pin_secret_file": "every node of the fleet must switch keys together",
	"slo.interval":            "the SLI rings are sliced by it",
	"gossip.bind":             "the gossip socket is bound once",
	"gossip.advertise":        "peers know the node by it",
	"gossip.join":             "the cluster is joined once",
	"gossip.secret_key_file":  "every node of the fleet must switch keys together",
	"tracing.otlp_endpoint":   "the span exporter is built once",
}

// Apply swaps in a new validated config, all or nothing: it first refuses
// restart-only changes (naming every key), then reads and checks every
// part — token file, certificate, pin secret, gossip key, proxy options,
// SLO config, plans — changing nothing; only then does it apply them. The
// one step that can still fail, the controller's journal commit of the new
// cell set, runs first, so its failure leaves the old config running; the
// config generation goes up only on success.
//
// Cells, endpoints and routing weights change atomically: a new routing
// snapshot is built beside the old and published with one swap, so
// in-flight requests finish on the old one and keep-alive connections to
// endpoints that stay are kept. A cell whose configured weight did not
// change keeps its live weight (a rollout's or an operator's); a cell
// whose configured weight changed takes the new value, unless a running
// rollout holds it; a rollout whose cells are removed is aborted.
func (n *Node) Apply(cfg *configs.Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.cfg
	if err := n.refuseRestartOnly(old, cfg); err != nil {
		return fmt.Errorf("reload refused: %w", err)
	}
	next, err := n.prepare(old, cfg)
	if err != nil {
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	if err := n.commit(cfg, next); err != nil {
		return fmt.Errorf("reload failed, the old config keeps running: %w", err)
	}
	n.cfg = cfg
	n.configGen.Add(1)
	n.log.Info("config applied", "file", cfg.File, "cells", len(cfg.Cells), "changed", strings.Join(configs.Diff(old, cfg), ","))
	return nil
}

// prepared is everything a reload applies, read and checked beforehand.
type prepared struct {
	tokens *admin.Tokens
	cert   *tls.Certificate // nil: not on TLS
	proxy  proxy.Options
	cells  []proxy.CellSpec // weights are filled in at commit
	slo    slo.Config
	tuning rollout.Tuning
	alog   accesslog.Config
}

// refuseRestartOnly refuses every changed key that is not hot, naming it.
func (n *Node) refuseRestartOnly(old, cfg *configs.Config) error {
	var errs []error
	for _, key := range configs.Diff(old, cfg) {
		if _, hot := hotKeys[key]; hot {
			continue
		}
		why, ok := restartKeys[key]
		if !ok {
			why = "a reload does not apply this key"
		}
		errs = append(errs, fmt.Errorf("%s changed (%s): %w", key, why, ErrNeedsRestart))
	}
	if (old.Listen.TLSCert == "") != (cfg.Listen.TLSCert == "") {
		errs = append(errs, fmt.Errorf("listen.tls_cert turned TLS on or off (which also decides the server core listen.core = %q picks): %w", configs.CoreAuto, ErrNeedsRestart))
	}
	if cfg.Gossip.Bind != "" && old.Rollout.Tick.Duration != cfg.Rollout.Tick.Duration {
		errs = append(errs, fmt.Errorf("rollout.tick changed on a fleet node (the SLI export runs at it): %w", ErrNeedsRestart))
	}
	return errors.Join(errs...)
}

// prepare reads and checks every part of cfg without changing anything;
// a file that a key names and that cannot be read fails the reload here.
func (n *Node) prepare(old, cfg *configs.Config) (*prepared, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	p := &prepared{tuning: rolloutTuning(cfg)}
	var err error
	p.tokens, err = loadTokens(cfg)
	add(err)
	if cfg.Listen.TLSCert != "" {
		p.cert, err = readCert(cfg)
		add(err)
	}
	if f := cfg.Gossip.SecretKeyFile; f != "" {
		key, err := readSecretKey(f)
		if err != nil {
			add(fmt.Errorf("gossip.secret_key_file: %w", err))
		}
		if err == nil && f == old.Gossip.SecretKeyFile && string(key) != string(n.gossipKey) {
			add(fmt.Errorf("gossip.secret_key_file holds a different key (every node of the fleet must switch keys together): %w", ErrNeedsRestart))
		}
	}
	add(CheckPlans(cfg))
	p.proxy, err = proxyOptions(cfg)
	add(err)
	if err == nil {
		add(n.checkProxyOptions(p.proxy))
	}
	p.cells = cellSpecs(cfg, nil)
	add(proxy.CheckCells(withoutDiscovery(p.cells))) // names resolve at commit
	p.slo = sloConfig(cfg)
	add(n.checkSLO(old, cfg, p.slo))
	p.alog, err = accessLogConfig(cfg)
	add(err)
	return p, errors.Join(errs...)
}

// checkProxyOptions names the config key behind a proxy option that cannot
// change: the pin secret's file may be the same path with a new key in it.
func (n *Node) checkProxyOptions(o proxy.Options) error {
	err := n.proxy.CheckOptions(o)
	if err != nil && string(n.proxy.Options().PinSecret) != string(o.PinSecret) {
		return fmt.Errorf("routing.pin_secret_file holds a different key (every node of the fleet must switch keys together): %w", ErrNeedsRestart)
	}
	return err
}

// checkSLO names the window keys when the SLO engine cannot take them.
func (n *Node) checkSLO(old, cfg *configs.Config, sc slo.Config) error {
	err := n.slo.CheckConfig(sc)
	if err == nil {
		return nil
	}
	var windows []string
	for _, k := range configs.Diff(old, cfg) {
		if strings.HasSuffix(k, "_burn.long") || strings.HasSuffix(k, "_burn.short") {
			windows = append(windows, k)
		}
	}
	if len(windows) > 0 {
		return fmt.Errorf("%s grew beyond the SLI history the running engine keeps: %w", strings.Join(windows, ", "), ErrNeedsRestart)
	}
	return err
}

// commit applies a prepared reload. The controller's journal commit runs
// first: it is the only step that can fail once prepare has passed. It
// tells the balancer of configured-weight changes to cells it already has
// (new cells are not in the proxy yet and take their weight from the new
// snapshot, which is built from the live weights right after).
func (n *Node) commit(cfg *configs.Config, p *prepared) error {
	if err := n.Controller().SyncCells(configWeights(cfg), "config-reload"); err != nil {
		return fmt.Errorf("controller did not take the new cell set: %w", err)
	}
	// The controller has just applied changed configured variant weights
	// to the engine; new flags take theirs from the config.
	if err := n.flags.SetDefs(flagDefs(cfg), n.flags.Load().Weights()); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	n.disc.configure(cfg)
	p.cells = n.disc.expand(p.cells)
	live := n.proxy.Weights()
	for i := range p.cells {
		if w, ok := live[p.cells[i].Name]; ok {
			p.cells[i].Weight = w
		}
	}
	// The steps below were checked by prepare and cannot fail now; an error
	// here is a bug, reported rather than hidden.
	if err := n.proxy.SetCells(p.cells); err != nil {
		return fmt.Errorf("proxy cells: %w", err)
	}
	if err := n.proxy.SetOptions(p.proxy); err != nil {
		return fmt.Errorf("proxy options: %w", err)
	}
	if err := n.slo.SetConfig(p.slo); err != nil {
		return fmt.Errorf("slo config: %w", err)
	}
	if err := n.alog.Configure(p.alog); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	n.Controller().SetTuning(p.tuning)
	n.Controller().SetAuditRetention(auditRetention(cfg))
	if p.cert != nil {
		n.cert.Store(p.cert)
	}
	if a := n.admin.Load(); a != nil {
		a.srv.SetTokens(p.tokens)
	}
	return nil
}

// rolloutTuning derives the controller's reloadable settings.
func rolloutTuning(c *configs.Config) rollout.Tuning {
	return rollout.Tuning{Tick: c.Rollout.Tick.Duration, DegradedTicks: c.Rollout.DegradedTicks, MaxStepPerTick: c.Rollout.MaxStepPerTick}
}
