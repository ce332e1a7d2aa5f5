package configs

import "time"

// Config is one cellgate node's configuration. Every field documents its
// unit and what zero means; Default gives the values with the reason for each.
type Config struct {
	// NodeName names this node in the cluster, the journal and logs. Empty:
	// the host name.
	NodeName string `toml:"node_name"`

	Listen   Listen   `toml:"listen"`
	Upstream Upstream `toml:"upstream"`
	Admin    Admin    `toml:"admin"`
	State    State    `toml:"state"`
	Routing  Routing  `toml:"routing"`
	Cells    []Cell   `toml:"cell"`
	SLO      SLO      `toml:"slo"`
	Rollout  Rollout  `toml:"rollout"`
	Gossip   Gossip   `toml:"gossip"`
	// Discovery re-resolves `dns:` and `srv:` endpoints.
	Discovery Discovery `toml:"discovery"`
	// AccessLog and Tracing are observe.go's.
	AccessLog AccessLog `toml:"access_log"`
	Tracing   Tracing   `toml:"tracing"`
	// FlagList are the [[flag]] feature flags (configs/flags.go).
	FlagList []Flag `toml:"flag"`
	// FlagSettings is [flags]: what every flag shares.
	FlagSettings Flags `toml:"flags"`

	// Plans are rollout plans named in the config, in the same shape as the
	// JSON posted to /v1/rollouts. They are kept undecoded here (the rollout
	// package owns the plan schema and validates them) and started by name.
	Plans []map[string]any `toml:"plan"`

	// File is the path the config was read from ("" for the embedded
	// default); error messages and reloads use it.
	File string `toml:"-"`

	loc lines // key → line, for problems found after Parse (plans)
}

// Problem returns a problem located at key's line in the config's source,
// for checks made outside this package (the rollout package validates
// plans).
func (c *Config) Problem(key, msg string) Problem {
	return Problem{Line: c.loc.line(key), Key: key, Msg: msg}
}

// The values of listen.core.
const (
	CoreGoroutine = "goroutine"
	CoreLoop      = "loop"
	CoreAuto      = "auto"
)

// Listen is the client-facing listener.
type Listen struct {
	// Addr is host:port to accept client traffic on.
	Addr string `toml:"addr"`
	// ReadTimeout bounds reading a request's head, and then each read of
	// its body (a progress timeout: a large upload that keeps moving is not
	// cut); it is what cuts slow-loris clients. Zero: no limit (not
	// recommended).
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds each write of a response to the client: it is
	// renewed whenever a piece of a streamed body is handed over, so SSE
	// and long downloads live as long as the client reads, while a client
	// that stops reading is cut and frees its upstream connection. Zero:
	// no limit (a client that never reads holds an upstream connection).
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxRequestBody in bytes; larger requests get 413.
	MaxRequestBody int `toml:"max_request_body"`
	// MaxHeaderBytes bounds the request line plus headers (431 above).
	MaxHeaderBytes int `toml:"max_header_bytes"`
	// MaxConns caps concurrent client connections; beyond it new ones get
	// 503 rather than exhausting memory.
	MaxConns int `toml:"max_conns"`
	// DrainTimeout is how long SIGTERM waits for in-flight requests.
	// WebSocket tunnels run until it passes, then get close frame 1001.
	DrainTimeout Duration `toml:"drain_timeout"`
	// TunnelIdleTimeout closes a WebSocket tunnel (close frame 1001) after
	// this long without a byte either way. Zero: never.
	TunnelIdleTimeout Duration `toml:"tunnel_idle_timeout"`
	// TLSCert and TLSKey are PEM files; both or neither. A TLS listener
	// offers HTTP/2 ("h2") and HTTP/1.1 by ALPN.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// H2C accepts HTTP/2 with prior knowledge on a plain listener: a
	// connection that opens with the HTTP/2 preface is served as HTTP/2,
	// any other as HTTP/1.1. False: plain connections speak HTTP/1.1 only
	// (the preface gets a 400 in HTTP/1.1 bytes).
	H2C bool `toml:"h2c"`
	// Core is the HTTP/1.1 server core: "goroutine" (fasthttp, one
	// goroutine per connection), "loop" (epoll event loops, one per
	// GOMAXPROCS, serving bodiless plain-TCP requests to HTTP/1.1 cells and
	// handing every other request to the goroutine core; Linux only, plain
	// listeners only) or "auto" (the default: "loop" on Linux without
	// tls_cert, "goroutine" otherwise; proxy.ResolveCore decides).
	// Restart-only.
	Core string `toml:"core"`
}

