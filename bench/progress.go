package bench

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressLine redraws one terminal line per interval with the rate, the
// errors and the p99 so far. It is only used when stderr is a terminal, so
// logs and pipes never see carriage returns.
type progressLine struct {
	w     io.Writer
	label string
	reqs  int64
	errs  int64
	drawn bool
}

// Observe has the shape of Hooks.OnInterval.
func (p *progressLine) Observe(iv Interval) {
	p.reqs += iv.Requests
	p.errs += iv.Errors
	rate := 0.0
	if iv.Length > 0 {
		rate = float64(iv.Requests) / iv.Length.Seconds()
	}
	fmt.Fprintf(p.w, "\r\033[K%s%6.1fs  %8.0f req/s  errors %d (%s)  p99 %s",
		p.label, iv.Elapsed.Seconds(), rate, p.errs, percent(p.errs, p.reqs), fmtDur(time.Duration(iv.Total.ValueAtPercentile(99))))
	p.drawn = true
}

// clear erases the line before the report is printed.
func (p *progressLine) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
