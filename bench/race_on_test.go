//go:build race

package bench

// raceEnabled: under the race detector on a loaded machine the fake
// targets' 2 ms and 6 ms delays drown in scheduling noise, so the
// measured ratios are only logged there.
const raceEnabled = true
