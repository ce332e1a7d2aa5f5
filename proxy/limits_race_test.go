//go:build race

package proxy

// raceEnabled reports a -race build, whose memory numbers are not the
// product's.
const raceEnabled = true
