// Package gossiptest simulates network partitions between in-process
// cellgate nodes: every node's memberlist transport asks a shared Net
// before it sends a packet or opens a stream, so tests can split a cluster
// and heal it without touching the host's network.
package gossiptest

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Net decides which nodes can reach which.
type Net struct {
	mu    sync.Mutex        // guards addrs and group
	addrs map[string]string // addr → node name
	group map[string]int    // node name → side; nodes on different sides cannot talk
}

// NewNet returns a network with no partition.
func NewNet() *Net {
	return &Net{addrs: map[string]string{}, group: map[string]int{}}
}

// Split puts each listed group on its own side; unlisted nodes share side 0.
func (p *Net) Split(groups ...[]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, g := range groups {
		for _, name := range g {
			p.group[name] = i + 1
		}
	}
}

// Heal removes every partition.
func (p *Net) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.group)
}

func (p *Net) blocked(from, toAddr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	to, ok := p.addrs[toAddr]
	if !ok {
		return false
	}
	return p.group[from] != p.group[to]
}

// Transport makes a real loopback NetTransport (port chosen by the kernel)
// for node name, wrapped in the partition filter.
func (p *Net) Transport(name string) (memberlist.Transport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
	if err != nil {
		return nil, fmt.Errorf("transport for %s: %w", name, err)
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(nt.GetAutoBindPort()))
	p.mu.Lock()
	p.addrs[addr] = name
	p.mu.Unlock()
	return &filterTransport{NetTransport: nt, net: p, self: name}, nil
}

// filterTransport drops packets to, and refuses streams to, nodes on the
// other side of a partition. Filtering outgoing traffic on both sides cuts
// both directions.
type filterTransport struct {
	*memberlist.NetTransport
	net  *Net
	self string
}

var _ memberlist.NodeAwareTransport = (*filterTransport)(nil)

func (f *filterTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if f.net.blocked(f.self, addr) {
		return time.Now(), nil // silently lost, like a real partition
	}
	return f.NetTransport.WriteTo(b, addr)
}

func (f *filterTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return f.WriteTo(b, a.Addr)
}

func (f *filterTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if f.net.blocked(f.self, addr) {
		return nil, fmt.Errorf("partitioned: %s cannot reach %s", f.self, addr)
	}
	return f.NetTransport.DialTimeout(addr, timeout)
}

func (f *filterTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return f.DialTimeout(a.Addr, timeout)
}
