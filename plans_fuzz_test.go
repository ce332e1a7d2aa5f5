package cellgate

import (
	"encoding/json"
	"testing"
)

// FuzzPlanName: planName never panics, and says "a name" only for a JSON
// object whose one key is "name" with that non-empty string.
func FuzzPlanName(f *testing.F) {
	for _, s := range []string{`{"name":"cfgplan"}`, `{"name":""}`, `{"name":"p","targets":["a"]}`,
		`{"Name":"p"}`, `{"name":1}`, `{"name":"a","name":"b"}`, `[]`, `{`, `{"name":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		name, ok := planName(raw)
		if !ok {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 || m["name"] != name || name == "" {
			t.Fatalf("planName(%q) = %q, but the body decodes to %v (%v)", raw, name, m, err)
		}
	})
}
