package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPerCellBreakdown serves keys from two cells by their last digit, the
// way a sticky proxy would, and checks the breakdown and that the response
// hook sees which cell served which key.
func TestPerCellBreakdown(t *testing.T) {
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		key := ctx.Request.Header.Peek("X-User-ID")
		cell := "stable-a"
		if key[len(key)-1]%2 == 1 {
			cell = "canary"
		}
		ctx.Response.Header.Set(HeaderCell, cell)
		if string(key) == "user-9" {
			ctx.Response.Header.Set(HeaderError, "injected")
			ctx.SetStatusCode(502)
		}
	})
	cfg := testConfig(url)
	cfg.Duration = 300 * time.Millisecond
	cfg.Keys = 10
	var (
		mu     sync.Mutex
		owners = map[string]string{} // key → cell
		moved  int
	)
	res, err := Run(context.Background(), cfg, Hooks{OnResponse: func(o Observation) {
		mu.Lock()
		defer mu.Unlock()
		k := string(o.Key)
		if prev, ok := owners[k]; ok && prev != string(o.Cell) {
			moved++
		}
		owners[k] = string(o.Cell)
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Which keys a 300 ms run draws depends on how many requests a loaded
	// machine fits in (a fresh-clone make test saw 9 of 10); each key seen
	// must be on its own cell.
	if moved != 0 || len(owners) < 2 {
		t.Errorf("moved %d, keys seen %d: want 0 and at least 2", moved, len(owners))
	}
	for k, cell := range owners {
		want := "stable-a"
		if k[len(k)-1]%2 == 1 {
			want = "canary"
		}
		if cell != want {
			t.Errorf("key %s seen on %s, want %s", k, cell, want)
		}
	}
	if len(res.Cells) != 2 || res.Cells[0].Cell != "canary" || res.Cells[1].Cell != "stable-a" {
		t.Fatalf("cells %+v, want canary and stable-a", res.Cells)
	}
	canary, stable := res.Cells[0], res.Cells[1]
	if canary.Requests+stable.Requests != res.Requests {
		t.Errorf("cell requests %d + %d != %d", canary.Requests, stable.Requests, res.Requests)
	}
	if canary.Errors == 0 || stable.Errors != 0 || canary.Errors != res.ErrorsBy[causeCellgatePrefix+"injected"] {
		t.Errorf("errors canary %d stable %d by cause %v", canary.Errors, stable.Errors, res.ErrorsBy)
	}
	if canary.P99 <= 0 || share(canary)+share(stable) < 99.9 {
		t.Errorf("canary p99 %v, shares %.1f %.1f", canary.P99, canary.Share, stable.Share)
	}
	var out strings.Builder
	if err := WriteText(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cells (X-Cellgate-Cell)", "canary", "stable-a", "cellgate: injected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

func share(c CellResult) float64 { return c.Share }

// TestNoCellHeaderNoBreakdown: a plain upstream gives no cell table.
func TestNoCellHeaderNoBreakdown(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(url)
	cfg.Duration = 100 * time.Millisecond
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 0 {
		t.Errorf("cells %+v, want none", res.Cells)
	}
}

// TestCellCap keeps a target with a new cell name per response from
// growing the breakdown without bound.
func TestCellCap(t *testing.T) {
	s := newShard()
	x := &sample{status: 200}
	for i := range maxCells + 10 {
		x.cell = []byte("cell-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		s.record(x)
	}
	if len(s.cells) != maxCells+1 || s.cells[cellOverflow].requests != 10 {
		t.Errorf("%d cells, overflow %v", len(s.cells), s.cells[cellOverflow])
	}
}
