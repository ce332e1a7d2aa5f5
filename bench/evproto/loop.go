//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/cellgate/cellgate/proxy/frontdoor"
)

// loop is one epoll event loop owning a listening socket, its client
// connections and one upstream connection per client connection (as
// HAProxy's "http-reuse always" ends up doing under a steady load). Every
// socket is level-triggered and non-blocking; each readiness event costs one
// read or write, never a read that is expected to fail with EAGAIN.
type loop struct {
	ep       int
	lfd      int
	lfile    *os.File // owns lfd: dropping it would let its finalizer close the socket
	stopfd   int      // eventfd: a write ends Run
	upstream unix.Sockaddr
	cell     []byte // value of the response header naming the cell
	fd       []*pair
	events   [256]unix.EpollEvent
	mode     int  // how system calls are made (sys.go)
	unlocked bool // Run does not lock its thread (-lock=false)
}

// pair is a client connection and its upstream connection.
type pair struct {
	cfd, ufd int
	v        *frontdoor.Validator
	peer     []byte // client address for X-Forwarded-For

	in  []byte // client bytes not yet handled
	fed int    // bytes of in already fed to v

	busy       bool  // a request has been sent upstream and not fully answered
	head       bool  // the response head has been forwarded
	noBody     bool  // the request was HEAD: the response has no body whatever its fields say
	remaining  int64 // response body bytes still to forward
	closeAfter bool  // the upstream said Connection: close
	paused     bool  // client reads are off while a request is in flight
	connecting bool  // the upstream connect is under way; p.req waits for it

	req  []byte // the request head sent upstream (reused)
	resp []byte // upstream bytes read, head not yet complete
	out  []byte // bytes for the client that a write left over
	rbuf []byte // upstream read buffer
}

const (
	bufSize = 16 << 10
	evIn    = unix.EPOLLIN | unix.EPOLLRDHUP
)

func newLoop(ln *net.TCPListener, upstream string, cell string) (*loop, error) {
	ua, err := net.ResolveTCPAddr("tcp4", upstream)
	if err != nil {
		return nil, fmt.Errorf("evproto: upstream %q: %w", upstream, err)
	}
	sa := &unix.SockaddrInet4{Port: ua.Port}
	copy(sa.Addr[:], ua.IP.To4())
	f, err := ln.File() // a dup, blocking; the loop owns it
	if err != nil {
		return nil, fmt.Errorf("evproto: listener fd: %w", err)
	}
	lfd := int(f.Fd())
	if err := unix.SetNonblock(lfd, true); err != nil {
		return nil, fmt.Errorf("evproto: listener nonblock: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("evproto: epoll: %w", err)
	}
	sfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("evproto: eventfd: %w", err)
	}
	l := &loop{ep: ep, lfd: lfd, lfile: f, stopfd: sfd, upstream: sa, cell: []byte(cell)}
	for _, fd := range []int{lfd, sfd} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return nil, fmt.Errorf("evproto: epoll add: %w", err)
		}
	}
	return l, nil
}

// Stop makes Run return; safe from any goroutine.
func (l *loop) Stop() {
	var one = [8]byte{1}
	unix.Write(l.stopfd, one[:])
}

// Run serves until Stop. It locks its goroutine to its thread: the loop is
// the only thing this process runs.
func (l *loop) Run() error {
	if !l.unlocked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	for {
		n, err := l.wait()
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("evproto: epoll_wait: %w", err)
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.stopfd:
				l.closeAll()
				return nil
			case fd == l.lfd:
				l.accept()
			default:
				p := l.fd[fd]
				if p == nil {
					continue
				}
				if fd == p.cfd {
					l.clientEvent(p, ev.Events)
				} else {
					l.upstreamEvent(p, ev.Events)
				}
			}
		}
	}
}

func (l *loop) set(fd int, p *pair) {
	for fd >= len(l.fd) {
		l.fd = append(l.fd, nil)
	}
	l.fd[fd] = p
}

func (l *loop) accept() {
	for i := 0; i < 16; i++ {
		cfd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or an error for this one connection
		}
		unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		p := &pair{cfd: cfd, ufd: -1, v: frontdoor.NewValidator(frontdoor.Config{}),
			in: make([]byte, 0, bufSize), rbuf: make([]byte, bufSize)}
		if a, ok := sa.(*unix.SockaddrInet4); ok {
			p.peer = []byte(net.IP(a.Addr[:]).String())
		}
		l.set(cfd, p)
		if err := l.ctl(unix.EPOLL_CTL_ADD, cfd, evIn); err != nil {
			l.close(p)
		}
	}
}

func (l *loop) close(p *pair) {
	if p.cfd >= 0 {
		l.fd[p.cfd] = nil
		unix.Close(p.cfd) // leaves the epoll set with its last descriptor
		p.cfd = -1
	}
	l.closeUpstream(p)
}

