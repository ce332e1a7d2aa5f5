package ctl

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cellgate/cellgate/flags"
)

// overrideCmd runs `override mint`, which signs an override cookie for a
// tester. It needs no node: the cookie is signed with the fleet's pin
// secret (the file routing.pin_secret_file names), read and trimmed the
// way the node reads it, so any node with that secret honours the cookie
// for requests whose sticky key is -key.
func (c *cmd) overrideCmd(args []string) error {
	if len(args) == 0 || args[0] != "mint" {
		return usagef("usage: cellgate ctl override mint -secret-file F -key K [-ttl D] 'cell=NAME, FLAG=VARIANT'")
	}
	fs := flag.NewFlagSet("override mint", flag.ContinueOnError)
	secretFile := fs.String("secret-file", "", "the file routing.pin_secret_file names")
	key := fs.String("key", "", "the tester's sticky key (e.g. the X-User-ID value)")
	ttl := fs.Duration("ttl", time.Hour, "how long the cookie is honoured")
	pos, err := parseArgs(fs, args[1:], 1, "-secret-file F -key K [-ttl D] 'cell=NAME, FLAG=VARIANT'")
	if err != nil {
		return err
	}
	if *secretFile == "" || *key == "" || *ttl <= 0 {
		return usagef("override mint: want -secret-file, -key and a positive -ttl")
	}
	raw, err := os.ReadFile(*secretFile)
	if err != nil {
		return fmt.Errorf("override mint: %w", err)
	}
	secret := bytes.TrimSpace(raw)
	if len(secret) < 16 {
		return fmt.Errorf("override mint: %s: want at least 16 bytes of secret", *secretFile)
	}
	v, err := flags.NewOverrideCookie(secret).Mint([]byte(*key), pos[0], time.Now().Add(*ttl).Unix())
	if err != nil {
		return fmt.Errorf("override mint: %w", err)
	}
	_, err = fmt.Fprintf(c.stdout, "%s=%s; Path=/; Max-Age=%s; HttpOnly; SameSite=Lax\n",
		flags.OverrideCookieName, v, strconv.FormatInt(int64(ttl.Seconds()), 10))
	return err
}
