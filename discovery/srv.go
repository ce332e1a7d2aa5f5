package discovery

import "maps"

// Weight is where an SRV-discovered endpoint stands in its cell (RFC 2782):
// the lowest Priority value that has an endpoint in rotation takes all of
// the cell's traffic, and within it each endpoint's share is its Weight
// over the priority's total. A weight of 0 gets a very small share when
// others in its priority weigh more, and an equal one when all are 0.
type Weight struct {
	Priority uint16  `json:"priority"`
	Weight   float64 `json:"weight"`
}

// srvTarget is one SRV record resolved: its priority, weight and the
// addresses (host:port) of its target.
type srvTarget struct {
	priority, weight uint16
	addrs            []string
}

// srvWeights gives each address of an SRV answer its priority and weight.
// A target with several addresses splits its weight evenly among them, so
// the target keeps the share its record gives it. An address named by
// several records takes the best (lowest) priority, and the weights of
// that priority's records add up.
func srvWeights(ts []srvTarget) map[string]Weight {
	out := map[string]Weight{}
	for _, t := range ts {
		if len(t.addrs) == 0 {
			continue
		}
		w := float64(t.weight) / float64(len(t.addrs))
		for _, a := range t.addrs {
			old, seen := out[a]
			switch {
			case !seen || t.priority < old.Priority:
				out[a] = Weight{Priority: t.priority, Weight: w}
			case t.priority == old.Priority:
				out[a] = Weight{Priority: t.priority, Weight: old.Weight + w}
			}
		}
	}
	return out
}

// equalWeights compares two answers' weights (nil and empty are equal).
func equalWeights(a, b map[string]Weight) bool { return maps.Equal(a, b) }
