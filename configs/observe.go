package configs

import (
	"fmt"
	"net/url"
	"strings"
)

// AccessLog is [access_log]: one JSON line per request (package accesslog).
type AccessLog struct {
	// Path is "stdout", "stderr" or a file (appended to; reopened on
	// SIGUSR1 after logrotate moved it). Empty: no access log.
	Path string `toml:"path"`
	// Format is the line format; "json" (one object a line) is the only
	// one, and empty means it.
	Format string `toml:"format"`
	// Sample is the share of requests logged, 0 to 1; errors (5xx and every
	// answer the proxy made itself) are always logged.
	Sample float64 `toml:"sample"`
	// Query keeps query strings in the logged path. Off by default: queries
	// carry personal data.
	Query bool `toml:"query"`
	// SecretFile holds the key of the sticky key's HMAC in each line. Nodes
	// that share it log the same hash for the same user. Empty: a random
	// key per process (hashes compare within one process's log only).
	SecretFile string `toml:"secret_file"`
}

// Tracing is [tracing]: W3C trace context and X-Request-Id on proxied
// requests.
type Tracing struct {
	// Generate starts a trace (a new traceparent, replacing an invalid
	// one and its tracestate) for a request that arrives without a valid
	// one, and adds an X-Request-Id to one without it. Off: both pass
	// through untouched and nothing is added (faithful proxying).
	Generate bool `toml:"generate"`
	// Sample is the share of the traces started here that carry the
	// sampled flag (the next hops are asked to record them), 0 to 1.
	Sample float64 `toml:"sample"`
	// OTLPEndpoint is an OpenTelemetry collector's OTLP/HTTP traces URL
	// ("http://collector:4318/v1/traces", or host:port). With generate
	// on, each sampled request's span goes there, and the traceparent
	// sent upstream carries the proxy's span id. Empty: no spans.
	OTLPEndpoint string `toml:"otlp_endpoint"`
}

// defaultTracing: off; traces started once it is on are all sampled, as
// OpenTelemetry's default parent-based sampler would.
func defaultTracing() Tracing { return Tracing{Sample: 1} }

// defaultAccessLog: off; when a path is set, every request is logged
// (sample 1) and queries are left out.
func defaultAccessLog() AccessLog {
	return AccessLog{
		Format: "json", // the one format: parsed by Loki, Elasticsearch, jq
		Sample: 1,      // every request once the log is on: ~1.1× CPU per request, bench/README.md
	}
}

func (c *Config) validateObserve(v *validator) {
	a := c.AccessLog
	if a.Format != "json" && a.Format != "" {
		v.add("access_log.format", `unknown format %q: want "json"`, a.Format)
	}
	if !(a.Sample >= 0 && a.Sample <= 1) {
		v.add("access_log.sample", "must be between 0 and 1, got %v", a.Sample)
	}
	if a.SecretFile != "" && a.Path == "" {
		v.add("access_log.secret_file", "set without access_log.path")
	}
	if s := c.Tracing.Sample; !(s >= 0 && s <= 1) {
		v.add("tracing.sample", "must be between 0 and 1, got %v", s)
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if err := checkOTLPEndpoint(e); err != nil {
			v.add("tracing.otlp_endpoint", "%v", err)
		}
		if !c.Tracing.Generate {
			v.add("tracing.otlp_endpoint", "set without tracing.generate = true (spans are those of traces the proxy takes part in)")
		}
	}
}

// checkOTLPEndpoint accepts an http(s) URL with a host, or host:port (as
// package spans reads it).
func checkOTLPEndpoint(s string) error {
	if !strings.Contains(s, "://") {
		return checkHostPort(s)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http(s)://host:port/v1/traces or host:port", s)
	}
	return nil
}
