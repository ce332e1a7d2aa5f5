package proxy

import "fmt"

// The HTTP/1.1 server cores (Options.Core, listen.core). The goroutine core
// is fasthttp's: one goroutine per connection, blocking reads and writes.
// The loop core (loopcore.go, Linux) runs epoll event loops that serve the
// common request themselves — bodiless HTTP/1.1 to an HTTP/1.1 cell — and
// hand every other connection to the goroutine core at a request boundary,
// so the two share one request path for everything the loop does not do.
const (
	CoreGoroutine = "goroutine"
	CoreLoop      = "loop"
)

// checkCore validates Options.Core.
func checkCore(core string) error {
	switch core {
	case "", CoreGoroutine:
		return nil
	case CoreLoop:
		return loopSupported()
	}
	return fmt.Errorf("core %q: want %q or %q", core, CoreGoroutine, CoreLoop)
}
