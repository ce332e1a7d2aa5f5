package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// DefaultMaxBodyBytes bounds request bodies: a plan is a few hundred
// bytes, so 1 MiB is generous while keeping a hostile client from making
// the node buffer without limit.
const DefaultMaxBodyBytes = 1 << 20

// Request bodies. Each is decoded strictly: unknown fields, trailing data
// and wrong types are 400s.
type (
	// weightBody is PUT /v1/cells/{name}/weight.
	weightBody struct {
		Weight *float64 `json:"weight"`
		Reason string   `json:"reason"`
	}
	// signalBody is POST /v1/signals.
	signalBody struct {
		Cell  string   `json:"cell"`
		Name  string   `json:"name"`
		Value *float64 `json:"value"`
	}
	// actionBody is the optional body of POST /v1/rollouts/{id}/{action}.
	actionBody struct {
		Reason string `json:"reason"`
	}
	// reloadBody is the optional body of POST /v1/config/reload (empty object).
	reloadBody struct{}
)

// readBody reads at most limit bytes of r's body; a longer body is a 413.
// The Content-Length check answers early without reading a byte.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Msg: fmt.Sprintf("read body: %v", err)}
	}
	return data, nil
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
		Msg: fmt.Sprintf("request body is over the %d byte limit", limit)}
}

// decodeStrict decodes exactly one JSON value from data into v: unknown
// fields, a second value or any non-space byte after the first are
// errors. optional allows an empty (or all-space) body, leaving v as is.
func decodeStrict(data []byte, v any, optional bool) *Error {
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Msg: "empty request body: a JSON object is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Status: http.StatusBadRequest, Code: CodeTrailingData, Msg: "unexpected data after the JSON value"}
	}
	return nil
}

// decodeError classifies an encoding/json error. The unknown-field error
// has no type of its own in encoding/json, so its message is matched.
func decodeError(err error) *Error {
	if strings.Contains(err.Error(), "unknown field") {
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownField, Msg: err.Error()}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Msg: fmt.Sprintf("bad JSON: %v", err)}
}

// decodePlan checks that data is exactly one JSON object and returns it
// compacted. The plan's fields are the backend's to decode strictly; this
// only guarantees it receives one well-formed object.
func decodePlan(data []byte) (json.RawMessage, *Error) {
	var raw json.RawMessage
	if e := decodeStrict(data, &raw, false); e != nil {
		return nil, e
	}
	if raw[0] != '{' {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Msg: "a plan must be a JSON object"}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, decodeError(err)
	}
	return buf.Bytes(), nil
}

// validate checks a decoded weight body.
func (b *weightBody) validate() *Error {
	switch {
	case b.Weight == nil:
		return Invalid(`"weight" is required`)
	case *b.Weight < 0 || math.IsInf(*b.Weight, 0) || math.IsNaN(*b.Weight):
		return Invalid("weight %v must be a finite number ≥ 0", *b.Weight)
	}
	return nil
}

// validate checks a decoded signal body.
func (b *signalBody) validate() *Error {
	switch {
	case b.Cell == "":
		return Invalid(`"cell" is required`)
	case b.Name == "":
		return Invalid(`"name" is required`)
	case b.Value == nil:
		return Invalid(`"value" is required`)
	}
	return nil
}
