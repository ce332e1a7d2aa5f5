package cellgate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/proxy"
)

// worstCells is a config past every bound of a view: more cells than
// listed, names longer than clipped, every endpoint out.
func worstCells() []proxy.CellStatus {
	var cells []proxy.CellStatus
	for i := range 3 * maxViewCells {
		c := proxy.CellStatus{Name: strings.Repeat("c", 63) + string(rune('a'+i%26))}
		for j := range 3 * maxViewOut {
			c.Endpoints = append(c.Endpoints, proxy.EndpointStatus{Addr: strings.Repeat("h", 250) + ":" + string(rune('0'+j%10)), CheckDown: j%2 == 0})
		}
		cells = append(cells, c)
	}
	return cells
}

// TestHealthViewBounded: however many cells and endpoints a config has,
// one view stays under maxHealthViewBytes, counting what it leaves out.
func TestHealthViewBounded(t *testing.T) {
	cells := worstCells()
	v := healthView{Epoch: 1, Seq: 1, At: time.Now(), Cells: viewOf(cells), MoreCells: len(cells) - maxViewCells}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxHealthViewBytes {
		t.Fatalf("worst-case view is %d bytes, over the %d bound", len(b), maxHealthViewBytes)
	}
	t.Logf("worst-case view: %d bytes for %d cells of %d endpoints", len(b), len(cells), len(cells[0].Endpoints))
	got, err := decodeHealthView(b)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Cells[0]
	if len(got.Cells) != maxViewCells || got.MoreCells != 2*maxViewCells || len(c.Out) != maxViewOut ||
		c.MoreOut != 2*maxViewOut || c.Endpoints != 3*maxViewOut || c.InRotation != 0 || c.Out[0].Why != "check" || c.Out[1].Why != "ejected" {
		t.Fatalf("decoded %d cells (+%d), first %+v", len(got.Cells), got.MoreCells, c)
	}
}

// TestDecodeHealthViewHoldsPeersToBounds: a peer's view past the bounds
// (another version, or a broken peer) is cut to them; one past the byte
// bound or not JSON is refused.
func TestDecodeHealthViewHoldsPeersToBounds(t *testing.T) {
	var big healthView
	for range 2 * maxViewCells {
		c := viewOf([]proxy.CellStatus{{Name: strings.Repeat("n", 300)}})[0]
		c.Name = strings.Repeat("n", 300)
		c.Endpoints, c.MoreOut = -5, -1
		big.Cells = append(big.Cells, c)
	}
	b, _ := json.Marshal(big)
	v, err := decodeHealthView(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Cells) != maxViewCells || v.MoreCells != maxViewCells || len(v.Cells[0].Name) != maxViewName ||
		v.Cells[0].Endpoints != 0 || v.Cells[0].MoreOut != 0 {
		t.Fatalf("kept %d cells (+%d), first %+v", len(v.Cells), v.MoreCells, v.Cells[0])
	}
	for name, in := range map[string][]byte{
		"too large": []byte(`{"cells":[` + strings.Repeat(`{"name":"x"},`, maxHealthViewBytes/12) + `{}]}`),
		"not json":  []byte("{"),
		"wrong":     []byte(`{"cells": 3}`),
	} {
		if _, err := decodeHealthView(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestHealthViewsNewestPerNode: a view reordered behind a newer one from
// the same sender is ignored; a restarted sender (newer epoch) replaces
// its old views whatever its sequence; views of departed nodes go.
func TestHealthViewsNewestPerNode(t *testing.T) {
	var h healthViews
	now := time.Now()
	h.store("n2", healthView{Epoch: 1, Seq: 5, At: now}, now)
	h.store("n2", healthView{Epoch: 1, Seq: 4, At: now.Add(-time.Second)}, now)
	if got := h.list(); len(got) != 1 || !got[0].At.Equal(now) {
		t.Fatalf("an older view replaced a newer one: %+v", got)
	}
	h.store("n2", healthView{Epoch: 2, Seq: 1, At: now.Add(time.Second)}, now)
	h.store("n1", healthView{Epoch: 1, Seq: 1, At: now}, now)
	got := h.list()
	if len(got) != 2 || got[0].Node != "n1" || !got[1].At.Equal(now.Add(time.Second)) {
		t.Fatalf("after a restart of n2: %+v", got)
	}
	h.keep([]string{"n1", "n3"})
	if got := h.list(); len(got) != 1 || got[0].Node != "n1" {
		t.Fatalf("after n2 left: %+v", got)
	}
}

// FuzzDecodeHealthView: a peer's view never panics the decoder, and what
// it accepts is within the bounds of a view this node would send.
func FuzzDecodeHealthView(f *testing.F) {
	b, _ := json.Marshal(healthView{Epoch: 1, Seq: 2, Cells: viewOf(worstCells()[:3])})
	f.Add(b)
	f.Add([]byte(`{"cells":[{"name":"a","up":false,"endpoints":1,"out":[{"addr":"x:1","why":"nope"}]}]}`))
	f.Add([]byte(`{"more_cells":-3,"cells":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeHealthView(b)
		if err != nil {
			return
		}
		if len(v.Cells) > maxViewCells || v.MoreCells < 0 {
			t.Fatalf("%d cells, %d more", len(v.Cells), v.MoreCells)
		}
		for _, c := range v.Cells {
			if len(c.Name) > maxViewName || len(c.Out) > maxViewOut || c.MoreOut < 0 || c.Endpoints < 0 || c.InRotation < 0 {
				t.Fatalf("cell out of bounds: %+v", c)
			}
			for _, o := range c.Out {
				if len(o.Addr) > maxViewName || (o.Why != "check" && o.Why != "ejected" && o.Why != "unknown") {
					t.Fatalf("endpoint out of bounds: %+v", o)
				}
			}
		}
	})
}
