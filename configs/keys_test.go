package configs

import (
	"slices"
	"testing"
	"time"
)

func TestKeysListsLeavesOfEveryTable(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"node_name", "listen.addr", "slo.fast_burn.long", "cell.weight", "plan", "gossip.secret_key_file"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %q: %v", want, keys)
		}
	}
	for _, bad := range []string{"listen", "cell", "slo.fast_burn", "File"} {
		if slices.Contains(keys, bad) {
			t.Errorf("Keys() lists the table or untagged field %q", bad)
		}
	}
}

func TestDiffNamesChangedKeys(t *testing.T) {
	a := Default()
	a.Cells = []Cell{{Name: "x", Weight: 1, Endpoints: []string{"h:1"}}}
	b := a
	b.Cells = []Cell{{Name: "x", Weight: 2, Endpoints: []string{"h:1"}}}
	b.SLO.FastBurn.Short = D(time.Minute)
	b.Routing.StickyKey = []string{"ip"}
	a.Listen.ReadTimeout, b.Listen.ReadTimeout = D(time.Second), Duration{Duration: time.Second, raw: "1000ms"}
	got := Diff(&a, &b)
	want := []string{"routing.sticky_key", "cell.weight", "slo.fast_burn.short"}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %v, want %v", got, want)
	}
	c := b
	c.Cells = append(slices.Clone(b.Cells), Cell{Name: "y"})
	if got := Diff(&b, &c); !slices.Equal(got, []string{"cell.name", "cell.version", "cell.weight", "cell.endpoints", "cell.health", "cell.protocol", "cell.tls"}) {
		t.Fatalf("a cell added: Diff = %v", got)
	}
	if got := Diff(&a, &a); len(got) != 0 {
		t.Fatalf("Diff of a config with itself = %v", got)
	}
}
