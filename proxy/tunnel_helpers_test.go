package proxy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/wsecho"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// startWSUpstream starts a real WebSocket upstream (package wsecho) for
// the test.
func startWSUpstream(t testing.TB, name string) *wsecho.Server {
	t.Helper()
	s := wsecho.Start(name)
	t.Cleanup(s.Close)
	return s
}

// startBehindFrontDoor serves a proxy with one cell "a" on up behind the
// front door, as a node does (over TLS with cert, when not nil), and
// returns it with its address.
func startBehindFrontDoor(t testing.TB, opts Options, up *wsecho.Server, cert *tls.Certificate) (*Proxy, string) {
	t.Helper()
	return startEdge(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.Addr}}}, Hooks{}, cert)
}

// dialWS opens a WebSocket through the proxy at addr with gorilla's
// client, sending X-User-ID: user when user is not empty.
func dialWS(t testing.TB, addr, path, user string) (*websocket.Conn, *http.Response) {
	t.Helper()
	c, resp, err := tryDialWS(addr, path, user)
	if err != nil {
		t.Fatalf("dial %s%s: %v (response %v)", addr, path, err, statusOf(resp))
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

func tryDialWS(addr, path, user string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if user != "" {
		h.Set("X-User-ID", user)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws://"+addr+path, h)
}

func statusOf(r *http.Response) string {
	if r == nil {
		return "none"
	}
	return r.Status
}

// closeCode returns the close code in a read error (0 if the error is not
// a close frame).
func closeCode(err error) int {
	if ce, ok := err.(*websocket.CloseError); ok {
		return ce.Code
	}
	return 0
}

// metric returns the value of the series name{labels} that c collects, and
// whether it exists.
func metric(t testing.TB, c prometheus.Collector, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				if g := m.GetGauge(); g != nil {
					return g.GetValue(), true
				}
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// statusRecorder keeps the outcomes a cell's recorder receives.
type statusRecorder struct {
	mu   sync.Mutex
	recs []recorded
}

type recorded struct {
	status   int
	proxyErr bool
}

func (r *statusRecorder) Record(status int, proxyErr bool, _, _ time.Duration) {
	r.mu.Lock()
	r.recs = append(r.recs, recorded{status, proxyErr})
	r.mu.Unlock()
}

func (r *statusRecorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.recs...)
}

// keyFor finds an X-User-ID that the proxy routes to cell.
func keyFor(t testing.TB, p *Proxy, cell string) string {
	t.Helper()
	tab := p.snap.Load().table
	for i := range 10000 {
		k := fmt.Sprint("user-", i)
		if j := tab.PickKey([]byte(k)); j >= 0 && tab.Cell(j).Name == cell {
			return k
		}
	}
	t.Fatalf("no key routes to %s", cell)
	return ""
}
