package admin

import (
	"fmt"
	"net/http"
	"unicode/utf8"
)

// Answers echo what a client sent (an id, a query value) so the client can
// see what was refused, but never all of it: a 100 KB id must not come back
// as a 100 KB error. Echoed values are clipped and, by the %q that quotes
// them, escaped.
const (
	// maxEcho is the most of one client value an answer repeats.
	maxEcho = 64
	// maxErrorMsg caps a whole error message, whatever produced it.
	maxErrorMsg = 1024
	// maxPathValue is the longest id or cell name a path may carry;
	// longer ones are refused before any lookup (ids and cell names are
	// far shorter: see rollout's idRE and configs' cell name rule).
	maxPathValue = 256
)

// clip returns s cut to maxEcho bytes at a rune boundary, marked with its
// full length when cut.
func clip(s string) string { return clipTo(s, maxEcho) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// pathValue returns the named path value, or an error answer naming only
// its length when it is too long to be an id or a cell name.
func pathValue(r *http.Request, name, what string) (string, *Error) {
	v := r.PathValue(name)
	if len(v) > maxPathValue {
		return "", NotFound("no %s with a %d-byte %s", what, len(v), name)
	}
	return v, nil
}
