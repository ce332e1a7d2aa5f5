package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cellgate/cellgate/balancer"
)

// OFREP serves the OpenFeature Remote Evaluation Protocol
// (github.com/open-feature/protocol, service/openapi.yaml), so OpenFeature
// SDKs evaluate exactly the variant the edge injects: the evaluation
// context's targetingKey is hashed exactly as a sticky key is, so
// targetingKey = K and a request whose sticky key is K get the same
// variant.
//
// The admin listener serves it through ServeHTTP (a targetingKey is
// required: the caller is a server acting for many users); the data plane
// calls Evaluate and EvaluateAll with the request's own sticky key as the
// fallback.
type OFREP struct {
	// Engine holds the flags. Required.
	Engine *Engine
	// Rollout returns the running rollout of a flag, for the evaluation's
	// metadata. Nil, or ok = false: none.
	Rollout func(flag string) (id string, step float64, ok bool)
}

// OFREP reasons and error codes (the protocol's, which are OpenFeature's).
const (
	ReasonSplit          = "SPLIT"
	ReasonStatic         = "STATIC"
	ReasonTargetingMatch = "TARGETING_MATCH"

	ErrFlagNotFound        = "FLAG_NOT_FOUND"
	ErrParse               = "PARSE_ERROR"
	ErrInvalidContext      = "INVALID_CONTEXT"
	ErrTargetingKeyMissing = "TARGETING_KEY_MISSING"
)

// maxEvalBody bounds an evaluation request: a context is a few hundred
// bytes.
const maxEvalBody = 64 << 10

// evaluation is one flag's answer; error fields replace the others.
type evaluation struct {
	Key      string         `json:"key"`
	Value    any            `json:"value"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// evalError is one flag's error answer.
type evalError struct {
	Key          string `json:"key"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
}

// bulkError is the bulk endpoint's error shape (no key).
type bulkError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
}

// TargetingKey parses an evaluation request body, {"context": {...}}, and
// returns the context's targetingKey (nil when absent). An empty body is
// an empty context. code is "" or the OFREP error code of what is wrong.
func TargetingKey(body []byte) (key []byte, code, details string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "", ""
	}
	if len(body) > maxEvalBody {
		return nil, ErrParse, fmt.Sprintf("request body over %d bytes", maxEvalBody)
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, ErrParse, "request body is not a JSON object: " + err.Error()
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return nil, "", ""
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(req.Context, &ctx); err != nil {
		return nil, ErrInvalidContext, "context is not a JSON object"
	}
	raw, ok := ctx["targetingKey"]
	if !ok || string(raw) == "null" {
		return nil, "", ""
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, ErrInvalidContext, "targetingKey is not a string"
	}
	if k == "" {
		return nil, ErrTargetingKeyMissing, "targetingKey is empty"
	}
	return []byte(k), "", ""
}

// Evaluate answers POST …/ofrep/v1/evaluate/flags/{key}: status and JSON
// body. fallback is the key to use when the context has no targetingKey
// (nil: one is required).
func (o *OFREP) Evaluate(key string, body, fallback []byte) (int, []byte) {
	return o.EvaluateOverridden(key, body, fallback, nil)
}

// EvaluateOverridden is Evaluate for a request that carries a trusted
// X-Cellgate-Override (nil: none): an overridden flag answers its forced
// variant with reason TARGETING_MATCH, as the request path serves it.
func (o *OFREP) EvaluateOverridden(key string, body, fallback []byte, ov *Override) (int, []byte) {
	tk, code, details := TargetingKey(body)
	if code == "" && tk == nil {
		tk = fallback
		if tk == nil {
			code, details = ErrTargetingKeyMissing, "the evaluation context needs a targetingKey"
		}
	}
	if code != "" {
		return http.StatusBadRequest, mustJSON(evalError{Key: key, ErrorCode: code, ErrorDetails: details})
	}
	s := o.Engine.Load()
	i := s.Index(key)
	if i < 0 {
		return http.StatusNotFound, mustJSON(evalError{Key: key, ErrorCode: ErrFlagNotFound, ErrorDetails: fmt.Sprintf("no flag %q", key)})
	}
	return http.StatusOK, mustJSON(o.evaluate(s, i, balancer.HashKey(o.Engine.seed, tk), ov))
}

// EvaluateAll answers the bulk POST …/ofrep/v1/evaluate/flags: status,
// ETag and body. An If-None-Match equal to the ETag gets 304 and no body.
func (o *OFREP) EvaluateAll(body, ifNoneMatch, fallback []byte) (int, string, []byte) {
	return o.EvaluateAllOverridden(body, ifNoneMatch, fallback, nil)
}

