package balancer

import "github.com/cespare/xxhash/v2"

// SaltFor is the salt that makes a second, independent assignment from the
// same key hash: feature flags (package flags) pick their variant with
// Salted(keyHash, SaltFor(seed, flagName)) on a table of variants, so a
// user's variant does not depend on its cell or on any other flag's
// variant, while staying a pure function of (seed, key, name, weights) —
// the same on every node and after every restart.
func SaltFor(seed uint64, name string) uint64 {
	return mix64(xxhash.Sum64String(name) ^ mix64(seed^0x666c6167)) // "flag"
}

// Salted derives the key hash of a salted assignment. mix64 is a bijection
// that spreads every bit, so distinct salts give unrelated hashes for the
// same key, and a table picking on them keeps every property Pick has:
// stickiness, monotone moves and exact reverts.
func Salted(keyHash, salt uint64) uint64 { return mix64(keyHash ^ salt) }
