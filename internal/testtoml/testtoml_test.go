package testtoml

import (
	"slices"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
)

// TestTextsParse: a node's text put together from these pieces parses
// (strictly: an unknown or misplaced key is an error) into the node they
// say — the [listen] keys in [listen], the cell's keys on the cell, the
// admin server on or off, the gossip join.
func TestTextsParse(t *testing.T) {
	text := Head("n1", "/tmp/j.db", `drain_timeout = "2s"`, "h2c = true") +
		Gossip("127.0.0.1:7946") +
		Cell("a", "v2", 0.5, "127.0.0.1:1", "127.0.0.1:2") + "protocol = \"h2c\"\n" +
		Cell("b", "", 100, "127.0.0.1:3")
	cfg, err := configs.Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if cfg.NodeName != "n1" || cfg.Listen.Addr != "127.0.0.1:0" || cfg.Listen.DrainTimeout.Duration != 2*time.Second || !cfg.Listen.H2C {
		t.Errorf("node and listen: %q %+v", cfg.NodeName, cfg.Listen)
	}
	if cfg.Admin.Addr != "127.0.0.1:0" || cfg.State.Path != "/tmp/j.db" {
		t.Errorf("admin %q, state %q", cfg.Admin.Addr, cfg.State.Path)
	}
	if cfg.Gossip.Bind != "127.0.0.1:0" || !slices.Equal(cfg.Gossip.Join, []string{"127.0.0.1:7946"}) {
		t.Errorf("gossip %+v", cfg.Gossip)
	}
	if len(cfg.Cells) != 2 {
		t.Fatalf("%d cells, want 2", len(cfg.Cells))
	}
	a, b := cfg.Cells[0], cfg.Cells[1]
	if a.Name != "a" || a.Version != "v2" || a.Weight != 0.5 || !slices.Equal(a.Endpoints, []string{"127.0.0.1:1", "127.0.0.1:2"}) || a.Protocol != "h2c" {
		t.Errorf("cell a: %+v", a)
	}
	if b.Name != "b" || b.Version != "" || b.Weight != 100 || !slices.Equal(b.Endpoints, []string{"127.0.0.1:3"}) {
		t.Errorf("cell b: %+v", b)
	}

	off, err := configs.Parse([]byte(HeadNoAdmin("n2", "/tmp/j.db")+Gossip("")+Cell("a", "", 1, "127.0.0.1:1")), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if off.Admin.Addr != "" || len(off.Gossip.Join) != 0 {
		t.Errorf("no admin, no join: admin %q, join %v", off.Admin.Addr, off.Gossip.Join)
	}
}
