//go:build !race

package cellgate_test

const raceEnabled = false
