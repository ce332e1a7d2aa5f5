package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is sent; a write error means the client left
}

// writeError answers e in the API's error shape.
func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cellgate-admin"`)
	}
	writeJSON(w, e.Status, errorBody{Error: clipTo(e.Msg, maxErrorMsg), Code: e.Code})
}

// fail answers a backend error, logging the ones that become 500s.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err, s.opts.MapError)
	if e.Status >= http.StatusInternalServerError {
		s.opts.Logger.Error("admin: backend failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, e)
}

// answer writes v with status, or the error.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// mutation wraps a state-changing handler with authentication: it runs
// only for an authorized request, with the actor to journal.
func (s *Server) mutation(next func(w http.ResponseWriter, r *http.Request, actor string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		actor, e := authorize(r, s.tokens.Load(), s.loopback.Load())
		if e != nil {
			writeError(w, e)
			return
		}
		next(w, r, actor)
	}
}

// body reads and strictly decodes the request body into v.
func (s *Server) body(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, e := readBody(w, r, s.opts.MaxBodyBytes)
	if e == nil {
		e = decodeStrict(data, v, optional)
	}
	if e != nil {
		writeError(w, e)
		return false
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.opts.Backend.Ready() {
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Msg: "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	doc, err := s.opts.Backend.Status(r.Context())
	s.answer(w, r, http.StatusOK, doc, err)
}

func (s *Server) cells(w http.ResponseWriter, r *http.Request) {
	cells, err := s.opts.Backend.Cells(r.Context())
	if cells == nil {
		cells = []CellStatus{} // a list, never null
	}
	s.answer(w, r, http.StatusOK, cells, err)
}

func (s *Server) setWeight(w http.ResponseWriter, r *http.Request, actor string) {
	var b weightBody
	if !s.body(w, r, &b, false) {
		return
	}
	if e := b.validate(); e != nil {
		writeError(w, e)
		return
	}
	name, e := pathValue(r, "name", "cell")
	if e != nil {
		writeError(w, e)
		return
	}
	v, err := s.opts.Backend.SetWeight(r.Context(), name, *b.Weight, actor, b.Reason)
	s.answer(w, r, http.StatusOK, v, err)
}

// startedBody is the 201 answer of POST /v1/rollouts.
type startedBody struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, actor string) {
	data, e := readBody(w, r, s.opts.MaxBodyBytes)
	var plan json.RawMessage
	if e == nil {
		plan, e = decodePlan(data)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	id, status, err := s.opts.Backend.StartRollout(r.Context(), plan, actor)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/rollouts/"+url.PathEscape(id))
	writeJSON(w, http.StatusCreated, startedBody{ID: id, Status: status})
}

func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) {
	v, err := s.opts.Backend.Rollouts(r.Context())
	s.answer(w, r, http.StatusOK, v, err)
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request) {
	id, e := pathValue(r, "id", "rollout")
	if e != nil {
		writeError(w, e)
		return
	}
	v, err := s.opts.Backend.Rollout(r.Context(), id)
	s.answer(w, r, http.StatusOK, v, err)
}

func (s *Server) rolloutAction(w http.ResponseWriter, r *http.Request, actor string) {
	action := r.PathValue("action")
	if !isAction(action) {
		writeError(w, NotFound("unknown rollout action %q (want pause, resume, approve, abort or promote)", clip(action)))
		return
	}
	id, e := pathValue(r, "id", "rollout")
	if e != nil {
		writeError(w, e)
		return
	}
	var b actionBody
	if !s.body(w, r, &b, true) {
		return
	}
	v, err := s.opts.Backend.RolloutAction(r.Context(), id, action, actor, b.Reason)
	s.answer(w, r, http.StatusOK, v, err)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := AuditQuery{Tail: true, Limit: DefaultAuditLimit}
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, Invalid("since=%q: want a journal sequence number ≥ 0", clip(v)))
			return
		}
		q.Since, q.Tail = n, false
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAuditLimit {
			writeError(w, Invalid("limit=%q: want a page size from 1 to %d", clip(v), MaxAuditLimit))
			return
		}
		q.Limit = n
	}
	v, err := s.opts.Backend.Audit(r.Context(), q)
	s.answer(w, r, http.StatusOK, v, err)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request, actor string) {
	var b reloadBody
	if !s.body(w, r, &b, true) {
		return
	}
	v, err := s.opts.Backend.Reload(r.Context(), actor)
	s.answer(w, r, http.StatusOK, v, err)
}

// signalAccepted is the answer of POST /v1/signals.
type signalAccepted struct {
	Status string  `json:"status"` // "accepted"
	Cell   string  `json:"cell"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request, actor string) {
	var b signalBody
	if !s.body(w, r, &b, false) {
		return
	}
	if e := b.validate(); e != nil {
		writeError(w, e)
		return
	}
	if err := s.opts.Backend.Signal(r.Context(), b.Cell, b.Name, *b.Value, actor); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, signalAccepted{Status: "accepted", Cell: b.Cell, Name: b.Name, Value: *b.Value})
}
