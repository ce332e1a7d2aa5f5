package balancer

import (
	"math"

	"github.com/cespare/xxhash/v2"
)

// mix64 is the splitmix64 finaliser: it spreads every input bit over the
// whole word, so xor-combining a key hash with a cell hash gives independent
// uniform values per (key, cell) pair.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// HashKey returns the seeded 64-bit hash of a sticky key. The seed comes from
// the config (not from process start), so a key maps to the same cell across
// restarts and across every node of a fleet that shares the config.
func HashKey(seed uint64, key []byte) uint64 {
	return mix64(xxhash.Sum64(key) ^ seed)
}

// hashName is the per-cell component of a score. It depends on the cell's
// name, not its position, so reordering cells in the config moves no key.
func hashName(seed uint64, name string) uint64 {
	return mix64(xxhash.Sum64String(name) ^ mix64(seed))
}

// unitInterval maps h to a float64 strictly inside (0, 1): the top 53 bits
// plus one half, so neither 0 (ln = −∞) nor 1 (ln = 0) can occur.
func unitInterval(h uint64) float64 {
	return (float64(int64(h>>11)) + 0.5) * (1.0 / (1 << 53))
}

// cost is −ln(u) for u = unitInterval(h): the exponential variate whose
// ratio to the weight ranks cells. The cell with the smallest cost/weight —
// equivalently the largest −w/ln(u) — wins.
//
// It is computed here rather than by math.Log for two reasons. Speed: a pick
// evaluates it once per cell, and math.Log costs about 20 ns, which would put
// a 16-cell pick over 300 ns. Portability: every node of a fleet must rank
// cells identically, and math.Log has assembly versions on some
// architectures while the compiler fuses multiply-adds on others; the
// explicit float64 conversions below force rounding after each product (Go
// spec, "Floating-point operators"), so the result is bit-identical on every
// platform. The series ln m = 2·atanh(s), s = (m−1)/(m+1), with m reduced to
// [0.75, 1.5) so |s| ≤ 1/5, truncated after s¹¹, is within 4e-9 of the true
// value (checked by TestCostAccuracy), far below what any share can notice.
func cost(h uint64) float64 {
	b := math.Float64bits(unitInterval(h))
	// Reduce the mantissa to m in [0.75, 1.5) without a branch (a branch
	// here is mispredicted half the time): when its top fraction bit says
	// m ≥ 1.5, halve it and count one more in the exponent.
	top := b >> 51 & 1
	e := float64(int64(b>>52&0x7ff) - 1023 + int64(top))
	m := math.Float64frombits(b&(1<<52-1) | (1023-top)<<52)
	s := float64(m-1) / float64(m+1) // |s| ≤ 1/5
	s2 := float64(s * s)
	p := float64(float64(float64(float64(float64(s2*(1.0/11))+1.0/9)*s2)+1.0/7)*s2) + 1.0/5
	p = float64(float64(float64(float64(p*s2)+1.0/3)*s2) + 1)
	return -(float64(e*math.Ln2) + float64(2*s*p))
}

// lowerBound, times 2⁻⁵³·(1−1e-8), is a value no greater than cost(h):
// −ln(u) ≥ 1−u = (2⁵³ − ½ − v)·2⁻⁵³ with v the top 53 bits of h. The scale is
// left to the caller, who folds it into the cell's 1/weight, so a bound costs
// one conversion and one subtraction; the 1e-8 shrink absorbs cost's own
// error (≤ 4e-9 relative). Near u = 1, where winning cells live, the bound is
// within x²/2 of the truth (x = 1−u), so it rarely lets a loser through.
func lowerBound(h uint64) float64 {
	return (1<<53 - 0.5) - float64(int64(h>>11))
}

// upperBound is a value no smaller than cost(h): −ln(u) ≤ 1/u − 1 = x/u,
// grown by 1e-8 to absorb cost's own error.
func upperBound(h uint64) float64 {
	u := unitInterval(h)
	return (1 - u) / u * (1 + 1e-8)
}
