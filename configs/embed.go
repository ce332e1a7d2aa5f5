package configs

import (
	"embed"
	"io/fs"
)

//go:embed default.toml
var defaultTOML []byte

//go:embed examples/*.toml
var examples embed.FS

// DefaultTOML returns the embedded default config's source.
func DefaultTOML() []byte { return append([]byte(nil), defaultTOML...) }

// LoadDefault parses the embedded default config.
func LoadDefault() (*Config, error) { return Parse(defaultTOML, "default.toml (embedded)") }

// Examples returns the embedded example configs, one per release pattern,
// by file name (e.g. "canary.toml").
func Examples() map[string][]byte {
	out := map[string][]byte{}
	_ = fs.WalkDir(examples, "examples", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := examples.ReadFile(path)
			out[d.Name()] = b
		}
		return nil
	})
	return out
}

//go:embed grafana-dashboard.json
var dashboard []byte

// GrafanaDashboard returns the Grafana dashboard JSON (per-cell rate, error
// ratio, p50/p99, weights, burn rates, rollout step and state).
func GrafanaDashboard() []byte { return append([]byte(nil), dashboard...) }
