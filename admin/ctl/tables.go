package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellgate/cellgate/admin"
)

// rolloutDoc is what ctl reads of a rollout answer. It is tolerant: steps
// may be a count (the rollout package's view) or the list of percentages
// (admin.RolloutStatus), and plan an object with a name or a bare name.
type rolloutDoc struct {
	ID          string             `json:"id"`
	Status      string             `json:"status"`
	Step        int                `json:"step"`
	StepPercent float64            `json:"step_percent"`
	Steps       json.RawMessage    `json:"steps"`
	Weights     map[string]float64 `json:"weights"`
	Reason      string             `json:"reason"`
	Hold        string             `json:"hold"`
	Plan        json.RawMessage    `json:"plan"`
	Decisions   []event            `json:"decisions"`
}

// event is what ctl reads of a journal event.
type event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Rollout string    `json:"rollout"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason"`
	Status  string    `json:"status"`
	Step    int       `json:"step"`
}

// planName is the plan's name whether plan is {"name": …} or a string.
func (r *rolloutDoc) planName() string {
	var name string
	if json.Unmarshal(r.Plan, &name) == nil {
		return name
	}
	var p struct{ Name string }
	if json.Unmarshal(r.Plan, &p) == nil {
		return p.Name
	}
	return ""
}

// stepText is "2/5 (5 %)".
func (r *rolloutDoc) stepText() string {
	var n int
	var pcts []float64
	if json.Unmarshal(r.Steps, &pcts) == nil {
		n = len(pcts)
		if r.StepPercent == 0 && r.Step >= 1 && r.Step <= n {
			r.StepPercent = pcts[r.Step-1]
		}
	} else {
		_ = json.Unmarshal(r.Steps, &n)
	}
	s := strconv.Itoa(r.Step)
	if n > 0 {
		s += "/" + strconv.Itoa(n)
	}
	if r.StepPercent > 0 {
		s += " (" + num(r.StepPercent) + " %)"
	}
	return s
}

// num formats a number without trailing zeros.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// dash stands in for an empty field.
func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// weights renders cell → weight sorted by cell: "a=95 b=5".
func weights(w map[string]float64) string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + num(w[k])
	}
	return dash(strings.Join(parts, " "))
}

func newTab(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func writeStatus(w io.Writer, d *admin.StatusDoc) error {
	ready := "not ready"
	if d.Node.Ready {
		ready = "ready"
	}
	fmt.Fprintf(w, "node %s (%s), %s, config generation %d, core %s\n", dash(d.Node.Name), dash(d.Node.Version), ready, d.Node.ConfigGeneration, dash(d.Node.Core))
	if len(d.Members) > 0 {
		fmt.Fprintln(w, "\nMEMBERS")
		tw := newTab(w)
		fmt.Fprintln(tw, "NAME\tADDR\tSTATE\tDECIDER")
		for _, m := range d.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", m.Name, m.Addr, m.State, m.Decider)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nCELLS")
	if err := writeCells(w, d.Cells); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nROLLOUT")
	if d.Rollout == nil {
		_, err := fmt.Fprintln(w, "none")
		return err
	}
	r := d.Rollout
	steps, _ := json.Marshal(r.Steps)
	doc := rolloutDoc{ID: r.ID, Status: r.Status, Step: r.Step, Steps: steps, Weights: r.Weights, Reason: r.Reason, Hold: r.Hold}
	_, err := fmt.Fprintf(w, "%s  plan %s  %s  step %s  weights %s%s\n", r.ID, dash(r.Plan), r.Status, doc.stepText(),
		weights(r.Weights), suffix("  ", strings.Join(nonEmpty(r.Reason, r.Hold), "; ")))
	return err
}

func nonEmpty(s ...string) []string {
	return slices.DeleteFunc(s, func(x string) bool { return x == "" })
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func writeCells(w io.Writer, cells []admin.CellStatus) error {
	var total float64
	for _, c := range cells {
		total += max(c.Weight, 0)
	}
	tw := newTab(w)
	fmt.Fprintln(tw, "NAME\tVERSION\tWEIGHT\tSHARE\tRPS\tP50\tP99\tERRORS\tBURN\tVERDICT\tENDPOINTS UP")
	for _, c := range cells {
		share := 0.0
		if total > 0 {
			share = 100 * max(c.Weight, 0) / total
		}
		up := 0
		for _, e := range c.Endpoints {
			if e.Up {
				up++
			}
		}
		burn := make([]string, len(c.BurnRates))
		for i, b := range c.BurnRates {
			burn[i] = fmt.Sprintf("%s/%s=%.2f", b.SLO, b.Window, b.Rate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%.1f\t%.1fms\t%.1fms\t%.2f%%\t%s\t%s\t%d/%d\n",
			c.Name, dash(c.Version), num(c.Weight), share, c.RPS, c.P50Ms, c.P99Ms, 100*c.ErrorRatio,
			dash(strings.Join(burn, " ")), dash(c.Verdict), up, len(c.Endpoints))
	}
	return tw.Flush()
}

func writeRollout(w io.Writer, r *rolloutDoc) error {
	tw := newTab(w)
	fmt.Fprintf(tw, "ID\t%s\n", r.ID)
	fmt.Fprintf(tw, "PLAN\t%s\n", dash(r.planName()))
	fmt.Fprintf(tw, "STATUS\t%s\n", r.Status)
	fmt.Fprintf(tw, "STEP\t%s\n", r.stepText())
	fmt.Fprintf(tw, "WEIGHTS\t%s\n", weights(r.Weights))
	if r.Reason != "" {
		fmt.Fprintf(tw, "REASON\t%s\n", r.Reason)
	}
	if r.Hold != "" {
		fmt.Fprintf(tw, "HOLD\t%s\n", r.Hold)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nDECISIONS")
	return writeAudit(w, r.Decisions)
}

func writeRollouts(w io.Writer, rs []rolloutDoc) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "ID\tPLAN\tSTATUS\tSTEP\tWEIGHTS")
	for i := range rs {
		r := &rs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, dash(r.planName()), r.Status, r.stepText(), weights(r.Weights))
	}
	return tw.Flush()
}

func writeAudit(w io.Writer, evs []event) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tROLLOUT\tACTION\tSTATUS\tSTEP\tREASON")
	for _, e := range evs {
		t := "—"
		if !e.Time.IsZero() {
			t = e.Time.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, t, dash(e.Actor), dash(e.Rollout),
			e.Action, dash(e.Status), e.Step, e.Reason)
	}
	return tw.Flush()
}

// writeFields prints a JSON object's top-level fields as "key  value"
// lines, for answers ctl has no dedicated table for.
func writeFields(w io.Writer, data []byte) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := newTab(w)
	for _, k := range keys {
		v := string(m[k])
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			v = s
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
	return tw.Flush()
}
