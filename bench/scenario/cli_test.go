package scenario

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no scenario", nil, exitUsage, "want a scenario name"},
		{"unknown scenario", []string{"deploy"}, exitUsage, "want a scenario name"},
		{"bad fault", []string{"rollout", "-fault", "smoke"}, exitUsage, `fault "smoke"`},
		{"bad output", []string{"rollout", "-o", "xml"}, exitUsage, `-o "xml"`},
		{"fault step past the plan", []string{"rollout", "-fault", "errors", "-fault-step", "6"}, exitUsage, "fault step 6"},
		{"stray argument", []string{"rollout", "http://x/"}, exitUsage, "unexpected arguments"},
		{"unknown flag", []string{"rollout", "-nope"}, exitUsage, "-nope"},
		{"help", []string{"-h"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Main(tc.args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.msg) {
				t.Errorf("stderr %q, want it to mention %q", errOut.String(), tc.msg)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	o, output, err := parseFlags([]string{"-fault", "latency", "-rate", "250", "-keys", "99", "-tick", "50ms", "-o", "json", "-q"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Fault != FaultLatency || o.Rate != 250 || o.Keys != 99 || o.Tick != 50*time.Millisecond || output != "json" || o.Progress != nil {
		t.Errorf("options %+v, output %s", o, output)
	}
	if o.Bake != DefaultOptions().Bake || o.FaultStep != 3 || o.LatencyThreshold != 300*time.Millisecond {
		t.Errorf("defaults not kept: bake %v, fault step %d, latency threshold %v", o.Bake, o.FaultStep, o.LatencyThreshold)
	}
	// A latency fault below the threshold would be no fault at all.
	if _, _, err := parseFlags([]string{"-fault", "latency", "-latency-threshold", "1s", "-q"}, &bytes.Buffer{}); err == nil {
		t.Error("a 400 ms latency fault under a 1 s threshold was accepted")
	}
}
