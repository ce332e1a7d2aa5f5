package ctl

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// tokenEnv names the environment variable holding the bearer token.
const tokenEnv = "CELLGATE_TOKEN"

// loadToken returns the token to send: the first token of -token-file
// (same format as admin.token_file: "name:token" or "token" per line,
// # comments), else $CELLGATE_TOKEN, else "".
func loadToken(file string, getenv func(string) string) (string, error) {
	if file == "" {
		return strings.TrimSpace(getenv(tokenEnv)), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, tok, ok := strings.Cut(line, ":"); ok {
			line = strings.TrimSpace(tok)
		}
		return line, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("token file %s: %w", file, err)
	}
	return "", fmt.Errorf("token file %s: no token in file", file)
}
