// Package configs owns what a cellgate config is: the TOML schema, its
// defaults, strict decoding, and validation that reports every problem at
// once with file:line. It also embeds the default config that `cellgate
// serve` runs without -config, one example config per release pattern, and
// the Grafana dashboard.
//
// Loading follows decode → derive → validate: Decode is strict (an unknown
// key is an error), derivation parses durations, addresses and sticky-key
// sources, and Validate is pure and collects all problems. `cellgate check`
// runs exactly this path without starting anything, and a reload runs it
// before touching the live node, so an invalid file never changes anything.
//
// Package configs imports no other package of cellgate.
package configs
