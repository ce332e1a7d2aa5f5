package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes res as the human-readable report of `cellgate bench`.
func WriteText(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("target\t%s\n", res.Target)
	p("load\t%s\n", describeLoad(res))
	p("measured\t%s%s\n", res.Elapsed.Round(time.Millisecond), ifStr(res.Interrupted, " (interrupted)"))
	p("requests\t%d  (%.1f/s)\n", res.Requests, res.RPS)
	p("errors\t%d  (%s)\n", res.Errors, percent(res.Errors, res.Requests))
	if res.StaleRetries > 0 {
		p("resent\t%d  (idempotent requests whose idle keep-alive connection the server had closed)\n", res.StaleRetries)
	}
	p("\n")
	title := "latency"
	if res.Mode == ModeOpen {
		title = "latency from intended send time (corrected for coordinated omission)"
	}
	p("%s\n", title)
	writeSummary(tw, "", res.Latency)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if u := res.Uncorrected; u != nil {
		fmt.Fprintf(w, "  uncorrected, from actual send: p50 %s  p99 %s  max %s\n", fmtDur(u.P50), fmtDur(u.P99), fmtDur(u.Max))
	}
	writeDistribution(w, res.Distribution)
	writeCells(w, res.Cells)
	writeCauses(w, res.ErrorsBy)
	return nil
}

func describeLoad(res *Result) string {
	var b strings.Builder
	if res.Mode == ModeOpen {
		fmt.Fprintf(&b, "open loop at %g req/s over %d connections", res.Rate, res.Connections)
	} else {
		fmt.Fprintf(&b, "closed loop, %d connections", res.Connections)
	}
	if res.Keys > 0 {
		fmt.Fprintf(&b, ", %d keys (%s)", res.Keys, res.KeyDist)
	}
	return b.String()
}

func writeSummary(tw io.Writer, indent string, s Summary) {
	rows := []struct {
		name string
		v    time.Duration
	}{{"p50", s.P50}, {"p90", s.P90}, {"p99", s.P99}, {"p99.9", s.P999}, {"max", s.Max}}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s  %s\t%s\n", indent, r.name, fmtDur(r.v))
	}
}

// writeDistribution prints the compact table with a bar per row.
func writeDistribution(w io.Writer, rows []Bucket) {
	if len(rows) == 0 {
		return
	}
	var peak int64
	for _, b := range rows {
		peak = max(peak, b.Count)
	}
	fmt.Fprintf(w, "\ndistribution\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	for _, b := range rows {
		bar := strings.Repeat("#", int(30*b.Count/max(peak, 1)))
		fmt.Fprintf(tw, "  ≤ %s\t%d\t%.3f%%\t %s\n", fmtDur(b.UpTo), b.Count, b.Cumulative, bar)
	}
	_ = tw.Flush()
}

func writeCells(w io.Writer, cells []CellResult) {
	if len(cells) == 0 {
		return
	}
	fmt.Fprintf(w, "\ncells (%s)\n", HeaderCell)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  cell\trequests\tshare\terrors\tp50\tp99\n")
	for _, c := range cells {
		name := c.Cell
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.1f%%\t%d\t%s\t%s\n", name, c.Requests, c.Share, c.Errors, fmtDur(c.P50), fmtDur(c.P99))
	}
	_ = tw.Flush()
}

func writeCauses(w io.Writer, causes map[string]int64) {
	if len(causes) == 0 {
		return
	}
	names := make([]string, 0, len(causes))
	for k := range causes {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if causes[names[i]] != causes[names[j]] {
			return causes[names[i]] > causes[names[j]]
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(w, "\nerrors by cause\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%d\n", n, causes[n])
	}
	_ = tw.Flush()
}

// WriteJSON writes v (a *Result or *CompareResult) as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// fmtDur prints a latency with three significant digits in a unit that
// suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	case d < 100*time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	default:
		return fmt.Sprintf("%.0fs", d.Seconds())
	}
}

func percent(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func ifStr(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}
