package gossip

import (
	"math/rand/v2"
	"time"
)

// runJoin joins the seeds, retrying with exponential backoff and jitter
// until one answers or the cluster shuts down. Seeds need not be up yet: a
// fleet started all at once converges as they come up.
func (c *Cluster) runJoin(seeds []string) {
	backoff := c.cfg.JoinBackoff
	for attempt := 1; ; attempt++ {
		n, err := c.ml.Join(seeds)
		if n > 0 {
			c.log.Info("gossip: joined", "seeds", seeds, "contacted", n, "attempt", attempt)
			return
		}
		c.mu.Lock()
		c.joinErr = err
		c.mu.Unlock()
		c.log.Warn("gossip: join failed, retrying", "seeds", seeds, "attempt", attempt, "in", backoff, "err", err)
		if !c.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, c.cfg.JoinBackoffMax)
	}
}

// runReconnect re-joins members that failed (not those that left), and the
// seeds when this node is alone. memberlist gossips to dead members only for
// GossipToTheDeadTime and push/pulls only with live ones, so without this a
// partition longer than that would never heal.
func (c *Cluster) runReconnect() {
	for c.sleep(jitter(c.cfg.ReconnectInterval)) {
		addrs := c.failedAddrs()
		if len(addrs) == 0 && c.numAlive() <= 1 {
			addrs = c.seedsWithoutSelf()
		}
		if len(addrs) == 0 {
			continue
		}
		n, err := c.ml.Join(addrs)
		c.log.Debug("gossip: reconnect", "tried", addrs, "contacted", n, "err", err)
	}
}

// failedAddrs lists the addresses of failed members of the last known
// membership.
func (c *Cluster) failedAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.peers {
		if !p.alive {
			out = append(out, p.addr)
		}
	}
	return out
}

// sleep waits d or until shutdown; it reports false on shutdown.
func (c *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stop:
		return false
	case <-t.C:
		return true
	}
}

// jitter spreads d by ±25 % so a fleet restarted at once does not retry in
// lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}
