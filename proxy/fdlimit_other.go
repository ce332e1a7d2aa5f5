//go:build !unix

package proxy

// noFileLimit is 0 (unknown) where there is no RLIMIT_NOFILE.
func noFileLimit() uint64 { return 0 }
