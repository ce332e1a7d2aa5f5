package proxy

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// wsUpstream is a real WebSocket server (gorilla/websocket's) on loopback.
// Paths: /echo echoes every message; /push sends numbered binary messages
// of varied sizes (up to 70 000 bytes, so every length encoding occurs)
// as fast as it can; /tick sends a text message every 20 ms; /deny answers
// the handshake 403; /other switches to a protocol that is not websocket;
// anything else is a plain 200 naming the upstream.
type wsUpstream struct {
	name string
	addr string

	mu         sync.Mutex
	handshakes []http.Header // guarded by mu
	closes     []int         // close codes the upstream received; guarded by mu
}

func startWSUpstream(t testing.TB, name string) *wsUpstream {
	t.Helper()
	u := &wsUpstream{name: name}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/deny":
			http.Error(w, "no websockets for you", http.StatusForbidden)
			return
		case "/other":
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "foo")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		case "/echo", "/push", "/tick":
		default:
			fmt.Fprintf(w, "plain %s", name)
			return
		}
		u.mu.Lock()
		u.handshakes = append(u.handshakes, r.Header.Clone())
		u.mu.Unlock()
		c, err := up.Upgrade(w, r, http.Header{"X-Upstream": {name}})
		if err != nil {
			return
		}
		defer c.Close()
		c.SetCloseHandler(func(code int, text string) error {
			u.mu.Lock()
			u.closes = append(u.closes, code)
			u.mu.Unlock()
			msg := websocket.FormatCloseMessage(code, "")
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return nil
		})
		switch r.URL.Path {
		case "/echo":
			for {
				mt, m, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(mt, m); err != nil {
					return
				}
			}
		case "/push":
			go discardReads(c)
			for i := uint32(0); ; i++ {
				if err := c.WriteMessage(websocket.BinaryMessage, pushMessage(i)); err != nil {
					return
				}
			}
		case "/tick":
			go discardReads(c)
			for i := 0; ; i++ {
				if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("tick ", i))); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond) // the upstream's own pace, not a wait in the test
			}
		}
	}))
	t.Cleanup(srv.Close)
	u.addr = strings.TrimPrefix(srv.URL, "http://")
	return u
}

// discardReads reads (and so answers control frames) until the connection ends.
func discardReads(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// pushSizes cycle through all three frame length encodings.
var pushSizes = []int{4, 125, 126, 300, 65535, 65536, 70000, 17}

// pushMessage is message i of /push: its number, then a byte pattern
// derived from it, so a message cut or spliced anywhere is detected.
func pushMessage(i uint32) []byte {
	n := pushSizes[int(i)%len(pushSizes)]
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, i)
	for j := 4; j < n; j++ {
		b[j] = byte(i) + byte(j)
	}
	return b
}

func (u *wsUpstream) lastHandshake() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.handshakes) == 0 {
		return nil
	}
	return u.handshakes[len(u.handshakes)-1]
}

func (u *wsUpstream) closeCodes() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int(nil), u.closes...)
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
