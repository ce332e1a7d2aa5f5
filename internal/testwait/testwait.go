// Package testwait waits in tests for something another goroutine or
// process brings about, instead of sleeping a guessed time: it polls a
// condition with a short backoff until it holds, and fails the test when a
// deadline passes. The deadline is a hang guard, never a timing assertion:
// pick it generous (seconds to tens of seconds), since CI machines are
// loaded.
//
// Only tests import it (TestOnlyTestsImport checks, for every
// internal/test* package).
package testwait

import (
	"testing"
	"time"
)

// Polling starts at firstPoll and doubles up to maxPoll: a condition that
// holds almost at once is seen within a millisecond or two, and one that
// takes seconds costs a few dozen calls a second.
const (
	firstPoll = time.Millisecond
	maxPoll   = 20 * time.Millisecond
)

// For calls cond until it returns true. If timeout passes first, it fails
// the test with t.Fatalf, naming what it waited for; like t.Fatalf it must
// be called from the test's goroutine.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := firstPoll; !cond(); pause = min(2*pause, maxPoll) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
	}
}
