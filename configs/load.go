package configs

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a config, located at a line.
type Problem struct {
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key path, e.g. "cell.1.weight"
	Msg  string
}

// Error lists every problem found in one file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String(e.File))
	}
	return b.String()
}

// String formats the problem as "file:line: key: message".
func (p Problem) String(file string) string {
	if file == "" {
		file = "config"
	}
	loc := file
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", file, p.Line)
	}
	if p.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes src strictly over the defaults and validates the result.
// file names the source in error messages. The error, if any, is an *Error
// listing every problem with its line.
func Parse(src []byte, file string) (*Config, error) {
	cfg := Default()
	cfg.File = file
	text := string(src)
	md, err := toml.Decode(text, &cfg)
	if err != nil {
		return nil, &Error{File: file, Problems: []Problem{decodeProblem(err)}}
	}
	loc := locate(text)
	cfg.loc = loc
	var probs []Problem
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "plan" {
			continue // plans are decoded strictly by the rollout package
		}
		key := k.String()
		probs = append(probs, Problem{Line: loc.line(key), Key: key, Msg: "unknown key"})
	}
	probs = append(probs, cfg.validate(loc)...)
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return nil, &Error{File: file, Problems: probs}
	}
	return &cfg, nil
}

// decodeProblem turns a TOML syntax or type error into a located problem.
func decodeProblem(err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	var ppe *toml.ParseError
	if errors.As(err, &ppe) {
		return Problem{Line: ppe.Position.Line, Key: ppe.LastKey, Msg: ppe.Message}
	}
	// Type mismatches come as "toml: line N (last key "k"): message".
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	var line int
	var key string
	if n, _ := fmt.Sscanf(msg, "line %d (last key %q):", &line, &key); n == 2 {
		if _, rest, ok := strings.Cut(msg, "):"); ok {
			msg = strings.TrimSpace(rest)
		}
	}
	return Problem{Line: line, Key: key, Msg: msg}
}