// Upstream tunes the connections to cell endpoints. This table is cellgate's
// addition to the outside contract: it keeps client-side and upstream-side
// limits apart.
type Upstream struct {
	// ConnectTimeout bounds dialing an endpoint; a refused or timed-out dial
	// is the only failure retried (once, on another endpoint).
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ResponseTimeout bounds waiting for the response headers (504 above).
	ResponseTimeout Duration `toml:"response_timeout"`
	// IdleTimeout closes pooled connections idle this long; keep it below
	// the upstream server's own idle timeout so cellgate never reuses a
	// connection the server is closing.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxConnsPerEndpoint caps the keep-alive pool per endpoint.
	MaxConnsPerEndpoint int `toml:"max_conns_per_endpoint"`
	// EjectAfter consecutive connect failures or 5xx eject an endpoint.
	EjectAfter int `toml:"eject_after"`
	// EjectBackoff is the first ejection's length; it doubles on repeated
	// ejections up to 16×.
	EjectBackoff Duration `toml:"eject_backoff"`
	// MaxEjectionPercent caps the share of a cell's endpoints that 5xx
	// responses may eject (at least one may always go, as in Envoy);
	// connection failures and active checks are not capped.
	MaxEjectionPercent int `toml:"max_ejection_percent"`
}

// Admin is the admin API listener.
type Admin struct {
	// Addr is host:port for the admin API, /metrics and /ui/. Empty: off.
	Addr string `toml:"addr"`
	// TokenFile holds bearer tokens for mutations, one per line, as
	// "name:token" or just "token" (named "admin"). Empty: mutations are
	// accepted only when Addr is a loopback address.
	TokenFile string `toml:"token_file"`
}

// State is the durable journal.
type State struct {
	// Path of the bbolt journal file.
	Path string `toml:"path"`
	// AuditRetention bounds the audit log. Events of a running rollout are
	// never dropped; a finished rollout's events are dropped together, once
	// its last event is out of retention (its document and release record
	// stay, so the catalog keeps it).
	AuditRetention AuditRetention `toml:"audit_retention"`
}

// AuditRetention is how much of the audit log the journal keeps; an event
// goes once it is older than Age or not among the newest Events. Zero in
// either turns that bound off.
type AuditRetention struct {
	// Age drops events older than this.
	Age Duration `toml:"age"`
	// Events keeps at most the newest this many (plus protected ones).
	Events int `toml:"events"`
}

// Routing is how requests map to cells.
type Routing struct {
	// StickyKey lists key sources; the first one present in a request is
	// its key: "header:NAME", "cookie:NAME", "query:NAME" or "ip".
	StickyKey []string `toml:"sticky_key"`
	// ResponseHeaders adds X-Cellgate-Cell and X-Cellgate-Version.
	ResponseHeaders bool `toml:"response_headers"`
	// SetCookie gives keyless clients a generated cookie (CookieName) so
	// they stay on one cell.
	SetCookie bool `toml:"set_cookie"`
	// CookieName is the generated cookie's name.
	CookieName string `toml:"cookie_name"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed for the
	// "ip" source; from anyone else the peer address is the key.
	TrustedProxies []string `toml:"trusted_proxies"`
	// Seed seeds the key hash. Every node of a fleet must use the same
	// seed, and changing it moves every user, so it comes from the config,
	// never from process start.
	Seed uint64 `toml:"seed"`
	// PinMemory bounds the session pin table in bytes (0: pins off).
	PinMemory int64 `toml:"pin_memory"`
	// PinIdle is how long a session pin survives without a request.
	PinIdle Duration `toml:"pin_idle"`
	// PinSecretFile holds the HMAC key for signed pin cookies.
	PinSecretFile string `toml:"pin_secret_file"`
	// TunnelDrain is how long a cell's WebSocket tunnels stay open once
	// its weight went to 0 (revert, abort, blue/green switch, manual 0)
	// before each gets close frame 1012 so its client reconnects to its
	// new cell. Zero: at once.
	TunnelDrain Duration `toml:"tunnel_drain"`
	// FailoverPanic is the share of the total weight, in percent, that may
	// be down while the users of down cells still fail over; above it
	// every user stays on its own cell (Envoy's panic threshold). 0: never
	// fail over; 100: always.
	FailoverPanic float64 `toml:"failover_panic"`
}

// Cell is one [[cell]]: a group of endpoints running one version.
// Endpoints are "host:port", "dns:NAME:PORT" (every A/AAAA address of
// NAME) or "srv:_service._proto.NAME" (every SRV target).
type Cell struct {
	Name      string   `toml:"name"`
	Version   string   `toml:"version"`
	Weight    float64  `toml:"weight"`
	Endpoints []string `toml:"endpoints"`
	// Health is the cell's active health check. Nil: passive only.
	Health *Health `toml:"health"`
	// Protocol is what the endpoints speak: "http1" (default), "h2c"
	// (HTTP/2 without TLS, prior knowledge) or "h2" (HTTP/2 over TLS).
	// gRPC calls need h2c or h2.
	Protocol string `toml:"protocol"`
	// TLS reaches the endpoints over TLS (protocol http1 or h2). Nil:
	// plain TCP.
	TLS *CellTLS `toml:"tls"`
}

// CellTLS is how a cell's endpoints are reached over TLS.
type CellTLS struct {
	// CAFile is a PEM bundle of the CAs that sign the endpoints'
	// certificates. Empty: the system roots.
	CAFile string `toml:"ca_file"`
	// ServerName is the name the certificates must carry (and the SNI).
	// Empty: the endpoint's host.
	ServerName string `toml:"server_name"`
	// CertFile and KeyFile are a client certificate for mutual TLS; both or
	// neither.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// InsecureSkipVerify accepts any certificate. For tests only: the node
	// logs a warning for every endpoint of a cell that sets it.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Health is a cell's active check: every Interval each endpoint gets an
// HTTP GET of Path (a TCP connect when Path is empty); Unhealthy failures
// in a row take it out, Healthy passes in a row put it back.
type Health struct {
	Path      string   `toml:"path"`
	Interval  Duration `toml:"interval"`
	Timeout   Duration `toml:"timeout"`
	Unhealthy int      `toml:"unhealthy"`
	Healthy   int      `toml:"healthy"`
	// Expect is the status a passing GET answers; 0: any 2xx.
	Expect int `toml:"expect"`
}

// WithDefaults returns h with omitted fields filled in, each with its
// reason.
func (h *Health) WithDefaults() Health {
	out := *h
	if out.Interval.Duration == 0 && out.Interval.err == nil && out.Interval.raw == "" {
		out.Interval = D(5 * time.Second) // Envoy-like cadence: cheap, and a dead pod is out within seconds
	}
	if out.Timeout.Duration == 0 && out.Timeout.err == nil && out.Timeout.raw == "" {
		out.Timeout = D(time.Second) // a health endpoint answers in ms; a second means trouble
	}
	if out.Unhealthy == 0 {
		out.Unhealthy = 3 // one lost probe is not an outage
	}
	if out.Healthy == 0 {
		out.Healthy = 2 // back after two good probes in a row, not one lucky one
	}
	return out
}

// Discovery is how `dns:` and `srv:` endpoints are kept current.
type Discovery struct {
	// Interval is the longest a resolved set is used before it is
	// resolved again (sooner when a TTL from Resolver says so).
	Interval Duration `toml:"interval"`
	// Resolver is a DNS server (host:port) asked directly, which gives
	// TTLs. Empty: the system resolver (no TTLs; Interval alone).
	Resolver string `toml:"resolver"`
	// Grace is how long the last good set is kept while lookups fail;
	// after it the set is dropped (a cell left empty is down and its users
	// fail over). 0: kept until lookups succeed again.
	Grace Duration `toml:"grace"`
}

// SLO holds the objectives and burn-rate windows.
type SLO struct {
	// Availability objective: the share of requests that must not be 5xx
	// or proxy errors, e.g. 0.999.
	Availability float64 `toml:"availability"`
	// LatencyThreshold and LatencyObjective: LatencyObjective of requests
	// must finish within LatencyThreshold.
	LatencyThreshold Duration `toml:"latency_threshold"`
	LatencyObjective float64  `toml:"latency_objective"`
	// TTFBThreshold and TTFBObjective: optional time-to-first-byte SLO
	// (zero threshold: off).
	TTFBThreshold Duration `toml:"ttfb_threshold"`
	TTFBObjective float64  `toml:"ttfb_objective"`
	// FastBurn and SlowBurn are the multi-window burn-rate rules.
	FastBurn BurnRule `toml:"fast_burn"`
	SlowBurn BurnRule `toml:"slow_burn"`
	// MinRequests per window before a verdict other than inconclusive.
	MinRequests int `toml:"min_requests"`
	// FailRatio is the canary error ratio that is failing outright when it
	// is also significantly above baseline.
	FailRatio float64 `toml:"fail_ratio"`
	// Interval is the width of one sliding-window slot.
	Interval Duration `toml:"interval"`
	// GRPCErrorCodes are the grpc-status names (e.g. "UNAVAILABLE") that
	// count a gRPC call against its cell's availability, whatever its HTTP
	// status (200). A reset stream or an answer without grpc-status always
	// counts. Omitted: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE,
	// DATA_LOSS; empty list: only those always-failures.
	GRPCErrorCodes []string `toml:"grpc_error_codes"`
}

// GRPCCodes maps the canonical gRPC status names to their codes.
var GRPCCodes = map[string]int{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3,
	"DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
	"PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13,
	"UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// BurnRule fires when the burn rate exceeds Rate over both windows.
type BurnRule struct {
	Long  Duration `toml:"long"`
	Short Duration `toml:"short"`
	Rate  float64  `toml:"rate"`
}

// Rollout holds controller settings and plan defaults.
type Rollout struct {
	// Tick is how often the controller judges and acts.
	Tick Duration `toml:"tick"`
	// DegradedTicks consecutive degraded verdicts revert a rollout.
	DegradedTicks int `toml:"degraded_ticks"`
	// MaxStepPerTick is the largest promotion per tick, in percent of the
	// plan's traffic (reverts are never limited).
	MaxStepPerTick float64 `toml:"max_step_per_tick"`
	// Bake and MinRequests are plan defaults.
	Bake        Duration `toml:"bake"`
	MinRequests int      `toml:"min_requests"`
}

// Gossip is cluster membership. Empty Bind: a single node.
type Gossip struct {
	Bind          string   `toml:"bind"`
	Advertise     string   `toml:"advertise"`
	Join          []string `toml:"join"`
	SecretKeyFile string   `toml:"secret_key_file"`
}

// DefaultMaxConns is listen.max_conns when the file leaves it out: ~54 KB
// each idle (README "Security"), near 2.7 GB at worst. The proxy fits it to
// the descriptor limit without a warning (an operator who asked for more
// than fits gets one).
const DefaultMaxConns = 50_000

// Default returns the defaults, each with its reason.
func Default() Config {
	return Config{
		AccessLog: defaultAccessLog(),
		Tracing:   defaultTracing(),
		Listen: Listen{
			Addr:           "127.0.0.1:8080",
			Core:           CoreAuto,
			ReadTimeout:    D(30 * time.Second), // long enough for slow uploads, short enough to shed slow-loris
			WriteTimeout:   D(30 * time.Second), // per write: streams live on while read; a stalled reader is cut
			IdleTimeout:    D(90 * time.Second), // above typical client keep-alive, so clients close first
			MaxRequestBody: 1 << 30,             // 1 GiB: uploads stream, so memory does not grow with it
			MaxHeaderBytes: 32 << 10,            // 32 KiB: big cookies fit, header floods don't
			MaxConns:       DefaultMaxConns,
			DrainTimeout:   D(30 * time.Second), // matches Kubernetes' default termination grace period
			// Far above common WebSocket ping intervals (20–60 s), so only
			// dead peers without TCP keepalive are reaped.
			TunnelIdleTimeout: D(10 * time.Minute),
		},
		Upstream: Upstream{
			ConnectTimeout:      D(2 * time.Second),  // loopback/LAN dials take ms; longer means the endpoint is gone
			ResponseTimeout:     D(60 * time.Second), // AI inference can think for a while before the first byte
			IdleTimeout:         D(50 * time.Second), // below the 60 s most servers use, so we close first
			MaxConnsPerEndpoint: 1024,                // bounds sockets per endpoint under a burst
			EjectAfter:          5,                   // a few failures in a row, not one unlucky request
			EjectBackoff:        D(5 * time.Second),  // long enough for a restart to finish
			MaxEjectionPercent:  50,                  // 5xx alone never empties more than half a cell
		},
		Admin: Admin{Addr: "127.0.0.1:9901"},
		State: State{Path: "cellgate.db", AuditRetention: AuditRetention{
			Age:    D(90 * 24 * time.Hour), // a quarter: post-mortems and audits look back this far
			Events: 100_000,                // ~32 MB of journal; a busy fleet's weeks of decisions
		}},
		Routing: Routing{
			StickyKey:       []string{"header:X-User-ID", "cookie:session", "ip"},
			ResponseHeaders: true,
			CookieName:      "cellgate",
			PinIdle:         D(5 * time.Minute), // a conversation's pause, not a day
			// Long enough for replies in flight; a reverted version should
			// not keep its users for long.
			TunnelDrain:   D(5 * time.Second),
			FailoverPanic: 50, // Envoy's panic threshold: past half the weight down, spread over all
		},
		SLO: SLO{
			Availability:     0.999,
			LatencyThreshold: D(300 * time.Millisecond),
			LatencyObjective: 0.99,
			// The SRE workbook's page and ticket rules.
			FastBurn:    BurnRule{Long: D(time.Hour), Short: D(5 * time.Minute), Rate: 14.4},
			SlowBurn:    BurnRule{Long: D(6 * time.Hour), Short: D(30 * time.Minute), Rate: 6},
			MinRequests: 100,  // below this a ratio is noise
			FailRatio:   0.05, // 1 in 20 failing is an outage, not a regression
			Interval:    D(time.Second),
		},
		Rollout: Rollout{
			Tick:           D(time.Second), // reverts within seconds need a judge every second
			DegradedTicks:  3,              // one noisy second should not revert
			MaxStepPerTick: 100,            // plans' own steps are the pace by default
			Bake:           D(30 * time.Second),
			MinRequests:    200,
		},
		Discovery: Discovery{
			Interval: D(5 * time.Second), // Kubernetes endpoint changes propagate in seconds
		},
	}
}
