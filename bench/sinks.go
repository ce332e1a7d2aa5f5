package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// sinks are the command line's outputs besides the report: the progress
// line on a terminal, the .hlog file and the SVG plot.
type sinks struct {
	progress *progressLine // nil unless stderr is a terminal
	hlogFile *os.File
	hlog     *HlogWriter
	hlogErr  error
	tag      string
}

// newSinks opens the -hlog file early, so a bad path fails before the run.
func newSinks(o *options, stderr io.Writer) (*sinks, error) {
	s := &sinks{}
	if isTerminal(stderr) {
		s.progress = &progressLine{w: stderr}
	}
	if o.hlog != "" {
		f, err := os.Create(o.hlog)
		if err != nil {
			return nil, fmt.Errorf("open hlog: %w", err)
		}
		s.hlogFile = f
	}
	return s, nil
}

// setRun labels the progress line and tags hlog intervals (compare mode).
func (s *sinks) setRun(label, tag string) {
	if s.progress != nil {
		s.progress.clear()
		s.progress.label = label
		s.progress.reqs, s.progress.errs = 0, 0
	}
	s.tag = tag
	if s.hlog != nil {
		s.hlog.SetTag(tag)
	}
}

// observe is the Hooks.OnInterval of command-line runs.
func (s *sinks) observe(iv Interval) {
	if s.progress != nil {
		s.progress.Observe(iv)
	}
	if s.hlogFile == nil || s.hlogErr != nil {
		return
	}
	if s.hlog == nil {
		// The log starts with the first measured interval, so its
		// timestamps begin at zero.
		s.hlog, s.hlogErr = NewHlogWriter(s.hlogFile, iv.Start)
		if s.hlogErr != nil {
			return
		}
		s.hlog.SetTag(s.tag)
	}
	s.hlog.Observe(iv)
}

func (s *sinks) progressDone() {
	if s.progress != nil {
		s.progress.clear()
	}
}

// close finishes the hlog file and writes the plot.
func (s *sinks) close(o *options, title string, series []Series) error {
	var errs []error
	if s.hlogFile != nil {
		if s.hlog != nil {
			errs = append(errs, s.hlog.Err())
		}
		errs = append(errs, s.hlogErr, s.hlogFile.Close())
	}
	if o.plot != "" {
		errs = append(errs, writePlotFile(o.plot, title, series))
	}
	return errors.Join(errs...)
}

func writePlotFile(path, title string, series []Series) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("open plot: %w", err)
	}
	err = WritePlotSVG(f, title, series)
	return errors.Join(err, f.Close())
}
