package flags

import (
	"fmt"
	"math"
	"time"

	"github.com/cellgate/cellgate/balancer"
)

// MaxFlags is how many flags a Set holds at most (configs allows as many):
// Choices is a fixed array of that size, and exposure marks are one bit
// per flag in a uint64.
const MaxFlags = 64

// noVariant marks a flag without an assignment in Choices: every variant
// weight is 0 (only a manual weight change can do that).
const noVariant = 0xff

// Def is one flag as configured. Variants are in index order (sorted by
// name, so every node numbers them alike); Weights are index-aligned.
type Def struct {
	Name     string
	Variants []string
	Weights  []float64
	Control  string // one of Variants
	Boolean  bool   // variants "on"/"off" evaluate to true/false
	Marked   bool   // exposure = "marked": only requests the upstream marks count
}

// Recorder takes one finished request of a variant's cohort; the SLO
// engine's per-cell recorder fits. It must be safe for concurrent use and
// must not block.
type Recorder interface {
	Record(status int, proxyErr bool, total, ttfb time.Duration)
}

// EndRecorder is a Recorder that also takes the time.Now reading its
// caller made when the request ended (slo.Cell.RecordEnded). Set.Record
// uses it when a variant's recorder has it: a request's cohorts then share
// the request path's one clock reading instead of reading the clock once
// each, which was most of a cohort record's cost.
type EndRecorder interface {
	RecordEnded(end time.Time, status int, proxyErr bool, total, ttfb time.Duration)
}

// Choices are one request's variants, by flag index in its Set. A fixed
// array, so the request path keeps them in its pooled state without
// allocating.
type Choices [MaxFlags]uint8

// Set is an immutable snapshot of every flag and its current weights.
// Build a new one for every change; never edit one that was published.
type Set struct {
	seed   uint64
	flags  []flag
	marked bool // some flag has exposure = "marked"
}

// flag is one flag with what assignment and labelling need precomputed.
type flag struct {
	def   Def
	salt  uint64
	table *balancer.Table   // variants as cells, seeded with the salt
	view  *balancer.PinView // session pins for this table; nil: pins off
	pairs [][]byte          // "name=variant", the header's dictionary members
	recs  []Recorder        // per variant; nil entries record nothing
	ends  []EndRecorder     // recs' EndRecorder, index-aligned; nil: use recs
}

// CellName is the name the rollout controller, the journal, the judge and
// the metrics know a variant by: "flag=variant". '=' never occurs in a cell
// name, so it cannot collide with one.
func CellName(flag, variant string) string { return flag + "=" + variant }

// SplitCellName undoes CellName; ok is false for a real cell's name.
func SplitCellName(name string) (flag, variant string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '=' {
			return name[:i], name[i+1:], true
		}
	}
	return "", "", false
}

// NewSet builds a snapshot of defs with the key hash seed (routing.seed);
// rec, when not nil, gives each variant's recorder by its CellName.
func NewSet(seed uint64, defs []Def, rec func(cellName string) Recorder) (*Set, error) {
	return newSet(seed, defs, rec, nil, nil, false)
}

// newSet is NewSet with session pins: pins (by flag name, nil: off) gives
// each flag's pin table, prev the snapshot replaced, whose views the new
// ones follow (revert: the change undoes a rollout).
func newSet(seed uint64, defs []Def, rec func(cellName string) Recorder, pins map[string]*balancer.Pins, prev *Set, revert bool) (*Set, error) {
	if len(defs) > MaxFlags {
		return nil, fmt.Errorf("flags: %d flags, at most %d", len(defs), MaxFlags)
	}
	s := &Set{seed: seed, flags: make([]flag, len(defs))}
	for i, d := range defs {
		if len(d.Variants) != len(d.Weights) || len(d.Variants) == 0 || len(d.Variants) >= noVariant {
			return nil, fmt.Errorf("flags: flag %s: %d variants, %d weights", d.Name, len(d.Variants), len(d.Weights))
		}
		d.Variants = append([]string(nil), d.Variants...)
		d.Weights = append([]float64(nil), d.Weights...)
		f := flag{def: d, salt: balancer.SaltFor(seed, d.Name)}
		cells := make([]balancer.Cell, len(d.Variants))
		for j, v := range d.Variants {
			cells[j] = balancer.Cell{Name: v, Weight: d.Weights[j]}
			f.pairs = append(f.pairs, []byte(d.Name+"="+v))
			if rec != nil {
				r := rec(CellName(d.Name, v))
				er, _ := r.(EndRecorder)
				f.recs, f.ends = append(f.recs, r), append(f.ends, er)
			}
		}
		f.table = balancer.NewTable(f.salt, cells)
		if p := pins[d.Name]; p != nil {
			var pv *balancer.PinView
			if prev != nil {
				if j := prev.Index(d.Name); j >= 0 {
					pv = prev.flags[j].view
				}
			}
			f.view = p.Swap(pv, f.table, revert)
		}
		s.flags[i] = f
		s.marked = s.marked || d.Marked
	}
	return s, nil
}

