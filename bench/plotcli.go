package bench

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

const plotUsageText = `usage: cellgate bench plot -in FILE.csv -x COL -y COL[,COL…] [flags] -o FILE.svg

Draws a line chart (SVG) of one or more metric columns against a parameter
column of a CSV table with a header row, such as bench/scaling.sh's
scaling.csv. Rows with the same x are one point: the median of their
values (several reps). Empty cells are skipped.

flags:
`

// whereFlags collects repeated -where COL=VALUE filters.
type whereFlags [][2]string

func (f *whereFlags) String() string { return fmt.Sprint(*f) }

func (f *whereFlags) Set(v string) error {
	col, val, ok := strings.Cut(v, "=")
	if !ok || col == "" {
		return fmt.Errorf("where %q: want COLUMN=VALUE", v)
	}
	*f = append(*f, [2]string{col, val})
	return nil
}

// SeriesQuery selects the points of an XYChart from a table: x and each y
// are column names; Where keeps only the rows whose columns hold the given
// values; Scale multiplies every y (e.g. 1/1024 for KiB → MiB).
type SeriesQuery struct {
	X     string
	Y     []string
	Where [][2]string
	Scale float64
}

// ReadSeriesCSV reads a CSV table with a header row and returns one series
// per q.Y column, named after it. Rows with the same x are one point, the
// median of their y values; a row whose x or y does not parse as a number
// is skipped for that series.
func ReadSeriesCSV(r io.Reader, q SeriesQuery) ([]XYSeries, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	header = slices.Clone(header)
	col := func(name string) (int, error) {
		if i := slices.Index(header, name); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("no column %q (have %s)", name, strings.Join(header, ", "))
	}
	xi, err := col(q.X)
	if err != nil {
		return nil, err
	}
	var errs []error
	yi := make([]int, len(q.Y))
	for i, name := range q.Y {
		if yi[i], err = col(name); err != nil {
			errs = append(errs, err)
		}
	}
	wi := make([]int, len(q.Where))
	for i, w := range q.Where {
		if wi[i], err = col(w[0]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	scale := q.Scale
	if scale == 0 {
		scale = 1
	}
	values := make([]map[float64][]float64, len(q.Y))
	for i := range values {
		values[i] = map[float64][]float64{}
	}
	field := func(rec []string, i int) string {
		if i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read row %d: %w", line, err)
		}
		keep := true
		for i, w := range q.Where {
			keep = keep && field(rec, wi[i]) == w[1]
		}
		x, xerr := strconv.ParseFloat(field(rec, xi), 64)
		if !keep || xerr != nil || !finite(x) {
			continue
		}
		for i := range q.Y {
			y, err := strconv.ParseFloat(field(rec, yi[i]), 64)
			if err == nil && finite(y) {
				values[i][x] = append(values[i][x], y*scale)
			}
		}
	}
	series := make([]XYSeries, len(q.Y))
	for i, name := range q.Y {
		series[i].Name = name
		for x, ys := range values[i] {
			series[i].Points = append(series[i].Points, XYPoint{X: x, Y: median(ys)})
		}
		slices.SortFunc(series[i].Points, func(a, b XYPoint) int { return compareFloat(a.X, b.X) })
	}
	return series, nil
}

func finite(v float64) bool { return v-v == 0 }

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// plotMain is `cellgate bench plot`.
func plotMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cellgate bench plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, plotUsageText)
		fs.PrintDefaults()
	}
	var (
		in, out, ys, names string
		q                  SeriesQuery
		where              whereFlags
		c                  XYChart
	)
	fs.StringVar(&in, "in", "", "CSV table with a header row (`FILE`; - for stdin)")
	fs.StringVar(&out, "o", "", "write the SVG to `FILE` (- for stdout)")
	fs.StringVar(&q.X, "x", "", "parameter column (x axis)")
	fs.StringVar(&ys, "y", "", "metric column(s), comma-separated: one line each")
	fs.StringVar(&names, "names", "", "legend names for the -y columns, comma-separated (default: the column names)")
	fs.Var(&where, "where", "keep rows whose `COL=VALUE` (repeatable)")
	fs.Float64Var(&q.Scale, "yscale", 1, "multiply every y by this (e.g. 0.0009765625 for KiB → MiB)")
	fs.BoolVar(&c.LogX, "logx", false, "logarithmic x axis (an x of 0 is drawn one decade below the smallest)")
	fs.StringVar(&c.Title, "title", "", "chart title (default: Y against X)")
	fs.StringVar(&c.XLabel, "xlabel", "", "x axis label (default: the -x column)")
	fs.StringVar(&c.YLabel, "ylabel", "", "y axis label (default: the -y columns)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	var errs []error
	if in == "" {
		errs = append(errs, errors.New("-in: missing"))
	}
	if out == "" {
		errs = append(errs, errors.New("-o: missing"))
	}
	if q.X == "" {
		errs = append(errs, errors.New("-x: missing"))
	}
	if ys != "" {
		q.Y = strings.Split(ys, ",")
	}
	if len(q.Y) == 0 || slices.Contains(q.Y, "") {
		errs = append(errs, fmt.Errorf("-y %q: want one or more column names, comma-separated", ys))
	}
	var legend []string
	if names != "" {
		if legend = strings.Split(names, ","); len(legend) != len(q.Y) {
			errs = append(errs, fmt.Errorf("-names: %d names for %d -y columns", len(legend), len(q.Y)))
		}
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "cellgate bench plot: %v\n", err)
		return exitUsage
	}
	q.Where = where
	if err := runPlot(in, out, q, legend, c, stdout); err != nil {
		fmt.Fprintf(stderr, "cellgate bench plot: %v\n", err)
		return exitFail
	}
	return exitOK
}

func runPlot(in, out string, q SeriesQuery, legend []string, c XYChart, stdout io.Writer) error {
	r := io.Reader(os.Stdin)
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fmt.Errorf("open table: %w", err)
		}
		defer f.Close()
		r = f
	}
	series, err := ReadSeriesCSV(r, q)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	points := 0
	for i := range series {
		points += len(series[i].Points)
		if legend != nil {
			series[i].Name = legend[i]
		}
	}
	if points == 0 {
		return fmt.Errorf("%s: no row matched (x %s, y %s, where %v)", in, q.X, strings.Join(q.Y, ","), q.Where)
	}
	c.Series = series
	if c.XLabel == "" {
		c.XLabel = q.X
	}
	if c.YLabel == "" {
		c.YLabel = strings.Join(q.Y, ", ")
	}
	if c.Title == "" {
		c.Title = c.YLabel + " against " + q.X
	}
	if out == "-" {
		return WriteXYSVG(stdout, c)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create plot: %w", err)
	}
	if err := WriteXYSVG(f, c); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close plot: %w", err)
	}
	return nil
}
