//go:build !linux

package proxy

import (
	"context"
	"errors"
	"net"
)

// loopSupported refuses the loop core: it is built on epoll.
func loopSupported() error {
	return errors.New(`core "loop" needs Linux (epoll); use "goroutine"`)
}

// loopCore is empty off Linux: New refuses CoreLoop (loopSupported).
type loopCore struct{}

func (p *Proxy) startLoops(net.Listener) (net.Listener, bool, error) { return nil, false, nil }

// LoopStats counts what the loop core did; always zero here.
type LoopStats struct {
	Served, Handed uint64
	// ParsedHeads counts the upstream response heads the loop had
	// fasthttp parse; the simple ones (proxy/respsimple.go) are decided
	// from their bytes alone.
	ParsedHeads uint64
}

// LoopStats returns the loop core's counts.
func (p *Proxy) LoopStats() LoopStats { return LoopStats{} }

func (l *loopCore) shutdown(context.Context) {}
func (l *loopCore) closeAll()                {}
func (l *loopCore) open() int                { return 0 }
