//go:build linux

package proxy

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's system calls on its non-blocking sockets are raw
// (unix.RawSyscall): they never block, so the runtime need not hand the
// loop's P to another thread around each (entersyscall/exitsyscall), and
// sysmon has no long call to take over. bench/README.md ("Event-loop
// prototype") measured it: CPU per request 1.10× HAProxy's through the
// runtime's calls, 0.77× raw.
//
// The wait is raw too, and bounded (loopWaitMax), and the loop yields
// (runtime.Gosched) before it and after every batch of events, so the
// process's other goroutines — admin, gossip, the SLO engine, health
// checks — run on the loop's P between batches, with GOMAXPROCS=1 too.

// loopWaitMax bounds a raw epoll_wait: how long the loop holds its P while
// nothing happens.
const loopWaitMax = 10 // milliseconds

func rawRead(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func (l *loop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (l *loop) rawWait(msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// wait returns the next batch of events: at once when some are ready,
// otherwise after yielding, within loopWaitMax.
func (l *loop) wait() (int, error) {
	if n, err := l.rawWait(0); n > 0 || err != nil {
		return n, err
	}
	runtime.Gosched()
	return l.rawWait(loopWaitMax)
}
