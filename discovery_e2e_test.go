package cellgate_test

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cellgate/cellgate/discovery/dnstest"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestDiscoveryUnderLoad: cell b's endpoints come from DNS records on an
// in-test authoritative server. Under open-loop keyed load, an endpoint is
// added and another removed by changing the records, with no failed
// request; then the DNS server stops, and the node keeps the last good set
// and reports the failure. Run for `srv:` (each target at its own port)
// and `dns:` (each A record an endpoint at one port).
func TestDiscoveryUnderLoad(t *testing.T) {
	for _, kind := range []string{"srv", "dns"} {
		t.Run(kind, func(t *testing.T) { discoveryUnderLoad(t, kind) })
	}
}

func discoveryUnderLoad(t *testing.T, kind string) {
	d := dnstest.Start(t)
	a, err := democell.Start("a", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b1, err := democell.Start("b", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b1.Close() })
	// b2 listens on another loopback address at b1's port, so one dns:
	// name with two A records names both.
	b2, err := democell.StartAt("b", "v1", "127.0.0.2:"+portOf(t, b1.Addr()))
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	t.Cleanup(func() { b2.Close() })

	var endpoint string
	records := func(bs ...*democell.Server) {
		var rrs []string
		for _, b := range bs {
			host, port := hostOf(t, b.Addr()), portOf(t, b.Addr())
			if kind == "srv" {
				target := map[string]string{"127.0.0.1": "b1.test.", "127.0.0.2": "b2.test."}[host]
				rrs = append(rrs, fmt.Sprintf("_http._tcp.b.test. 1 IN SRV 0 0 %s %s", port, target))
			} else {
				rrs = append(rrs, "b.test. 1 IN A "+host)
			}
		}
		if kind == "srv" {
			d.Set(t, "_http._tcp.b.test", rrs...)
		} else {
			d.Set(t, "b.test", rrs...)
		}
	}
	d.Set(t, "b1.test", "b1.test. 1 IN A 127.0.0.1")
	d.Set(t, "b2.test", "b2.test. 1 IN A 127.0.0.2")
	if kind == "srv" {
		endpoint = "srv:_http._tcp.b.test"
	} else {
		endpoint = "dns:b.test:" + portOf(t, b1.Addr())
	}
	records(b1)

	c := startFromText(t, testtoml.Head("disc-1", t.TempDir()+"/j.db")+fmt.Sprintf(`[routing]
sticky_key = ["header:X-User-ID"]
[discovery]
interval = "50ms"
resolver = %q
`, d.Addr)+testtoml.Cell("a", "v1", 100, a.Addr())+testtoml.Cell("b", "v1", 100, endpoint))
	endpoints := func() []string {
		for _, cs := range c.node.Proxy().Status() {
			if cs.Name == "b" {
				var out []string
				for _, e := range cs.Endpoints {
					out = append(out, e.Addr)
				}
				return out
			}
		}
		return nil
	}
	if got := endpoints(); !slices.Equal(got, []string{b1.Addr()}) {
		t.Fatalf("b's endpoints at start: %v, want [%s]", got, b1.Addr())
	}
	l := startLoad(t, c.url(), 400, 500)
	testwait.For(t, 60*time.Second, "load on b1", func() bool { return b1.Requests() > 50 })

	records(b1, b2)
	testwait.For(t, 60*time.Second, "b2 added and serving", func() bool { return b2.Requests() > 50 })
	records(b2)
	testwait.For(t, 60*time.Second, "b1 removed", func() bool { return slices.Equal(endpoints(), []string{b2.Addr()}) })
	// Removed, b1 drains: stop it the way a scaled-down pod stops, and no
	// request may fail for it.
	settled := b1.Requests()
	b1.Close()
	after := b2.Requests()
	testwait.For(t, 60*time.Second, "b2 serving b's users alone", func() bool { return b2.Requests() > after+100 })
	mark := b2.Requests()

	d.Stop()
	testwait.For(t, 60*time.Second, "the lookup failure reported", func() bool {
		doc, err := backendStatus(c)
		if err != nil {
			t.Fatal(err)
		}
		return len(doc.Discovery) == 1 && doc.Discovery[0].Error != "" && slices.Equal(doc.Discovery[0].Endpoints, []string{b2.Addr()})
	})
	testwait.For(t, 60*time.Second, "b2 still serving with DNS down", func() bool { return b2.Requests() > mark+50 })
	l.stop()
	doc, _ := backendStatus(c)
	t.Logf("%s: b1 → b1+b2 → b2 by DNS records under %d requests (%d failed); b1 served %d, b2 %d; DNS down: kept %v, reported %q",
		kind, l.requests.Load(), l.failed.Load(), settled, b2.Requests(), doc.Discovery[0].Endpoints, doc.Discovery[0].Error)
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed while endpoints changed by DNS", n)
	}
	if got := endpoints(); !slices.Equal(got, []string{b2.Addr()}) {
		t.Fatalf("with DNS down b's endpoints are %v, want the last good [%s]", got, b2.Addr())
	}
}

func hostOf(t *testing.T, addr string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
