package proxy

import (
	"net/http"
	"testing"
	"time"
)

// TestH2CellSurvivesPoolRenew: a reload that renews the upstream pools
// (max_conns_per_endpoint, max_idle_conn_duration) keeps an HTTP/2 cell's
// endpoints speaking HTTP/2.
func TestH2CellSurvivesPoolRenew(t *testing.T) {
	good := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	})
	opts := testOptions()
	p, addr := startEdge(t, opts, []CellSpec{{Name: "h", Version: "v1", Weight: 1, Protocol: ProtoH2C,
		Endpoints: []string{good}}}, Hooks{}, nil)
	for i, renew := range []func(*Options){
		func(*Options) {},
		func(o *Options) { o.MaxConnsPerEndpoint = 7 },
		func(o *Options) { o.MaxIdleConnDuration = 3 * time.Second },
	} {
		renew(&opts)
		if err := p.SetOptions(opts); err != nil {
			t.Fatal(err)
		}
		r := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if r.StatusCode() != 200 || string(r.Header.Peek("X-Proto")) != "HTTP/2.0" {
			t.Fatalf("after reload %d: %d, upstream saw %q (error %q)", i, r.StatusCode(), r.Header.Peek("X-Proto"), r.Header.Peek("X-Cellgate-Error"))
		}
	}
}