// EvaluateAllOverridden is EvaluateAll with a trusted override (nil: none).
func (o *OFREP) EvaluateAllOverridden(body, ifNoneMatch, fallback []byte, ov *Override) (int, string, []byte) {
	tk, code, details := TargetingKey(body)
	if code == "" && tk == nil {
		tk = fallback
		if tk == nil {
			code, details = ErrTargetingKeyMissing, "the evaluation context needs a targetingKey"
		}
	}
	if code != "" {
		return http.StatusBadRequest, "", mustJSON(bulkError{ErrorCode: code, ErrorDetails: details})
	}
	s := o.Engine.Load()
	h := balancer.HashKey(o.Engine.seed, tk)
	all := struct {
		Flags []evaluation `json:"flags"`
	}{Flags: make([]evaluation, s.Len())}
	for i := range s.Len() {
		all.Flags[i] = o.evaluate(s, i, h, ov)
	}
	out := mustJSON(all)
	etag := `"` + strconv.FormatUint(xxhash.Sum64(out), 16) + `"`
	if len(ifNoneMatch) > 0 && etagMatch(string(ifNoneMatch), etag) {
		return http.StatusNotModified, etag, nil
	}
	return http.StatusOK, etag, out
}

// etagMatch applies If-None-Match's weak comparison (RFC 9110 §13.1.2)
// over its list; "*" matches any.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// evaluate is flag i's answer for key hash h.
func (o *OFREP) evaluate(s *Set, i int, h uint64, ov *Override) evaluation {
	d := s.Def(i)
	ev := evaluation{Key: d.Name, Reason: ReasonSplit, Metadata: map[string]any{}}
	if ov != nil && ov.Mask&(1<<uint(i)) != 0 && int(ov.Choices[i]) < len(d.Variants) {
		ev.Variant, ev.Reason = d.Variants[ov.Choices[i]], ReasonTargetingMatch
		ev.Metadata["override"] = "X-Cellgate-Override"
		return o.finish(ev, d)
	}
	v := s.Route(i, h, time.Now().UnixNano())
	if v < 0 {
		ev.Variant = d.Control
		ev.Reason = ReasonStatic
		ev.Metadata["static"] = "every variant weighs 0: the control is served"
	} else {
		ev.Variant = d.Variants[v]
		if s.static(i) {
			ev.Reason = ReasonStatic
			ev.Metadata["static"] = "one variant holds all the weight"
		}
	}
	return o.finish(ev, d)
}

// finish sets the evaluation's value from its variant and adds the
// rollout metadata.
func (o *OFREP) finish(ev evaluation, d Def) evaluation {
	ev.Value = ev.Variant
	if d.Boolean {
		ev.Value = ev.Variant == "on"
	}
	if o.Rollout != nil {
		if id, step, ok := o.Rollout(d.Name); ok {
			ev.Metadata["rollout"] = id
			ev.Metadata["step"] = step
		}
	}
	if len(ev.Metadata) == 0 {
		ev.Metadata = nil
	}
	return ev
}

// static reports whether one variant of flag i holds all the weight.
func (s *Set) static(i int) bool {
	t := s.flags[i].table
	n := 0
	for j := range t.Len() {
		if t.Cell(j).Weight > 0 {
			n++
		}
	}
	return n == 1
}

// ServeHTTP serves both endpoints under /ofrep/v1/ for the admin listener:
// reads need no token and are not subject to the cross-origin guard
// (admin.Options.OFREP), and a targetingKey is required.
func (o *OFREP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const base = "/ofrep/v1/evaluate/flags"
	path := r.URL.Path
	if path != base && !strings.HasPrefix(path, base+"/") {
		writeJSON(w, http.StatusNotFound, "", mustJSON(bulkError{ErrorCode: "GENERAL", ErrorDetails: "no OFREP route " + clipPath(path)}))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, "", mustJSON(bulkError{ErrorCode: "GENERAL", ErrorDetails: "OFREP evaluations are POST"}))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, "", mustJSON(bulkError{ErrorCode: ErrParse, ErrorDetails: err.Error()}))
		return
	}
	if path == base {
		status, etag, out := o.EvaluateAll(body, []byte(r.Header.Get("If-None-Match")), nil)
		writeJSON(w, status, etag, out)
		return
	}
	status, out := o.Evaluate(strings.TrimPrefix(path, base+"/"), body, nil)
	writeJSON(w, status, "", out)
}

func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	n, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, maxEvalBody+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if n > maxEvalBody {
		return nil, fmt.Errorf("request body over %d bytes", maxEvalBody)
	}
	return b.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, status int, etag string, body []byte) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func clipPath(p string) string {
	if len(p) > 128 {
		return p[:128] + "…"
	}
	return p
}

// mustJSON marshals values that cannot fail to marshal (strings, bools,
// numbers and maps of them).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("flags: marshal %T: %v", v, err))
	}
	return b
}
