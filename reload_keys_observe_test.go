package cellgate_test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/proxy"
)

// The rows of TestReloadEveryKey for [access_log] (see keyRow).
func init() { keyRows = append(keyRows, observeKeyRows...) }

// accessLogOn is a base that starts the node with its access log in
// e.dir/access.log, every request logged.
func accessLogOn(c *configs.Config, e *keyEnv) {
	c.AccessLog.Path = filepath.Join(e.dir, "access.log")
	c.AccessLog.Sample = 1
}

// waitAccessLine sends GET target until a line of the node's access log
// (at path) satisfies ok, and fails after a deadline that only bounds a
// hang.
func waitAccessLine(t *testing.T, e *keyEnv, path, target, key string, ok func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.getWith(t, target, "X-User-ID", key)
		raw, _ := os.ReadFile(path)
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("access log line %q: %v", sc.Text(), err)
			}
			if ok(m) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line as wanted in %s:\n%s", path, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var observeKeyRows = []keyRow{
	{key: "tracing.otlp_endpoint",
		base: func(c *configs.Config, _ *keyEnv) { c.Tracing.Generate = true },
		edit: func(c *configs.Config, _ *keyEnv) { c.Tracing.OTLPEndpoint = "127.0.0.1:4318" }},
	{key: "tracing.generate", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Tracing.Generate = true },
		check: all(optionIs(func(o proxy.Options) any { return o.Tracing.Generate }, true, "traces are started"), serves)},
	{key: "tracing.sample", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Tracing.Sample = 0.5 },
		check: all(optionIs(func(o proxy.Options) any { return o.Tracing.Sample }, 0.5, "started traces sampled at"), serves)},
	{key: "access_log.path", hot: true,
		edit: func(c *configs.Config, e *keyEnv) { c.AccessLog.Path = filepath.Join(e.dir, "on.log") },
		check: func(t *testing.T, e *keyEnv) {
			waitAccessLine(t, e, filepath.Join(e.dir, "on.log"), "/p", "k", func(m map[string]any) bool { return m["path"] == "/p" })
		}},
	{key: "access_log.format", hot: true, base: accessLogOn,
		edit: func(c *configs.Config, _ *keyEnv) { c.AccessLog.Format = "" }, // empty means json
		check: func(t *testing.T, e *keyEnv) {
			waitAccessLine(t, e, filepath.Join(e.dir, "access.log"), "/f", "k", func(m map[string]any) bool { return m["path"] == "/f" })
		}},
	{key: "access_log.sample", hot: true, base: accessLogOn,
		edit: func(c *configs.Config, _ *keyEnv) { c.AccessLog.Sample = 0.25 },
		check: func(t *testing.T, e *keyEnv) {
			if s := e.node().AccessLog().Config().Sample; s != 0.25 {
				t.Errorf("access log samples %v, want 0.25", s)
			}
		}},
	{key: "access_log.query", hot: true, base: accessLogOn,
		edit: func(c *configs.Config, _ *keyEnv) { c.AccessLog.Query = true },
		check: func(t *testing.T, e *keyEnv) {
			waitAccessLine(t, e, filepath.Join(e.dir, "access.log"), "/q?x=1", "k", func(m map[string]any) bool { return m["path"] == "/q?x=1" })
		}},
	{key: "access_log.secret_file", hot: true,
		base: func(c *configs.Config, e *keyEnv) {
			accessLogOn(c, e)
			c.AccessLog.SecretFile = e.writeFile("old.key", "0123456789abcdef-old")
		},
		edit: func(c *configs.Config, e *keyEnv) {
			c.AccessLog.SecretFile = e.writeFile("new.key", "0123456789abcdef-new\n")
		},
		check: func(t *testing.T, e *keyEnv) {
			mac := hmac.New(sha256.New, []byte("0123456789abcdef-new"))
			mac.Write([]byte("user-7"))
			want := hex.EncodeToString(mac.Sum(nil)[:16])
			waitAccessLine(t, e, filepath.Join(e.dir, "access.log"), "/s", "user-7", func(m map[string]any) bool { return m["key_hmac"] == want })
		}},
}
