package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// XYChart is a line chart of one metric against one parameter, such as
// requests/s against client connections: the scaling plots of
// bench/README.md ("Scaling"). It shares the percentile plot's geometry,
// colours, title and legend (plot.go).
type XYChart struct {
	Title, XLabel, YLabel string
	// LogX spaces the x axis by decades (1, 10, 100 …), for parameters
	// swept over orders of magnitude. An x of 0 has no logarithm: it is
	// drawn one decade below the smallest positive x and labelled "0".
	LogX   bool
	Series []XYSeries
}

// XYSeries is one line of an XYChart; points are drawn in x order.
type XYSeries struct {
	Name   string
	Points []XYPoint
}

// XYPoint is one measured point.
type XYPoint struct{ X, Y float64 }

const (
	xyMarkerRadius   = 3.5 // the dot drawn at each point
	xyMaxDecadeTicks = 10  // a log axis over more decades labels every n-th
)

// WriteXYSVG draws c as an SVG line chart: one polyline per series with a
// dot and its value at each point (the points are few and each one is a
// measurement, so the value is worth printing), the y axis linear from
// zero.
func WriteXYSVG(w io.Writer, c XYChart) error {
	bw := bufio.NewWriter(w)
	xs := newXScale(c)
	ymax := xyYMax(c.Series)
	innerH := float64(plotH - plotTop - plotBottom)
	yOf := func(v float64) float64 { return plotTop + innerH*(1-v/ymax) }

	plotHeader(bw, c.Title)
	xyAxes(bw, c, xs, yOf, ymax)
	for i, s := range c.Series {
		color := plotColors[i%len(plotColors)]
		xyLine(bw, s, i, color, xs, yOf)
		plotLegend(bw, i, s.Name, color, false)
	}
	return plotFooter(bw)
}

// xScale maps parameter values to x positions.
type xScale struct {
	log      bool
	lo, hi   float64 // linear: the axis range; log: decades (log10)
	zero     bool    // log: some x is 0, drawn at lo
	tickVals []float64
}

func newXScale(c XYChart) xScale {
	minPos, maxX, zero := math.Inf(1), 0.0, false
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.X > 0 {
				minPos = math.Min(minPos, p.X)
			} else if p.X == 0 {
				zero = true
			}
			maxX = math.Max(maxX, p.X)
		}
	}
	if !c.LogX {
		hi := 1.0
		if maxX > 0 {
			hi = niceStep(maxX/plotYTicks) * plotYTicks
		}
		xs := xScale{lo: 0, hi: hi}
		for i := 0; i <= plotYTicks; i++ {
			xs.tickVals = append(xs.tickVals, hi*float64(i)/plotYTicks)
		}
		return xs // negative x, not a parameter this draws, lands left of the axis
	}
	if math.IsInf(minPos, 1) {
		minPos, maxX = 1, 10
	}
	lo := math.Floor(math.Log10(minPos))
	hi := math.Ceil(math.Log10(maxX))
	if zero {
		lo--
	}
	if hi <= lo {
		hi = lo + 1
	}
	xs := xScale{log: true, lo: lo, hi: hi, zero: zero}
	step := math.Max(1, math.Ceil((hi-lo)/xyMaxDecadeTicks))
	for d := lo; d <= hi; d += step {
		if zero && d == lo {
			xs.tickVals = append(xs.tickVals, 0)
			continue
		}
		xs.tickVals = append(xs.tickVals, math.Pow(10, d))
	}
	return xs
}

// pos is v's x position in SVG units.
func (xs xScale) pos(v float64) float64 {
	innerW := float64(plotW - plotLeft - plotRight)
	var f float64
	switch {
	case !xs.log:
		f = (v - xs.lo) / (xs.hi - xs.lo)
	case v <= 0:
		f = 0
	default:
		f = (math.Log10(v) - xs.lo) / (xs.hi - xs.lo)
	}
	return plotLeft + innerW*f
}

// xyYMax is the top of the y axis: the largest value with 5 % headroom for
// the value labels, rounded up to a readable number.
func xyYMax(series []XYSeries) float64 {
	top := 0.0
	for _, s := range series {
		for _, p := range s.Points {
			top = math.Max(top, p.Y)
		}
	}
	if top <= 0 || math.IsNaN(top) || math.IsInf(top, 0) {
		return 1
	}
	return niceStep(top*1.1/plotYTicks) * plotYTicks
}

func xyAxes(w io.Writer, c XYChart, xs xScale, yOf func(float64) float64, ymax float64) {
	x0, x1 := xs.pos(xs.tickVals[0]), float64(plotW-plotRight)
	y0, y1 := yOf(0), yOf(ymax)
	fmt.Fprintf(w, `<g stroke="#999" stroke-width="1">`+"\n")
	for _, v := range xs.tickVals {
		x := xs.pos(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, y0, x, y1)
		fmt.Fprintf(w, `<text class="xtick" x="%.1f" y="%.1f" text-anchor="middle" stroke="none" fill="#333">%s</text>`+"\n", x, y0+18, siLabel(v))
	}
	for i := 0; i <= plotYTicks; i++ {
		v := ymax * float64(i) / plotYTicks
		y := yOf(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(w, `<text class="ytick" x="%.1f" y="%.1f" text-anchor="end" stroke="none" fill="#333">%s</text>`+"\n", x0-6, y+4, siLabel(v))
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x0, y1)
	fmt.Fprintf(w, "</g>\n")
	xl := c.XLabel
	if c.LogX {
		xl += " (log scale)"
	}
	fmt.Fprintf(w, `<text class="xlabel" x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, plotH-20, svgEscape(xl))
	fmt.Fprintf(w, `<text class="ylabel" x="20" y="%.1f" text-anchor="middle" transform="rotate(-90 20 %.1f)">%s</text>`+"\n", (y0+y1)/2, (y0+y1)/2, svgEscape(c.YLabel))
}

func xyLine(w io.Writer, s XYSeries, index int, color string, xs xScale, yOf func(float64) float64) {
	pts := slices.Clone(s.Points)
	slices.SortStableFunc(pts, func(a, b XYPoint) int { return cmp.Compare(a.X, b.X) })
	var b strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", xs.pos(p.X), yOf(p.Y))
	}
	fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="%d" points="%s"/>`+"\n", color, plotStrokeWidth, strings.TrimSpace(b.String()))
	// Odd series label below their points, so that close lines' values
	// do not print over each other.
	dy := -8.0
	if index%2 == 1 {
		dy = 16
	}
	for _, p := range pts {
		x, y := xs.pos(p.X), yOf(p.Y)
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="%g" fill="%s"/>`+"\n", x, y, xyMarkerRadius, color)
		fmt.Fprintf(w, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`+"\n", x, y+dy, color, siLabel(p.Y))
	}
}

// siLabel writes v with at most three significant digits and a k, M or G
// suffix: 9600 → "9.6k", 1e6 → "1M", 26.93 → "26.9".
func siLabel(v float64) string {
	a := math.Abs(v)
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.div {
			return sig3(v/u.div) + u.suffix
		}
	}
	return sig3(v)
}

// sig3 formats v with three significant digits, no trailing zeros.
func sig3(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return trimFloat(v)
	}
	digits := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	if digits < 0 {
		digits = 0
	}
	s := fmt.Sprintf("%.*f", digits, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
