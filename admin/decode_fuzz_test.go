package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// bodySeeds are request bodies of every route, valid and not.
var bodySeeds = []string{
	`{"weight": 10, "reason": "by hand"}`, `{"weight": -1}`, `{"weight": 1e400}`, `{"weight": "1"}`,
	`{"cell": "canary-1", "name": "drift", "value": 0.3}`, `{"reason": "x"}`, `{}`, ``, `  `, `null`,
	`{"name": "ranker-v2", "strategy": "canary", "targets": ["canary-1"], "baseline": ["stable-a"],
	  "steps": [1, 5, 25, 50, 100], "bake": "30s", "min_requests": 200, "approve_at": [50],
	  "release": {"version": "v2", "notes": "new ranker"}}`,
	`{"a":1}{"a":2}`, `{"a":1} x`, `[1,2]`, `"str"`, `{"weight": 1, "weight": 2}`, "{\"reason\": \"\xff\"}",
	`{"weight": 1, "extra": {"deep": [1, 2, {"x": null}]}}`,
}

// FuzzDecodeBodies feeds arbitrary bytes to the strict decoder of every
// request body type and to the plan decoder. It checks that nothing
// panics, every failure is a 400 with a known code, and whatever decodes
// re-encodes to an equal value that decodes strictly again.
func FuzzDecodeBodies(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newV := range []func() any{
			func() any { return new(weightBody) },
			func() any { return new(signalBody) },
			func() any { return new(actionBody) },
			func() any { return new(reloadBody) },
		} {
			v := newV()
			if e := decodeStrict(data, v, true); e != nil {
				checkDecodeError(t, e)
				continue
			}
			again := newV()
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encode %T: %v", v, err)
			}
			if e := decodeStrict(enc, again, false); e != nil {
				t.Fatalf("re-decode %s: %v", enc, e)
			}
			if !reflect.DeepEqual(v, again) {
				t.Fatalf("round trip %T: %+v != %+v", v, v, again)
			}
		}
		plan, e := decodePlan(data)
		if e != nil {
			checkDecodeError(t, e)
			return
		}
		if !json.Valid(plan) || plan[0] != '{' {
			t.Fatalf("decodePlan passed %q, not one JSON object", plan)
		}
	})
}

func checkDecodeError(t *testing.T, e *Error) {
	t.Helper()
	switch e.Code {
	case CodeBadJSON, CodeUnknownField, CodeTrailingData:
	default:
		t.Fatalf("decode error code %q (%s)", e.Code, e.Msg)
	}
	if e.Status != http.StatusBadRequest || e.Msg == "" {
		t.Fatalf("decode error %+v", e)
	}
}

// FuzzParseTokens checks the token file parser never panics and that
// every token it accepts matches itself.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"ci:abc\n", "abc", "# c\n\nx:y\nz\n", ":", "a:b\na:c", "\xff:\x00", "\uFEFFops:abc\n", "\uFEFF\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		tk, err := ParseTokens(strings.NewReader(text), "f")
		if err != nil {
			return
		}
		if tk.Len() == 0 {
			t.Fatal("no error and no token")
		}
		// A byte order mark before the file changes nothing.
		if strings.HasPrefix(text, "\uFEFF") {
			return
		}
		withBOM, err := ParseTokens(strings.NewReader("\uFEFF"+text), "f")
		if err != nil || withBOM.Len() != tk.Len() {
			t.Fatalf("with a BOM: %v, %d tokens; without: %d", err, withBOM.Len(), tk.Len())
		}
		for i, e := range tk.entries {
			if withBOM.entries[i] != e {
				t.Fatalf("with a BOM token %d is %q, without %q", i, withBOM.entries[i].name, e.name)
			}
		}
	})
}
