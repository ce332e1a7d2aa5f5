package admin

import "time"

// StatusDoc is the JSON document of GET /v1/status. The status page and
// `cellgate ctl status` read exactly these fields, so the node fills every
// one it knows; a zero value renders as "—" or an empty list.
type StatusDoc struct {
	// Node is the proxy node answering.
	Node NodeStatus `json:"node"`
	// Members are the proxy nodes of the gossip cluster, this one included;
	// empty when gossip is off.
	Members []MemberStatus `json:"members"`
	// Cells are every configured cell, in config order.
	Cells []CellStatus `json:"cells"`
	// Rollout is the active rollout, or the most recent one when none is
	// active; nil (JSON null) when there never was one.
	Rollout *RolloutStatus `json:"rollout"`
	// Discovery lists the `dns:`/`srv:` endpoint targets with their
	// current sets and lookup health; empty when none is configured.
	Discovery []DiscoveryStatus `json:"discovery"`
	// HealthViews are each node's own view of its cells' health: this
	// node's first (Self), then every alive peer's as it last gossiped it,
	// by name. Each node routes on its own evidence; these show where the
	// fleet's views differ. Only this node's when gossip is off.
	HealthViews []NodeHealthView `json:"health_views"`
}

// NodeHealthView is one node's view of its cells' health. It is bounded:
// at most 64 cells and 4 out-of-rotation endpoints per cell are listed,
// the rest counted in MoreCells and MoreOut.
type NodeHealthView struct {
	Node string `json:"node"`
	Self bool   `json:"self,omitempty"`
	// At is when the node took the view (its own clock); Received when
	// this node got it (zero for its own).
	At        time.Time        `json:"at"`
	Received  time.Time        `json:"received,omitzero"`
	Cells     []CellHealthView `json:"cells"`
	MoreCells int              `json:"more_cells,omitempty"`
}

// CellHealthView is one cell in a node's health view.
type CellHealthView struct {
	Name string `json:"name"`
	// Up is false while the node has none of the cell's endpoints in
	// rotation (it fails the cell's users over).
	Up bool `json:"up"`
	// Endpoints is how many the cell has there, InRotation how many of
	// them the node routes to.
	Endpoints  int `json:"endpoints"`
	InRotation int `json:"in_rotation"`
	// Out lists endpoints out of rotation and why: "check" (failing its
	// active check) or "ejected" (passive evidence).
	Out     []EndpointOut `json:"out,omitempty"`
	MoreOut int           `json:"more_out,omitempty"`
}

// EndpointOut is an endpoint out of rotation in a node's health view.
type EndpointOut struct {
	Addr string `json:"addr"`
	Why  string `json:"why"`
}

// DiscoveryStatus is one discovery target as this node resolves it.
type DiscoveryStatus struct {
	Target    string   `json:"target"`    // as configured, e.g. "dns:app.ns.svc.cluster.local:8080"
	Endpoints []string `json:"endpoints"` // current set (the last good one while lookups fail)
	// Resolved is when a lookup last succeeded (zero: never).
	Resolved time.Time `json:"resolved,omitzero"`
	// Error is the last lookup's failure ("" after a success); Since is
	// when the current run of failures began.
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"failing_since,omitzero"`
	// Expired is set when the set was dropped after discovery.grace.
	Expired  bool   `json:"expired,omitempty"`
	Failures uint64 `json:"failures"`
	// SRV maps each endpoint of an srv: target to its SRV priority and
	// weight (RFC 2782): the lowest priority with an endpoint in rotation
	// takes the cell's traffic, split by weight.
	SRV map[string]SRVWeight `json:"srv,omitempty"`
}

// SRVWeight is an SRV-discovered endpoint's priority and weight.
type SRVWeight struct {
	Priority uint16  `json:"priority"`
	Weight   float64 `json:"weight"`
}

// NodeStatus describes the node answering.
type NodeStatus struct {
	Name    string    `json:"name"`    // node_name from the config
	Version string    `json:"version"` // cellgate build version
	Started time.Time `json:"started"` // when the node started (RFC 3339)
	Ready   bool      `json:"ready"`   // same as GET /readyz
	// ConfigGeneration counts successful config loads (1 after start).
	ConfigGeneration uint64 `json:"config_generation"`
	// Decider says whether this node makes promotion decisions.
	Decider bool `json:"decider"`
	// Core is the HTTP/1.1 server core serving the client listener:
	// "loop" or "goroutine" (listen.core, "auto" resolved: the loop on
	// Linux without TLS).
	Core string `json:"core"`
}

// MemberStatus is one proxy node of the cluster.
type MemberStatus struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`  // host:port of its gossip listener
	State string `json:"state"` // "alive", "suspect", "dead" or "left"
	// Decider marks the member that makes promotion decisions.
	Decider bool `json:"decider"`
}

