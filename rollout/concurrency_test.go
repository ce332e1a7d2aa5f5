package rollout

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestConcurrentActionsAndTicker runs the real ticker beside admin actions
// and peers (meant for -race): every call either works or fails with one of
// the sentinels, and the journal stays consistent.
func TestConcurrentActionsAndTicker(t *testing.T) {
	r := newRig(t, Options{Tick: time.Millisecond})
	r.c.hooks.Now = nil // the real clock: the ticker runs on its own
	r.judge.set(StateHealthy, 1000)
	p := canaryPlan()
	p.Bake = 0
	r.c.Run(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id, err := r.c.Start(p, "admin:w")
				if err != nil && !errors.Is(err, ErrConflict) {
					t.Errorf("start: %v", err)
				}
				if id == "" {
					ids := r.c.Active()
					if len(ids) == 0 {
						continue
					}
					id = ids[0]
				}
				var aerr error
				switch (w + i) % 5 {
				case 0:
					aerr = r.c.Pause(id, "admin:w", "")
				case 1:
					aerr = r.c.Resume(id, "admin:w")
				case 2:
					aerr = r.c.PromoteNow(id, "admin:w")
				case 3:
					aerr = r.c.SetWeight("stable-b", float64(i), "admin:w", "")
				case 4:
					aerr = r.c.Abort(id, "admin:w", "")
				}
				if aerr != nil && !errors.Is(aerr, ErrBadState) && !errors.Is(aerr, ErrNotFound) {
					t.Errorf("action: %v", aerr)
				}
				_, _ = r.c.Rollouts()
			}
		}()
	}
	wg.Wait()
	must(t, r.c.Close())
	checkJournal(t, r.path, nil)
}
