package bench

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Key distributions accepted by Config.KeyDist.
const (
	DistUniform = "uniform"
	DistZipf    = "zipf"
	// DistSeq visits the keys in turn: connection w of C sends keys w,
	// w+C, w+2C … (mod Keys), so about Keys requests visit every key once,
	// which random draws need Keys·ln(Keys) for. bench/scaling.sh uses it
	// to make a million session pins in one pass.
	DistSeq = "seq"
)

// Config describes one load run against one target. The zero value is not
// usable; start from DefaultConfig and override fields.
type Config struct {
	// URL is the target, http:// or https://, with path and query. The
	// generator keeps connections to its host:port alive.
	URL string

	// Rate is the open-loop request rate in requests per second over all
	// connections. Zero selects closed-loop mode: each connection sends its
	// next request as soon as the previous response arrived.
	Rate float64

	// Connections is the number of keep-alive connections (and sending
	// goroutines). In open-loop mode it bounds the requests in flight: if
	// all are busy, the schedule keeps running and the late requests are
	// charged from their intended time.
	Connections int

	// Warmup is the time at the start whose requests are sent but not
	// recorded (connections, caches and JITs of the target settle). Zero
	// records from the first request.
	Warmup time.Duration

	// Duration is the measured time after the warm-up. Zero runs until the
	// context is cancelled (for scenarios that drive load in the
	// background); the command line requires it to be positive.
	Duration time.Duration

	// Timeout bounds one request; a request that takes longer is counted as
	// a "timeout" error and its connection is closed.
	Timeout time.Duration

	// Method is the HTTP method; "" means GET.
	Method string

	// Headers are added to every request, name → value.
	Headers map[string]string

	// Keys is the number of distinct keys sent in KeyHeader. Zero sends no
	// key header.
	Keys int

	// KeyDist is DistUniform, DistZipf or DistSeq ("" means uniform). Zipf
	// sends a few hot keys most of the time, as real user populations do.
	KeyDist string

	// ZipfS is the Zipf exponent s (> 1); zero means 1.1.
	ZipfS float64

	// KeyHeader is the request header carrying the key, so that sticky
	// routing by header is exercised.
	KeyHeader string

	// KeyPrefix is prepended to the key number ("user-" gives user-17).
	KeyPrefix string

	// Seed seeds the key choice; runs with the same seed send the same key
	// sequence per connection. Zero means a fixed default seed.
	Seed uint64

	// Insecure skips verification of the target's TLS certificate (for
	// self-signed test setups); https targets only.
	Insecure bool

	// Interval is the length of one histogram interval: the progress line,
	// Hooks.OnInterval and the .hlog file advance by it. Zero means 1s.
	Interval time.Duration
}

// DefaultConfig returns the settings `cellgate bench` starts from.
func DefaultConfig() Config {
	return Config{
		Connections: 16,               // enough to saturate a small proxy without swamping a 2-core box
		Warmup:      time.Second,      // one second settles keep-alive pools and the target's caches
		Duration:    10 * time.Second, // long enough for a stable p99 at a few thousand requests/s
		Timeout:     5 * time.Second,  // longer than any sane proxy timeout, so the proxy reports its own
		Method:      "GET",
		KeyDist:     DistUniform,
		ZipfS:       1.1, // close to measured user-popularity skew
		KeyHeader:   "X-User-ID",
		KeyPrefix:   "user-",
		Interval:    time.Second, // the resolution HdrHistogram log tools expect
	}
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := parseTarget(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Rate < 0 {
		add("rate %v: must not be negative", c.Rate)
	}
	if c.Connections < 1 {
		add("connections %d: need at least 1", c.Connections)
	}
	if c.Warmup < 0 {
		add("warmup %v: must not be negative", c.Warmup)
	}
	if c.Duration < 0 {
		add("duration %v: must not be negative", c.Duration)
	}
	if c.Timeout <= 0 {
		add("timeout %v: must be positive", c.Timeout)
	}
	if c.Keys < 0 {
		add("keys %d: must not be negative", c.Keys)
	}
	switch c.KeyDist {
	case "", DistUniform, DistSeq:
	case DistZipf:
		if c.ZipfS != 0 && c.ZipfS <= 1 {
			add("zipf exponent %v: must be > 1", c.ZipfS)
		}
	default:
		add("key distribution %q: want %s, %s or %s", c.KeyDist, DistUniform, DistZipf, DistSeq)
	}
	if c.Keys > 0 && strings.TrimSpace(c.KeyHeader) == "" {
		add("key header: must be set when keys > 0")
	}
	if c.Method != "" && !validToken(c.Method) {
		add("method %q: not an HTTP token", c.Method)
	}
	for k, v := range c.Headers {
		if !validToken(k) || !validFieldValue(v) {
			add("header %q: %q: name must be a token, value without control characters", k, v)
		}
	}
	if c.Keys > 0 && strings.TrimSpace(c.KeyHeader) != "" && (!validToken(c.KeyHeader) || !validFieldValue(c.KeyPrefix)) {
		add("key header %q, prefix %q: name must be a token, prefix without control characters", c.KeyHeader, c.KeyPrefix)
	}
	if c.Interval < 0 {
		add("interval %v: must not be negative", c.Interval)
	}
	return errors.Join(errs...)
}

// interval returns the effective histogram interval.
func (c *Config) interval() time.Duration {
	if c.Interval <= 0 {
		return time.Second
	}
	return c.Interval
}

// target is a parsed Config.URL.
type target struct {
	addr  string // host:port for the dialer
	tls   bool
	host  string // Host header
	uri   string // full URI set on the request
	path  string // request-target: path and query as written, "/" if empty
	label string // the URL as the user wrote it
}

// parseTarget checks that raw is an absolute http(s) URL and derives the
// dial address.
func parseTarget(raw string) (target, error) {
	if raw == "" {
		return target{}, errors.New("url: missing target URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return target{}, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("url %q: missing host", raw)
	}
	t := target{tls: u.Scheme == "https", host: u.Host, uri: raw, label: raw}
	t.path = requestTarget(raw)
	if !validRequestTarget(t.path) {
		return target{}, fmt.Errorf("url %q: path has spaces or control characters", raw)
	}
	t.addr = u.Host
	if u.Port() == "" {
		if t.tls {
			t.addr += ":443"
		} else {
			t.addr += ":80"
		}
	}
	return t, nil
}

// requestTarget returns the origin-form request-target of an absolute URL
// (RFC 9112 §3.2.1): path and query exactly as written, without fragment.
func requestTarget(raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	rest, _, _ = strings.Cut(rest, "#")
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return "/"
	}
	if rest[i] == '?' {
		return "/" + rest[i:]
	}
	return rest[i:]
}

// validToken reports whether s is an HTTP token (RFC 9110 §5.6.2), as
// header names and methods must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validRequestTarget reports whether s can go on the request line as is:
// no spaces or control characters, which would end or split the line.
func validRequestTarget(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be sent as a header value: no
// control characters but tab (RFC 9110 §5.5), so no CR or LF to end the
// field early.
func validFieldValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
