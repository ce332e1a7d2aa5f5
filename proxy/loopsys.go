//go:build linux

package proxy

import (
	"runtime"
	"time"
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
// The wait is the runtime's when the loop would block: a raw epoll_wait
// that blocks holds the loop's P in the kernel, and every other goroutine
// of the process that needs that P — a handed-over connection's, the
// admin API's, an in-process upstream in tests — waits for it to time out
// (measured: 200 KiB responses from an in-process upstream at 50 per
// second with a raw wait bounded to 10 ms). So the loop first polls raw
// (zero timeout), yields once and polls again, and only then blocks in
// unix.EpollWait, which the runtime sees: sysmon hands the P to whoever
// needs it. Under load the raw polls find events and the blocking wait is
// rare. bench/README.md ("Loop core") compares it with the prototype's
// bounded raw wait (CELLGATE_LOOP_RAW_WAIT=1, for measuring only).

// loopWaitMax bounds a blocking wait, so deadlines are swept while idle.
const loopWaitMax = int(sweepEvery / time.Millisecond)

// rawWaitMax bounds the prototype's raw blocking wait (rawBlock).
const rawWaitMax = 10

// rawRead reads the loop's eventfd (not a socket: recvfrom refuses it).
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

// rawRecv and rawSend are the sockets' reads and writes: recvfrom and
// sendto, as HAProxy makes them, go straight to the socket layer, where
// read and write pass through the file layer first (fdget_pos,
// rw_verify_area, vfs_read/vfs_write, sock_read_iter/sock_write_iter);
// bench/README.md ("Loop core CPU, session 6") measured the difference.
// MSG_NOSIGNAL: a write to a reset connection fails with EPIPE without
// raising SIGPIPE (which the runtime would field and ignore).
func rawRecv(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(ptr), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawSend(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(ptr), uintptr(len(p)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0)
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

// wait returns the next batch of events.
func (l *loop) wait() (int, error) {
	if n, err := l.rawWait(0); n > 0 || err != nil {
		return n, err
	}
	runtime.Gosched()
	if l.lc.rawBlock {
		return l.rawWait(rawWaitMax)
	}
	if n, err := l.rawWait(0); n > 0 || err != nil {
		return n, err
	}
	return unix.EpollWait(l.ep, l.events[:], loopWaitMax)
}
