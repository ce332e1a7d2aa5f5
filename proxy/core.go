package proxy

import "fmt"

// The HTTP/1.1 server cores (Options.Core, listen.core). The goroutine core
// is fasthttp's: one goroutine per connection, blocking reads and writes.
// The loop core (loopcore.go, Linux) runs epoll event loops that serve the
// common request themselves — bodiless HTTP/1.1 to an HTTP/1.1 cell — and
// hand every other connection to the goroutine core at a request boundary,
// so the two share one request path for everything the loop does not do.
//
// CoreAuto is a config value only (listen.core's default): ResolveCore
// turns it into one of the two before the proxy sees it.
const (
	CoreGoroutine = "goroutine"
	CoreLoop      = "loop"
	CoreAuto      = "auto"
)

// ResolveCore is the server core a listener runs: core as configured
// (listen.core; "" is the default, CoreAuto), tls whether the listener
// terminates TLS. Explicit values are kept. CoreAuto picks the loop core
// where it applies — Linux, plain TCP — because it answers the common
// request for less CPU and latency than the goroutine core (bench/README.md
// "Loop core") and hands everything else over; on a TLS listener the loop
// would hand every connection over (it reads plain bytes only), and off
// Linux it does not exist, so there the goroutine core serves directly.
// The node decides here once, at start; a reload that would change the
// answer (turning TLS on or off, changing listen.core) needs a restart.
func ResolveCore(core string, tls bool) string {
	return resolveCore(core, tls, loopSupported() == nil)
}

// resolveCore is ResolveCore with the platform's answer as a parameter, so
// a test covers every platform on one.
func resolveCore(core string, tls, loopOK bool) string {
	if core != "" && core != CoreAuto {
		return core
	}
	if loopOK && !tls {
		return CoreLoop
	}
	return CoreGoroutine
}

// checkCore validates Options.Core, which is resolved: CoreAuto is refused
// here (a Proxy cannot see whether its listener is TLS; see ResolveCore).
func checkCore(core string) error {
	switch core {
	case "", CoreGoroutine:
		return nil
	case CoreLoop:
		return loopSupported()
	}
	return fmt.Errorf("core %q: want %q or %q (resolve %q with ResolveCore)", core, CoreGoroutine, CoreLoop, CoreAuto)
}

// Core is the server core this proxy serves HTTP/1.1 with, CoreLoop or
// CoreGoroutine: Options.Core ("" is CoreGoroutine), except that a loop
// core given a listener it cannot serve (not TCP) leaves it to the
// goroutine core (startLoops logs that). Operators see it on /v1/status.
func (p *Proxy) Core() string {
	if p.opts.Core != CoreLoop || p.loopDeclined.Load() {
		return CoreGoroutine
	}
	return CoreLoop
}
