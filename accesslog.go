package cellgate

import (
	"bytes"
	"fmt"
	"os"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/configs"
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
