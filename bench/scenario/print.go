package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteText writes the report as tables for a person.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fault := "none (a healthy canary)"
	if r.Injected != nil {
		fault = fmt.Sprintf("%s at step %d (%g%%)", r.Fault, r.Injected.Step, r.Injected.Percent)
	} else if r.Fault != FaultNone {
		fault = r.Fault + " (not injected: the rollout ended first)"
	}
	ew.printf("scenario rollout: %g req/s open loop, %d keys, %d connections; tick %v, bake %v, min %d requests; fault: %s\n",
		r.Rate, r.Keys, r.Connections, r.Tick, r.Bake, r.MinRequests, fault)
	ew.printf("rollout %s: %s (expected %s) after %.1fs; %d requests, %d failed\n\n",
		r.RolloutID, r.Status, r.Expected, r.Duration.Seconds(), r.Requests, r.Failed)

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tfrom\tlength\trequests\tfailed\tcanary share\tp50\tp99\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%.2fs\t%.2fs\t%d\t%d\t%.1f%%\t%s\t%s\t\n", p.Name, p.Start.Seconds(), (p.End - p.Start).Seconds(),
			p.Requests, p.Failed, p.CanaryShare, ms(p.P50), ms(p.P99))
	}
	tw.Flush()

	if f := r.Injected; f != nil {
		ew.printf("\nfault: %s injected at %.2fs; ", f.Kind, f.Onset.Seconds())
		if f.Reverted {
			ew.printf("canary weight 0 after %s", ms(f.RevertAfter))
			if f.DecidedAfter > 0 {
				ew.printf(" (rollback decided after %s)", ms(f.DecidedAfter))
			}
		} else {
			ew.printf("NOT reverted")
		}
		ew.printf("; %d of %d requests failed from the onset on\n", f.FailedAfter, f.RequestsAfter)
	}

	ew.printf("\ndecisions:\n")
	for _, d := range r.Decisions {
		what := d.Action
		if d.Action == "step" {
			what = fmt.Sprintf("step %d (%g%%)", d.Step, d.Percent)
		}
		ew.printf("  %7.2fs  %-16s %s\n", d.At.Seconds(), what, oneLine(d.Reason, 110))
	}

	a := r.Audit
	verdict := "clean"
	if !a.Clean {
		verdict = fmt.Sprintf("VIOLATIONS %v", a.Violations)
	}
	ew.printf("\nstickiness audit: %s\n", verdict)
	ew.printf("  %d keys seen, %d with a cell known from before the rollout; %d moved baseline → canary\n",
		a.Keys, a.KeysWithHome, a.MovedToCanary)
	if a.CheckedAfterRevert > 0 {
		ew.printf("  after the revert: %d keys seen again, %d of them back on exactly the cell they had before (the rest were not seen before the revert)\n",
			a.CheckedAfterRevert, a.RestoredExactly)
	}
	if a.Unrouted > 0 {
		ew.printf("  %d responses named no cell (transport errors) and were not audited\n", a.Unrouted)
	}
	for _, v := range a.Examples {
		ew.printf("  %s %s: %s\n", v.Kind, v.Key, v.Detail)
	}
	if r.OK {
		ew.printf("\nresult: ok\n")
	} else {
		ew.printf("\nresult: FAILED — %s\n", strings.Join(r.Problems, "; "))
	}
	return ew.err
}

// ms formats a latency in milliseconds with enough digits for loopback.
func ms(d time.Duration) string {
	switch v := float64(d) / 1e6; {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}

// oneLine cuts s to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// errWriter keeps the first write error so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
