//go:build linux

// Command evproto is issue 20's event-loop prototype: an HTTP/1.1 reverse
// proxy for keep-alive bodiless requests with known-length responses, run
// by one epoll loop (golang.org/x/sys/unix) instead of a goroutine per
// connection, so that its syscalls and context switches per request can be
// measured beside HAProxy and cellgate with the shared baseline script
// (bench/README.md, "Issue 20"). Client bytes pass through the proxy's front
// door validator (proxy/frontdoor) before anything is forwarded; routing,
// timeouts, request bodies, chunked responses and TLS are not in it. It is a
// measuring instrument, not a server to deploy.
//
//	evproto -listen 127.0.0.1:18090 -upstream 127.0.0.1:19000
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18090", "address to serve")
	upstream := flag.String("upstream", "127.0.0.1:19000", "IPv4 upstream address")
	mode := flag.Int("raw", 0, "system call mode: 0 runtime, 1 raw non-blocking calls, 2 raw epoll_wait too (sys.go)")
	lock := flag.Bool("lock", true, "lock the loop goroutine to its thread")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	flag.Parse()
	if err := run(*listen, *upstream, *cpuprofile, *mode, !*lock); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(listen, upstream, cpuprofile string, mode int, unlocked bool) error {
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		return fmt.Errorf("evproto: listen: %w", err)
	}
	l, err := newLoop(ln.(*net.TCPListener), upstream, "direct")
	ln.Close() // the loop serves its own duplicate of the socket
	if err != nil {
		return err
	}
	l.mode, l.unlocked = mode, unlocked
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("evproto: %w", err)
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { <-sig; l.Stop() }()
	return l.Run()
}
