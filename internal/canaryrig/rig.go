// Package canaryrig runs a whole canary setup on one machine: a cellgate
// node and three in-process demo cells — stable-a and stable-b on v1,
// canary-1 on v2 at weight 0 — with the node's journal in a temporary
// directory. `cellgate demo` and `cellgate bench scenario rollout` both
// stand on it.
package canaryrig

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/rollout"
)

// The rig's cells, in config order.
const (
	StableA = "stable-a"
	StableB = "stable-b"
	Canary  = "canary-1"
)

// Baseline are the stable cells the canary is compared with.
var Baseline = []string{StableA, StableB}

// Options shape a rig.
type Options struct {
	// Name is the node's name and the temporary directory's prefix.
	Name string
	// AdminAddr is the admin listener; empty turns the admin API off.
	AdminAddr string
	// Tables is TOML appended after [listen], [admin] and [state]:
	// [routing], [slo], [rollout] and so on. Cells are added by the rig.
	Tables string
	// Logger receives the node's log. Nil: discarded.
	Logger *slog.Logger
}

// Rig is a running node with its demo cells.
type Rig struct {
	Node  *cellgate.Node
	Cells map[string]*democell.Server
	dir   string
}

// Start launches the cells and the node.
func Start(o Options) (*Rig, error) {
	r := &Rig{Cells: map[string]*democell.Server{}}
	var err error
	if r.dir, err = os.MkdirTemp("", "cellgate-"+o.Name+"-"); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	for _, c := range []struct{ name, version string }{{StableA, "v1"}, {StableB, "v1"}, {Canary, "v2"}} {
		s, err := democell.Start(c.name, c.version)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Cells[c.name] = s
	}
	cfg, err := configs.Parse([]byte(r.config(o)), o.Name+".toml (generated)")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	if r.Node, err = cellgate.New(cfg, cellgate.Options{Logger: o.Logger}); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.Node.Start(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// config renders the node's config.
func (r *Rig) config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node_name = %q\n[listen]\naddr = \"127.0.0.1:0\"\ndrain_timeout = \"2s\"\n[admin]\naddr = %q\n[state]\npath = %q\n%s\n",
		o.Name, o.AdminAddr, filepath.Join(r.dir, "journal.db"), o.Tables)
	for _, c := range []struct {
		name, version string
		weight        int
	}{{StableA, "v1", 100}, {StableB, "v1", 100}, {Canary, "v2", 0}} {
		fmt.Fprintf(&b, "[[cell]]\nname = %q\nversion = %q\nweight = %d\nendpoints = [%q]\n", c.name, c.version, c.weight, r.Cells[c.name].Addr())
	}
	return b.String()
}

// URL is the node's client URL.
func (r *Rig) URL() string { return "http://" + r.Node.Addr() + "/" }

// Plan is a canary plan over the rig's cells: 1, 5, 25, 50, 100 %.
func Plan(name string, bake time.Duration, minRequests int, release rollout.Release) rollout.Plan {
	return rollout.Plan{
		Name:        name,
		Strategy:    rollout.StrategyCanary,
		Targets:     []string{Canary},
		Baseline:    Baseline,
		Steps:       []float64{1, 5, 25, 50, 100},
		Bake:        rollout.Duration(bake),
		MinRequests: int64(minRequests),
		Release:     release,
	}
}

// Close stops the node (draining for at most 5 s), the cells, and removes
// the state directory.
func (r *Rig) Close() {
	if r.Node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.Node.Shutdown(ctx)
		cancel()
	}
	for _, c := range r.Cells {
		c.Close()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// Sleep waits d or until ctx is done; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
