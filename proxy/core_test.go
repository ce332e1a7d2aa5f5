package proxy

import (
	"runtime"
	"testing"
)

// TestResolveCore: listen.core = "auto" (and "", the same default) is the
// loop core on a platform that has it and a plain listener, the goroutine
// core on a TLS listener or without epoll; an explicit core is kept as
// written (so "loop" off Linux and a bad value reach checkCore, which
// refuses them, as New does).
func TestResolveCore(t *testing.T) {
	for _, tc := range []struct {
		core        string
		tls, loopOK bool
		want        string
		refused     bool // by checkCore, whatever the platform
	}{
		{core: CoreAuto, loopOK: true, want: CoreLoop},
		{core: "", loopOK: true, want: CoreLoop},
		{core: CoreAuto, tls: true, loopOK: true, want: CoreGoroutine},
		{core: "", tls: true, loopOK: true, want: CoreGoroutine},
		{core: CoreAuto, loopOK: false, want: CoreGoroutine},
		{core: CoreAuto, tls: true, loopOK: false, want: CoreGoroutine},
		{core: CoreGoroutine, loopOK: true, want: CoreGoroutine},
		{core: CoreGoroutine, tls: true, loopOK: true, want: CoreGoroutine},
		{core: CoreLoop, loopOK: true, want: CoreLoop},
		{core: CoreLoop, loopOK: false, want: CoreLoop}, // New refuses it there (loopSupported)
		{core: "threads", loopOK: true, want: "threads", refused: true},
		{core: "Auto", loopOK: true, want: "Auto", refused: true},
	} {
		got := resolveCore(tc.core, tc.tls, tc.loopOK)
		if got != tc.want {
			t.Errorf("resolveCore(%q, tls %v, loop supported %v) = %q, want %q", tc.core, tc.tls, tc.loopOK, got, tc.want)
		}
		if err := checkCore(got); (err != nil) != tc.refused && got != CoreLoop {
			t.Errorf("checkCore(%q) = %v, want refused %v", got, err, tc.refused)
		}
	}
	// This platform's answer for the default on a plain listener.
	want := CoreGoroutine
	if runtime.GOOS == "linux" {
		want = CoreLoop
	}
	if got := ResolveCore(CoreAuto, false); got != want {
		t.Errorf("ResolveCore(auto, plain) on %s = %q, want %q", runtime.GOOS, got, want)
	}
	if err := checkCore(CoreAuto); err == nil {
		t.Error(`checkCore("auto") accepted an unresolved core: the proxy cannot see TLS`)
	}
}
