//go:build race

package flags

// raceEnabled: the race detector makes sync.Pool drop items, so allocation
// counts are checked without it.
const raceEnabled = true
