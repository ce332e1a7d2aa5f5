package admin

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// Tokens is an immutable set of named bearer tokens, as read from
// admin.token_file. A nil or empty *Tokens means "no token configured".
type Tokens struct {
	entries []tokenEntry
	// compare is the byte comparison used by Match; nil is
	// subtle.ConstantTimeCompare. Tests inject a counting wrapper.
	compare func(a, b []byte) int
}

// tokenEntry keeps a token's SHA-256, not the token: comparing fixed-size
// digests means the constant-time compare never returns early on a length
// mismatch, so the token's length does not leak through timing either.
type tokenEntry struct {
	name   string
	digest [sha256.Size]byte
}

// defaultTokenName names a bare token line.
const defaultTokenName = "admin"

// LoadTokens reads a token file; see ParseTokens for the format.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	defer f.Close()
	return ParseTokens(f, path)
}

// ParseTokens reads tokens one per line, as "name:token" or a bare
// "token" (named "admin"). Blank lines and lines starting with # are
// skipped; surrounding white space is trimmed. Errors carry file:line.
// A file with no token at all is an error: an empty token file would
// silently turn authentication off.
func ParseTokens(r io.Reader, file string) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			// Editors on Windows start UTF-8 files with a byte order mark;
			// it is not part of the first token's name (or the token).
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, tok, ok := strings.Cut(line, ":")
		if !ok {
			name, tok = defaultTokenName, line
		}
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch {
		case name == "" || tok == "":
			return nil, fmt.Errorf("%s:%d: empty token name or token", file, n)
		case strings.ContainsAny(tok, " \t"):
			return nil, fmt.Errorf("%s:%d: token %q contains white space", file, n, name)
		case names[name] != 0:
			return nil, fmt.Errorf("%s:%d: token name %q already used on line %d", file, n, name, names[name])
		}
		names[name] = n
		t.entries = append(t.entries, tokenEntry{name: name, digest: sha256.Sum256([]byte(tok))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("%s: no token in file", file)
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Match returns the name of the token equal to tok. It compares against
// every token, in constant time each, without stopping at a match, so the
// time taken says nothing about which token (if any) matched.
func (t *Tokens) Match(tok string) (name string, ok bool) {
	if t == nil {
		return "", false
	}
	cmp := t.compare
	if cmp == nil {
		cmp = defaultCompare()
	}
	d := sha256.Sum256([]byte(tok))
	for i := range t.entries {
		if cmp(d[:], t.entries[i].digest[:]) == 1 && !ok {
			name, ok = t.entries[i].name, true
		}
	}
	return name, ok
}

// defaultCompare is the comparison Match uses unless a test injects one.
func defaultCompare() func(a, b []byte) int { return subtle.ConstantTimeCompare }

// Auth failures, mapped to 401 and 403 by authorize.
var (
	errNoToken     = errors.New(`missing "Authorization: Bearer <token>" header`)
	errBadToken    = errors.New("invalid token")
	errNotLoopback = errors.New("no admin token is configured and the admin listener is not on loopback: mutations are refused; set admin.token_file or bind admin.addr to 127.0.0.1")
)

const (
	// loopbackActor journals mutations accepted without a token.
	loopbackActor   = "admin:loopback"
	bearerPrefixLen = len("Bearer ")
)

// authorize decides whether a mutation may proceed and returns the actor
// to journal it under. tokens may be nil (no token configured); loopback
// says whether the admin listener is bound to a loopback address.
func authorize(r *http.Request, tokens *Tokens, loopback bool) (actor string, err *Error) {
	if tokens.Len() == 0 {
		if !loopback {
			return "", &Error{Status: http.StatusForbidden, Code: CodeForbidden, Msg: errNotLoopback.Error()}
		}
		return loopbackActor, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Msg: errNoToken.Error()}
	}
	// RFC 9110 §11.1: the auth scheme is case-insensitive.
	if len(h) < bearerPrefixLen || !strings.EqualFold(h[:bearerPrefixLen], "Bearer ") {
		return "", &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Msg: errNoToken.Error()}
	}
	name, ok := tokens.Match(strings.TrimSpace(h[bearerPrefixLen:]))
	if !ok {
		return "", &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Msg: errBadToken.Error()}
	}
	return "admin:" + name, nil
}

// isLoopbackAddr reports whether a listen address (host:port, or a bare
// host) names only loopback: 127.0.0.0/8, ::1 or "localhost". A wildcard
// or empty host ("":9901, 0.0.0.0, ::) is not loopback.
func isLoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
