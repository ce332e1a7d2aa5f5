package scenario

import (
	"testing"
)

// Cells of the audit tests: a and b are baseline, c the canary.
const (
	cellA int8 = 0
	cellB int8 = 1
	cellC int8 = 2
)

// o builds one observation routed at a moment in [lo, hi] (milliseconds).
func o(key int32, cell int8, lo, hi int64) obs {
	return obs{key: key, cell: cell, lo: lo * 1e6, hi: hi * 1e6}
}

func TestAudit(t *testing.T) {
	base := auditInput{cells: []string{"a", "b", "c"}, canary: cellC, keyPrefix: "k", start: 1000e6}
	reverted := base
	reverted.reverted, reverted.revertLo, reverted.revertHi = true, 5000e6, 5002e6
	promoted := base
	promoted.promoted, promoted.promotedAt = true, 8000e6
	for _, tc := range []struct {
		name string
		in   auditInput
		obs  []obs
		want map[string]int // violations
		// counters checked when set
		keys, home, moved, checked, restored int
	}{
		{name: "sticky promotion", in: promoted, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellA, 2000, 2001), o(1, cellC, 3000, 3001), o(1, cellC, 9000, 9001),
			o(2, cellB, 20, 21), o(2, cellB, 7000, 7001), o(2, cellC, 8500, 8501),
		}, want: map[string]int{}, keys: 2, home: 2, moved: 2},
		{name: "between baseline cells", in: base, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellB, 2000, 2001),
		}, want: map[string]int{ViolationBetweenBaseline: 1}, keys: 1, home: 1},
		{name: "out of the canary", in: base, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellC, 2000, 2001), o(1, cellA, 2500, 2501),
		}, want: map[string]int{ViolationOutOfCanary: 1}, keys: 1, home: 1, moved: 1},
		{name: "overlapping requests are no order", in: base, obs: []obs{
			// the canary response came back after the baseline request was sent:
			// either could have been routed first
			o(1, cellA, 10, 11), o(1, cellC, 2000, 2600), o(1, cellA, 2500, 2501),
		}, want: map[string]int{}, keys: 1, home: 1, moved: 1},
		{name: "canary before the rollout", in: base, obs: []obs{
			o(1, cellC, 10, 11),
		}, want: map[string]int{ViolationCanaryEarly: 1}, keys: 1},
		{name: "restored after revert", in: reverted, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellC, 3000, 3001), o(1, cellC, 4999, 5001), o(1, cellA, 5001, 5001), o(1, cellA, 6000, 6001),
			o(2, cellB, 4000, 4001), o(2, cellB, 7000, 7001), // its cell known from during the rollout
			o(3, cellA, 7000, 7001), // seen only after the revert: checked, not counted as exact
		}, want: map[string]int{}, keys: 3, home: 1, moved: 1, checked: 3, restored: 2},
		{name: "restored to the cell seen during the rollout", in: reverted, obs: []obs{
			o(1, cellB, 2000, 2001), o(1, cellC, 3000, 3001), o(1, cellA, 6000, 6001),
		}, want: map[string]int{ViolationNotRestored: 1, ViolationBetweenBaseline: 1}, keys: 1, moved: 1, checked: 1},
		{name: "still on the canary after revert", in: reverted, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellC, 3000, 3001), o(1, cellC, 5003, 5004),
		}, want: map[string]int{ViolationNotRestored: 1}, keys: 1, home: 1, moved: 1, checked: 1},
		{name: "back on another cell after revert", in: reverted, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellC, 3000, 3001), o(1, cellB, 5003, 5004),
		}, want: map[string]int{ViolationNotRestored: 1, ViolationBetweenBaseline: 1}, keys: 1, home: 1, moved: 1, checked: 1},
		{name: "baseline after full promotion", in: promoted, obs: []obs{
			o(1, cellA, 10, 11), o(1, cellA, 8001, 8002),
		}, want: map[string]int{ViolationNotPromoted: 1}, keys: 1, home: 1},
		{name: "unrouted responses are skipped", in: base, obs: []obs{
			{key: 1, cell: noCell, lo: 1, hi: 2}, {key: -1, cell: cellA, lo: 1, hi: 2},
		}, want: map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := audit(tc.in, tc.obs)
			if len(a.Violations) != len(tc.want) || a.Clean != (len(tc.want) == 0) {
				t.Fatalf("violations %v (clean %v), want %v; examples %+v", a.Violations, a.Clean, tc.want, a.Examples)
			}
			for k, n := range tc.want {
				if a.Violations[k] != n {
					t.Errorf("%s: %d keys, want %d", k, a.Violations[k], n)
				}
			}
			if len(a.Examples) != len(tc.want) {
				t.Errorf("examples %+v", a.Examples)
			}
			got := [5]int{a.Keys, a.KeysWithHome, a.MovedToCanary, a.CheckedAfterRevert, a.RestoredExactly}
			want := [5]int{tc.keys, tc.home, tc.moved, tc.checked, tc.restored}
			if got != want {
				t.Errorf("keys, home, moved, checked, restored = %v, want %v", got, want)
			}
		})
	}
}

func TestAuditExampleNamesKey(t *testing.T) {
	in := auditInput{cells: []string{"a", "b", "c"}, canary: cellC, keyPrefix: "user-", start: 1e9}
	a := audit(in, []obs{o(17, cellA, 10, 11), o(17, cellB, 20, 21)})
	if len(a.Examples) != 1 || a.Examples[0].Key != "user-17" || a.Examples[0].Detail != "on a, then on b at 0.020s" {
		t.Errorf("examples %+v", a.Examples)
	}
}
