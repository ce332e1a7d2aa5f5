package cellgate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// TestCellFailoverOnlyEndpointKilled4s is the black-box
// measurement, redone: three cells of one endpoint each, default upstream
// settings, open-loop keyed GET load (600 req/s over 600 users); cell b's
// only endpoint is killed for 4 s, then restarted at its address. Before
// issue 19 this run failed 5009 GETs and served none of b's 201 users
// elsewhere. It prints the failed requests, how many of b's users were
// served by their failover cells during the outage, and how soon they
// were back on b; it requires no GET failed by the proxy up to the
// restart, every one of b's users served elsewhere and back, and nobody
// else moved.
func TestCellFailoverOnlyEndpointKilled4s(t *testing.T) {
	const users, outage = 600, 4 * time.Second
	f := startFailoverFleetN(t, 1, "", "")
	var ld keyedLoad
	ld.add(t, f.c.url(), "GET", 600, users)
	bUsers := map[string]bool{}
	for u := range users {
		if k := fmt.Sprint("user-", u); f.home(k) == "b" {
			bUsers[k] = true
		}
	}
	ld.waitAllServed(t, users)
	tKill := time.Now()
	f.kill("b")
	<-time.After(outage) // the outage's length is the scenario, not a wait for a condition
	tRevive := time.Now()
	f.revive(t, "b")
	testwait.For(t, 60*time.Second, "b up again", func() bool { return f.cellUp("b") })
	upAfter := time.Since(tRevive)
	backOnB := func() bool {
		seen := map[string]bool{}
		for _, s := range ld.snapshot() {
			if s.at.After(tRevive) && s.ok && s.cell == "b" {
				seen[s.key] = true
			}
		}
		return len(seen) == len(bUsers)
	}
	testwait.For(t, 60*time.Second, "every one of b's users back on b", backOnB)
	ld.halt()

	var failed, failedB, failedAfter, clientErrs, others, wrong, total int
	elsewhere, asked, firstBack := map[string]bool{}, map[string]bool{}, map[string]time.Time{}
	var firstFailover, firstOnB, lastBack time.Time
	for _, s := range ld.snapshot() {
		total++
		if !s.ok && s.status == 0 {
			// No answer within the generator's 5 s: a client timeout on
			// a starved machine, logged (a proxy hang would show here).
			clientErrs++
			if clientErrs <= 3 {
				t.Logf("no answer: GET %s at %v: %v", s.key, s.at.Sub(tKill).Round(time.Millisecond), s.err)
			}
			continue
		}
		if bUsers[s.key] && s.at.After(tKill) && s.at.Before(tRevive) {
			asked[s.key] = true // a user answered during the outage
		}
		if !s.ok && s.at.After(tRevive) {
			// After the restart: the return, which TestCellFailoverUnderLoad
			// holds to no failure; logged here.
			failedAfter++
			t.Logf("failed after the restart: GET %s at %v on %q: %d", s.key, s.at.Sub(tKill).Round(time.Millisecond), s.cell, s.status)
			continue
		}
		if !s.ok {
			failed++
			if bUsers[s.key] {
				failedB++
			}
			if failed <= 3 {
				t.Logf("failed: GET %s at %v on %q: %d", s.key, s.at.Sub(tKill).Round(time.Millisecond), s.cell, s.status)
			}
			continue
		}
		switch {
		case !bUsers[s.key]:
			if s.cell != f.home(s.key) {
				others++
			}
		case s.at.After(tKill) && s.at.Before(tRevive) && s.cell != "b":
			if s.cell != f.failover(s.key, "b") {
				wrong++
			}
			elsewhere[s.key] = true
			if firstFailover.IsZero() {
				firstFailover = s.at
			}
		case s.at.After(tRevive) && s.cell == "b":
			if _, ok := firstBack[s.key]; !ok {
				firstBack[s.key] = s.at
				lastBack = s.at
			}
			if firstOnB.IsZero() {
				firstOnB = s.at
			}
		}
	}
	t.Logf("black box: b's only endpoint killed for %v under %d GET/s over %d users (%d of them b's): %d of %d GETs failed up to the restart (%d of b's users'), %d after it, %d unanswered by the client's deadline",
		outage, 600, users, len(bUsers), failed, total, failedB, failedAfter, clientErrs)
	t.Logf("black box: %d of b's %d users were answered during the outage; %d of them were served by their failover cells (first after %v), %d on a wrong cell; %d other users moved",
		len(asked), len(bUsers), len(elsewhere), firstFailover.Sub(tKill).Round(time.Millisecond), wrong, others)
	t.Logf("black box: b restarted: up again after %v (readmitted by the node's own connect probe), its first user back on b after %v, all %d back within %v (each user sends about one request a second)",
		upAfter.Round(time.Millisecond), firstOnB.Sub(tRevive).Round(time.Millisecond), len(firstBack), lastBack.Sub(tRevive).Round(time.Millisecond))
	if failed != 0 || len(asked) == 0 || len(elsewhere) != len(asked) || wrong != 0 || others != 0 {
		t.Fatalf("failed %d, b's users served elsewhere %d of %d who asked, on a wrong cell %d, others moved %d: want 0, all, 0, 0",
			failed, len(elsewhere), len(asked), wrong, others)
	}
}
