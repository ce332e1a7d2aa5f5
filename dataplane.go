package cellgate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/cellgate/cellgate/proxy"
)

// dataPlane is the client listener and the proxy's Serve loop on it: the
// part of a node that keeps serving through a handover and stops first on
// a drain.
type dataPlane struct {
	p      *proxy.Proxy
	ln     net.Listener
	log    *slog.Logger
	onFail func(error) // Serve ended by itself (not through stop)

	// mu guards done and stopped.
	mu      sync.Mutex
	done    chan error // Serve's result; nil until start
	stopped bool
}

// start serves ln in its own goroutine.
func (d *dataPlane) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil || d.stopped {
		return
	}
	d.done = make(chan error, 1)
	go d.serve(d.done)
}

func (d *dataPlane) serve(done chan<- error) {
	err := d.p.Serve(d.ln)
	d.mu.Lock()
	stopped := d.stopped
	d.mu.Unlock()
	if !stopped && d.onFail != nil {
		d.onFail(fmt.Errorf("data plane stopped serving: %w", err))
	}
	done <- err
}

// stop stops accepting and drains in-flight requests (proxy.Shutdown:
// up to listen.drain_timeout or ctx), then waits for Serve to return. A
// drain cut short at drain_timeout is what the contract promises, not a
// failure: it is logged (by the proxy) and not returned. Safe to call more
// than once and on a data plane never started.
func (d *dataPlane) stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	done := d.done
	d.mu.Unlock()
	var errs []error
	if err := d.p.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, err)
	}
	if done == nil {
		d.ln.Close() // bound but never served
		return errors.Join(errs...)
	}
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	return errors.Join(errs...)
}
