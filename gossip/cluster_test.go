package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cellgate/cellgate/gossip/gossiptest"
	"github.com/cellgate/cellgate/internal/testwait"
)

// convergence publishes count documents from rotating nodes and returns, per
// publish, the time until the last other node had it.
func convergence(t testing.TB, nodes []*testNode, count int, deadline time.Duration) []time.Duration {
	t.Helper()
	var lat []time.Duration
	for i := range count {
		origin := nodes[i%len(nodes)]
		key := fmt.Sprintf("conv-%d", i)
		start := time.Now()
		origin.publish(key, testDoc{gen: 1, body: "weights"})
		var last time.Time
		var missing []string
		for end := start.Add(deadline); ; time.Sleep(10 * time.Millisecond) {
			last, missing = start, missing[:0]
			for _, n := range nodes {
				at, ok := n.arrival(key, 1)
				if !ok {
					missing = append(missing, fmt.Sprintf("%s(sees %d)", n.Name(), len(n.Members())))
				} else if at.After(last) {
					last = at
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("publish %s from %s did not reach %v within %v", key, origin.Name(), missing, deadline)
			}
		}
		lat = append(lat, last.Sub(start))
	}
	slices.Sort(lat)
	return lat
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func TestFiveNodesConvergeOnPublish(t *testing.T) {
	nodes := startCluster(t, 5, nodeOpts{})
	for _, n := range nodes {
		if got := n.Members(); !slices.Equal(got, []string{"n1", "n2", "n3", "n4", "n5"}) {
			t.Fatalf("%s members = %v", n.Name(), got)
		}
	}
	lat := convergence(t, nodes, 20, 5*time.Second)
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	t.Logf("5 nodes, 20 publishes: convergence p50=%v p99=%v max=%v (goal <= 1s)", p50, p99, lat[len(lat)-1])
	// The Members hook saw the full cluster too.
	testwait.For(t, 2*time.Second, "Members hook", func() bool {
		nodes[4].mu.Lock()
		defer nodes[4].mu.Unlock()
		return len(nodes[4].members) == 5
	})
}

func TestNewerDocumentSupersedesQueuedOne(t *testing.T) {
	// A lone node has nobody to gossip to, so its queue keeps what it is given.
	solo := startNode(t, "solo", nodeOpts{})
	solo.Publish("ranker", encodeDoc(testDoc{gen: 1, body: "old"}))
	solo.Publish("other", encodeDoc(testDoc{gen: 1, body: "x"}))
	solo.Publish("ranker", encodeDoc(testDoc{gen: 2, body: "new"}))
	if got := solo.queue.NumQueued(); got != 2 {
		t.Fatalf("queued = %d, want 2 (one per key)", got)
	}
	msgs := solo.queue.GetBroadcasts(0, 64<<10)
	var bodies []string
	for _, b := range msgs {
		m, err := decodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, m.Key+"="+decodeDoc(m.Payload).body)
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"other=x", "ranker=new"}) {
		t.Fatalf("queued broadcasts = %v", bodies)
	}

	// End to end, two quick versions leave everyone on the newer one.
	nodes := startCluster(t, 3, nodeOpts{})
	nodes[0].publish("ranker", testDoc{gen: 1, body: "old"})
	nodes[0].publish("ranker", testDoc{gen: 2, body: "new"})
	testwait.For(t, 5*time.Second, "newer version everywhere", func() bool {
		for _, n := range nodes {
			if n.doc("ranker").body != "new" {
				return false
			}
		}
		return true
	})
}

