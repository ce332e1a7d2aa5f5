package cellgate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sdkFlagsHead configures a boolean and a string flag for the SDK test.
const sdkFlagsHead = `
[routing]
sticky_key = ["header:X-User-ID"]
[[flag]]
name = "new-ranker"
type = "boolean"
variants = { on = 30, off = 70 }
[[flag]]
name = "checkout"
variants = { classic = 60, express = 40 }
control = "classic"
`

// TestOpenFeatureSDK evaluates flags with the real OpenFeature Node.js
// server SDK and its OFREP provider (@openfeature/server-sdk,
// @openfeature/ofrep-provider from npm; testdata/ofrep-node) against the
// node's admin listener, and checks that for 200 users the SDK's variant of
// every flag is the one the node injects into the same user's proxied
// requests (X-Cellgate-Flags, echoed by the demo cell), that a boolean
// flag's value is its variant's, and that an unknown flag and a missing
// targetingKey reach the SDK as FLAG_NOT_FOUND and TARGETING_KEY_MISSING
// with the caller's default.
func TestOpenFeatureSDK(t *testing.T) {
	dir := filepath.Join("testdata", "ofrep-node")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("Node.js not found: install nodejs and npm (Debian: apt-get install nodejs npm), then npm ci --prefix testdata/ofrep-node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openfeature", "ofrep-provider")); err != nil {
		t.Skip("the OpenFeature SDK is not installed: npm ci --prefix testdata/ofrep-node (.ci/run does it)")
	}
	c := startCluster(t, sdkFlagsHead, flagCells()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "evaluate.mjs", "http://"+c.node.AdminAddr(), "200")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node evaluate.mjs: %v\n%s", err, stderr.String())
	}
	type detail struct {
		User, Flag, Variant, Reason, ErrorCode string
		Value                                  any
	}
	var evals []detail
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var d detail
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("SDK output %q: %v", sc.Text(), err)
		}
		evals = append(evals, d)
	}
	if len(evals) != 402 {
		t.Fatalf("%d evaluations, want 402:\n%s", len(evals), out)
	}
	injected := map[string]string{}
	seen := map[string]bool{}
	for _, d := range evals[:400] {
		if d.ErrorCode != "" || d.Reason != "SPLIT" {
			t.Fatalf("SDK evaluation %+v", d)
		}
		if _, ok := injected[d.User]; !ok {
			injected[d.User] = flagOf(t, c, d.User)
		}
		if !strings.Contains(injected[d.User]+",", d.Flag+"="+d.Variant+",") {
			t.Errorf("%s: the SDK says %s=%s, the upstream saw %q", d.User, d.Flag, d.Variant, injected[d.User])
		}
		if d.Flag == "new-ranker" && d.Value != (d.Variant == "on") {
			t.Errorf("%s: boolean value %v for variant %s", d.User, d.Value, d.Variant)
		}
		if d.Flag == "checkout" && d.Value != d.Variant {
			t.Errorf("%s: string value %v for variant %s", d.User, d.Value, d.Variant)
		}
		seen[d.Flag+"="+d.Variant] = true
	}
	if len(seen) != 4 {
		t.Errorf("200 users drew only %v", seen)
	}
	if d := evals[400]; d.ErrorCode != "FLAG_NOT_FOUND" || d.Value != true {
		t.Errorf("unknown flag: %+v, want FLAG_NOT_FOUND with the default true", d)
	}
	if d := evals[401]; d.ErrorCode != "TARGETING_KEY_MISSING" || d.Value != true {
		t.Errorf("no targetingKey: %+v, want TARGETING_KEY_MISSING with the default true", d)
	}
}