func (l *loop) closeUpstream(p *pair) {
	if p.ufd >= 0 {
		l.fd[p.ufd] = nil
		unix.Close(p.ufd)
		p.ufd = -1
	}
	p.connecting = false
}

func (l *loop) closeAll() {
	for _, p := range l.fd {
		if p != nil {
			l.close(p)
		}
	}
	l.lfile.Close()
	unix.Close(l.stopfd)
	unix.Close(l.ep)
}

// clientEvent reads what the client sent and, when no request is in
// flight, starts the next one.
func (l *loop) clientEvent(p *pair, ev uint32) {
	if ev&unix.EPOLLOUT != 0 && len(p.out) > 0 {
		if !l.flush(p) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	if p.busy {
		// A pipelining client: stop reading until the answer is out, or
		// level triggering would wake the loop for these bytes again and again.
		l.pause(p)
		return
	}
	if len(p.in) == cap(p.in) {
		l.close(p) // a head larger than the buffer; the real front door refuses it with 431
		return
	}
	n, err := l.read(p.cfd, p.in[len(p.in):cap(p.in)])
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		l.close(p)
		return
	}
	p.in = p.in[:len(p.in)+n]
	l.next(p)
}

func (l *loop) pause(p *pair) {
	if !p.paused {
		p.paused = true
		l.ctl(unix.EPOLL_CTL_MOD, p.cfd, 0)
	}
}

func (l *loop) resume(p *pair, out bool) {
	ev := uint32(evIn)
	if out {
		ev |= unix.EPOLLOUT
	}
	p.paused = false
	l.ctl(unix.EPOLL_CTL_MOD, p.cfd, ev)
}

var errUnsupported = errors.New("evproto: only bodiless requests")

// next validates the buffered client bytes and sends the first complete
// request upstream. Incomplete heads wait for more bytes; bytes already fed
// are not fed again (the validator carries an unfinished line itself).
func (l *loop) next(p *pair) {
	if len(p.in) == p.fed {
		return
	}
	before := p.v.Requests()
	n, r := p.v.FeedMessage(p.in[p.fed:])
	p.fed += n
	if r != nil {
		l.write(p.cfd, r.Response())
		l.close(p)
		return
	}
	if p.v.Requests() == before {
		return // the head is not complete yet
	}
	if err := l.send(p, p.in[:p.fed]); err != nil {
		l.close(p)
		return
	}
	rest := copy(p.in, p.in[p.fed:])
	p.in = p.in[:rest]
	p.fed = 0
}

// send rewrites the request head for the upstream and writes it.
func (l *loop) send(p *pair, head []byte) error {
	le := bytes.IndexByte(head, '\n')
	line := head[:le+1]
	if bytes.HasPrefix(line, []byte("HEAD ")) {
		p.noBody = true
	} else {
		p.noBody = false
	}
	b := append(p.req[:0], line...)
	fields := head[le+1:]
	for len(fields) > 0 {
		e := bytes.IndexByte(fields, '\n')
		f := fields[:e+1]
		fields = fields[e+1:]
		if len(f) <= 2 {
			break // the empty line
		}
		name := f[:bytes.IndexByte(f, ':')]
		switch {
		case hopByHop(name):
			continue
		case fold(name, "content-length"), fold(name, "transfer-encoding"):
			return errUnsupported
		}
		b = append(b, f...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, p.peer...)
	b = append(b, "\r\n\r\n"...)
	p.req = b
	p.busy, p.head, p.remaining, p.closeAfter = true, false, 0, false
	p.resp = p.resp[:0]
	if p.ufd < 0 {
		return l.dial(p) // the head goes out once connected (connected)
	}
	return l.writeHead(p)
}

// writeHead writes the request head in p.req to the upstream.
func (l *loop) writeHead(p *pair) error {
	b := p.req
	for off := 0; off < len(b); {
		n, err := l.write(p.ufd, b[off:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err // EAGAIN on a fresh request head: not in the prototype
		}
		off += n
	}
	return nil
}

func (l *loop) dial(p *pair) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// Non-blocking: a connect that waits (a full accept queue upstream
	// retransmits its SYN after a second) must not stall the loop.
	unix.SetNonblock(fd, true)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	p.ufd = fd
	l.set(fd, p)
	err = unix.Connect(fd, l.upstream)
	switch err {
	case nil:
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, evIn); err != nil {
			return err
		}
		return l.writeHead(p)
	case unix.EINPROGRESS:
		p.connecting = true
		return l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLOUT)
	}
	return err
}

// connected finishes a non-blocking connect and sends the waiting head.
func (l *loop) connected(p *pair) {
	p.connecting = false
	if e, err := unix.GetsockoptInt(p.ufd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
		l.write(p.cfd, resp502)
		l.close(p)
		return
	}
	if l.ctl(unix.EPOLL_CTL_MOD, p.ufd, evIn) != nil || l.writeHead(p) != nil {
		l.write(p.cfd, resp502)
		l.close(p)
	}
}

// upstreamEvent reads response bytes and forwards them to the client.
func (l *loop) upstreamEvent(p *pair, ev uint32) {
	if p.connecting {
		l.connected(p)
		return
	}
	if len(p.out) > 0 {
		// The client has not taken the last bytes yet; stop reading
		// upstream until it has (flush turns this back on).
		l.ctl(unix.EPOLL_CTL_MOD, p.ufd, 0)
		return
	}
	n, err := l.read(p.ufd, p.rbuf)
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		if p.busy {
			if !p.head {
				l.write(p.cfd, resp502)
			}
			l.close(p)
			return
		}
		l.closeUpstream(p) // an idle upstream connection closed: redial next time
		return
	}
	if !p.busy {
		l.close(p) // bytes nobody asked for
		return
	}
	data := p.rbuf[:n]
	if !p.head {
		p.resp = append(p.resp, data...)
		end := bytes.Index(p.resp, []byte("\r\n\r\n"))
		if end < 0 {
			if len(p.resp) > bufSize {
				l.write(p.cfd, resp502)
				l.close(p)
			}
			return
		}
		hd := p.resp[:end+4]
		body := p.resp[end+4:]
		out, ok := l.responseHead(p, hd)
		if !ok {
			l.write(p.cfd, resp502)
			l.close(p)
			return
		}
		p.head = true
		if int64(len(body)) > p.remaining {
			l.close(p) // more than the response: not in the prototype
			return
		}
		p.remaining -= int64(len(body))
		out = append(out, body...)
		p.req = out[:0] // reuse: the request head is sent already
		l.toClient(p, out)
	} else {
		if int64(n) > p.remaining {
			l.close(p)
			return
		}
		p.remaining -= int64(n)
		l.toClient(p, data)
	}
}

var resp502 = []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

// responseHead checks the upstream's head and returns it with the cell
// header added, in p.req's array.
func (l *loop) responseHead(p *pair, hd []byte) ([]byte, bool) {
	le := bytes.IndexByte(hd, '\n')
	line := hd[:le+1]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return nil, false
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return nil, false
	}
	out := append(p.req[:0], line...)
	haveLen := false
	fields := hd[le+1:]
	for len(fields) > 2 {
		e := bytes.IndexByte(fields, '\n')
		f := fields[:e+1]
		fields = fields[e+1:]
		c := bytes.IndexByte(f, ':')
		if c < 0 {
			return nil, false
		}
		name := f[:c]
		switch {
		case fold(name, "content-length"):
			v, err := strconv.ParseInt(string(bytes.TrimSpace(f[c+1:])), 10, 64)
			if err != nil || v < 0 {
				return nil, false
			}
			p.remaining, haveLen = v, true
		case fold(name, "transfer-encoding"):
			return nil, false // chunked: not in the prototype
		case fold(name, "connection"):
			if bytes.Contains(bytes.ToLower(f[c+1:]), []byte("close")) {
				p.closeAfter = true
			}
			continue
		case hopByHop(name):
			continue
		}
		out = append(out, f...)
	}
	if p.noBody || status == 204 || status == 304 || status < 200 {
		p.remaining = 0
	} else if !haveLen {
		return nil, false
	}
	out = append(out, "X-Cellgate-Cell: "...)
	out = append(out, l.cell...)
	out = append(out, "\r\n\r\n"...)
	return out, true
}

// toClient writes b to the client; what the socket does not take waits in
// p.out for writability.
func (l *loop) toClient(p *pair, b []byte) {
	n, err := l.write(p.cfd, b)
	if err != nil && err != unix.EAGAIN {
		l.close(p)
		return
	}
	if n < 0 {
		n = 0
	}
	if n < len(b) {
		p.out = append(p.out[:0], b[n:]...)
		l.resume(p, true)
		return
	}
	l.answered(p)
}

// flush writes p.out; it reports whether all of it went.
func (l *loop) flush(p *pair) bool {
	n, err := l.write(p.cfd, p.out)
	if err != nil && err != unix.EAGAIN {
		l.close(p)
		return false
	}
	if n < len(p.out) {
		if n > 0 {
			p.out = p.out[:copy(p.out, p.out[n:])]
		}
		return false
	}
	p.out = p.out[:0]
	l.resume(p, false)
	if p.ufd >= 0 {
		l.ctl(unix.EPOLL_CTL_MOD, p.ufd, evIn)
	}
	l.answered(p)
	return true
}

// answered finishes the request when its whole response is out, and
// starts a pipelined next one.
func (l *loop) answered(p *pair) {
	if p.remaining > 0 {
		return
	}
	p.busy = false
	if p.closeAfter {
		l.closeUpstream(p)
	}
	if p.paused {
		l.resume(p, false)
	}
	l.next(p)
}

func hopByHop(name []byte) bool {
	return fold(name, "connection") || fold(name, "keep-alive") || fold(name, "proxy-connection") ||
		fold(name, "te") || fold(name, "upgrade") || fold(name, "trailer")
}

func fold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
