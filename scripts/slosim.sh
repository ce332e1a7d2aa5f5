#!/usr/bin/env bash
# slosim.sh — the SLO judge's simulations (slo/README.md), without the race
# detector (which slows a rollout to seconds; under -race the suite runs a
# couple of each to check the path), printing what they measure so CI
# output carries it:
#   - false reverts: 1000 rollouts of healthy canaries judged every second
#     (and on every alarm) for ten minutes, at most 1 % may be called
#     degraded or failing; then SLOSIM_FLEETN (default 50) on a 5-node
#     fleet, where a rollout counts when any node says so (a fleet rollout
#     costs five single ones, ~1 s of CPU, so make test runs 50 to keep CI
#     inside its budget; `make slosim-fleet` runs the 200 of the figure in
#     slo/README.md);
#   - the reaction table of issue 16 (canary requests served and time to
#     revert, per fault and canary rate, 50 seeds a row) and the
#     fleet-wide burst after a step that must not be blamed on the canary.
# The per-run timeout only catches a hang: the script needs about 270 s of
# CPU (0.2 s per single-node rollout, 1 s per fleet one, 20 s for the
# table and the burst test), but on the shared 2-core box at load average
# 25 the 1000 single-node rollouts alone took 13 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() {
	if ! go test -count=1 -timeout 45m -v "$@" >>"$out" 2>&1; then
		cat "$out"
		exit 1
	fi
}
run -run '^TestSimHealthyCanaries$' ./slo -args -slo.full
run -run '^TestSimHealthyFleet$' ./slo -args -slo.fleetn "${SLOSIM_FLEETN:-50}"
run -run '^(TestSimDecisiveReverts|TestSimBurstAfterStepNotBlamed)$' ./slo
echo "== SLO judge simulations =="
grep -E 'healthy canaries (on a 5-node fleet )?judged|failing verdicts by rule|^\s+\|' "$out" | sed -E 's/^\s+//'
grep -E '^(ok|---)' "$out"
