package cellgate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgate/cellgate/rollout"
)

// rolloutCollector exports the rollout the status page shows (the active
// one, else the newest): cellgate_rollout_step and
// cellgate_rollout_state{state}, one series per status with the current one
// at 1, so a dashboard can plot state changes.
type rolloutCollector struct{ n *Node }

var (
	rolloutStepDesc = prometheus.NewDesc("cellgate_rollout_step",
		"1-based step of the current rollout (0: none or before its first step).", nil, nil)
	rolloutStateDesc = prometheus.NewDesc("cellgate_rollout_state",
		"1 for the current rollout's status, 0 for the others.", []string{"state"}, nil)
	rolloutStates = []rollout.Status{
		rollout.StatusProgressing, rollout.StatusPaused, rollout.StatusAwaitingApproval,
		rollout.StatusPromoted, rollout.StatusRolledBack, rollout.StatusAborted,
	}
)

func (c rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rolloutStepDesc
	ch <- rolloutStateDesc
}

func (c rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	cur := backend{c.n}.currentRollout()
	step, status := 0.0, ""
	if cur != nil {
		step, status = float64(cur.Step), cur.Status
	}
	ch <- prometheus.MustNewConstMetric(rolloutStepDesc, prometheus.GaugeValue, step)
	for _, s := range rolloutStates {
		v := 0.0
		if string(s) == status {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(rolloutStateDesc, prometheus.GaugeValue, v, string(s))
	}
}