func TestLateJoinerReceivesFullState(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	nodes[0].publish("a", testDoc{gen: 3, body: "a3"})
	nodes[1].publish("b", testDoc{gen: 1, body: "b1"})
	testwait.For(t, 5*time.Second, "docs on n3", func() bool {
		return nodes[2].doc("a").gen == 3 && nodes[2].doc("b").gen == 1
	})
	late := startNode(t, "n4", nodeOpts{join: []string{nodes[2].Addr()}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := late.WaitJoined(ctx); err != nil {
		t.Fatalf("late joiner: %v", err)
	}
	testwait.For(t, 5*time.Second, "late joiner to merge full state", func() bool {
		return late.doc("a") == testDoc{gen: 3, body: "a3"} && late.doc("b") == testDoc{gen: 1, body: "b1"}
	})
	late.mu.Lock()
	merges := late.merges
	late.mu.Unlock()
	if merges == 0 {
		t.Fatal("late joiner got the docs without a push/pull merge")
	}
}

func TestLargeDocumentGoesOverTCP(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	body := strings.Repeat("w", 6<<10)
	nodes[1].publish("big", testDoc{gen: 1, body: body})
	testwait.For(t, 5*time.Second, "large doc everywhere", func() bool {
		return nodes[0].doc("big").body == body && nodes[2].doc("big").body == body
	})
	// A send is counted when SendReliable returns, which can be after the
	// receiver merged the document: await the count rather than read it.
	testwait.For(t, 5*time.Second, "two tcp document sends", func() bool {
		return nodes[1].stats.sentN[msgDocument][pathTCP].Load() >= 2
	})
	if got := nodes[1].stats.sentN[msgDocument][pathUDP].Load(); got != 0 {
		t.Fatalf("udp document sends = %d, want 0 for a %d-byte doc", got, len(body))
	}
}

func TestSLIPayloadsReachEveryNode(t *testing.T) {
	nodes := startCluster(t, 5, nodeOpts{})
	payload := func(name string) []byte { return bytes.Repeat([]byte(name), 1500) } // ~3-4.5 KB
	for _, n := range nodes {
		n.SendSLI(payload(n.Name()))
	}
	testwait.For(t, 5*time.Second, "every SLI payload on every node", func() bool {
		for _, n := range nodes {
			n.mu.Lock()
			got := len(n.slis)
			n.mu.Unlock()
			if got != len(nodes)-1 {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		for from, p := range n.slis {
			if !bytes.Equal(p, payload(from)) {
				t.Fatalf("%s got a corrupted payload from %s", n.Name(), from)
			}
		}
	}
}

// TestHealthViewsReachEveryNode: each node's health view reaches every
// other node as its own message type (not as an SLI payload or a
// document), and a newer view from a node reaches them too.
func TestHealthViewsReachEveryNode(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	view := func(name string, seq int) []byte { return fmt.Appendf(nil, "%s view %d", name, seq) }
	for seq := range 2 {
		for _, n := range nodes {
			n.SendHealth(view(n.Name(), seq))
		}
		testwait.For(t, 10*time.Second, "every node's newest view on every other node", func() bool {
			for _, n := range nodes {
				for _, o := range nodes {
					n.mu.Lock()
					got := n.health[o.Name()]
					n.mu.Unlock()
					if o != n && !bytes.Equal(got, view(o.Name(), seq)) {
						return false
					}
				}
			}
			return true
		})
	}
	for _, n := range nodes {
		n.mu.Lock()
		slis := len(n.slis)
		n.mu.Unlock()
		if slis != 0 {
			t.Fatalf("%s took health views for SLI payloads (%d)", n.Name(), slis)
		}
	}
}

func TestDeciderFailover(t *testing.T) {
	nodes := startCluster(t, 5, nodeOpts{})
	for _, n := range nodes {
		if n.Decider() != "n1" || n.IsDecider() != (n.Name() == "n1") {
			t.Fatalf("%s: decider %s, IsDecider %v", n.Name(), n.Decider(), n.IsDecider())
		}
	}
	// Graceful leave: n2 takes over and n1 no longer counts in the last
	// known membership. The bounds below only catch a hang: under -race on
	// a busy 2-core machine the leave broadcast alone took over 2 s.
	if err := nodes[0].Leave(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = nodes[0].Shutdown()
	rest := nodes[1:]
	testwait.For(t, 30*time.Second, "n2 to become decider after n1 left", func() bool {
		for _, n := range rest {
			if n.Decider() != "n2" || len(n.KnownMembers()) != 4 {
				return false
			}
		}
		return true
	})
	if !rest[0].IsDecider() {
		t.Fatal("n2 does not know it is the decider")
	}
	// Crash: n3 takes over; n2 still counts as known, 3 of 4 alive is a
	// majority.
	_ = nodes[1].Shutdown()
	rest = nodes[2:]
	start := time.Now()
	testwait.For(t, 30*time.Second, "n3 to become decider after n2 died", func() bool {
		for _, n := range rest {
			if n.Decider() != "n3" {
				return false
			}
		}
		return true
	})
	t.Logf("decider takeover after a crash: %v", time.Since(start))
	for _, n := range rest {
		if got := len(n.KnownMembers()); got != 4 || !n.HasMajority() {
			t.Fatalf("%s: known %d, majority %v; want 4, true", n.Name(), got, n.HasMajority())
		}
	}
}

func TestPartitionMinorityLosesMajorityAndStateConvergesAfterHeal(t *testing.T) {
	pn := gossiptest.NewNet()
	nodes := startCluster(t, 5, nodeOpts{net: pn})
	minority, majority := nodes[:2], nodes[2:]
	nodes[0].publish("ranker", testDoc{gen: 1, body: "progressing"})
	testwait.For(t, 5*time.Second, "doc everywhere before the split", func() bool {
		return nodes[4].doc("ranker").gen == 1
	})

	pn.Split([]string{"n1", "n2"}, []string{"n3", "n4", "n5"})
	testwait.For(t, 10*time.Second, "each side to see only itself", func() bool {
		for _, n := range minority {
			if len(n.Members()) != 2 || n.HasMajority() {
				return false
			}
		}
		for _, n := range majority {
			if len(n.Members()) != 3 || !n.HasMajority() {
				return false
			}
		}
		return true
	})
	if minority[0].Decider() != "n1" || majority[0].Decider() != "n3" {
		t.Fatalf("deciders: minority %s, majority %s", minority[0].Decider(), majority[0].Decider())
	}
	// Writes on both sides: the minority reverts (generation 3), the
	// majority promotes at a lower generation and adds another document.
	minority[1].publish("ranker", testDoc{gen: 3, body: "rolled_back"})
	majority[0].publish("ranker", testDoc{gen: 2, body: "promoted"})
	majority[2].publish("other", testDoc{gen: 1, body: "o1"})
	testwait.For(t, 5*time.Second, "writes within each side", func() bool {
		return minority[0].doc("ranker").gen == 3 && majority[1].doc("ranker").gen == 2 && majority[0].doc("other").gen == 1
	})
	if minority[0].doc("other").gen != 0 {
		t.Fatal("a document crossed the partition")
	}

	pn.Heal()
	waitConverged(t, nodes, 5, 10*time.Second)
	testwait.For(t, 10*time.Second, "state to converge after heal", func() bool {
		for _, n := range nodes {
			if n.doc("ranker") != (testDoc{gen: 3, body: "rolled_back"}) || n.doc("other").gen != 1 {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if !n.HasMajority() {
			t.Fatalf("%s has no majority after heal", n.Name())
		}
	}
}

func TestWrongOrMissingKeyCannotJoinOrInject(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	nodes := startCluster(t, 3, nodeOpts{key: key})
	seed := nodes[0]
	cases := []struct {
		name string
		key  []byte
		// wantLog is what the seed logs when it rejects the intruder's packet.
		wantLog string
	}{
		{"wrong key", bytes.Repeat([]byte{8}, 32), "Decrypt packet failed"},
		{"no key", nil, "Decrypt packet failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := startNode(t, "intruder-"+strings.ReplaceAll(tc.name, " ", "-"), nodeOpts{key: tc.key, join: []string{seed.Addr()}})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := bad.WaitJoined(ctx); err == nil {
				t.Fatal("intruder joined")
			}
			// Inject a document directly, by UDP and by TCP, as a rogue
			// node would.
			frame := encodeMessage(message{Type: msgDocument, Key: "ranker", From: bad.Name(), Payload: encodeDoc(testDoc{gen: 99, body: "evil"})})
			target := seed.ml.LocalNode()
			if err := bad.ml.SendBestEffort(target, frame); err != nil {
				t.Fatal(err)
			}
			_ = bad.ml.SendReliable(target, frame) // the seed closes the stream
			testwait.For(t, 5*time.Second, "seed to reject the intruder's packets", func() bool {
				return seed.logs.has(tc.wantLog) && seed.logs.has("failed to receive")
			})
			for _, n := range nodes {
				if slices.Contains(n.Members(), bad.Name()) {
					t.Fatalf("%s lists the intruder", n.Name())
				}
				if n.doc("ranker").gen == 99 {
					t.Fatalf("%s accepted the intruder's document", n.Name())
				}
			}
			if got := bad.Members(); len(got) != 1 {
				t.Fatalf("intruder sees %v", got)
			}
		})
	}
}

func TestDuplicateNameIsRefused(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	orig := nodes[1].Addr()
	dup := startNode(t, "n2", nodeOpts{join: []string{nodes[0].Addr()}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := dup.WaitJoined(ctx); !errors.Is(err, ErrNameConflict) {
		t.Fatalf("duplicate WaitJoined = %v, want ErrNameConflict", err)
	}
	if !errors.Is(dup.Err(), ErrNameConflict) || dup.IsDecider() {
		t.Fatalf("duplicate: Err %v, IsDecider %v", dup.Err(), dup.IsDecider())
	}
	dup.Publish("ranker", encodeDoc(testDoc{gen: 50}))
	dup.SendSLI([]byte("x"))
	if got := dup.queue.NumQueued(); got != 0 {
		t.Fatalf("refused node queued %d broadcasts", got)
	}
	// The original keeps its name and address everywhere.
	for _, n := range nodes {
		if err := n.Err(); err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		n.mu.Lock()
		n.Cluster.mu.Lock()
		addr := n.peers["n2"].addr
		n.Cluster.mu.Unlock()
		n.mu.Unlock()
		if addr != orig {
			t.Fatalf("%s maps n2 to %s, want %s", n.Name(), addr, orig)
		}
	}
}

func TestRestartUnderSameNameAtNewAddress(t *testing.T) {
	cases := []struct {
		name string
		// awaitFailure waits for the old address to be declared dead first;
		// otherwise the node comes back at once, is refused while its old
		// self still counts as alive, and is accepted once that is dead for
		// DeadNodeReclaimTime.
		awaitFailure bool
	}{
		{"after its failure was detected", true},
		{"immediately", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := startCluster(t, 3, nodeOpts{})
			old := nodes[2].Addr()
			_ = nodes[2].Shutdown() // crash, no leave
			if tc.awaitFailure {
				testwait.For(t, 8*time.Second, "n3 declared failed", func() bool {
					return len(nodes[0].Members()) == 2 && len(nodes[1].Members()) == 2
				})
			}
			reborn := startNode(t, "n3", nodeOpts{join: []string{nodes[0].Addr()}})
			if reborn.Addr() == old {
				t.Fatal("restart reused the old port; test needs a new address")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := reborn.WaitJoined(ctx); err != nil {
				t.Fatalf("restarted node: %v", err)
			}
			waitConverged(t, []*testNode{nodes[0], nodes[1], reborn}, 3, 8*time.Second)
			if !reborn.HasMajority() || reborn.Err() != nil {
				t.Fatalf("restarted node: majority %v, err %v", reborn.HasMajority(), reborn.Err())
			}
		})
	}
}

func TestUnjoinedNodeNeitherDecidesNorHasMajority(t *testing.T) {
	// The seed is a port nobody listens on: the node stays alone.
	n := startNode(t, "a", nodeOpts{join: []string{"127.0.0.1:1"}})
	if n.IsDecider() || n.HasMajority() {
		t.Fatalf("unjoined node: IsDecider %v, HasMajority %v", n.IsDecider(), n.HasMajority())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := n.WaitJoined(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitJoined = %v, want deadline exceeded", err)
	}
	founder := startNode(t, "b", nodeOpts{})
	if !founder.IsDecider() || !founder.HasMajority() {
		t.Fatal("a node with no seeds founds its own cluster and decides in it")
	}
}

func TestHasMajority(t *testing.T) {
	cases := []struct {
		name         string
		alive, known int
		want         bool
	}{
		{"alone, nobody else known", 1, 1, true},
		{"all alive", 5, 5, true},
		{"3 of 5", 3, 5, true},
		{"2 of 5", 2, 5, false},
		{"2 of 4 is a tie", 2, 4, false},
		{"3 of 4", 3, 4, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{self: "n0", peers: map[string]*peer{}, confirmed: true}
			for i := range tc.known {
				c.peers[fmt.Sprintf("n%d", i)] = &peer{alive: i < tc.alive}
			}
			if got := c.HasMajority(); got != tc.want {
				t.Fatalf("HasMajority = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	nodes := startCluster(t, 2, nodeOpts{})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(nodes[0].Collector()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP cellgate_gossip_members Alive cluster members seen by this node, itself included.
# TYPE cellgate_gossip_members gauge
cellgate_gossip_members 2
# HELP cellgate_gossip_state_generation Generation of the replicated state on this node.
# TYPE cellgate_gossip_state_generation gauge
cellgate_gossip_state_generation 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cellgate_gossip_members", "cellgate_gossip_state_generation"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 10 {
		t.Fatalf("gathered %d series, %v", n, err)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Bind: "127.0.0.1:0", SecretKey: []byte("short")}, Hooks{})
	if !errors.Is(err, ErrNoNodeName) || !errors.Is(err, ErrBadKey) {
		t.Fatalf("New = %v, want both ErrNoNodeName and ErrBadKey", err)
	}
}
