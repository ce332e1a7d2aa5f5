package admin

import (
	"fmt"
	"net/http"
)

// jsonMux routes through a ServeMux but answers the requests no pattern
// takes with the API's JSON error shape: ServeMux's own 404 and 405
// answers are plain text. The 405 keeps ServeMux's Allow header
// (RFC 9110 §15.5.6 requires it).
type jsonMux struct {
	mux *http.ServeMux
}

func (m *jsonMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.mux.Handler(r)
	if pattern != "" {
		// ServeHTTP routes again: Handler does not fill r.PathValue.
		m.mux.ServeHTTP(w, r)
		return
	}
	// Run ServeMux's not-found/not-allowed handler into a recorder to learn
	// which it is and which methods the path allows.
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Msg: fmt.Sprintf("method %q not allowed on %q (allowed: %s)", clip(r.Method), clip(r.URL.Path), allow)})
		return
	}
	writeError(w, NotFound("no route for %q %q", clip(r.Method), clip(r.URL.Path)))
}

// headerRecorder is a ResponseWriter that keeps the header and status and
// drops the body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }

func (h *headerRecorder) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return len(p), nil
}

func (h *headerRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}
