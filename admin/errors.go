package admin

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the JSON error body. Scripts branch on them, so they are
// part of the outside contract.
const (
	CodeBadJSON          = "bad_json"           // 400: malformed JSON or wrong field type
	CodeUnknownField     = "unknown_field"      // 400: a field the request type does not have
	CodeTrailingData     = "trailing_data"      // 400: bytes after the JSON value
	CodeInvalid          = "invalid"            // 400: well-formed but not acceptable (plan, weight, config)
	CodeUnauthorized     = "unauthorized"       // 401: missing or wrong bearer token
	CodeForbidden        = "forbidden"          // 403: mutations refused on this listener
	CodeCrossOrigin      = "cross_origin"       // 403: a cross-origin browser request
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405 (the Allow header lists the methods)
	CodeConflict         = "conflict"           // 409: e.g. a rollout already covers the cells
	CodeBadState         = "bad_state"          // 409: the action does not fit the current status
	CodeTooLarge         = "too_large"          // 413: body over Options.MaxBodyBytes
	CodeNotReady         = "not_ready"          // 503 from /readyz
	CodeInternal         = "internal"           // 500: any error that is not an *Error
)

// Error is an error the Backend returns to choose the HTTP status and code
// of the answer. Any other error becomes 500 "internal" (unless
// Options.MapError maps it). Wrapping is fine: errors.As finds it.
type Error struct {
	Status int    // HTTP status, e.g. http.StatusConflict
	Code   string // one of the Code… constants (or a backend-specific code)
	Msg    string // human-readable; shown by ctl and the status page
}

func (e *Error) Error() string { return e.Msg }

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// NotFound is a 404: no such rollout or cell.
func NotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Msg: fmt.Sprintf(format, args...)}
}

// Conflict is a 409: the request collides with existing state (a rollout
// over the same cells is still active).
func Conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Msg: fmt.Sprintf(format, args...)}
}

// Invalid is a 400: the request is well-formed JSON but not acceptable
// (an invalid plan, a negative weight, a config file with errors at file:line).
func Invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Msg: fmt.Sprintf(format, args...)}
}

// BadState is a 409: the action is not valid in the rollout's current
// status (approve while progressing, resume after abort).
func BadState(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeBadState, Msg: fmt.Sprintf(format, args...)}
}

// asError turns any error into an *Error: an *Error found by errors.As is
// kept, mapErr gets a chance at the rest, and everything else is internal.
// The message of a wrapped *Error keeps the wrapping context.
func asError(err error, mapErr func(error) *Error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Error() != err.Error() {
			return &Error{Status: e.Status, Code: e.Code, Msg: err.Error()}
		}
		return e
	}
	if mapErr != nil {
		if m := mapErr(err); m != nil {
			return m
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Msg: err.Error()}
}
