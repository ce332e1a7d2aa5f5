package flags

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cellgate/cellgate/balancer"
)

// Engine owns the current Set: the config gives the flags (SetDefs), the
// rollout controller their weights (SetWeights); readers — the request
// path, OFREP — Load the snapshot without locks.
type Engine struct {
	seed uint64
	rec  func(cellName string) Recorder // nil: nothing recorded

	mu     sync.Mutex // serialises writers and guards pinCfg and pins; readers use cur alone
	pinCfg balancer.PinConfig
	pins   map[string]*balancer.Pins // by flag name; nil: pins off
	cur    atomic.Pointer[Set]
	closed bool
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

// SetPins turns session pins on for every flag, each with its own pin
// table of cfg's size (routing.pin_memory and pin_idle apply to flags as
// to cells): a user mid-session keeps its variant while a promotion moves
// its key into another, and is released at once by a revert. Call it
// before SetDefs; MaxBytes 0 leaves pins off.
func (e *Engine) SetPins(cfg balancer.PinConfig) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pinCfg = cfg
}

// Load returns the current snapshot.
func (e *Engine) Load() *Set { return e.cur.Load() }

// SetDefs replaces the flags (a config load or reload). A variant whose
// name is in live keeps that weight (the controller's, which a rollout may
// be moving); others take their configured weight. Pins of a flag that
// stays are kept (a flag whose variants changed forgets its pins); a
// removed flag's pin table is closed.
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
	pins, err := e.pinsLocked(defs)
	if err != nil {
		return err
	}
	s, err := newSet(e.seed, defs, e.rec, pins, e.cur.Load(), false)
	if err != nil {
		return err
	}
	for name, p := range e.pins {
		if pins[name] == nil {
			p.Close()
		}
	}
	e.pins = pins
	e.cur.Store(s)
	return nil
}

// pinsLocked returns the pin tables for defs: the existing ones, new ones
// for new flags; nil when pins are off.
func (e *Engine) pinsLocked(defs []Def) (map[string]*balancer.Pins, error) {
	if e.pinCfg.MaxBytes <= 0 || e.closed {
		return nil, nil
	}
	out := make(map[string]*balancer.Pins, len(defs))
	for _, d := range defs {
		if p := e.pins[d.Name]; p != nil {
			out[d.Name] = p
			continue
		}
		p, err := balancer.NewPins(e.pinCfg)
		if err != nil {
			for name, q := range out {
				if e.pins[name] == nil {
					q.Close()
				}
			}
			return nil, fmt.Errorf("flags: pins of %s: %w", d.Name, err)
		}
		out[d.Name] = p
	}
	return out, nil
}

// SetWeights publishes a new snapshot with the variant weights in w (by
// CellName); variants not named keep theirs. revert says the change undoes
// a rollout (pins to variants whose share falls go at once; see
// balancer.Pins.Swap). A weight that is not a finite number >= 0 refuses
// the whole change; names of variants the engine does not have are an
// error too, but the others are applied (the controller re-sends
// everything after an error, as with cells).
func (e *Engine) SetWeights(w map[string]float64, revert bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next, unknown, err := e.cur.Load().withWeights(w, e.rec, e.pins, revert)
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

// Close stops the pin tables' goroutines. Assignment keeps working, without
// pins from the next snapshot on. Close may be called more than once.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pins {
		p.Close()
	}
	e.pins, e.closed = nil, true
}
