package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"-bogus", "http://x/"}, "flag provided but not defined: -bogus"},
		{"bad duration", []string{"-duration", "soon", "http://x/"}, "invalid value \"soon\" for flag -duration"},
		{"no url", []string{"-c", "4"}, "missing target URL"},
		{"two urls", []string{"http://a/", "http://b/"}, "2 URLs given"},
		{"bad scheme", []string{"ftp://a/"}, "scheme must be http or https"},
		{"bad output", []string{"-o", "xml", "http://a/"}, `-o "xml"`},
		{"bad key dist", []string{"-keys", "10", "-key-dist", "pareto", "http://a/"}, `key distribution "pareto"`},
		{"negative rate", []string{"-rate", "-5", "http://a/"}, "must not be negative"},
		{"zero connections", []string{"-c", "0", "http://a/"}, "need at least 1"},
		{"zero duration", []string{"-duration", "0s", "http://a/"}, "-duration 0s: must be positive"},
		{"compare one url", []string{"-compare", "http://a/"}, "need at least 2 target URLs"},
		{"compare zero rounds", []string{"-compare", "-rounds", "0", "http://a/", "http://b/"}, "-rounds 0"},
		{"bad header", []string{"-H", "nocolon", "http://a/"}, `want "Name: value"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := MainContext(context.Background(), tt.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}

func TestMainCollectsAllProblems(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := MainContext(context.Background(), []string{"-o", "xml", "-c", "0", "ftp://a/"}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"-o \"xml\"", "need at least 1", "scheme"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestMainJSONAndFiles runs the command line with flags after the URL and
// checks that the JSON decodes and the hlog and plot files are written.
func TestMainJSONAndFiles(t *testing.T) {
	url := startServer(t, okHandler)
	dir := t.TempDir()
	hlog, plot := filepath.Join(dir, "run.hlog"), filepath.Join(dir, "run.svg")
	var stdout, stderr bytes.Buffer
	code := MainContext(context.Background(), []string{
		url, "-rate", "300", "-c", "2", "-duration", "400ms", "-warmup", "100ms", "-interval", "100ms",
		"-keys", "50", "-key-dist", "zipf", "-o", "json", "-hlog", hlog, "-plot", plot, "-H", "X-Test: yes",
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var res Result
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decode json: %v", err)
	}
	if res.Mode != ModeOpen || res.Rate != 300 || res.Requests == 0 || res.Latency.P99 <= 0 || res.KeyDist != DistZipf {
		t.Errorf("decoded result %+v", res)
	}
	if res.Uncorrected == nil || len(res.Distribution) == 0 || res.Status[200] != res.Requests {
		t.Errorf("uncorrected %v distribution %d status %v", res.Uncorrected, len(res.Distribution), res.Status)
	}
	data, err := os.ReadFile(hlog)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, h := range readHlog(t, data) {
		total += h.TotalCount()
	}
	if total != res.Latency.Count {
		t.Errorf("hlog holds %d values, result %d", total, res.Latency.Count)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "<polyline", "99.999%", "uncorrected", "</svg>"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

func TestMainCompareText(t *testing.T) {
	a, b := startServer(t, okHandler), startServer(t, okHandler)
	var stdout, stderr bytes.Buffer
	code := MainContext(context.Background(), []string{
		"-compare", "-rounds", "1", "-duration", "150ms", "-warmup", "0s", "-c", "2", a, b,
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"A " + a, "B " + b, "ratio to A (median of rounds)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestMainNoResponseFails(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := MainContext(context.Background(), []string{"-duration", "100ms", "-warmup", "0s", "-c", "1", "-rate", "50", refusedURL}, &stdout, &stderr)
	if code != exitFail || !strings.Contains(stderr.String(), "no response") {
		t.Errorf("exit %d stderr %q: want 1 and a message", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), CauseRefused) {
		t.Errorf("report lacks the cause:\n%s", stdout.String())
	}
}
