package rollout

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// TestPreStepWebhookHolds: a failing pre-step hook holds the plan at its
// step; once the hook answers 2xx the plan enters the step. Real HTTP on
// loopback through the default client.
func TestPreStepWebhookHolds(t *testing.T) {
	var ok atomic.Bool
	var mu sync.Mutex
	var got []hookPayload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p hookPayload
		_ = json.NewDecoder(req.Body).Decode(&p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		if !ok.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	r := newRig(t, Options{})
	p := canaryPlan()
	p.Webhooks = &Webhooks{PreStep: srv.URL + "/pre", OnRollback: srv.URL + "/rb", Timeout: Duration(2 * time.Second)}
	id := r.start(p)
	r.judge.set(StateHealthy, 1000)
	// Tick until the failed hook's answer is consumed: the plan holds.
	testwait.For(t, 10*time.Second, "hold", func() bool { r.tick(0); return r.view(id).Hold != "" })
	if v := r.view(id); v.Step != 0 || v.Status != StatusProgressing {
		t.Fatalf("held plan moved: step %d %s", v.Step, v.Status)
	}
	ok.Store(true)
	testwait.For(t, 10*time.Second, "step 1", func() bool { r.tick(0); return r.view(id).Step == 1 })
	if v := r.view(id); v.Hold != "" {
		t.Fatalf("hold not cleared: %q", v.Hold)
	}
	r.judge.set(StateFailing, 1000)
	r.tick(time.Second)
	testwait.For(t, 10*time.Second, "on_rollback call", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Event == ActionRollback
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0].Event != "pre_step" || got[0].Step != 1 || got[0].Rollout != id {
		t.Fatalf("first payload %+v", got[0])
	}
}
