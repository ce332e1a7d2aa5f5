package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// webhookClient is the default Hooks.Webhook: a JSON POST.
type webhookClient struct{ client *http.Client }

func newWebhookClient() *webhookClient {
	// The per-call timeout comes from ctx; the client has none of its own.
	return &webhookClient{client: &http.Client{}}
}

// post sends body and fails on a transport error or a non-2xx answer.
func (w *webhookClient) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("call webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// hookPayload is the JSON body every webhook receives.
type hookPayload struct {
	Event       string  `json:"event"` // pre_step, promoted, rollback, abort
	Rollout     string  `json:"rollout"`
	Plan        string  `json:"plan"`
	Version     string  `json:"version,omitempty"`
	Status      Status  `json:"status"`
	Step        int     `json:"step"` // 1-based: for pre_step, the step about to be entered
	StepPercent float64 `json:"step_percent"`
	Weights     Weights `json:"weights"`
	Reason      string  `json:"reason,omitempty"`
}

func payload(event string, d *Document, step int) []byte {
	pct := 0.0
	if step >= 0 && step < len(d.Plan.Steps) {
		pct = d.Plan.Steps[step]
	}
	b, _ := json.Marshal(hookPayload{
		Event: event, Rollout: d.ID, Plan: d.Plan.Name, Version: d.Plan.Release.Version,
		Status: d.Status, Step: step + 1, StepPercent: pct, Weights: d.Weights, Reason: d.Reason,
	})
	return b
}

func webhookTimeout(p *Plan) time.Duration {
	if p.Webhooks != nil && p.Webhooks.Timeout > 0 {
		return p.Webhooks.Timeout.D()
	}
	return defaultWebhookTimeout
}

// hookCall is one pre-step webhook call, run off the tick so a slow hook
// never delays another rollout's revert.
type hookCall struct {
	step int           // the step index the call gates
	done chan struct{} // closed when err is set
	err  error
}

// preStepResult returns the pre-step hook's answer for d's next step: done
// is false while the call runs (it is started on first ask). A consumed
// answer is forgotten, so a failed hook is retried on a later tick.
func (c *Controller) preStepResult(d *Document) (err error, done bool) {
	if d.Plan.Webhooks == nil || d.Plan.Webhooks.PreStep == "" {
		return nil, true
	}
	next := d.Step + 1
	c.hookMu.Lock()
	defer c.hookMu.Unlock()
	hc := c.preStep[d.ID]
	if hc == nil || hc.step != next {
		hc = &hookCall{step: next, done: make(chan struct{})}
		c.preStep[d.ID] = hc
		body := payload("pre_step", d, next)
		c.goCall(d.Plan.Webhooks.PreStep, body, webhookTimeout(&d.Plan), func(err error) {
			hc.err = err
			close(hc.done)
		})
		return nil, false
	}
	select {
	case <-hc.done:
		delete(c.preStep, d.ID)
		return hc.err, true
	default:
		return nil, false
	}
}

// dropPreStep forgets a finished rollout's hook call.
func (c *Controller) dropPreStep(id string) {
	c.hookMu.Lock()
	defer c.hookMu.Unlock()
	delete(c.preStep, id)
}

// notify calls a notification webhook in the background; failures are logged.
func (c *Controller) notify(url, event string, d *Document) {
	c.goCall(url, payload(event, d, d.Step), webhookTimeout(&d.Plan), func(err error) {
		if err != nil {
			c.opts.Logger.Warn("rollout webhook", "rollout", d.ID, "event", event, "err", err)
		}
	})
}

// goCall runs one webhook call in a goroutine that Close waits for.
func (c *Controller) goCall(url string, body []byte, timeout time.Duration, done func(error)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		done(c.webhook(ctx, url, body))
	}()
}
