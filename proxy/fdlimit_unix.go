//go:build unix

package proxy

import "syscall"

// noFileLimit returns the soft RLIMIT_NOFILE (the Go runtime raises it to
// the hard limit at start), or 0 when it cannot be read or is unlimited.
func noFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) {
		return 0
	}
	return rl.Cur
}
