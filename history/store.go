package history

import (
	"slices"
	"sync"
)

// Span is how many seconds a Store keeps per cell: the last hour.
const Span = 3600

// Store holds the last Span points of each cell. It is safe for
// concurrent use: one Sampler adds, admin requests read.
type Store struct {
	mu    sync.Mutex
	cells map[string]*ring // guarded by mu
}

// ring is one cell's points, oldest overwritten first.
type ring struct {
	pts  [Span]Point
	n    int // points held
	next int // where the next point goes
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{cells: map[string]*ring{}} }

// Add records cell's point. Points must come in time order per cell.
func (s *Store) Add(cell string, p Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cells[cell]
	if r == nil {
		r = &ring{}
		s.cells[cell] = r
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % Span
	r.n = min(r.n+1, Span)
}

// Since returns every cell's points with T ≥ since, oldest first.
func (s *Store) Since(since int64) map[string][]Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Point, len(s.cells))
	for name, r := range s.cells {
		var pts []Point
		for i := range r.n {
			p := r.pts[(r.next-r.n+i+Span)%Span]
			if p.T >= since {
				pts = append(pts, p)
			}
		}
		out[name] = pts
	}
	return out
}

// Range returns cell's points with from ≤ T < to, oldest first.
func (s *Store) Range(cell string, from, to int64) []Point {
	pts := s.Since(from)[cell]
	i, _ := slices.BinarySearchFunc(pts, to, func(p Point, t int64) int { return int(p.T - t) })
	return pts[:i]
}
