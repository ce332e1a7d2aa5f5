package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/gossip/gossiptest"
	"github.com/cellgate/cellgate/internal/testwait"
)

// fastTiming shrinks failure detection and anti-entropy to fractions of a
// second so whole failure scenarios run in a few seconds on loopback; the
// gossip interval stays at the LAN default, so convergence figures are the
// product's.
func fastTiming(cfg Config) Config {
	cfg.ProbeInterval = 250 * time.Millisecond
	cfg.ProbeTimeout = 150 * time.Millisecond
	cfg.SuspicionMult = 2
	cfg.PushPullInterval = time.Second
	cfg.TCPTimeout = time.Second
	cfg.DeadNodeReclaimTime = 500 * time.Millisecond
	cfg.GossipToTheDeadTime = 5 * time.Second
	cfg.ReconnectInterval = time.Second
	cfg.JoinBackoff = 50 * time.Millisecond
	cfg.JoinBackoffMax = 500 * time.Millisecond
	return cfg
}

// testDoc is the test's document: a generation and a body. The test merge
// rule is the simplest one: a higher generation wins.
type testDoc struct {
	gen  uint64
	body string
}

func encodeDoc(d testDoc) []byte {
	return append(binary.AppendUvarint(nil, d.gen), d.body...)
}

func decodeDoc(b []byte) testDoc {
	gen, n := binary.Uvarint(b)
	if n <= 0 {
		return testDoc{}
	}
	return testDoc{gen: gen, body: string(b[n:])}
}

// testNode is one in-process cluster member with recording hooks.
type testNode struct {
	*Cluster
	logs *logCapture

	mu      sync.Mutex // guards the fields below
	docs    map[string]testDoc
	arrived map[string]time.Time // key@gen → first arrival
	merges  int
	slis    map[string][]byte
	health  map[string][]byte // newest health view per sender
	members []string
}

func newTestNode() *testNode {
	return &testNode{docs: map[string]testDoc{}, arrived: map[string]time.Time{}, slis: map[string][]byte{}, health: map[string][]byte{}, logs: &logCapture{}}
}

// mergeLocked applies the higher-generation-wins rule.
func (n *testNode) mergeLocked(key string, d testDoc) bool {
	if cur, ok := n.docs[key]; ok && cur.gen >= d.gen {
		return false
	}
	n.docs[key] = d
	id := fmt.Sprintf("%s@%d", key, d.gen)
	if _, ok := n.arrived[id]; !ok {
		n.arrived[id] = time.Now()
	}
	return true
}

func (n *testNode) hooks() Hooks {
	return Hooks{
		State: func() []byte {
			n.mu.Lock()
			defer n.mu.Unlock()
			var out []byte
			for k, d := range n.docs {
				out = binary.AppendUvarint(out, uint64(len(k)))
				out = append(out, k...)
				doc := encodeDoc(d)
				out = binary.AppendUvarint(out, uint64(len(doc)))
				out = append(out, doc...)
			}
			return out
		},
		MergeState: func(state []byte, from string) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.merges++
			for len(state) > 0 {
				kl, a := binary.Uvarint(state)
				key := string(state[a : a+int(kl)])
				state = state[a+int(kl):]
				dl, b := binary.Uvarint(state)
				n.mergeLocked(key, decodeDoc(state[b:b+int(dl)]))
				state = state[b+int(dl):]
			}
		},
		Document: func(key string, doc []byte, from string) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.mergeLocked(key, decodeDoc(doc))
		},
		SLI: func(from string, payload []byte) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.slis[from] = append([]byte(nil), payload...)
		},
		Health: func(from string, payload []byte) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.health[from] = append([]byte(nil), payload...)
		},
		Members: func(alive []string) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.members = alive
		},
		StateGeneration: func() float64 { return 7 },
	}
}

// publish sets a document locally (as its owner would) and publishes it.
func (n *testNode) publish(key string, d testDoc) {
	n.mu.Lock()
	n.mergeLocked(key, d)
	n.mu.Unlock()
	n.Publish(key, encodeDoc(d))
}

func (n *testNode) doc(key string) testDoc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.docs[key]
}

func (n *testNode) arrival(key string, gen uint64) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.arrived[fmt.Sprintf("%s@%d", key, gen)]
	return at, ok
}

// logCapture is a slog handler that keeps messages, so tests can await a
// log line as proof that something happened (e.g. a packet was rejected).
// With GOSSIP_TEST_LOG=1 it also prints them.
type logCapture struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		fmt.Fprintln(os.Stderr, r.Level, r.Message)
	}
	return nil
}

func (l *logCapture) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.msgs, func(m string) bool { return strings.Contains(m, substr) })
}

// nodeOpts customise one test node.
type nodeOpts struct {
	key       []byte
	join      []string
	net       *gossiptest.Net
	bind      string
	noTiming  bool
	configure func(*Config)
}

// startNode starts one node on 127.0.0.1 with a kernel-chosen port and
// registers its shutdown.
func startNode(t testing.TB, name string, o nodeOpts) *testNode {
	t.Helper()
	n := newTestNode()
	cfg := Config{NodeName: name, Bind: "127.0.0.1:0", Join: o.join, SecretKey: o.key, Logger: slog.New(n.logs)}
	if o.bind != "" {
		cfg.Bind = o.bind
	}
	if !o.noTiming {
		cfg = fastTiming(cfg)
	}
	if o.net != nil {
		tr, err := o.net.Transport(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = tr
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	c, err := New(cfg, n.hooks())
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	n.Cluster = c
	t.Cleanup(func() { _ = c.Shutdown() })
	return n
}

// startCluster starts size nodes n1..n<size> (zero-padded when size > 9, so
// names sort numerically), joined through the first, and waits until every
// node sees all of them.
func startCluster(t testing.TB, size int, o nodeOpts) []*testNode {
	t.Helper()
	nodes := make([]*testNode, size)
	for i := range size {
		oo := o
		if i > 0 {
			oo.join = []string{nodes[0].Addr()}
		}
		nodes[i] = startNode(t, nodeName(i+1, size), oo)
	}
	waitConverged(t, nodes, size, 10*time.Second+time.Duration(size)*time.Second)
	return nodes
}

func nodeName(i, size int) string {
	if size > 9 {
		return fmt.Sprintf("n%02d", i)
	}
	return fmt.Sprintf("n%d", i)
}

// waitConverged waits until every node sees want alive members.
func waitConverged(t testing.TB, nodes []*testNode, want int, d time.Duration) {
	t.Helper()
	testwait.For(t, d, fmt.Sprintf("%d nodes to see %d members", len(nodes), want), func() bool {
		for _, n := range nodes {
			if len(n.Members()) != want {
				return false
			}
		}
		return true
	})
}
