package slo

import (
	"math"
	"testing"
	"time"
)

// TestTimeToFireWorkbook checks the arithmetic against the SRE workbook's
// "Alerting on SLOs" numbers at a 99.9 % objective, and the same rules
// scaled to seconds.
func TestTimeToFireWorkbook(t *testing.T) {
	page := BurnRule{Long: time.Hour, Short: 5 * time.Minute, Rate: 14.4}
	ticket := BurnRule{Long: 6 * time.Hour, Short: 30 * time.Minute, Rate: 6}
	scaled := BurnRule{Long: time.Minute, Short: 5 * time.Second, Rate: 14.4}
	tests := []struct {
		name     string
		rule     BurnRule
		badRatio float64
		want     time.Duration
	}{
		{"page, 100 % errors", page, 1, 864 * time.Millisecond * 60},      // 0.864 min
		{"page, 2 % errors", page, 0.02, 43*time.Minute + 12*time.Second}, // 43.2 min
		{"page, 1.44 % errors (exactly the rate)", page, 0.0144, time.Hour},
		{"ticket, 100 % errors", ticket, 1, 129600 * time.Millisecond}, // 2.16 min
		{"ticket, 0.6 % errors (exactly the rate)", ticket, 0.006, 6 * time.Hour},
		{"ticket, 1 % errors", ticket, 0.01, 3*time.Hour + 36*time.Minute},
		{"scaled page, 100 % errors", scaled, 1, 864 * time.Millisecond},
		{"scaled page, 2 % errors", scaled, 0.02, 43200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TimeToFire(tc.rule, 0.999, tc.badRatio)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("TimeToFire = %v, want %v", got, tc.want)
			}
		})
	}
	if got := TimeToFire(page, 0.999, 0.01); got != time.Duration(math.MaxInt64) {
		t.Fatalf("1 %% errors never fire the 14.4× rule, got %v", got)
	}
}

func TestBurn(t *testing.T) {
	tests := []struct {
		name       string
		bad, total uint64
		objective  float64
		want       float64
	}{
		{"no traffic", 0, 0, 0.999, 0},
		{"exactly on budget", 1, 1000, 0.999, 1},
		{"all bad", 10, 10, 0.999, 1000},
		{"1 % at 99 %", 1, 100, 0.99, 1},
		{"2 % at 99.9 %", 2, 100, 0.999, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Burn(tc.bad, tc.total, tc.objective); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Burn = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBurnRuleFiresOnRing measures, through the real recording path and
// rings, when the page rule fires after a constant bad ratio starts on top
// of a full window of clean traffic, and compares with the workbook.
func TestBurnRuleFiresOnRing(t *testing.T) {
	tests := []struct {
		name     string
		rule     BurnRule
		badRatio float64
		rps      int
	}{
		{"1 h / 5 m, 100 % errors", BurnRule{Long: time.Hour, Short: 5 * time.Minute, Rate: 14.4}, 1, 10},
		{"1 h / 5 m, 2 % errors", BurnRule{Long: time.Hour, Short: 5 * time.Minute, Rate: 14.4}, 0.02, 10},
		{"60 s / 5 s, 100 % errors", BurnRule{Long: time.Minute, Short: 5 * time.Second, Rate: 14.4}, 1, 100},
		{"60 s / 5 s, 2 % errors", BurnRule{Long: time.Minute, Short: 5 * time.Second, Rate: 14.4}, 0.02, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rule.Long > time.Minute && (raceEnabled || testing.Short()) {
				t.Skip("hour-long windows: skipped with -short and -race")
			}
			want := TimeToFire(tc.rule, 0.999, tc.badRatio)
			got := measureFire(t, tc.rule, tc.badRatio, tc.rps)
			// The ring counts whole intervals and errors come in whole
			// requests: allow two intervals and 0.2 % either way.
			tol := 2*time.Second + want/500
			if d := got - want; d < -tol || d > tol {
				t.Fatalf("fired after %v, workbook says %v", got, want)
			}
			t.Logf("fired after %v (workbook %v)", got, want)
		})
	}
}

// measureFire feeds one window of clean traffic, then badRatio errors, and
// returns how long after onset the fast rule first fires.
func measureFire(t *testing.T, rule BurnRule, badRatio float64, rps int) time.Duration {
	t.Helper()
	cfg := DefaultConfig()
	cfg.FastBurn = rule
	cfg.SlowBurn = rule
	cfg.History = time.Minute
	cfg.MinRequests = 1
	now := simEpoch
	reg := NewRegistry(cfg, func() time.Time { return now })
	c := reg.Cell("c")
	step := time.Second / time.Duration(rps)
	bad := 0.0
	record := func(errors bool) {
		status := 200
		if errors {
			if bad += badRatio; bad >= 1 {
				bad--
				status = 500
			}
		}
		c.RecordAt(now, status, false, time.Millisecond, time.Millisecond)
		now = now.Add(step)
	}
	for now.Before(simEpoch.Add(rule.Long)) {
		record(false)
	}
	onset := now
	for now.Sub(onset) < 2*rule.Long {
		for range rps {
			record(true)
		}
		b := reg.burns([]string{"c"}, now.Add(-time.Nanosecond))
		if len(b.firing(rule, WindowFastLong, WindowFastShort)) > 0 {
			return now.Sub(onset)
		}
	}
	t.Fatalf("rule never fired")
	return 0
}
