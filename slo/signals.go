package slo

import (
	"fmt"
	"sync"
	"time"
)

// SignalGate is a plan's gate on an external per-cell signal (a model
// quality score, a drift metric): Direction says which side of Threshold is
// bad. A breach on any target cell makes the verdict degraded.
type SignalGate struct {
	Name      string  `json:"name"`
	Threshold float64 `json:"threshold"`
	// Direction is "above" (values above Threshold are bad, e.g. drift) or
	// "below" (values below are bad, e.g. quality).
	Direction string `json:"direction"`
}

// Signal directions.
const (
	Above = "above"
	Below = "below"
)

// Validate reports a gate that cannot be evaluated.
func (g SignalGate) Validate() error {
	if g.Name == "" {
		return fmt.Errorf("signal gate: empty name")
	}
	if g.Direction != Above && g.Direction != Below {
		return fmt.Errorf("signal gate %q: direction must be %q or %q, got %q", g.Name, Above, Below, g.Direction)
	}
	return nil
}

// breached reports whether v is on the bad side of the gate.
func (g SignalGate) breached(v float64) bool {
	if g.Direction == Below {
		return v < g.Threshold
	}
	return v > g.Threshold
}

// SignalReading is one gate's evaluation on one target cell.
type SignalReading struct {
	Cell      string    `json:"cell"`
	Name      string    `json:"name"`
	Value     float64   `json:"value"`
	At        time.Time `json:"at"`
	Threshold float64   `json:"threshold"`
	Direction string    `json:"direction"`
	// Missing is true when the signal was never set or is older than
	// SignalMaxAge; Breached when the value is on the bad side.
	Missing  bool `json:"missing"`
	Breached bool `json:"breached"`
}

// signalValue is one signal's latest value.
type signalValue struct {
	v  float64
	at time.Time
}

// signalSet holds a cell's signals; signals are rare (seconds apart), so a
// mutex is fine.
type signalSet struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]signalValue
}

func (s *signalSet) set(name string, v float64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]signalValue)
	}
	if old, ok := s.m[name]; ok && old.at.After(at) {
		return // an older value arriving late does not replace a newer one
	}
	s.m[name] = signalValue{v: v, at: at}
}

func (s *signalSet) get(name string) (signalValue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	return v, ok
}

// SetSignal records an external signal value for a cell. A value older
// than the one held is ignored.
func (r *Registry) SetSignal(cell, name string, v float64, at time.Time) {
	r.sigMu.Lock()
	s := r.signals[cell]
	if s == nil {
		s = &signalSet{}
		r.signals[cell] = s
	}
	r.sigMu.Unlock()
	s.set(name, v, at)
}

// signalsOf returns the cell's signals, or nil.
func (r *Registry) signalsOf(cell string) *signalSet {
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	return r.signals[cell]
}

// readSignals evaluates gates on every target cell at now.
func (r *Registry) readSignals(targets []string, gates []SignalGate, now time.Time) []SignalReading {
	maxAge := r.cfg.Load().SignalMaxAge
	var out []SignalReading
	for _, g := range gates {
		for _, name := range targets {
			rd := SignalReading{Cell: name, Name: g.Name, Threshold: g.Threshold, Direction: g.Direction, Missing: true}
			if ss := r.signalsOf(name); ss != nil {
				if sv, ok := ss.get(g.Name); ok && (maxAge == 0 || now.Sub(sv.at) <= maxAge) {
					rd.Value, rd.At, rd.Missing = sv.v, sv.at, false
					rd.Breached = g.breached(sv.v)
				}
			}
			out = append(out, rd)
		}
	}
	return out
}
