package cellgate

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cellgate/cellgate/configs"
)

// ErrNoConfigFile is returned by Reload when the node runs on a config that
// did not come from a file (the embedded default, or one built in code).
var ErrNoConfigFile = errors.New("the node's config did not come from a file")

// Reload re-reads the node's config file and applies it (SIGHUP,
// POST /v1/config/reload). An invalid file changes nothing; the error
// lists every problem with file:line.
func (n *Node) Reload() error {
	file := n.config().File
	if file == "" || n.config().File == embeddedName {
		return ErrNoConfigFile
	}
	cfg, err := configs.Load(file)
	if err != nil {
		return err
	}
	if err := CheckPlans(cfg); err != nil {
		return err
	}
	return n.Apply(cfg)
}

// embeddedName marks the embedded default config's File.
const embeddedName = "default.toml (embedded)"

// Apply swaps in a new validated config. Cells, endpoints and routing
// weights change atomically: a new routing snapshot is built beside the
// old and published with one swap, so in-flight requests finish on the old
// one and keep-alive connections to endpoints that stay are kept.
//
// Weights: a cell whose configured weight did not change keeps its live
// weight (a rollout's or an operator's); a cell whose configured weight
// changed takes the new value, unless a running rollout holds it, which
// keeps its weights; a rollout whose cells are removed is aborted. Listener addresses, the journal path and gossip need a
// restart; a change to them is refused rather than half-applied.
func (n *Node) Apply(cfg *configs.Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.cfg
	if err := restartOnly(old, cfg); err != nil {
		return err
	}
	tokens, err := loadTokens(cfg) // before any change: a bad token file changes nothing
	if err != nil {
		return err
	}
	if cfg.Listen.TLSCert != "" && old.Listen.TLSCert != "" {
		if err := n.loadCert(cfg); err != nil { // renewed certificates apply to new connections
			return err
		}
	}
	// Existing cells keep their live weights in the new snapshot; new
	// cells start at their configured weight. The controller then applies
	// configured-weight changes to cells no rollout holds, and aborts a
	// rollout whose cells the new config removed.
	specs := cellSpecs(cfg, n.proxy.Weights())
	if err := n.proxy.SetCells(specs); err != nil {
		return fmt.Errorf("apply config: %w", err)
	}
	if err := n.Controller().SyncCells(configWeights(cfg), "config-reload"); err != nil {
		n.log.Warn("reload: controller did not take the new cell set", "err", err)
	}
	n.proxy.SetTunnelTimeouts(cfg.Listen.TunnelIdleTimeout.Duration, cfg.Routing.TunnelDrain.Duration)
	if err := n.slo.SetConfig(sloConfig(cfg)); err != nil {
		n.log.Warn("reload: SLO config not applied", "err", err)
	}
	if n.admin != nil {
		n.admin.srv.SetTokens(tokens)
	}
	n.cfg = cfg
	n.configGen.Add(1)
	n.log.Info("config applied", "file", cfg.File, "cells", len(cfg.Cells))
	return nil
}

// restartOnly refuses changes that a reload cannot make safely.
func restartOnly(old, cfg *configs.Config) error {
	var errs []error
	if old.Listen.Addr != cfg.Listen.Addr {
		errs = append(errs, fmt.Errorf("listen.addr changed (%s → %s): needs a restart", old.Listen.Addr, cfg.Listen.Addr))
	}
	if old.Admin.Addr != cfg.Admin.Addr {
		errs = append(errs, fmt.Errorf("admin.addr changed: needs a restart"))
	}
	if old.State.Path != cfg.State.Path {
		errs = append(errs, fmt.Errorf("state.path changed: needs a restart"))
	}
	if (old.Listen.TLSCert == "") != (cfg.Listen.TLSCert == "") {
		errs = append(errs, fmt.Errorf("listen.tls_cert turned TLS on or off: needs a restart"))
	}
	if old.Routing.Seed != cfg.Routing.Seed {
		errs = append(errs, fmt.Errorf("routing.seed changed: it would move every user; needs a restart"))
	}
	if old.Gossip.Bind != cfg.Gossip.Bind || !slices.Equal(old.Gossip.Join, cfg.Gossip.Join) {
		errs = append(errs, fmt.Errorf("gossip changed: needs a restart"))
	}
	return errors.Join(errs...)
}
