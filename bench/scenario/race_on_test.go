//go:build race

package scenario

// raceEnabled: under the race detector (and a loaded CI machine) every
// request through the in-process node slows to where the seconds-scale
// rollout scenarios miss their own schedule (requests time out, a step
// outruns the fault); they run without it in make test, like the demo.
const raceEnabled = true
