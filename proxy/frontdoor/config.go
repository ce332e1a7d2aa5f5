package frontdoor

import "time"

// Config bounds what the front door accepts. The zero value is usable: every
// zero field takes the value DefaultConfig gives it.
type Config struct {
	// MaxRequestLine is the longest request line accepted, in bytes, counting
	// its CRLF. Longer lines are refused with 414. 8 KiB matches what common
	// servers and CDNs accept (RFC 9112 §3 recommends supporting at least
	// 8000 octets), so legitimate URLs pass while a client cannot make us
	// buffer an unbounded line. Zero means 8 KiB.
	MaxRequestLine int

	// MaxHeaderBytes bounds the header section (and, separately, the trailer
	// section), in bytes, counting every field line and its CRLF. Larger
	// sections are refused with 431 (RFC 6585 §5). 32 KiB leaves room for
	// fat cookies and tracing headers while capping per-connection memory.
	// The fasthttp server behind the front door must have a ReadBufferSize
	// at least MaxRequestLine+MaxHeaderBytes, or it refuses first with its
	// own, less precise error. Zero means 32 KiB.
	MaxHeaderBytes int

	// MaxHeaderCount bounds the number of field lines in the header section
	// (and, separately, the trailer section). Refused with 431. Many tiny
	// fields cost more per byte to parse and forward than a few large ones;
	// 100 is generous for real clients. Zero means 100.
	MaxHeaderCount int

	// WriteTimeout bounds the time spent writing a refusal to a client that
	// does not read. Zero means 1 s.
	WriteTimeout time.Duration

	// LingerTimeout bounds how long a refused connection is drained after
	// its write side has been shut, so that unread client bytes do not turn
	// the close into a TCP reset that destroys the refusal in flight
	// (RFC 9112 §9.6). Zero means 500 ms.
	LingerTimeout time.Duration
}

// DefaultConfig returns the limits used for zero fields, each with its reason
// on the field's comment.
func DefaultConfig() Config {
	return Config{
		MaxRequestLine: 8 << 10,
		MaxHeaderBytes: 32 << 10,
		MaxHeaderCount: 100,
		WriteTimeout:   time.Second,
		LingerTimeout:  500 * time.Millisecond,
	}
}

// withDefaults returns cfg with every zero or negative field replaced by
// its default.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if cfg.MaxRequestLine <= 0 {
		cfg.MaxRequestLine = d.MaxRequestLine
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if cfg.MaxHeaderCount <= 0 {
		cfg.MaxHeaderCount = d.MaxHeaderCount
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = d.WriteTimeout
	}
	if cfg.LingerTimeout <= 0 {
		cfg.LingerTimeout = d.LingerTimeout
	}
	return cfg
}
