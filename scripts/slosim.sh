#!/usr/bin/env bash
# slosim.sh — the full SLO false-revert simulation (slo/README.md): 1000
# rollouts of healthy canaries judged every second (and on every alarm) for
# ten minutes, at most 1 % may be called degraded or failing; then 100 on a
# 5-node fleet, where a rollout counts when any node says so (a fleet
# rollout costs five times as much; the 1000-rollout fleet figure is in
# slo/README.md). It runs without the race detector
# (which slows a rollout to seconds; under -race the suite runs 2 to check
# the path) and prints the measured rate, so CI output carries it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! go test -count=1 -timeout 15m -v -run '^TestSimHealthyCanaries$' ./slo -args -slo.full >"$out" 2>&1; then
	cat "$out"
	exit 1
fi
if ! go test -count=1 -timeout 15m -v -run '^TestSimHealthyFleet$' ./slo -args -slo.fleetn 100 >>"$out" 2>&1; then
	cat "$out"
	exit 1
fi
echo "== SLO false-revert simulation =="
grep -E 'healthy canaries (on a 5-node fleet )?judged|^ok' "$out" | sed -E 's/^\s+//'
