package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// HealthCheck is a cell's active health check ([[cell]] health = {…}):
// every Interval each endpoint is probed — an HTTP GET of Path, or a TCP
// connect when Path is empty — and taken out of rotation after Unhealthy
// failed probes in a row, back in after Healthy passing ones. Each node
// probes on its own and decides from its own evidence, as Envoy does.
type HealthCheck struct {
	// Path is the URL path to GET ("/healthz"). Empty: TCP connect only.
	Path string
	// Interval between probes of one endpoint. Must be > 0.
	Interval time.Duration
	// Timeout bounds one probe (connect, request and response head).
	// Must be > 0; keep it below Interval.
	Timeout time.Duration
	// Unhealthy failed probes in a row take the endpoint out (≥ 1).
	Unhealthy int
	// Healthy passing probes in a row put it back (≥ 1).
	Healthy int
	// Expect is the status a passing GET answers. Zero: any 2xx.
	Expect int
}

// validate reports every problem in h at once.
func (h *HealthCheck) validate() error {
	var errs []error
	if h.Interval <= 0 || h.Timeout <= 0 {
		errs = append(errs, errors.New("interval and timeout must be > 0"))
	}
	if h.Unhealthy < 1 || h.Healthy < 1 {
		errs = append(errs, errors.New("unhealthy and healthy must be ≥ 1"))
	}
	if h.Expect != 0 && (h.Expect < 100 || h.Expect > 599) {
		errs = append(errs, fmt.Errorf("expect %d: not an HTTP status", h.Expect))
	}
	if h.Path != "" && h.Path[0] != '/' {
		errs = append(errs, fmt.Errorf("path %q: must start with /", h.Path))
	}
	return errors.Join(errs...)
}

// checker is one endpoint's running probe loop.
type checker struct {
	hc     HealthCheck
	cancel context.CancelFunc
}

// setCheckLocked makes e's active check match hc: it stops a check whose
// settings differ (or all checks when hc is nil) and starts one when
// needed. An endpoint whose check stops is no longer held out by it.
// p.mu must be held.
func (p *Proxy) setCheckLocked(e *endpoint, hc *HealthCheck) {
	if e.check != nil && (hc == nil || e.check.hc != *hc) {
		e.check.cancel()
		e.check = nil
		e.checkDown.Store(false)
	}
	if hc == nil || e.check != nil || p.draining.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.check = &checker{hc: *hc, cancel: cancel}
	p.checkWG.Add(1)
	go p.checkLoop(ctx, e, *hc)
}

// moveCheckLocked hands e's active check, and its verdict, to n (a renewed
// pool for the same address). p.mu must be held.
func (p *Proxy) moveCheckLocked(e, n *endpoint) {
	if e.check == nil {
		return
	}
	hc, down := e.check.hc, e.checkDown.Load()
	p.setCheckLocked(e, nil)
	p.setCheckLocked(n, &hc)
	n.checkDown.Store(down)
}

// checkLoop probes e every interval until ctx ends and flips its
// checkDown on the configured streaks; each flip re-derives which cells
// are down.
func (p *Proxy) checkLoop(ctx context.Context, e *endpoint, hc HealthCheck) {
	defer p.checkWG.Done()
	probe := newProber(e.addr, hc)
	defer probe.close()
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	pass, fail := 0, 0
	for {
		err := probe.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			pass, fail = pass+1, 0
		} else {
			pass, fail = 0, fail+1
		}
		switch {
		case fail == hc.Unhealthy && !e.checkDown.Load():
			e.checkDown.Store(true)
			p.log.Warn("endpoint failed its health check", "endpoint", e.addr, "err", err)
			p.refreshAll()
		case pass == hc.Healthy && e.checkDown.Load():
			e.checkDown.Store(false)
			p.health.success(e) // passing checks also end a passive ejection
			p.log.Info("endpoint passed its health check", "endpoint", e.addr)
			p.refreshAll()
		case err == nil && !e.checkDown.Load() && e.ejectedUntil.Load() != 0:
			// Passive evidence took it out between checks; a passing
			// check readmits it at once rather than after the ejection's
			// backoff (Envoy: successful_active_health_check_uneject_host).
			p.health.success(e)
			p.log.Info("endpoint readmitted by its health check", "endpoint", e.addr)
			p.refreshAll()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// prober runs one kind of probe against one address.
type prober struct {
	addr   string
	hc     HealthCheck
	client *http.Client // nil for TCP probes
}

func newProber(addr string, hc HealthCheck) *prober {
	pr := &prober{addr: addr, hc: hc}
	if hc.Path != "" {
		// A fresh connection per probe: a probe checks that the endpoint
		// accepts connections, which a kept-alive one would not show.
		pr.client = &http.Client{
			Timeout:   hc.Timeout,
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return pr
}

// run performs one probe; nil means it passed.
func (pr *prober) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pr.hc.Timeout)
	defer cancel()
	if pr.client == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", pr.addr)
		if err != nil {
			return fmt.Errorf("health connect: %w", err)
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pr.addr+pr.hc.Path, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	req.Header.Set("User-Agent", "cellgate-health")
	resp, err := pr.client.Do(req)
	if err != nil {
		return fmt.Errorf("health get: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if ok := resp.StatusCode == pr.hc.Expect || (pr.hc.Expect == 0 && resp.StatusCode/100 == 2); !ok {
		return fmt.Errorf("health get %s: status %d", pr.hc.Path, resp.StatusCode)
	}
	return nil
}

func (pr *prober) close() {
	if pr.client != nil {
		pr.client.CloseIdleConnections()
	}
}
