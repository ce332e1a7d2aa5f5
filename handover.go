package cellgate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cellgate/cellgate/configs"
	"golang.org/x/sys/unix"
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
// control plane back (ReacquireControl) and carries on. Between steps 1 and
// 3 no process ticks the controller, so a failing canary cannot revert; the
// successor therefore gets only HandoverReadyWait to report ready before
// the old process kills it and takes control back, which keeps that window
// a few ticks long rather than the 30 s it once was.
//
// SO_REUSEPORT was the alternative: two processes bind the same port. It
// was rejected because closing the old listener resets the connections
// still in its own accept queue; descriptor passing shares one queue.

// Bounds of the window without a controller during a handover: the
// successor must be ready within handoverReadyTicks rollout ticks, and never
// less than handoverReadyFloor — starting a process, opening the journal and
// joining the cluster take about a second on a loaded machine, and a bound
// below that would fail healthy handovers.
const (
	handoverReadyTicks = 5
	handoverReadyFloor = 5 * time.Second
)

// HandoverReadyWait is how long a handover successor has to report ready
// under cfg: the old process waits that long, and the successor waits no
// longer than that for the journal lock.
func HandoverReadyWait(cfg *configs.Config) time.Duration {
	return max(handoverReadyFloor, handoverReadyTicks*cfg.Rollout.Tick.Duration)
}

// HandoverReadyWait is HandoverReadyWait of the node's current config.
func (n *Node) HandoverReadyWait() time.Duration { return HandoverReadyWait(n.config()) }

// ListenerFiles returns duplicates of the client and admin listening
// sockets (admin is nil when the admin API is off). The caller owns them.
// They are made so that passing them to a child (os/exec calls Fd on
// ExtraFiles) leaves the shared socket's flags as they are.
func (n *Node) ListenerFiles() (client, admin *os.File, err error) {
	client, err = listenerFile(n.rawLn)
	if err != nil {
		return nil, nil, fmt.Errorf("client listener: %w", err)
	}
	if a := n.admin.Load(); a != nil {
		if admin, err = listenerFile(a.ln); err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	return client, admin, nil
}

// listenerFile duplicates ln's socket descriptor (close-on-exec) and wraps
// it with os.NewFile.
//
// Not (*net.TCPListener).File: that returns an *os.File whose Fd method
// switches the descriptor to blocking mode, and os/exec calls Fd on every
// ExtraFiles entry. O_NONBLOCK belongs to the open file description, which
// a dup shares, so the running process's own listener turned blocking: its
// accept then parked a thread in the kernel, and closing the listener
// (Shutdown after a failed handover) waited for ever. os.NewFile over a
// descriptor that is already non-blocking leaves Fd alone.
func listenerFile(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T cannot be handed over", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup listener: %w", derr)
	}
	return os.NewFile(uintptr(fd), ln.Addr().String()), nil
}

// ReleaseControl hands the control plane over, in the stop order of
// lifecycle.go: the admin API stops (its socket is kept, to serve again
// if the handover fails; the successor answers meanwhile), the node leaves
// the gossip cluster (so the successor can join under its name) and the
// controller closes the journal (so the successor can open it). The data
// plane keeps serving at the current weights.
func (n *Node) ReleaseControl() error {
	var errs []error
	if a := n.admin.Load(); a != nil {
		f, err := listenerFile(a.ln)
		if err != nil {
			return fmt.Errorf("keep the admin socket: %w", err)
		}
		n.adminFile = f
		if err := n.stopAdmin(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.stopFleet(2 * n.config().Rollout.Tick.Duration); err != nil {
		errs = append(errs, err)
	}
	n.cells.stop()
	n.hist.stop() // journals the running rollouts' history for the successor
	if err := n.Controller().Close(); err != nil {
		errs = append(errs, fmt.Errorf("close journal: %w", err))
	}
	n.log.Info("control plane released for a handover")
	return errors.Join(errs...)
}

// ReacquireControl takes the control plane back after a handover that
// failed, starting the parts in reverse stop order: the journal and the
// controller, the fleet, then the admin API on the kept socket.
func (n *Node) ReacquireControl() error {
	cfg := n.config()
	ctrl, err := n.openControl(cfg, 0)
	if err != nil {
		return err
	}
	n.ctrl.Store(ctrl)
	ctrl.Run(context.Background())
	n.cells.start()
	n.hist.start()
	if err := n.joinFleet(cfg); err != nil {
		return err
	}
	if f := n.adminFile; f != nil {
		n.adminFile = nil
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("admin socket: %w", err)
		}
		a, err := n.bindAdmin(cfg, ln)
		if err != nil {
			return err
		}
		n.admin.Store(a)
		a.start()
	}
	n.log.Info("control plane taken back")
	return nil
}
