#!/usr/bin/env bash
# fuzz.sh DURATION — run every native fuzz target in the module for DURATION
# each (one at a time: `go test -fuzz` takes a single target). Crashers that
# a run finds are written under testdata/fuzz and become regression tests.
set -euo pipefail
dur="${1:-5s}"
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $t ($dur)"
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
		n=$((n + 1))
	done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n targets, $dur each, no crashers"
