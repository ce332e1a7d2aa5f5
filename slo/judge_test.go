package slo

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStateText(t *testing.T) {
	for s, name := range map[State]string{Inconclusive: "inconclusive", Healthy: "healthy", Degraded: "degraded", Failing: "failing"} {
		if s.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), name)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", s, b, err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("round trip of %s: %v, %v", b, back, err)
		}
	}
	if err := json.Unmarshal([]byte(`"great"`), new(State)); err == nil {
		t.Error("unknown state name decoded without error")
	}
}

// judgeCase is a deterministic scenario: seconds of traffic at fixed rates
// on a canary and a baseline cell, then one verdict.
type judgeCase struct {
	name               string
	seconds            int
	canaryRPS, baseRPS int
	canaryErr, baseErr float64 // deterministic error ratios
	canaryLat, baseLat time.Duration
	gates              []SignalGate
	signals            map[string]float64 // canary signals, set at the end
	noBaseline         bool
	// decisiveMargin, when set, replaces DecisiveMargin, so a case can
	// show a degraded rule that the decisive tests would otherwise pre-empt.
	decisiveMargin float64
	wantState      State
	wantRule       string
}

func (jc judgeCase) run(t *testing.T) Verdict {
	t.Helper()
	reg, baseline, since := jc.setup()
	return reg.Judge([]string{"canary"}, baseline, since, jc.gates)
}

// setup records the case's traffic and returns the registry, the baseline
// cells and the step's start.
func (jc judgeCase) setup() (*Registry, []string, time.Time) {
	now := simEpoch
	cfg := simConfig()
	if jc.decisiveMargin > 0 {
		cfg.DecisiveMargin = jc.decisiveMargin
	}
	reg := NewRegistry(cfg, func() time.Time { return now })
	feed := func(c *Cell, rps int, errRatio float64, lat time.Duration, acc *float64) {
		for j := range rps {
			status := 200
			if *acc += errRatio; *acc >= 1 {
				*acc--
				status = 502
			}
			// A small deterministic spread so the rank test sees a distribution.
			d := lat + time.Duration(j%20)*lat/100
			c.RecordAt(now.Add(time.Duration(j)*time.Second/time.Duration(rps)), status, status == 502, d, d/2)
		}
	}
	canary, base := reg.Cell("canary"), reg.Cell("base")
	since := now
	var ca, ba float64
	for range jc.seconds {
		feed(canary, jc.canaryRPS, jc.canaryErr, jc.canaryLat, &ca)
		feed(base, jc.baseRPS, jc.baseErr, jc.baseLat, &ba)
		now = now.Add(time.Second)
	}
	now = now.Add(-time.Millisecond)
	for name, v := range jc.signals {
		reg.SetSignal("canary", name, v, now)
	}
	baseline := []string{"base"}
	if jc.noBaseline {
		baseline = nil
	}
	return reg, baseline, since
}

