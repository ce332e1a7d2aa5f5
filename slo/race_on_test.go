//go:build race

package slo

// raceEnabled shrinks the long simulations under the race detector, which
// slows them tenfold; the full runs happen without -race.
const raceEnabled = true
