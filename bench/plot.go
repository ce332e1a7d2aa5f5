package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Series is one curve of a percentile plot.
type Series struct {
	Name   string
	Hist   *hdrhistogram.Histogram // latencies in ns
	Dashed bool                    // drawn dashed, e.g. the uncorrected curve
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH           = 860, 500
	plotLeft, plotRight    = 80, 30
	plotTop, plotBottom    = 50, 70
	plotNines              = 5    // x axis runs to 99.999 %
	plotStep               = 0.02 // x resolution in nines
	plotYTicks             = 5
	plotStrokeWidth        = 2
	plotLegendLineHeight   = 18
	plotLegendSwatchLength = 24
)

var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WritePlotSVG draws the latency-by-percentile plot HdrHistogram's plotter
// draws: the x axis is logarithmic in 1/(1-p), so 90 %, 99 %, 99.9 % …
// are equally spaced and the tail gets the room it deserves; the y axis is
// latency in ms, linear from zero.
func WritePlotSVG(w io.Writer, title string, series []Series) error {
	bw := bufio.NewWriter(w)
	ymax := plotYMax(series)
	innerW := float64(plotW - plotLeft - plotRight)
	innerH := float64(plotH - plotTop - plotBottom)
	xOf := func(nines float64) float64 { return plotLeft + innerW*nines/plotNines }
	yOf := func(ms float64) float64 { return plotTop + innerH*(1-ms/ymax) }

	plotHeader(bw, title)
	plotAxes(bw, xOf, yOf, ymax)
	for i, s := range series {
		plotCurve(bw, s, plotColors[i%len(plotColors)], xOf, yOf)
		plotLegend(bw, i, s.Name, plotColors[i%len(plotColors)], s.Dashed)
	}
	return plotFooter(bw)
}

// plotHeader opens the SVG document: white background and the title.
func plotHeader(w io.Writer, title string) {
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="28" font-size="16" text-anchor="middle">%s</text>`+"\n", plotW/2, svgEscape(title))
}

// svgEscape makes s safe as SVG character data: markup characters escaped,
// and characters XML 1.0 does not allow (most control characters, invalid
// UTF-8) replaced by U+FFFD, since titles and names come from the command
// line and from table headers.
func svgEscape(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF && r != utf8.RuneError,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return utf8.RuneError
	}, s)
	return html.EscapeString(s)
}

// plotFooter closes the document and flushes it.
func plotFooter(bw *bufio.Writer) error {
	fmt.Fprintf(bw, "</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// plotYMax is the top of the y axis in ms: the largest plotted value,
// rounded up to a readable number.
func plotYMax(series []Series) float64 {
	top := 0.0
	for _, s := range series {
		if s.Hist != nil && s.Hist.TotalCount() > 0 {
			top = math.Max(top, float64(s.Hist.ValueAtPercentile(percentileAt(plotNines)))/1e6)
		}
	}
	if top <= 0 {
		return 1
	}
	return niceStep(top*1.05/plotYTicks) * plotYTicks
}

// niceStep rounds v up to 1, 2, 2.5 or 5 times a power of ten, so that the
// y ticks read 0, 25, 50 … rather than 0, 26, 52 ….
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// percentileAt converts an x position in nines to a percentile.
func percentileAt(nines float64) float64 { return 100 * (1 - math.Pow(10, -nines)) }

func plotAxes(w io.Writer, xOf, yOf func(float64) float64, ymax float64) {
	x0, x1 := xOf(0), xOf(plotNines)
	y0, y1 := yOf(0), yOf(ymax)
	fmt.Fprintf(w, `<g stroke="#999" stroke-width="1">`+"\n")
	labels := []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}
	for n := 0; n <= plotNines; n++ {
		x := xOf(float64(n))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, y0, x, y1)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" stroke="none" fill="#333">%s</text>`+"\n", x, y0+18, labels[n])
	}
	for i := 0; i <= plotYTicks; i++ {
		v := ymax * float64(i) / plotYTicks
		y := yOf(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" stroke="none" fill="#333">%s</text>`+"\n", x0-6, y+4, trimFloat(v))
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x0, y1)
	fmt.Fprintf(w, "</g>\n")
	fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">percentile</text>`+"\n", (x0+x1)/2, plotH-20)
	fmt.Fprintf(w, `<text x="20" y="%.1f" text-anchor="middle" transform="rotate(-90 20 %.1f)">latency (ms)</text>`+"\n", (y0+y1)/2, (y0+y1)/2)
}

func plotCurve(w io.Writer, s Series, color string, xOf, yOf func(float64) float64) {
	if s.Hist == nil || s.Hist.TotalCount() == 0 {
		return
	}
	var pts strings.Builder
	steps := int(math.Round(plotNines / plotStep))
	for i := 0; i <= steps; i++ {
		n := float64(i) * plotStep
		ms := float64(s.Hist.ValueAtPercentile(percentileAt(n))) / 1e6
		fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(n), yOf(ms))
	}
	dash := ""
	if s.Dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="%d"%s points="%s"/>`+"\n", color, plotStrokeWidth, dash, strings.TrimSpace(pts.String()))
}

// plotLegend draws the legend entry of the i-th curve in the top left
// corner of the plot area.
func plotLegend(w io.Writer, i int, name, color string, dashed bool) {
	x := float64(plotLeft + 16)
	y := float64(plotTop + 16 + i*plotLegendLineHeight)
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%d"%s/>`+"\n", x, y-4, x+plotLegendSwatchLength, y-4, color, plotStrokeWidth, dash)
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+plotLegendSwatchLength+6, y, svgEscape(name))
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
