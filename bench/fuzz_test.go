package bench

import (
	"io"
	"strings"
	"testing"
)

// FuzzParseArgs feeds arbitrary command lines to the flag parser: it must
// return options or an error, never panic, and accepted options must be
// valid.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"http://127.0.0.1:8080/",
		"-rate 100 -c 4 http://a/",
		"-compare -rounds 2 http://a/ http://b/",
		"-H X-A:1 -keys 10 -key-dist zipf http://a/",
		"-o json ftp://x",
		"-duration -1s http://a/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		o, err := parseArgs(strings.Fields(line), io.Discard)
		if err != nil {
			return
		}
		if !o.compare {
			if verr := o.cfg.Validate(); verr != nil {
				t.Errorf("accepted %q but config invalid: %v", line, verr)
			}
		}
	})
}

// FuzzParseTarget checks that any accepted URL yields a dial address.
func FuzzParseTarget(f *testing.F) {
	for _, seed := range []string{"http://a/", "https://b:8443/x?y=1", "http://[::1]:80/", "http://", "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseTarget(raw)
		if err == nil && (tg.addr == "" || tg.uri != raw) {
			t.Errorf("parseTarget(%q) = %+v", raw, tg)
		}
	})
}