// Len is the number of flags.
func (s *Set) Len() int { return len(s.flags) }

// Def returns the i-th flag as configured, with its current weights.
func (s *Set) Def(i int) Def { return s.flags[i].def }

// Index returns the position of the named flag, or -1.
func (s *Set) Index(name string) int {
	for i := range s.flags {
		if s.flags[i].def.Name == name {
			return i
		}
	}
	return -1
}

// HasMarked reports whether some flag counts only marked requests, so the
// proxy must read X-Cellgate-Exposed.
func (s *Set) HasMarked() bool { return s.marked }

// Pick returns flag i's variant index for a key hash (the cell table's
// Hash of the sticky key) by the weights alone, or -1 when every variant's
// weight is 0. Route is Pick with session pins.
func (s *Set) Pick(i int, keyHash uint64) int {
	f := &s.flags[i]
	return f.table.Pick(balancer.Salted(keyHash, f.salt))
}

// Route is flag i's variant for a keyed visit at now (ns since the Unix
// epoch, time.Now's clock): with pins on, an active session keeps the
// variant it had while a promotion moves its key, and loses it on a revert
// (balancer.Pins); it records the visit. Without pins it is Pick.
func (s *Set) Route(i int, keyHash uint64, now int64) int {
	f := &s.flags[i]
	h := balancer.Salted(keyHash, f.salt)
	if f.view != nil {
		return f.view.Route(h, now, balancer.NoClaim).Cell
	}
	return f.table.Pick(h)
}

// Assign writes every flag's variant for a keyed visit at now into c
// (Route for each flag). A keyless request (a random key hash) should pass
// keyed = false: it is never pinned and leaves no trace in the pin table.
// It does not allocate.
func (s *Set) Assign(keyHash uint64, now int64, keyed bool, c *Choices) {
	for i := range s.flags {
		f := &s.flags[i]
		h := balancer.Salted(keyHash, f.salt)
		var v int
		if keyed && f.view != nil {
			v = f.view.Route(h, now, balancer.NoClaim).Cell
		} else {
			v = f.table.Pick(h)
		}
		if v < 0 {
			v = noVariant
		}
		c[i] = uint8(v)
	}
}

// AppendHeader appends the X-Cellgate-Flags value for c: an RFC 8941
// dictionary "name=variant, name=variant" in config order. Flags without
// a variant are left out. It does not allocate when dst has room.
func (s *Set) AppendHeader(dst []byte, c *Choices) []byte {
	first := true
	for i := range s.flags {
		if c[i] == noVariant {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		first = false
		dst = append(dst, s.flags[i].pairs[c[i]]...)
	}
	return dst
}

// Record records a request that ended at end (time.Now) in the cohort of each of
// its variants. exposed has bit i set when the response marked flag i as
// exposed; a flag with exposure = "marked" records only then.
func (s *Set) Record(c *Choices, exposed uint64, end time.Time, status int, proxyErr bool, total, ttfb time.Duration) {
	for i := range s.flags {
		f := &s.flags[i]
		v := c[i]
		if v == noVariant || int(v) >= len(f.recs) || (f.def.Marked && exposed&(1<<uint(i)) == 0) {
			continue
		}
		if er := f.ends[v]; er != nil {
			er.RecordEnded(end, status, proxyErr, total, ttfb)
		} else if r := f.recs[v]; r != nil {
			r.Record(status, proxyErr, total, ttfb)
		}
	}
}

// Weights returns every variant's weight by CellName.
func (s *Set) Weights() map[string]float64 {
	w := map[string]float64{}
	for i := range s.flags {
		d := &s.flags[i].def
		for j, v := range d.Variants {
			w[CellName(d.Name, v)] = s.flags[i].table.Cell(j).Weight
		}
	}
	return w
}

// withWeights returns a new Set with the weights in w (by CellName)
// applied, and the names in w it has no variant for.
func (s *Set) withWeights(w map[string]float64, rec func(string) Recorder, pins map[string]*balancer.Pins, revert bool) (*Set, []string, error) {
	defs := make([]Def, len(s.flags))
	known := map[string]bool{}
	for i := range s.flags {
		d := s.flags[i].def
		d.Weights = append([]float64(nil), d.Weights...)
		for j, v := range d.Variants {
			name := CellName(d.Name, v)
			known[name] = true
			if x, ok := w[name]; ok {
				if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
					return nil, nil, fmt.Errorf("flags: %s: weight %g is not a finite number >= 0", name, x)
				}
				d.Weights[j] = x
			}
		}
		defs[i] = d
	}
	var unknown []string
	for name := range w {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	next, err := newSet(s.seed, defs, rec, pins, s, revert)
	return next, unknown, err
}
