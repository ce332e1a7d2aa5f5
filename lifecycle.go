package cellgate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A node is four long-lived parts, each with its own start and stop:
//
//	data plane   client listener + proxy Serve loop        (dataplane.go),
//	             with discovery re-resolving its endpoints  (discovery.go)
//	admin API    admin listener + HTTP server               (adminserver.go)
//	fleet        memberlist cluster + SLI sender goroutine (fleet.go)
//	controller   rollout ticker, webhook calls, journal    (control.go),
//	             with the cell-health watch that journals   (cellwatch.go)
//
// Start binds everything that can fail (client, admin and gossip sockets,
// token file) before anything serves, then serves the data plane, turns
// ready, and serves the admin API last. A failed start stops what it
// started and closes the journal.
//
// They stop in one order, whatever the reason:
//
//	data plane → admin API → fleet → controller
//
//   - Shutdown (SIGTERM, drain) stops all four in that order: readiness
//     goes false, the data plane drains in-flight requests (the admin API
//     still answers /readyz "not ready" and /metrics meanwhile), then the
//     admin API, then the fleet, then the controller.
//   - ReleaseControl (a handover) stops the last three in the same order
//     and leaves the data plane serving: the admin API stops first so that
//     the successor is the only process that answers it (requests wait in
//     the shared accept queue meanwhile); the fleet leaves before the
//     journal is released, so the successor, which opens the journal
//     before it joins, never meets this node's name still in the cluster.
//     ReacquireControl starts them again in reverse.
//
// The fleet stops before the controller so that no peer document lands on
// a closing controller and no SLI delta goes to a cluster this node left;
// the controller, which closes the journal, stops last because the
// journal is the durable truth everything else writes through.

// Shutdown drains the node and stops every part in the stated order. It
// is safe to call more than once, and after a failed Start.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	n.stopOnce.Do(func() {
		n.ready.Store(false)
		if n.dp != nil {
			if err := n.dp.stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		n.disc.stop()
		if err := n.alog.Close(); err != nil { // no request logs any more
			errs = append(errs, fmt.Errorf("close access log: %w", err))
		}
		if n.spans != nil {
			if err := n.spans.Close(ctx); err != nil {
				n.log.Warn("spans not all exported at shutdown", "err", err)
			}
		}
		n.flags.Close() // pin sweepers; assignment goes on without pins
		if err := n.stopAdmin(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := n.stopFleet(2 * time.Second); err != nil {
			errs = append(errs, err)
		}
		n.cells.stop()
		n.hist.stop()
		if err := n.Controller().Close(); err != nil {
			errs = append(errs, fmt.Errorf("close controller: %w", err))
		}
		if n.adminFile != nil { // kept by a handover that went through
			n.adminFile.Close()
			n.adminFile = nil
		}
	})
	return errors.Join(errs...)
}

// stopAdmin stops the admin API, if it runs.
func (n *Node) stopAdmin(ctx context.Context) error {
	if a := n.admin.Swap(nil); a != nil {
		return a.stop(ctx)
	}
	return nil
}

// stopFleet stops the SLI sender, leaves the cluster (waiting up to leave
// for the message to spread) and shuts memberlist down.
func (n *Node) stopFleet(leave time.Duration) error {
	if f := n.fleet.Swap(nil); f != nil {
		return f.stop(leave)
	}
	return nil
}
