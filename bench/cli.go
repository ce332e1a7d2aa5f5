package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit codes of Main.
const (
	exitOK    = 0
	exitFail  = 1 // the run could not be made or its output not written
	exitUsage = 2 // bad flags or arguments, like the flag package's own
)

const usageText = `usage: cellgate bench [flags] URL
       cellgate bench -compare [flags] URL_A URL_B [URL…]
       cellgate bench plot -in FILE.csv -x COL -y COL[,COL…] -o FILE.svg  (-h for its flags)

Open loop at a fixed rate (-rate N), latencies measured from each request's
intended send time; or closed loop (-rate 0) over -c connections.
Compare mode runs the targets interleaved in -rounds rounds and prints the
ratios to the first target (median over rounds).

flags:
`

// options are the parsed command line.
type options struct {
	cfg     Config
	output  string
	hlog    string
	plot    string
	compare bool
	rounds  int
	urls    []string
}

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	return nil
}

// parseArgs parses args (without the "bench" word). Flags and URLs may be
// interleaved. Errors are usage errors.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{cfg: DefaultConfig()}
	headers := headerFlags{}
	fs := flag.NewFlagSet("cellgate bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	c := &o.cfg
	fs.Float64Var(&c.Rate, "rate", 0, "open-loop rate in requests/s over all connections; 0 = closed loop")
	fs.IntVar(&c.Connections, "c", c.Connections, "connections (open loop: the most requests in flight)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time (per target and round in compare mode)")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before measuring, not recorded")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "per-request timeout")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "histogram interval for -hlog and the progress line")
	fs.StringVar(&c.Method, "method", c.Method, "HTTP method")
	fs.Var(headers, "H", "request header \"Name: value\" (repeatable)")
	fs.IntVar(&c.Keys, "keys", 0, "distinct keys sent in -key-header; 0 = no key header")
	fs.StringVar(&c.KeyDist, "key-dist", c.KeyDist, "key distribution: uniform, zipf or seq (each key in turn)")
	fs.Float64Var(&c.ZipfS, "zipf-s", c.ZipfS, "zipf exponent (> 1)")
	fs.StringVar(&c.KeyHeader, "key-header", c.KeyHeader, "request header carrying the key")
	fs.StringVar(&c.KeyPrefix, "key-prefix", c.KeyPrefix, "prefix of key values")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the key sequence; 0 = fixed default")
	fs.BoolVar(&c.Insecure, "k", false, "https: do not verify the target's certificate")
	fs.StringVar(&o.output, "o", "text", "output: text or json")
	fs.StringVar(&o.hlog, "hlog", "", "write an HdrHistogram interval log to `FILE`")
	fs.StringVar(&o.plot, "plot", "", "write a percentile-distribution plot to `FILE.svg`")
	fs.BoolVar(&o.compare, "compare", false, "compare the URLs, interleaved in rounds")
	fs.IntVar(&o.rounds, "rounds", 3, "compare mode: rounds per target")

	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.urls = append(o.urls, args[0])
		args = args[1:]
	}
	c.Headers = headers
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// validate checks what the flag package cannot, all problems at once.
func (o *options) validate() error {
	var errs []error
	switch o.output {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("-o %q: want text or json", o.output))
	}
	if o.cfg.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration %v: must be positive", o.cfg.Duration))
	}
	if o.compare {
		if o.rounds < 1 {
			errs = append(errs, fmt.Errorf("-rounds %d: need at least 1", o.rounds))
		}
		cc := CompareConfig{Config: o.cfg, Targets: o.urls, Rounds: o.rounds}
		if err := cc.Validate(); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	switch len(o.urls) {
	case 0:
		errs = append(errs, errors.New("missing target URL"))
	case 1:
		o.cfg.URL = o.urls[0]
		if err := o.cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("%d URLs given: one target, or -compare for several", len(o.urls)))
	}
	return errors.Join(errs...)
}

// Main is `cellgate bench`: it parses args (the words after "bench"), runs
// the load, writes the report to stdout and returns the exit code: 0 on
// success, 1 when the run failed or got no response at all, 2 for usage
// errors. Ctrl-C (SIGINT) or SIGTERM stops the run and reports what was
// measured so far.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return MainContext(ctx, args, stdout, stderr)
}

// MainContext is Main with the caller's context instead of signal handling.
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "plot" {
		return plotMain(args[1:], stdout, stderr)
	}
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", err)
		fmt.Fprintf(stderr, "run 'cellgate bench -h' for usage\n")
		return exitUsage
	}
	if o.compare {
		return runCompareCLI(ctx, o, stdout, stderr)
	}
	return runSingleCLI(ctx, o, stdout, stderr)
}

func runSingleCLI(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	sinks, err := newSinks(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", err)
		return exitFail
	}
	res, err := Run(ctx, o.cfg, Hooks{OnInterval: sinks.observe})
	sinks.progressDone()
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", err)
		return exitFail
	}
	warnBehind(stderr, res)
	var werr error
	if o.output == "json" {
		werr = WriteJSON(stdout, res)
	} else {
		werr = WriteText(stdout, res)
	}
	series := []Series{{Name: "corrected: " + res.Target, Hist: res.Histogram}}
	if res.Mode == ModeOpen {
		series = append(series, Series{Name: "uncorrected (from actual send)", Hist: res.UncorrectedHistogram, Dashed: true})
	}
	werr = errors.Join(werr, sinks.close(o, "latency by percentile", series))
	if werr != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", werr)
		return exitFail
	}
	if res.Requests > 0 && len(res.Status) == 0 {
		fmt.Fprintf(stderr, "cellgate bench: no response from %s\n", res.Target)
		return exitFail
	}
	return exitOK
}

func runCompareCLI(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	sinks, err := newSinks(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", err)
		return exitFail
	}
	cc := CompareConfig{Config: o.cfg, Targets: o.urls, Rounds: o.rounds}
	hooks := CompareHooks{
		Run: Hooks{OnInterval: sinks.observe},
		OnRun: func(round, target int, url string) {
			sinks.setRun(fmt.Sprintf("round %d/%d %s ", round+1, o.rounds, targetLetter(target)), targetLetter(target))
		},
	}
	cr, err := RunCompare(ctx, cc, hooks)
	sinks.progressDone()
	if err != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", err)
		return exitFail
	}
	var werr error
	if o.output == "json" {
		werr = WriteJSON(stdout, cr)
	} else {
		werr = WriteCompareText(stdout, cr)
	}
	series := make([]Series, 0, len(cr.Targets))
	for i, t := range cr.Targets {
		series = append(series, Series{Name: targetLetter(i) + " " + t.Target, Hist: t.Histogram})
	}
	if werr = errors.Join(werr, sinks.close(o, "latency by percentile, all rounds", series)); werr != nil {
		fmt.Fprintf(stderr, "cellgate bench: %v\n", werr)
		return exitFail
	}
	return exitOK
}

// warnBehind says so when an open-loop run could not keep its schedule:
// the latencies then include time spent waiting for a free connection.
func warnBehind(w io.Writer, res *Result) {
	if res.Mode != ModeOpen || res.Elapsed < time.Second || res.Interrupted {
		return
	}
	if res.RPS < 0.95*res.Rate {
		fmt.Fprintf(w, "warning: sent %.0f req/s of the %g asked for; the target or -c %d could not keep up, and latencies include the wait\n",
			res.RPS, res.Rate, res.Connections)
	}
}
