package configs

import (
	"fmt"
	"time"
)

// Duration is a TOML string such as "250ms" or "30s". Decoding never fails
// on a bad value: the error is kept and reported by Validate with the key's
// line, so one bad duration does not hide the file's other problems.
type Duration struct {
	time.Duration
	raw string
	err error
}

// D builds a Duration from a time.Duration (for defaults and tests).
func D(d time.Duration) Duration { return Duration{Duration: d, raw: d.String()} }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	d.raw = string(b)
	v, err := time.ParseDuration(d.raw)
	if err != nil {
		d.err = fmt.Errorf("bad duration %q (want e.g. \"250ms\", \"30s\", \"5m\")", d.raw)
		return nil
	}
	if v < 0 {
		d.err = fmt.Errorf("negative duration %q", d.raw)
		return nil
	}
	d.Duration, d.err = v, nil
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }
