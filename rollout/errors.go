package rollout

import (
	"errors"
	"strings"
)

// Sentinel errors callers branch on (the admin API maps them to HTTP codes).
var (
	// ErrConflict: the plan's cells overlap a rollout that is still active (409).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: no such rollout or cell (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the plan, weight or document is malformed (400).
	ErrInvalid = errors.New("invalid")
	// ErrBadState: the action is not valid in the rollout's current status (409).
	ErrBadState = errors.New("bad state")
	// ErrLocked: another process holds the journal file (fail fast at startup).
	ErrLocked = errors.New("journal locked by another process")
	// ErrClosed: the controller was closed.
	ErrClosed = errors.New("controller closed")
)

// ValidationError lists every problem found in a plan, so an operator fixes
// them all in one round trip. errors.Is(err, ErrInvalid) holds.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid plan: " + strings.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for every validation error.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }
