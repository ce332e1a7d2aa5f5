package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config says how this node joins the cluster. The zero value of every
// timing field means the LAN default from DefaultConfig; tests shrink them
// to run whole failure scenarios in seconds.
type Config struct {
	// NodeName must be unique among live members. A second node with a live
	// name is refused (WaitJoined and Err report ErrNameConflict); a node
	// restarting under its name at a new address is accepted once its old
	// address has been dead for DeadNodeReclaimTime.
	NodeName string

	// Bind is the host:port for both UDP gossip and TCP push/pull. Port 0
	// lets the kernel choose (read it back with Cluster.Addr). Empty means
	// "0.0.0.0:7946". Ignored for listening when Transport is set.
	Bind string

	// Advertise is the host:port (or host) peers should use to reach this
	// node, when it differs from Bind (NAT, 0.0.0.0). Empty: derived from
	// Bind or the first private interface, as memberlist does.
	Advertise string

	// Join lists host:port seeds. Empty: start a new cluster. Joining is
	// retried with exponential backoff (JoinBackoff .. JoinBackoffMax) in the
	// background until one seed answers; seeds need not be up yet.
	Join []string

	// SecretKey is an AES-128/192/256 key (16, 24 or 32 bytes) that encrypts
	// and authenticates every UDP packet and TCP stream. Nil: no encryption.
	// A node with a different key, or none, cannot join or inject state:
	// memberlist drops what it cannot decrypt.
	SecretKey []byte

	// GossipInterval is how often queued broadcasts go to GossipNodes random
	// peers. It bounds how fast a document spreads: each hop costs at most
	// one interval.
	GossipInterval time.Duration
	// ProbeInterval and ProbeTimeout drive failure detection. A failed
	// member is declared dead after roughly ProbeInterval × SuspicionMult ×
	// log10(N) (shortened by confirmations from other members).
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// SuspicionMult scales how long a suspect may refute before it is dead.
	SuspicionMult int
	// PushPullInterval is how often a node exchanges its full state with a
	// random peer over TCP: the anti-entropy that repairs lost broadcasts
	// and heals partitions.
	PushPullInterval time.Duration
	// TCPTimeout bounds one TCP push/pull or reliable send.
	TCPTimeout time.Duration
	// DeadNodeReclaimTime is how long a dead member's name stays bound to
	// its old address; after that a node restarting under the name at a new
	// address is accepted.
	DeadNodeReclaimTime time.Duration
	// GossipToTheDeadTime is how long dead members still receive gossip, so
	// a short partition heals by itself; longer ones heal by ReconnectInterval.
	GossipToTheDeadTime time.Duration
	// ReconnectInterval is how often this node tries to re-join members that
	// failed (not those that left), and its seeds when it is alone, so a
	// partition longer than GossipToTheDeadTime still heals. Negative
	// disables it.
	ReconnectInterval time.Duration
	// JoinBackoff and JoinBackoffMax bound the delay between join attempts
	// (doubling, with ±25 % jitter).
	JoinBackoff    time.Duration
	JoinBackoffMax time.Duration

	// Transport replaces memberlist's own UDP/TCP transport. Nil: a
	// memberlist NetTransport on Bind. Tests inject a filtering wrapper to
	// simulate partitions.
	Transport memberlist.Transport

	// Logger receives join/leave/failure events and memberlist's own log
	// lines (mapped to slog levels). Nil: slog.Default().
	Logger *slog.Logger
}

// Validation errors that callers may branch on.
var (
	ErrNoNodeName = errors.New("gossip: node name is empty")
	ErrBadKey     = errors.New("gossip: secret key must be 16, 24 or 32 bytes")
)

// DefaultConfig returns the LAN defaults, with the reason beside each value.
func DefaultConfig() Config {
	return Config{
		Bind:                "0.0.0.0:7946",         // memberlist's customary port
		GossipInterval:      100 * time.Millisecond, // each hop of a document costs up to one interval; an idle tick sends nothing, so fast is cheap
		ProbeInterval:       time.Second,            // failure check every second, as memberlist's LAN profile
		ProbeTimeout:        500 * time.Millisecond, // generous RTT for a LAN
		SuspicionMult:       4,                      // a dead decider is replaced in ~5-10 s, false positives are rare
		PushPullInterval:    10 * time.Second,       // state is a few KB; faster repair than memberlist's 30 s
		TCPTimeout:          5 * time.Second,        // a stuck peer must not hold a tick's SLI sends for long
		DeadNodeReclaimTime: 10 * time.Second,       // a restarted node gets its name back soon after its old self is dead
		GossipToTheDeadTime: 30 * time.Second,       // short partitions heal by gossip alone
		ReconnectInterval:   10 * time.Second,       // longer ones heal by re-joining failed members
		JoinBackoff:         500 * time.Millisecond, // seeds usually come up within seconds of each other
		JoinBackoffMax:      30 * time.Second,       // but keep trying forever at a gentle pace
	}
}

// withDefaults fills every zero field from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Bind == "" {
		c.Bind = d.Bind
	}
	setDur(&c.GossipInterval, d.GossipInterval)
	setDur(&c.ProbeInterval, d.ProbeInterval)
	setDur(&c.ProbeTimeout, d.ProbeTimeout)
	setDur(&c.PushPullInterval, d.PushPullInterval)
	setDur(&c.TCPTimeout, d.TCPTimeout)
	setDur(&c.DeadNodeReclaimTime, d.DeadNodeReclaimTime)
	setDur(&c.GossipToTheDeadTime, d.GossipToTheDeadTime)
	setDur(&c.ReconnectInterval, d.ReconnectInterval)
	setDur(&c.JoinBackoff, d.JoinBackoff)
	setDur(&c.JoinBackoffMax, d.JoinBackoffMax)
	if c.SuspicionMult == 0 {
		c.SuspicionMult = d.SuspicionMult
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, ErrNoNodeName)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("%w: got %d", ErrBadKey, len(c.SecretKey)))
	}
	if _, _, err := splitHostPort(c.Bind); err != nil {
		errs = append(errs, fmt.Errorf("gossip: bind %q: %w", c.Bind, err))
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("gossip: advertise %q: %w", c.Advertise, err))
		}
	}
	return errors.Join(errs...)
}

// splitHostPort accepts "host:port" or a bare host (port 0).
func splitHostPort(s string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if ip := net.ParseIP(s); ip != nil || (s != "" && !strings.Contains(s, ":")) {
			return s, 0, nil
		}
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, port, nil
}

// memberlistConfig derives memberlist's config: the LAN profile, overridden
// by our timings, with our delegates plugged in.
func (c Config) memberlistConfig(d *delegate) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	host, port, _ := splitHostPort(c.Bind)
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if c.Advertise != "" {
		ahost, aport, _ := splitHostPort(c.Advertise)
		mc.AdvertiseAddr = ahost
		if aport != 0 {
			mc.AdvertisePort = aport
		}
	}
	if c.Transport != nil {
		mc.Transport = c.Transport
		if c.Advertise == "" {
			// Let the transport report its own (possibly kernel-chosen) port.
			mc.BindAddr, mc.BindPort, mc.AdvertisePort = "", 0, 0
		}
	}
	mc.SecretKey = c.SecretKey
	mc.GossipInterval = c.GossipInterval
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Alive = d
	mc.Logger = newStdLogger(c.Logger.With("node", c.NodeName))
	mc.LogOutput = nil
	return mc
}
