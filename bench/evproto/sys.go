//go:build linux

package main

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Syscall modes (-raw), each measured (bench/README.md, "Issue 20"):
//
//	0: every call through unix.Read/Write/EpollWait, i.e. the runtime's
//	   entersyscall/exitsyscall around each; sysmon may take the P away
//	   from a call that takes long and hand it back after.
//	1: reads, writes and epoll_ctl on non-blocking sockets as raw system
//	   calls (they never block, so the runtime need not know), and
//	   epoll_wait tried with a zero timeout raw before the blocking call.
//	2: as 1, and the blocking epoll_wait raw too, bounded to 10 ms so the
//	   runtime's own goroutines (signals, GC) get the thread back
//	   (runtime.Gosched) at least that often when idle.
const (
	modeRuntime = iota
	modeRaw
	modeRawWait
)

func (l *loop) read(fd int, p []byte) (int, error) {
	if l.mode == modeRuntime {
		return unix.Read(fd, p)
	}
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

func (l *loop) write(fd int, p []byte) (int, error) {
	if l.mode == modeRuntime {
		return unix.Write(fd, p)
	}
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
	if l.mode == modeRuntime {
		return unix.EpollCtl(l.ep, op, fd, &ev)
	}
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

// wait returns the next batch of events.
func (l *loop) wait() (int, error) {
	switch l.mode {
	case modeRaw:
		if n, err := l.rawWait(0); n > 0 || err != nil {
			return n, err
		}
	case modeRawWait:
		n, err := l.rawWait(10)
		if n == 0 && err == nil {
			runtime.Gosched()
		}
		return n, err
	}
	return unix.EpollWait(l.ep, l.events[:], -1)
}