func TestJudge(t *testing.T) {
	ms := time.Millisecond
	quality := []SignalGate{{Name: "quality", Threshold: 0.9, Direction: Below}}
	tests := []judgeCase{
		{name: "too few requests", seconds: 10, canaryRPS: 5, baseRPS: 100, canaryLat: 50 * ms, baseLat: 50 * ms,
			wantState: Inconclusive, wantRule: RuleMinRequests},
		{name: "same as baseline", seconds: 120, canaryRPS: 100, baseRPS: 300, canaryErr: 0.001, baseErr: 0.001,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Healthy, wantRule: RuleNoRegression},
		{name: "all errors fires the fast burn", seconds: 70, canaryRPS: 100, baseRPS: 300, canaryErr: 1,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleFastBurn},
		{name: "fast burn without a baseline", seconds: 70, canaryRPS: 100, canaryErr: 0.5, canaryLat: 50 * ms,
			noBaseline: true, wantState: Failing, wantRule: RuleFastBurn},
		{name: "slow latency fires the latency fast burn", seconds: 70, canaryRPS: 100, baseRPS: 300,
			canaryLat: 400 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleFastBurn},
		{name: "1 % errors vs 0.6 %: slow burn", seconds: 320, canaryRPS: 100, baseRPS: 300, canaryErr: 0.01, baseErr: 0.006,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Degraded, wantRule: RuleSlowBurn},
		{name: "0.5 % vs 0.1 %: error regression", seconds: 300, canaryRPS: 200, baseRPS: 600, canaryErr: 0.005, baseErr: 0.001,
			canaryLat: 50 * ms, baseLat: 50 * ms, decisiveMargin: 100, wantState: Degraded, wantRule: RuleErrorRatio},
		{name: "0.5 % vs 0.1 %: decisive at the default margin", seconds: 300, canaryRPS: 200, baseRPS: 600, canaryErr: 0.005, baseErr: 0.001,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleErrorDecisive},
		{name: "30 % slower: latency regression", seconds: 120, canaryRPS: 100, baseRPS: 300,
			canaryLat: 65 * ms, baseLat: 50 * ms, decisiveMargin: 100, wantState: Degraded, wantRule: RuleLatency},
		{name: "3 errors in the first 4 requests: decisive, no sample gate", seconds: 1, canaryRPS: 4, baseRPS: 300, canaryErr: 0.75,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleErrorDecisive},
		{name: "1 error in 4 requests: not yet", seconds: 1, canaryRPS: 4, baseRPS: 300, canaryErr: 0.25,
			canaryLat: 50 * ms, baseLat: 50 * ms, wantState: Inconclusive, wantRule: RuleMinRequests},
		{name: "3× slower (p99 +200 %): decisive latency", seconds: 2, canaryRPS: 20, baseRPS: 300,
			canaryLat: 150 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleLatencyDecisive},
		{name: "30 % slower: decisive latency at the default margin", seconds: 120, canaryRPS: 100, baseRPS: 300,
			canaryLat: 65 * ms, baseLat: 50 * ms, wantState: Failing, wantRule: RuleLatencyDecisive},
		{name: "signal breach", seconds: 120, canaryRPS: 100, baseRPS: 300, canaryLat: 50 * ms, baseLat: 50 * ms,
			gates: quality, signals: map[string]float64{"quality": 0.5}, wantState: Degraded, wantRule: RuleSignal},
		{name: "signal fine", seconds: 120, canaryRPS: 100, baseRPS: 300, canaryLat: 50 * ms, baseLat: 50 * ms,
			gates: quality, signals: map[string]float64{"quality": 0.95}, wantState: Healthy, wantRule: RuleNoRegression},
		{name: "signal missing", seconds: 120, canaryRPS: 100, baseRPS: 300, canaryLat: 50 * ms, baseLat: 50 * ms,
			gates: quality, wantState: Inconclusive, wantRule: RuleSignalMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.run(t)
			if v.State != tc.wantState || v.Rule != tc.wantRule {
				t.Fatalf("got %v by %s (%s), want %v by %s", v.State, v.Rule, v.Reason, tc.wantState, tc.wantRule)
			}
			if v.Reason == "" {
				t.Fatal("verdict without a reason")
			}
			// The failing-rules-only judgement (alarm reactions) says
			// failing exactly when Judge does, by the same rule.
			reg, baseline, since := tc.setup()
			f := reg.judgeFailing([]string{"canary"}, baseline, since)
			if (f.State == Failing) != (v.State == Failing) || (f.State == Failing && (f.Rule != v.Rule || f.Canary.Requests != v.Canary.Requests)) {
				t.Fatalf("judgeFailing: %v by %s (%s), Judge: %v by %s", f.State, f.Rule, f.Reason, v.State, v.Rule)
			}
		})
	}
}

// TestVerdictJSON checks the audit record's shape.
func TestVerdictJSON(t *testing.T) {
	v := judgeCase{seconds: 120, canaryRPS: 100, baseRPS: 300, canaryErr: 0.001, baseErr: 0.001,
		canaryLat: 50 * time.Millisecond, baseLat: 50 * time.Millisecond}.run(t)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"state":"healthy"`, `"rule":"no_regression"`, `"canary_stats":`, `"baseline_stats":`,
		`"burn":[`, `"tests":[`, `"error_ratio"`, `"p99_ns":`, `"log_lr":`, `"window":"fast_long"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("verdict JSON lacks %s: %s", field, b)
		}
	}
	var back Verdict
	if err := json.Unmarshal(b, &back); err != nil || back.State != v.State || back.Canary.Requests != v.Canary.Requests {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestSignalGateValidate(t *testing.T) {
	tests := []struct {
		name string
		g    SignalGate
		ok   bool
	}{
		{"above", SignalGate{Name: "drift", Direction: Above}, true},
		{"below", SignalGate{Name: "quality", Direction: Below}, true},
		{"no name", SignalGate{Direction: Above}, false},
		{"bad direction", SignalGate{Name: "x", Direction: "sideways"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.g.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSignalsOlderValueIgnoredAndStale(t *testing.T) {
	now := simEpoch
	reg := NewRegistry(simConfig(), func() time.Time { return now })
	reg.SetSignal("c", "drift", 0.1, now)
	reg.SetSignal("c", "drift", 9, now.Add(-time.Second)) // late, older: ignored
	gates := []SignalGate{{Name: "drift", Threshold: 0.5, Direction: Above}}
	if r := reg.readSignals([]string{"c"}, gates, now); r[0].Missing || r[0].Breached || r[0].Value != 0.1 {
		t.Fatalf("reading %+v", r[0])
	}
	if reg.lookup("c") != nil {
		t.Fatal("a signal created a recorder")
	}
	now = now.Add(reg.Config().SignalMaxAge + time.Second)
	if r := reg.readSignals([]string{"c"}, gates, now); !r[0].Missing {
		t.Fatalf("stale signal not missing: %+v", r[0])
	}
}
