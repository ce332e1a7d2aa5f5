package cellgate_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// acceptFailsListener fails every Accept with errBrokenAccept, as a listener
// whose socket broke does.
type acceptFailsListener struct{ net.Listener }

var errBrokenAccept = errors.New("accept: socket broke")

func (acceptFailsListener) Accept() (net.Conn, error) { return nil, errBrokenAccept }

// syncBuffer is a log sink safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAdminServeErrorIsReported: when the admin server stops serving on
// its own (its listener broke), the node logs it at once and Shutdown
// returns the error, instead of both vanishing.
func TestAdminServeErrorIsReported(t *testing.T) {
	cell, err := democell.Start("stable", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cell.Close() })
	text := testtoml.Head("admin-err", filepath.Join(t.TempDir(), "journal.db")) + testtoml.Cell("stable", "v1", 100, cell.Addr())
	cfg, err := configs.Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	node, err := cellgate.New(cfg, cellgate.Options{
		AdminListener: acceptFailsListener{ln},
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the admin failure in the log", func() bool {
		return strings.Contains(logs.String(), "admin server stopped")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Shutdown(ctx); !errors.Is(err, errBrokenAccept) {
		t.Fatalf("Shutdown = %v, want the admin server's %v", err, errBrokenAccept)
	}
}
