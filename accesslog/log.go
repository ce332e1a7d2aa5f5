package accesslog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what the log writes and where; every field may change while it
// runs (Configure).
type Config struct {
	// Path is the destination: "stdout", "stderr" or a file, opened for
	// appending and reopened by Reopen. Empty: the log is off and the data
	// plane does not even fill entries.
	Path string
	// Sample is the share of requests logged, 0 to 1; errors (a 5xx, or any
	// answer the proxy made itself) are always logged. 1: every request.
	Sample float64
	// Query keeps the query string in the logged path. Off by default:
	// queries carry personal data (emails, tokens, ids).
	Query bool
	// Secret keys the HMAC of sticky keys. Nodes that share it log the same
	// hash for the same key. Empty: a random secret per process.
	Secret []byte
}

// DefaultBuffer is the number of entries in flight between the data plane
// and the writer: at 100 000 requests a second, 40 ms of lines, enough to
// ride out a slow write while holding ~2 MiB (4096 entries of entrySlab
// bytes, allocated when the log is first turned on).
const DefaultBuffer = 4096

// settings is a Config compiled for the request path and the writer,
// replaced whole.
type settings struct {
	on        bool
	all       bool   // sample = 1
	threshold uint64 // a request is sampled when its random draw is below
	query     bool
	secret    []byte
	cfg       Config // as configured, without the secret
}

// dest is the open destination, replaced whole by Configure and Reopen;
// the writer loads it per batch, so a write that never returns holds up
// the writer alone, never a reload.
type dest struct {
	path   string
	w      io.Writer
	closer io.Closer // nil for the standard streams
}

// Log is an access log: Begin and Publish on the request path, a writer
// goroutine behind them. Build it with New, stop it with Close.
type Log struct {
	set      atomic.Pointer[settings]
	dest     atomic.Pointer[dest]
	rollouts atomic.Pointer[map[string]Rollout]
	free     chan *Entry // entries the data plane may take
	full     chan *Entry // entries waiting for the writer
	dropped  atomic.Uint64
	written  atomic.Uint64
	failed   atomic.Bool // the last write failed (logged once until one succeeds)
	log      *slog.Logger
	done     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	buffer   int       // entries in the pool
	fillOnce sync.Once // the pool is filled when the log is first on

	// mu serialises Configure, Reopen and Close (the swaps of dest).
	mu sync.Mutex
}

// New opens cfg's destination and starts the writer. buffer is the number
// of entries in flight (0: DefaultBuffer); logger receives write failures.
func New(cfg Config, buffer int, logger *slog.Logger) (*Log, error) {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		free: make(chan *Entry, buffer),
		full: make(chan *Entry, buffer),
		log:  logger,
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
	l.buffer = buffer
	if err := l.Configure(cfg); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// Validate reports what is wrong with cfg, all at once.
func (c *Config) Validate() error {
	var errs []error
	if !(c.Sample >= 0 && c.Sample <= 1) {
		errs = append(errs, fmt.Errorf("sample %v: want 0 to 1", c.Sample))
	}
	return errors.Join(errs...)
}

// Configure applies cfg: a new destination is opened (and the old closed)
// when the path changed; sampling and the query rule apply from the next
// request. On error nothing changes.
func (l *Log) Configure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	secret := cfg.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return fmt.Errorf("access log: secret: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.set.Load(); len(cfg.Secret) == 0 && old != nil {
		secret = old.secret // keep the random secret: hashes stay comparable
	}
	if old := l.dest.Load(); old == nil || old.path != cfg.Path {
		d := &dest{path: cfg.Path}
		if cfg.Path != "" {
			var err error
			if d.w, d.closer, err = openSink(cfg.Path); err != nil {
				return err
			}
		}
		l.dest.Store(d)
		if old != nil && old.closer != nil {
			old.closer.Close()
		}
	}
	if cfg.Path != "" {
		l.fillOnce.Do(l.fill)
	}
	s := &settings{on: cfg.Path != "", all: cfg.Sample >= 1, query: cfg.Query, secret: secret, cfg: cfg}
	s.cfg.Secret = nil
	s.threshold = uint64(cfg.Sample * math.MaxUint64)
	l.set.Store(s)
	return nil
}

// fill puts the pool's entries in the free queue, their buffers cut from
// one slab each so the first requests do not grow them one by one.
func (l *Log) fill() {
	for range l.buffer {
		e := newEntry()
		l.free <- e
	}
}

// Reopen closes the destination file and opens the same path again, so
// lines go to a new file after logrotate moved the old one (SIGUSR1). The
// standard streams are left alone.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.dest.Load()
	if old == nil || old.closer == nil {
		return nil
	}
	w, c, err := openSink(old.path)
	if err != nil {
		return err // keep writing to the old file rather than nowhere
	}
	l.dest.Store(&dest{path: old.path, w: w, closer: c})
	old.closer.Close()
	return nil
}

// Config returns the config in force, without its secret.
func (l *Log) Config() Config { return l.set.Load().cfg }

// SetRollouts tells the log which rollout holds each cell (by cell name);
// entries name it. The map must not be changed afterwards.
func (l *Log) SetRollouts(m map[string]Rollout) { l.rollouts.Store(&m) }

// On reports whether the log writes at all; when it does not, the data
// plane skips every per-request step.
func (l *Log) On() bool { return l != nil && l.set.Load().on }

// Begin returns an empty entry for a finished request when it is to be
// logged: the log is on and the request is an error or drawn by the
// sample (draw is a uniform random value). It returns nil otherwise, and
// when every entry is in flight — then the line is counted as dropped.
// The caller fills the entry and must pass it to Publish.
func (l *Log) Begin(isErr bool, draw uint64) *Entry {
	s := l.set.Load()
	if !s.on || !(isErr || s.all || draw < s.threshold) {
		return nil
	}
	select {
	case e := <-l.free:
		return e
	default:
		l.dropped.Add(1)
		return nil
	}
}

// Publish hands a filled entry to the writer. It never blocks: there are
// as many slots in the queue as entries.
func (l *Log) Publish(e *Entry) { l.full <- e }

// Dropped is the number of lines dropped because the buffer was full
// (cellgate_access_log_dropped_total).
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is the number of lines written.
func (l *Log) Written() uint64 { return l.written.Load() }

// closeWait bounds how long Close waits for the writer to write what was
// published: a destination whose write never returns must not hold up a
// node's shutdown.
const closeWait = 2 * time.Second

// Close stops the writer after it has written what was published (waiting
// at most closeWait), then closes the destination file, which also frees
// a writer stuck in a write to a pipe.
func (l *Log) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
		l.log.Warn("access log writer still writing at close; lines in flight are lost")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.dest.Swap(&dest{}); d != nil && d.closer != nil {
		return d.closer.Close()
	}
	return nil
}
