package rollout

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const postedPlan = `{"name": "ranker-v2", "strategy": "canary", "targets": ["canary-1"],
 "baseline": ["stable-a", "stable-b"], "steps": [1, 5, 25, 50, 100],
 "bake": "30s", "min_requests": 200, "approve_at": [50],
 "release": {"version": "v2", "notes": "new ranker"}}`

func TestDecodePlan(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, p Plan)
	}{
		{name: "the posted plan", in: postedPlan, check: func(t *testing.T, p Plan) {
			if p.Bake.D() != 30*time.Second || p.MinRequests != 200 || p.RevertTo != RevertStart || p.Release.Version != "v2" {
				t.Fatalf("%+v", p)
			}
		}},
		{name: "defaults", in: `{"name":"x","targets":["a"],"baseline":["b"]}`, check: func(t *testing.T, p Plan) {
			if p.Strategy != StrategyCanary || len(p.Steps) != 5 || p.Bake.D() != defaultBake || p.MinRequests != defaultMinRequests {
				t.Fatalf("%+v", p)
			}
		}},
		{name: "explicit zero bake kept", in: `{"name":"x","bake":"0s","min_requests":0}`, check: func(t *testing.T, p Plan) {
			if p.Bake != 0 || p.MinRequests != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{name: "rolling defaults", in: `{"name":"x","strategy":"rolling","webhooks":{"pre_step":"http://h/x"},"signals":[{"name":"q","threshold":1}]}`, check: func(t *testing.T, p Plan) {
			if p.RevertTo != RevertLastHealthy || p.Webhooks.Timeout.D() != defaultWebhookTimeout || p.Signals[0].BadWhen != BadAbove || !reflect.DeepEqual(p.Steps, []float64{25, 50, 100}) {
				t.Fatalf("%+v", p)
			}
		}},
		{name: "unknown field", in: `{"name":"x","stpes":[1]}`, wantErr: "unknown field"},
		{name: "trailing data", in: `{"name":"x"} {}`, wantErr: "trailing"},
		{name: "numeric duration", in: `{"name":"x","bake":30}`, wantErr: "duration"},
		{name: "bad duration", in: `{"name":"x","bake":"soon"}`, wantErr: "duration"},
		{name: "not an object", in: `[]`, wantErr: "decode plan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePlan([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want %q wrapping ErrInvalid", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

func TestValidate(t *testing.T) {
	known := Weights{"a": 1, "b": 1, "c": 1, "d": 1}
	base := func() Plan {
		return Plan{Name: "p", Strategy: StrategyCanary, Targets: []string{"a"}, Baseline: []string{"b", "c"}, Steps: []float64{1, 50, 100}}
	}
	tests := []struct {
		name string
		edit func(p *Plan)
		want []string // substrings, one per expected problem
	}{
		{"valid", func(p *Plan) {}, nil},
		{"unknown cell", func(p *Plan) { p.Baseline = []string{"zz"} }, []string{`unknown cell "zz"`}},
		{"target in baseline", func(p *Plan) { p.Baseline = []string{"a"} }, []string{"both a target and a baseline"}},
		{"duplicate", func(p *Plan) { p.Baseline = []string{"b", "b"} }, []string{"listed twice"}},
		{"no targets", func(p *Plan) { p.Targets = nil }, []string{"targets: at least one"}},
		{"steps not increasing", func(p *Plan) { p.Steps = []float64{5, 5, 100} }, []string{"steps must increase"}},
		{"step out of range", func(p *Plan) { p.Steps = []float64{0, 100, 150} }, []string{"outside (0, 100]", "outside (0, 100]", "last step must be 100"}},
		{"last step", func(p *Plan) { p.Steps = []float64{1, 50} }, []string{"last step must be 100"}},
		{"approve_at", func(p *Plan) { p.ApproveAt = []float64{7} }, []string{"approve_at 7"}},
		{"strategy", func(p *Plan) { p.Strategy = "yolo" }, []string{"strategy \"yolo\""}},
		{"rolling pairs", func(p *Plan) { p.Strategy = StrategyRolling }, []string{"1 targets but 2 baseline"}},
		{"rolling same wave", func(p *Plan) {
			p.Strategy, p.Baseline, p.Steps = StrategyRolling, []string{"b"}, []float64{10, 100}
		}, []string{"switches 1 of 1 pairs"}},
		{"name", func(p *Plan) { p.Name = "a/b" }, []string{"name"}},
		{"numbers", func(p *Plan) { p.Bake, p.MinRequests, p.MaxStepPerTick = -1, -1, 101 }, []string{"bake", "min_requests", "max_step_per_tick"}},
		{"webhooks", func(p *Plan) { p.Webhooks = &Webhooks{PreStep: "ftp://x", OnRollback: "/rel"} }, []string{"pre_step", "on_rollback"}},
		{"signals", func(p *Plan) { p.Signals = []SignalGate{{Cell: "d", BadWhen: "sideways"}} }, []string{"name is required", "bad_when", "not one of the plan's cells"}},
		{"revert_to", func(p *Plan) { p.RevertTo = "yesterday" }, []string{"revert_to"}},
		{"many at once", func(p *Plan) { p.Name, p.Targets, p.Steps = "", []string{"zz"}, []float64{50, 10} }, []string{"name", "unknown cell", "must increase", "last step"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.edit(&p)
			err := p.Validate(known)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %q", len(ve.Problems), len(tc.want), ve.Problems)
			}
			for i, w := range tc.want {
				if !strings.Contains(ve.Problems[i], w) {
					t.Errorf("problem %d = %q, want it to mention %q", i, ve.Problems[i], w)
				}
			}
		})
	}
	t.Run("nil known cells skips existence", func(t *testing.T) {
		p := base()
		p.Targets = []string{"anything"}
		if err := p.Validate(nil); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodePlan: decoding never panics; a decoded plan validates without
// panicking and survives a JSON round trip unchanged.
func FuzzDecodePlan(f *testing.F) {
	f.Add([]byte(postedPlan))
	f.Add([]byte(`{"name":"x","strategy":"rolling","targets":["a","b"],"baseline":["c","d"],"steps":[50,100],"webhooks":{"pre_step":"http://h","timeout":"1s"},"signals":[{"name":"q","cell":"a","threshold":0.5,"bad_when":"below"}]}`))
	f.Add([]byte(`{"bake":"-1h","steps":[null]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePlan(data)
		if err != nil {
			return
		}
		_ = p.Validate(nil)
		_ = p.Validate(Weights{"a": 1})
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal decoded plan: %v", err)
		}
		q, err := DecodePlan(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the plan:\n%+v\n%+v", p, q)
		}
	})
}
