package demo

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cellgate/cellgate/rollout"
)

// draw renders the live view: weights as bars, per-cell p99 and error ratio
// over the last 10 s, the rollout's step and state.
func (d *run) draw(v rollout.RolloutView) {
	w := d.o.View
	if w == nil {
		return
	}
	if !d.o.Terminal {
		// A log, not a screen: one line a second, plus every change of
		// step or status.
		key := fmt.Sprintf("%d/%s", v.Step, v.Status)
		if key == d.lastKey && time.Since(d.lastDraw) < time.Second {
			return
		}
		d.lastKey, d.lastDraw = key, time.Now()
	}
	var b strings.Builder
	if d.o.Terminal {
		b.WriteString("\x1b[H\x1b[2J") // home, clear screen
	}
	fmt.Fprintf(&b, "cellgate demo — rollout %s: %s, step %d/%d (%g%%)   status page: %s\n",
		v.ID, v.Status, v.Step, v.Steps, v.StepPercent, d.statusURL())
	if d.faultOn.Load() {
		fmt.Fprintf(&b, "fault injected in canary-1: %.0f%% errors\n", d.o.FaultRatio*100)
	}
	weights := d.node.Proxy().Weights()
	total := 0.0
	for _, x := range weights {
		total += x
	}
	for _, c := range cellNames {
		share := 0.0
		if total > 0 {
			share = weights[c.name] / total
		}
		st := d.node.SLO().Snapshot([]string{c.name}, 10*time.Second)
		fmt.Fprintf(&b, "  %-9s %-3s %-40s %5.1f%%  p99 %7s  errors %5.2f%%  served %d\n",
			c.name, c.version, bar(share, 40), share*100,
			st.P99.Round(10*time.Microsecond), st.ErrorRatio*100, d.counts[c.name].Load())
	}
	fmt.Fprintf(&b, "  requests %d, failed %d\n", d.requests.Load(), d.failed.Load())
	if !d.o.Terminal {
		// One compact line per redraw for logs and CI.
		line := strings.ReplaceAll(strings.TrimSpace(b.String()), "\n", " |")
		b.Reset()
		b.WriteString(line + "\n")
	}
	io.WriteString(w, b.String())
}

// bar draws share (0–1) as a bar of width cells.
func bar(share float64, width int) string {
	n := int(share*float64(width) + 0.5)
	n = min(max(n, 0), width)
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

func (d *run) statusURL() string { return "http://" + d.node.AdminAddr() + "/ui/" }

// summary gathers the run's outcome from the journal and counters.
func (d *run) summary(id string) (*Summary, error) {
	s := &Summary{
		RolloutID:   id,
		Requests:    d.requests.Load(),
		Failed:      d.failed.Load(),
		FaultFailed: d.faultFailed.Load(),
		CellCounts:  map[string]int64{},
		StatusURL:   d.statusURL(),
	}
	d.mu.Lock()
	s.FaultAt = d.faultAt
	d.mu.Unlock()
	for name, c := range d.counts {
		s.CellCounts[name] = c.Load()
	}
	if id == "" {
		return s, nil
	}
	v, err := d.node.Controller().Rollout(id)
	if err != nil {
		return nil, err
	}
	s.Status = v.Status
	s.Decisions = v.Decisions
	for _, ev := range v.Decisions {
		if ev.Action == rollout.ActionStep && !slices.Contains(s.Steps, ev.StepPercent) {
			s.Steps = append(s.Steps, ev.StepPercent)
		}
		if ev.Action == rollout.ActionRollback && s.RevertedAt.IsZero() {
			s.RevertedAt = ev.Time
		}
	}
	return s, nil
}

// Print writes the summary for a person.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== cellgate demo summary ==\n")
	if s.RolloutID == "" {
		fmt.Fprintf(w, "no rollout ran\n")
		return
	}
	fmt.Fprintf(w, "rollout %s: %s\n", s.RolloutID, s.Status)
	steps := make([]string, len(s.Steps))
	for i, p := range s.Steps {
		steps[i] = fmt.Sprintf("%g%%", p)
	}
	fmt.Fprintf(w, "steps entered: %s\n", strings.Join(steps, " → "))
	fmt.Fprintf(w, "decisions:\n")
	for _, ev := range s.Decisions {
		reason := ev.Reason
		if ev.Verdict != nil && reason == "" {
			reason = ev.Verdict.Reason
		}
		fmt.Fprintf(w, "  #%-3d %s  %-12s %-14s %s\n", ev.Seq, ev.Time.Format("15:04:05.000"), ev.Actor, ev.Action, reason)
	}
	if !s.FaultAt.IsZero() {
		fmt.Fprintf(w, "fault injected at %s", s.FaultAt.Format("15:04:05.000"))
		if !s.RevertedAt.IsZero() {
			fmt.Fprintf(w, "; reverted %.1fs later", s.RevertedAt.Sub(s.FaultAt).Seconds())
		}
		fmt.Fprintf(w, "; %d requests failed after the fault\n", s.FaultFailed)
	}
	fmt.Fprintf(w, "requests: %d, failed: %d\n", s.Requests, s.Failed)
	names := make([]string, 0, len(s.CellCounts))
	for n := range s.CellCounts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s served %d\n", n, s.CellCounts[n])
	}
}
