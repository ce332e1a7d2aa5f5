// Package dnstest runs an authoritative DNS server on loopback for tests:
// records can be changed while it runs, and it can be stopped to play a
// resolver outage.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server answers from a record set that tests edit; names it has no
// record of get NXDOMAIN.
type Server struct {
	Addr string // host:port (UDP and TCP)

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN, all types
	udp     *dns.Server
	tcp     *dns.Server
}

// Start runs a server on 127.0.0.1 (UDP and TCP, same port) until the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}}
	pc, ln := listenPair(t)
	s.Addr = pc.LocalAddr().String()
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: notify}
	go s.udp.ActivateAndServe() //nolint:errcheck
	go s.tcp.ActivateAndServe() //nolint:errcheck
	for range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("dns server did not start")
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// listenPair binds UDP and TCP on one loopback port, trying a few ports:
// the TCP side of a free UDP port may be taken.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var last error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		last = err
	}
	t.Fatalf("dnstest: no port free for both UDP and TCP: %v", last)
	return nil, nil
}

// Set replaces the records of name with rrs, given in zone-file syntax
// ("x.test. 5 IN A 127.0.0.1"); no rrs removes the name.
func (s *Server) Set(t testing.TB, name string, rrs ...string) {
	t.Helper()
	var parsed []dns.RR
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		parsed = append(parsed, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(dns.Fqdn(name))
	if len(parsed) == 0 {
		delete(s.records, key)
		return
	}
	s.records[key] = parsed
}

// Stop shuts the server down; lookups then time out.
func (s *Server) Stop() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) == 1 {
		qq := q.Question[0]
		s.mu.Lock()
		rrs, ok := s.records[strings.ToLower(qq.Name)]
		s.mu.Unlock()
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == qq.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	_ = w.WriteMsg(m)
}
