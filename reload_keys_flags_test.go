package cellgate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/configs"
)

// The rows of TestReloadEveryKey for feature-flag keys (see keyRow). Each
// starts the node with one flag and checks the reload through what the
// upstream saw in X-Cellgate-Flags (democell echoes it as X-Demo-Flags)
// or, for OFREP, through an evaluation.
func init() { keyRows = append(keyRows, flagKeyRows...) }

// withFlag configures flag "exp": every user on variant "b".
func withFlag(c *configs.Config, _ *keyEnv) {
	c.FlagList = []configs.Flag{{Name: "exp", Variants: map[string]float64{"a": 0, "b": 1}, Control: "a"}}
}

// editFlag edits a copy of the first flag (the base's list is shared).
func editFlag(edit func(f *configs.Flag)) func(c *configs.Config, _ *keyEnv) {
	return func(c *configs.Config, _ *keyEnv) {
		f := c.FlagList[0]
		f.Variants = map[string]float64{}
		for k, v := range c.FlagList[0].Variants {
			f.Variants[k] = v
		}
		edit(&f)
		c.FlagList = []configs.Flag{f}
	}
}

// upstreamSees checks that 16 users' requests all reached the upstream
// with X-Cellgate-Flags want.
func upstreamSees(want string) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		for k := range 16 {
			if got := e.get(t, fmt.Sprint("user-", k)).Header.Get("X-Demo-Flags"); got != want {
				t.Fatalf("user-%d: the upstream saw X-Cellgate-Flags %q, want %q", k, got, want)
			}
		}
	}
}

var flagKeyRows = []keyRow{
	{key: "flag.name", hot: true, base: withFlag,
		edit:  editFlag(func(f *configs.Flag) { f.Name = "exp2" }),
		check: upstreamSees("exp2=b")},
	{key: "flag.variants", hot: true, base: withFlag,
		edit:  editFlag(func(f *configs.Flag) { f.Variants = map[string]float64{"a": 1, "b": 0} }),
		check: upstreamSees("exp=a")},
	{key: "flag.control", hot: true, base: withFlag,
		edit: editFlag(func(f *configs.Flag) { f.Control = "b" }),
		check: func(t *testing.T, e *keyEnv) {
			if s := e.node().Flags().Load(); s.Def(0).Control != "b" {
				t.Errorf("the flag's control after the reload: %q", s.Def(0).Control)
			}
		}},
	{key: "flag.type", hot: true,
		base: func(c *configs.Config, _ *keyEnv) {
			c.FlagList = []configs.Flag{{Name: "exp", Variants: map[string]float64{"on": 1, "off": 0}, Control: "off"}}
		},
		edit:  editFlag(func(f *configs.Flag) { f.Type = configs.FlagBoolean }),
		check: ofrepValueIs("exp", true)},
	{key: "flag.exposure", hot: true, base: withFlag,
		edit: editFlag(func(f *configs.Flag) { f.Exposure = configs.ExposureMarked }),
		check: func(t *testing.T, e *keyEnv) {
			if s := e.node().Flags().Load(); !s.HasMarked() || !s.Def(0).Marked {
				t.Error("exposure = marked not in effect after the reload")
			}
		}},
	{key: "flags.ofrep_prefix", hot: true, base: withFlag,
		edit:  func(c *configs.Config, _ *keyEnv) { c.FlagSettings.OFREPPrefix = "/_cg" },
		check: ofrepOnDataPlane("/_cg", "exp", "b")},
}

// ofrepEval posts an OFREP evaluation of flag to base (a listener's URL
// plus any prefix) and returns status and decoded body.
func ofrepEval(t *testing.T, base, flag, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/ofrep/v1/evaluate/flags/"+flag, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// ofrepValueIs checks the admin listener's evaluation value of flag.
func ofrepValueIs(flag string, want any) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		status, m := ofrepEval(t, "http://"+e.node().AdminAddr(), flag, `{"context":{"targetingKey":"user-1"}}`)
		if status != 200 || m["value"] != want {
			t.Errorf("OFREP %s: %d %v, want value %v", flag, status, m, want)
		}
	}
}

// ofrepOnDataPlane checks that the client listener answers OFREP under
// prefix, taking the request's own sticky key.
func ofrepOnDataPlane(prefix, flag, variant string) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		status, m := ofrepEval(t, "http://"+e.node().Addr()+prefix, flag, `{"context":{}}`, "X-User-ID", "user-1")
		if status != 200 || m["variant"] != variant {
			t.Errorf("OFREP on the data plane under %s: %d %v, want variant %s", prefix, status, m, variant)
		}
	}
}
