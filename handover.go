package cellgate

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// A graceful handover replaces a running cellgate process with a new one
// without refusing or resetting a connection:
//
//  1. the old process duplicates its listening sockets (ListenerFiles) and
//     releases the control plane — the journal's file lock and its gossip
//     membership — while its data plane keeps serving (ReleaseControl);
//  2. it starts the new process with the sockets as inherited descriptors;
//     the new process opens the journal (waiting for the lock), resumes any
//     rollout, starts accepting on the same sockets and reports ready;
//  3. the old process stops accepting and drains (Shutdown). Connections
//     that arrive meanwhile wait in the shared accept queue, which lives as
//     long as either process holds the socket, so none is refused.
//
// If the new process fails before it is ready, the old one takes the
// control plane back (ReacquireControl) and carries on.
//
// SO_REUSEPORT was the alternative: two processes bind the same port. It
// was rejected because closing the old listener resets the connections
// still in its own accept queue; descriptor passing shares one queue.

// ListenerFiles returns duplicates of the client and admin listening
// sockets (admin is nil when the admin API is off). The caller owns them.
func (n *Node) ListenerFiles() (client, admin *os.File, err error) {
	client, err = listenerFile(n.rawLn)
	if err != nil {
		return nil, nil, fmt.Errorf("client listener: %w", err)
	}
	if n.admin != nil {
		if admin, err = listenerFile(n.admin.ln); err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	return client, admin, nil
}

func listenerFile(ln net.Listener) (*os.File, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("%T cannot be handed over", ln)
	}
	return f.File()
}

// ReleaseControl stops the rollout controller, closes the journal (so a
// successor can open it) and leaves the gossip cluster (so the successor
// can join under this node's name). The data plane keeps serving at the
// current weights; admin mutations fail until the node is gone or takes
// control back.
func (n *Node) ReleaseControl() error {
	var errs []error
	if err := n.Controller().Close(); err != nil {
		errs = append(errs, fmt.Errorf("close journal: %w", err))
	}
	if f := n.fleet.Swap(nil); f != nil {
		if err := f.c.Leave(2 * n.config().Rollout.Tick.Duration); err != nil {
			n.log.Warn("gossip leave", "err", err)
		}
		if err := f.c.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
	}
	n.log.Info("control plane released for a handover")
	return errors.Join(errs...)
}

// ReacquireControl reopens the journal and rejoins the cluster after a
// handover that failed.
func (n *Node) ReacquireControl() error {
	cfg := n.config()
	ctrl, err := n.openControl(cfg, 0)
	if err != nil {
		return err
	}
	n.ctrl.Store(ctrl)
	if err := n.joinFleet(cfg); err != nil {
		return err
	}
	ctrl.Run(n.ctx)
	n.log.Info("control plane taken back")
	return nil
}
