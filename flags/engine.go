package flags

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Engine owns the current Set: the config gives the flags (SetDefs), the
// rollout controller their weights (SetWeights); readers — the request
// path, OFREP — Load the snapshot without locks.
type Engine struct {
	seed uint64
	rec  func(cellName string) Recorder // nil: nothing recorded

	mu  sync.Mutex // serialises writers; readers use cur alone
	cur atomic.Pointer[Set]
}

// NewEngine returns an engine with no flags. rec gives each variant's
// recorder by CellName (nil: none); it is called again for every new
// snapshot, so it must return the same recorder for the same name.
func NewEngine(seed uint64, rec func(cellName string) Recorder) *Engine {
	e := &Engine{seed: seed, rec: rec}
	s, _ := NewSet(seed, nil, nil)
	e.cur.Store(s)
	return e
}

// Load returns the current snapshot.
func (e *Engine) Load() *Set { return e.cur.Load() }

// SetDefs replaces the flags (a config load or reload). A variant whose
// name is in live keeps that weight (the controller's, which a rollout may
// be moving); others take their configured weight.
func (e *Engine) SetDefs(defs []Def, live map[string]float64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	defs = slices.Clone(defs)
	for i := range defs {
		d := &defs[i]
		d.Weights = slices.Clone(d.Weights)
		for j, v := range d.Variants {
			if w, ok := live[CellName(d.Name, v)]; ok {
				d.Weights[j] = w
			}
		}
	}
	s, err := NewSet(e.seed, defs, e.rec)
	if err != nil {
		return err
	}
	e.cur.Store(s)
	return nil
}

// SetWeights publishes a new snapshot with the variant weights in w (by
// CellName); variants not named keep theirs. A weight that is not a finite
// number >= 0 refuses the whole change; names of variants the engine does
// not have are an error too, but the others are applied (the controller
// re-sends everything after an error, as with cells).
func (e *Engine) SetWeights(w map[string]float64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next, unknown, err := e.cur.Load().withWeights(w, e.rec)
	if err != nil {
		return err
	}
	e.cur.Store(next)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("flags: set weights: no variant %s (the others were applied)", strings.Join(unknown, ", "))
	}
	return nil
}
