package accesslog

import (
	"fmt"
	"io"
	"os"
)

// openSink opens the destination a path names: "stdout", "stderr", or a
// file opened for appending (created 0640 if missing). The returned closer
// is nil for the standard streams, which the log never closes.
func openSink(path string) (io.Writer, io.Closer, error) {
	switch path {
	case "stdout":
		return os.Stdout, nil, nil
	case "stderr":
		return os.Stderr, nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("access log: open %s: %w", path, err)
	}
	return f, f, nil
}

// CheckPath reports whether path can be opened as the log's destination,
// without keeping it open: a reload checks before it applies.
func CheckPath(path string) error {
	if path == "" {
		return nil
	}
	_, c, err := openSink(path)
	if c != nil {
		c.Close()
	}
	return err
}