// CellStatus is one cell as GET /v1/cells lists it and the status page
// draws it. Latency and error figures are over the judge's short window
// (the node picks which; the page just plots what it gets).
type CellStatus struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Weight  float64 `json:"weight"` // current routing weight (0 takes no new keys)
	// Endpoints are the cell's upstreams with their health.
	Endpoints []EndpointStatus `json:"endpoints"`
	// RPS is the request rate over the window, requests per second.
	RPS float64 `json:"rps"`
	// P50Ms and P99Ms are latency percentiles in milliseconds (0: no data).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// ErrorRatio is failed / total requests in [0, 1] (0: no data).
	ErrorRatio float64 `json:"error_ratio"`
	// BurnRates are the SLO burn rates by SLO and window.
	BurnRates []BurnRate `json:"burn_rates"`
	// Verdict is the judge's last verdict on this cell while it is under a
	// rollout ("healthy", "inconclusive", "degraded", "failing"); empty otherwise.
	Verdict string `json:"verdict,omitempty"`
	// PinnedSessions is how many sticky sessions are pinned to the cell.
	PinnedSessions int64 `json:"pinned_sessions"`
	// Up is false while none of the cell's endpoints is in rotation on
	// this node; its users are then served by their failover cells (a
	// routing fact: Weight is unchanged).
	Up bool `json:"up"`
	// Failovers counts requests of this cell's users served by a failover
	// cell; InflightFailed those in flight when it died that could not be
	// retried (non-idempotent, already sent). Both since the node started.
	Failovers      uint64 `json:"failovers"`
	InflightFailed uint64 `json:"inflight_failed"`
	// Protocols breaks the cell's requests since the node started down by
	// protocol: "h1", "h2" (HTTP/2 other than gRPC) and "grpc" (calls of
	// any outcome; cellgate_grpc_requests_total has them by grpc-status).
	Protocols map[string]uint64 `json:"protocols,omitempty"`
}

// EndpointStatus is one upstream endpoint of a cell.
type EndpointStatus struct {
	Addr string `json:"addr"` // host:port
	Up   bool   `json:"up"`   // false while ejected or failing health checks
	// Outstanding is the number of requests in flight to it.
	Outstanding int64 `json:"outstanding"`
}

// BurnRate is one error-budget burn rate: 1 spends the budget exactly over
// the SLO period; the fast-burn alert fires at the config's rate (e.g. 14.4).
type BurnRate struct {
	SLO    string  `json:"slo"`    // "availability" or "latency"
	Window string  `json:"window"` // window length as a duration string, e.g. "5m"
	Rate   float64 `json:"rate"`
}

// RolloutStatus is the status page's view of one rollout.
type RolloutStatus struct {
	ID   string `json:"id"`
	Plan string `json:"plan"` // the plan's name
	// Strategy is "canary", "rolling" or "bluegreen".
	Strategy string `json:"strategy"`
	// Status is progressing, paused, awaiting_approval, promoted,
	// rolled_back or aborted.
	Status string `json:"status"`
	// Step is the 1-based number of the step last entered (0: none yet).
	Step int `json:"step"`
	// Steps are the plan's step percentages, e.g. [1, 5, 25, 50, 100].
	Steps []float64 `json:"steps"`
	// ApproveAt are the step percentages with an approval gate.
	ApproveAt []float64 `json:"approve_at"`
	Targets   []string  `json:"targets"`
	Baseline  []string  `json:"baseline"`
	// Weights are the plan's cells' current weights (cell → weight).
	Weights map[string]float64 `json:"weights"`
	// Reason says why the status is what it is (who paused, why reverted).
	Reason string `json:"reason,omitempty"`
	// Hold says why a progressing plan is not advancing.
	Hold    string    `json:"hold,omitempty"`
	Version string    `json:"version,omitempty"` // the release's version
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}
