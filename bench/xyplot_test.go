package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// svgDoc is the part of an SVG chart the tests read back.
type svgDoc struct {
	XMLName   xml.Name      `xml:"svg"`
	Texts     []svgText     `xml:"text"`
	Polylines []svgPolyline `xml:"polyline"`
	Circles   []svgCircle   `xml:"circle"`
	Groups    []struct {
		Texts []svgText `xml:"text"`
	} `xml:"g"`
}

type svgText struct {
	Class string `xml:"class,attr"`
	X     string `xml:"x,attr"`
	Text  string `xml:",chardata"`
}

type svgPolyline struct {
	Stroke string `xml:"stroke,attr"`
	Points string `xml:"points,attr"`
}

type svgCircle struct {
	CX string `xml:"cx,attr"`
	CY string `xml:"cy,attr"`
}

func parseSVG(t testing.TB, b []byte) svgDoc {
	t.Helper()
	var d svgDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, b)
	}
	return d
}

// texts returns the text of the elements of class (all, if class is "").
func (d svgDoc) texts(class string) []string {
	var out []string
	all := slices.Clone(d.Texts)
	for _, g := range d.Groups {
		all = append(all, g.Texts...)
	}
	for _, tx := range all {
		if class == "" || tx.Class == class {
			out = append(out, tx.Text)
		}
	}
	return out
}

// polylineXs returns the x coordinates of a polyline's points.
func polylineXs(t *testing.T, p svgPolyline) []float64 {
	t.Helper()
	var xs []float64
	for _, pt := range strings.Fields(p.Points) {
		x, _, ok := strings.Cut(pt, ",")
		v, err := strconv.ParseFloat(x, 64)
		if !ok || err != nil {
			t.Fatalf("bad point %q in %q", pt, p.Points)
		}
		xs = append(xs, v)
	}
	return xs
}

func TestWriteXYSVGLogX(t *testing.T) {
	c := XYChart{
		Title: "CPU per request against pins", XLabel: "active pins", YLabel: "µs per request", LogX: true,
		Series: []XYSeries{
			{Name: "cpu", Points: []XYPoint{{1e6, 40.2}, {0, 26.93}, {1e4, 27}}}, // out of order on purpose
			{Name: "other <b>", Points: []XYPoint{{0, 10}, {1e6, 12}}},
		},
	}
	var b bytes.Buffer
	if err := WriteXYSVG(&b, c); err != nil {
		t.Fatal(err)
	}
	d := parseSVG(t, b.Bytes())
	if len(d.Polylines) != 2 {
		t.Fatalf("%d polylines, want one per series (2)", len(d.Polylines))
	}
	if len(d.Circles) != 5 {
		t.Errorf("%d point markers, want 5", len(d.Circles))
	}
	xs := polylineXs(t, d.Polylines[0])
	if len(xs) != 3 {
		t.Fatalf("first series has %d points, want 3", len(xs))
	}
	if !slices.IsSorted(xs) {
		t.Errorf("points not drawn in x order: %v", xs)
	}
	// 0 sits on the y axis, one decade below 10k; the decades are equally
	// spaced, and 1M is at the right edge.
	if xs[0] != plotLeft || xs[2] != plotW-plotRight {
		t.Errorf("x of 0 and 1M = %v, %v; want %d and %d", xs[0], xs[2], plotLeft, plotW-plotRight)
	}
	if step := (xs[2] - xs[1]) / 2; xs[1]-xs[0] < step-0.2 || xs[1]-xs[0] > step+0.2 {
		t.Errorf("x of 10k = %v: 0 → 10k should be one decade like 10k → 100k (%v)", xs[1], step)
	}
	if got, want := d.texts("xtick"), []string{"0", "10k", "100k", "1M"}; !slices.Equal(got, want) {
		t.Errorf("x ticks %q, want %q", got, want)
	}
	if got := d.texts("ytick"); len(got) != plotYTicks+1 || got[0] != "0" || got[len(got)-1] != "50" {
		t.Errorf("y ticks %q, want 0 … 50", got)
	}
	if got, want := d.texts("value"), []string{"26.9", "27", "40.2", "10", "12"}; !slices.Equal(got, want) {
		t.Errorf("value labels %q, want %q", got, want)
	}
	all := strings.Join(d.texts(""), "|")
	for _, want := range []string{c.Title, "active pins (log scale)", "µs per request", "cpu", "other <b>"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in %q", want, all)
		}
	}
}

func TestWriteXYSVGLinear(t *testing.T) {
	c := XYChart{Series: []XYSeries{{Name: "rps", Points: []XYPoint{{1, 100}, {16, 90}, {128, 95}}}}}
	var b bytes.Buffer
	if err := WriteXYSVG(&b, c); err != nil {
		t.Fatal(err)
	}
	d := parseSVG(t, b.Bytes())
	if got, want := d.texts("xtick"), []string{"0", "50", "100", "150", "200", "250"}; !slices.Equal(got, want) {
		t.Errorf("x ticks %q, want %q", got, want)
	}
	xs := polylineXs(t, d.Polylines[0])
	inner := float64(plotW - plotLeft - plotRight)
	if want := plotLeft + inner*128/250; xs[2] < want-0.1 || xs[2] > want+0.1 {
		t.Errorf("x of 128 = %v, want %v on a linear axis", xs[2], want)
	}
}

func TestSILabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 9600: "9.6k", 1e6: "1M", 26.93: "26.9", 23734: "23.7k", 0.5: "0.5", 128: "128", 1.5e9: "1.5G"} {
		if got := siLabel(v); got != want {
			t.Errorf("siLabel(%v) = %q, want %q", v, got, want)
		}
	}
}

const scalingCSV = `sweep,rep,cells,conns,pins,us_per_req,rps,rss_idle_kb
conns,1,1,64,0,25,23000,20480
conns,2,1,64,0,27,25000,
conns,3,1,64,0,35,21000,22528
conns,1,1,9600,0,45,12000,512000
cells,1,16,64,0,26,24000,
pins,1,2,64,1000000,40,15000,
`

func TestReadSeriesCSV(t *testing.T) {
	series, err := ReadSeriesCSV(strings.NewReader(scalingCSV), SeriesQuery{
		X: "conns", Y: []string{"us_per_req", "rss_idle_kb"}, Where: [][2]string{{"sweep", "conns"}}, Scale: 1.0 / 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].Name != "us_per_req" || series[1].Name != "rss_idle_kb" {
		t.Fatalf("series %+v", series)
	}
	// Three reps at 64 connections: the median (27), not the mean (29).
	if got, want := series[0].Points, []XYPoint{{64, 27.0 / 1024}, {9600, 45.0 / 1024}}; !slices.Equal(got, want) {
		t.Errorf("us_per_req points %v, want %v", got, want)
	}
	// The empty cell is skipped: the median of 20 and 22 MiB.
	if got, want := series[1].Points, []XYPoint{{64, 21}, {9600, 500}}; !slices.Equal(got, want) {
		t.Errorf("rss points %v, want %v", got, want)
	}

	_, err = ReadSeriesCSV(strings.NewReader(scalingCSV), SeriesQuery{X: "conns", Y: []string{"nope"}, Where: [][2]string{{"missing", "x"}}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("unknown columns: err = %v, want both named", err)
	}
	if _, err := ReadSeriesCSV(strings.NewReader(""), SeriesQuery{X: "a", Y: []string{"b"}}); err == nil {
		t.Error("empty input: want an error")
	}
}

func TestBenchPlotCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "scaling.csv")
	if err := os.WriteFile(in, []byte(scalingCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cpu.svg")
	var stderr bytes.Buffer
	code := MainContext(context.Background(), []string{"plot", "-in", in, "-x", "conns", "-y", "us_per_req", "-where", "sweep=conns",
		"-logx", "-names", "CPU per request", "-title", "CPU against connections", "-o", out}, io.Discard, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d := parseSVG(t, b)
	if len(d.Polylines) != 1 || len(d.Circles) != 2 {
		t.Errorf("%d lines and %d points, want 1 and 2", len(d.Polylines), len(d.Circles))
	}
	all := strings.Join(d.texts(""), "|")
	for _, want := range []string{"CPU against connections", "CPU per request", "conns (log scale)"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in %q", want, all)
		}
	}

	for name, tc := range map[string]struct {
		args []string
		code int
		msg  string
	}{
		"missing flags":   {[]string{"plot"}, exitUsage, "-in: missing"},
		"names count":     {[]string{"plot", "-in", in, "-x", "conns", "-y", "rps,us_per_req", "-names", "one", "-o", out}, exitUsage, "1 names for 2"},
		"bad where":       {[]string{"plot", "-where", "nocolumn"}, exitUsage, "COLUMN=VALUE"},
		"no rows":         {[]string{"plot", "-in", in, "-x", "conns", "-y", "rps", "-where", "sweep=none", "-o", out}, exitFail, "no row matched"},
		"unknown column":  {[]string{"plot", "-in", in, "-x", "conns", "-y", "nope", "-o", out}, exitFail, `no column "nope"`},
		"missing in file": {[]string{"plot", "-in", filepath.Join(dir, "absent.csv"), "-x", "a", "-y", "b", "-o", out}, exitFail, "open table"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := MainContext(context.Background(), tc.args, io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}
}

// FuzzReadSeriesCSV reads arbitrary tables: it must return series or an
// error, never panic, and whatever it returns must draw as well-formed SVG.
func FuzzReadSeriesCSV(f *testing.F) {
	f.Add(scalingCSV, "conns", "us_per_req,rps", "sweep=conns", true)
	f.Add("x,y\n0,1\n1e300,2\n-5,NaN\n", "x", "y", "", true)
	f.Add("x,y\n1,2\n\"unterminated", "x", "y", "", false)
	f.Add("a\n", "a", "a", "a=", false)
	f.Fuzz(func(t *testing.T, table, x, ys, where string, logx bool) {
		q := SeriesQuery{X: x, Y: strings.Split(ys, ",")}
		if col, val, ok := strings.Cut(where, "="); ok {
			q.Where = [][2]string{{col, val}}
		}
		series, err := ReadSeriesCSV(strings.NewReader(table), q)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteXYSVG(&b, XYChart{Title: table, LogX: logx, Series: series}); err != nil {
			t.Fatal(err)
		}
		var d svgDoc
		if err := xml.Unmarshal(b.Bytes(), &d); err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if len(d.Polylines) != len(series) {
			t.Fatalf("%d polylines for %d series", len(d.Polylines), len(series))
		}
	})
}
