package admin

import (
	"net/http"
	"strconv"
	"time"
)

// HistoryQuery is what GET /v1/history asks for.
type HistoryQuery struct {
	// Since is the first second wanted (default: an hour ago).
	Since time.Time
	// Rollout, when set, asks for that rollout's whole history as the
	// journal keeps it (downsampled), not the last hour's.
	Rollout string
}

// history is GET /v1/history?since=…[&rollout=ID]: the node's per-second
// history of its cells and the decisions since a time, given as Unix
// seconds or RFC 3339 (default: the last hour), or one rollout's whole
// history. Without Options.History the route is 404.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if s.opts.History == nil {
		writeError(w, NotFound("no history on this node"))
		return
	}
	q := HistoryQuery{Rollout: r.URL.Query().Get("rollout")}
	if len(q.Rollout) > 256 {
		writeError(w, NotFound("rollout id too long"))
		return
	}
	since := time.Now().Add(-time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, ok := parseSince(v)
		if !ok {
			writeError(w, Invalid("since=%q: want Unix seconds or an RFC 3339 time", clip(v)))
			return
		}
		since = t
	}
	q.Since = since
	v, err := s.opts.History(r.Context(), q)
	s.answer(w, r, http.StatusOK, v, err)
}

// parseSince reads Unix seconds or an RFC 3339 time.
func parseSince(v string) (time.Time, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0), true
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}
