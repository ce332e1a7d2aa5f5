package configs

import (
	"strings"
	"testing"
)

func TestFlagsParse(t *testing.T) {
	c, err := Parse([]byte(minimal+`
[flags]
ofrep_prefix = "/_cellgate"
[[flag]]
name = "new-ranker"
type = "boolean"
variants = { on = 5, off = 95 }
[[flag]]
name = "checkout"
variants = { classic = 1, express = 1, "one-click" = 0 }
control = "classic"
exposure = "marked"
`), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.FlagList) != 2 || c.FlagList[0].Variants["on"] != 5 || c.FlagList[0].ControlVariant() != "off" {
		t.Fatalf("flags: %+v", c.FlagList)
	}
	if got := strings.Join(c.FlagList[1].VariantNames(), ","); got != "classic,express,one-click" {
		t.Errorf("variants in index order: %s", got)
	}
	if c.FlagSettings.OFREPPrefix != "/_cellgate" {
		t.Errorf("ofrep_prefix %q", c.FlagSettings.OFREPPrefix)
	}
}

// TestFlagProblemsAllReportedWithLines: every problem of every flag at once,
// each at its line.
func TestFlagProblemsAllReportedWithLines(t *testing.T) {
	src := minimal + `[flags]                    # 6
ofrep_prefix = "_cg/"        # 7
[[flag]]                     # 8
name = "cell"                # 9
variants = { on = 1, off = 1 }  # 10
[[flag]]                     # 11
name = "New"                 # 12
variants = { a = 1 }         # 13
[[flag]]                     # 14
name = "b"                   # 15
type = "boolean"             # 16
variants = { on = 1, maybe = 0 }  # 17
exposure = "some"            # 18
[[flag]]                     # 19
name = "c"                   # 20
variants = { x = 0, y = 0, "9z" = -1 }  # 21
control = "q"                # 22
[[flag]]                     # 23
name = "c"                   # 24
variants = { x = 1, y = 1 }  # 25
`
	_, err := Parse([]byte(src), "bad.toml")
	want := []string{
		"bad.toml:7: flags.ofrep_prefix",
		"bad.toml:9: flag.0.name: \"cell\" is reserved",
		"bad.toml:8: flag.0.control: name the control variant", // no control line: the [[flag]] line
		"bad.toml:12: flag.1.name: flag name \"New\" must be an RFC 8941 key",
		"bad.toml:13: flag.1.variants: a flag needs 2 to",
		"bad.toml:16: flag.2.type: a boolean flag has exactly",
		"bad.toml:18: flag.2.exposure",
		"bad.toml:21: flag.3.variants: variant \"9z\" must be an RFC 8941 token",
		"bad.toml:21: flag.3.variants: variant \"9z\": weight must be a non-negative",
		"bad.toml:22: flag.3.control: control \"q\" is not one of the variants",
		"bad.toml:24: flag.4.name: duplicate flag name \"c\" (also flag 4, line 20)",
	}
	wantProblems(t, err, want, false)
	if msg := err.Error(); strings.Contains(msg, "flag.4.variants") {
		t.Errorf("a valid flag's variants reported:\n%s", msg)
	}
}

func TestIsSFKeyAndToken(t *testing.T) {
	for _, c := range []struct {
		s          string
		key, token bool
	}{
		{"new-ranker", true, true}, {"a.b_c*", true, true}, {"*x", true, true},
		{"New", false, true}, {"9a", false, false}, {"on/off:1", false, true},
		{"", false, false}, {"a b", false, false}, {"a=b", false, false},
	} {
		if IsSFKey(c.s) != c.key || IsSFToken(c.s) != c.token {
			t.Errorf("%q: key %v token %v, want %v %v", c.s, IsSFKey(c.s), IsSFToken(c.s), c.key, c.token)
		}
	}
}
