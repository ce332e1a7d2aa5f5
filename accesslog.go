package cellgate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/spans"
)

// accessLogConfig derives the access log's config from [access_log],
// reading the HMAC secret's file. It opens nothing else; CheckPath tells
// whether the destination opens.
func accessLogConfig(cfg *configs.Config) (accesslog.Config, error) {
	a := cfg.AccessLog
	out := accesslog.Config{Path: a.Path, Sample: a.Sample, Query: a.Query}
	if a.SecretFile != "" {
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return out, fmt.Errorf("access_log.secret_file: %w", err)
		}
		if b = bytes.TrimSpace(b); len(b) < 16 {
			return out, fmt.Errorf("access_log.secret_file %s: %d bytes, want at least 16", a.SecretFile, len(b))
		}
		out.Secret = b
	}
	if err := accesslog.CheckPath(a.Path); err != nil {
		return out, fmt.Errorf("access_log.path: %w", err)
	}
	return out, nil
}

// newAccessLog builds the node's access log, off when [access_log] has no
// path; a reload may turn it on, off or elsewhere (Configure).
func (n *Node) newAccessLog(cfg *configs.Config) (*accesslog.Log, error) {
	ac, err := accessLogConfig(cfg)
	if err != nil {
		return nil, err
	}
	return accesslog.New(ac, 0, n.log.With("component", "access_log"))
}

// syncAccessLogRollouts tells the access log which rollout holds each
// cell, for the rollout and step fields of its lines.
func (n *Node) syncAccessLogRollouts() {
	steps := n.Controller().ActiveSteps()
	m := make(map[string]accesslog.Rollout, len(steps))
	for cell, s := range steps {
		m[cell] = accesslog.Rollout{ID: s.ID, Step: s.Step}
	}
	n.alog.SetRollouts(m)
}

// AccessLog is the node's access log.
func (n *Node) AccessLog() *accesslog.Log { return n.alog }

// ReopenLogs opens the access log's file anew (SIGUSR1, after logrotate
// moved it).
func (n *Node) ReopenLogs() error {
	if err := n.alog.Reopen(); err != nil {
		return fmt.Errorf("reopen access log: %w", err)
	}
	return nil
}

// newSpans builds the span exporter when [tracing] names a collector
// (nil otherwise).
func (n *Node) newSpans(cfg *configs.Config) (*spans.Exporter, error) {
	if cfg.Tracing.OTLPEndpoint == "" {
		return nil, nil
	}
	x, err := spans.New(spans.Config{Endpoint: cfg.Tracing.OTLPEndpoint, Node: n.name}, n.log.With("component", "spans"))
	if err != nil {
		return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
	}
	return x, nil
}

// closeObservers stops the access log and the span exporter of a node
// that failed to build.
func (n *Node) closeObservers() {
	n.alog.Close()
	if n.spans != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.spans.Close(ctx)
	}
}
