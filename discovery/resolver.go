package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Answer is one resolution of a target: its endpoints (host:port, sorted,
// unique) and how long the answer may be used (0: unknown).
type Answer struct {
	Addrs []string
	// Weights are the SRV priority and weight of each address of an
	// `srv:` answer (srv.go); nil for `dns:`, whose addresses are equals.
	Weights map[string]Weight
	TTL     time.Duration
}

// Resolver resolves targets. Implementations must be safe for concurrent
// use and honour ctx.
type Resolver interface {
	Resolve(ctx context.Context, t Target) (Answer, error)
}

// System resolves with the operating system's resolver (net.Resolver),
// which reports no TTLs.
type System struct{ R *net.Resolver }

// Resolve implements Resolver.
func (s System) Resolve(ctx context.Context, t Target) (Answer, error) {
	r := s.R
	if r == nil {
		r = net.DefaultResolver
	}
	if t.Kind == KindDNS {
		ips, err := r.LookupIPAddr(ctx, t.Name)
		if err != nil {
			return Answer{}, fmt.Errorf("resolve %s: %w", t.Raw, err)
		}
		var out []string
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip.IP.String(), strconv.Itoa(t.Port)))
		}
		return Answer{Addrs: tidy(out)}, nil
	}
	_, srvs, err := r.LookupSRV(ctx, "", "", t.Name)
	if err != nil {
		return Answer{}, fmt.Errorf("resolve %s: %w", t.Raw, err)
	}
	var out []string
	var ts []srvTarget
	for _, s := range srvs {
		ips, err := r.LookupIPAddr(ctx, s.Target)
		if err != nil {
			return Answer{}, fmt.Errorf("resolve %s: target %s: %w", t.Raw, s.Target, err)
		}
		st := srvTarget{priority: s.Priority, weight: s.Weight}
		for _, ip := range ips {
			st.addrs = append(st.addrs, net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(s.Port))))
		}
		out = append(out, st.addrs...)
		ts = append(ts, st)
	}
	return Answer{Addrs: tidy(out), Weights: srvWeights(ts)}, nil
}

// Server resolves by asking one DNS server directly (discovery.resolver),
// which gives the answers' TTLs. Queries go over UDP and are repeated over
// TCP when the answer is truncated.
type Server struct {
	Addr    string        // host:port of the DNS server
	Timeout time.Duration // per query; zero: 2 s
}

// Resolve implements Resolver.
func (s Server) Resolve(ctx context.Context, t Target) (Answer, error) {
	if t.Kind == KindDNS {
		a, err := s.addrs(ctx, t.Name, t.Port, nil)
		if err != nil {
			return Answer{}, fmt.Errorf("resolve %s: %w", t.Raw, err)
		}
		return a, nil
	}
	r, err := s.query(ctx, t.Name, dns.TypeSRV)
	if err != nil {
		return Answer{}, fmt.Errorf("resolve %s: %w", t.Raw, err)
	}
	ans := Answer{TTL: minTTL(r.Answer)}
	var ts []srvTarget
	for _, rr := range r.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		a, err := s.addrs(ctx, srv.Target, int(srv.Port), r.Extra)
		if err != nil {
			return Answer{}, fmt.Errorf("resolve %s: target %s: %w", t.Raw, srv.Target, err)
		}
		ans.Addrs = append(ans.Addrs, a.Addrs...)
		ans.TTL = shorter(ans.TTL, a.TTL)
		ts = append(ts, srvTarget{priority: srv.Priority, weight: srv.Weight, addrs: a.Addrs})
	}
	ans.Addrs = tidy(ans.Addrs)
	ans.Weights = srvWeights(ts)
	return ans, nil
}

// addrs returns name's A and AAAA addresses at port, taken from extra (an
// SRV answer's additional section) when it has them, else queried.
func (s Server) addrs(ctx context.Context, name string, port int, extra []dns.RR) (Answer, error) {
	var ans Answer
	fqdn := dns.Fqdn(name)
	add := func(rrs []dns.RR) {
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, fqdn) {
				continue
			}
			switch v := rr.(type) {
			case *dns.A:
				ans.Addrs = append(ans.Addrs, net.JoinHostPort(v.A.String(), strconv.Itoa(port)))
			case *dns.AAAA:
				ans.Addrs = append(ans.Addrs, net.JoinHostPort(v.AAAA.String(), strconv.Itoa(port)))
			default:
				continue
			}
			ans.TTL = shorter(ans.TTL, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if add(extra); len(ans.Addrs) > 0 {
		ans.Addrs = tidy(ans.Addrs)
		return ans, nil
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := s.query(ctx, name, qt)
		if err != nil {
			return Answer{}, err
		}
		add(r.Answer)
	}
	ans.Addrs = tidy(ans.Addrs)
	return ans, nil
}

// query asks the server one question; any rcode but NOERROR is an error
// (NXDOMAIN included: the last good set is kept rather than emptied by a
// name that is briefly missing).
func (s Server) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, s.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], name, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s %s: %w: %s", dns.TypeToString[qtype], name, ErrLookup, dns.RcodeToString[r.Rcode])
	}
	return r, nil
}

// ErrLookup marks an answer the server gave but that holds no usable set.
var ErrLookup = errors.New("lookup failed")

func minTTL(rrs []dns.RR) time.Duration {
	var d time.Duration
	for _, rr := range rrs {
		d = shorter(d, time.Duration(rr.Header().Ttl)*time.Second)
	}
	return d
}

// shorter is the smaller positive of two TTLs (0: unknown).
func shorter(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// tidy sorts and de-duplicates addresses, so equal sets compare equal.
func tidy(a []string) []string {
	slices.Sort(a)
	return slices.Compact(a)
}
