package admin

import (
	"strconv"
	"testing"
	"time"
)

// FuzzParseSince: since=… never panics, and an accepted value is a time
// that its own Unix-seconds form gives back.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"0", "1796013129", "2026-11-30T04:05:06Z", "-1", "1e9", "2026-11-30T04:05:06+02:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tm, ok := parseSince(v)
		if !ok {
			return
		}
		back, ok := parseSince(strconv.FormatInt(tm.Unix(), 10))
		if tm.Unix() >= 0 && (!ok || !back.Equal(time.Unix(tm.Unix(), 0))) {
			t.Fatalf("%q → %v; its Unix form gives %v %v", v, tm, back, ok)
		}
	})
}
