package testwait

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestForWaitsForTheCondition: For returns once the condition holds, having
// called it until then.
func TestForWaitsForTheCondition(t *testing.T) {
	var calls atomic.Int32
	For(t, 30*time.Second, "the fifth call", func() bool { return calls.Add(1) >= 5 })
	if n := calls.Load(); n != 5 {
		t.Fatalf("cond called %d times, want 5", n)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = "fatal: " + format
	panic(r)
}

// TestForFailsAfterTheTimeout: a condition that never holds fails the test
// through Fatalf once the timeout has passed, naming what was awaited.
func TestForFailsAfterTheTimeout(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != any(r) {
				panic(p)
			}
		}()
		For(r, 10*time.Millisecond, "never", func() bool { return false })
	}()
	if !strings.HasPrefix(r.msg, "fatal: timed out") {
		t.Fatalf("For returned without failing the test (message %q)", r.msg)
	}
}

// TestOnlyTestsImport: no non-test file in the module imports this
// package or another test helper (internal/test*: testcert), whose
// failures go to a testing.TB.
func TestOnlyTestsImport(t *testing.T) {
	const helpers = "github.com/cellgate/cellgate/internal/test"
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); strings.HasPrefix(p, helpers) {
				t.Errorf("%s imports %s; only tests may", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
