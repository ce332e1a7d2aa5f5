#!/usr/bin/env bash
# evidence.sh — run the zero-downtime suite, the graceful handover (and its
# failure, admin ownership and start-failure exits), the fleet restart and the
# crash test once more without the race detector and print the counts they
# measure (go test shows a passing test's log only with -v), so CI output
# carries the figures: requests, failures, resets, kills, acknowledged events,
# cell failover (and the issue-19 outage: one cell's only endpoint killed
# for 4 s), health views, SRV priority/weight and DNS discovery counts,
# revert and weight-convergence times.
# -pgo=off as in make test: cmd/cellgate's default.pgo would compile every
# dependency once more for its test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! go test -count=1 -pgo=off -v -run 'TestZeroDowntime|TestReloadUnderLoadLosesNothing|TestCanaryRevertsOnFault|TestFleetWeightConvergesAndKeysAgree|TestGracefulHandover|TestHandoverAdminAlwaysReady|TestHandoverFailureKeepsServing|TestServeStartFailureExits|TestDrainCutShortExitsZero|TestFleetRestartReappliesNothing|TestCrashRecovery|TestUploadMemory|TestCellFailover|TestCanaryDownIsRolledBack|TestDiscoveryUnderLoad|TestFailoverPanicThreshold|TestHealthViewsSharedByGossip|TestDiscoverySRVPriorityAndWeight|TestEndpointPriorityAndWeight|TestDeadEndpointReadmittedWhenBack|TestUnreachableCellWithoutEvidence' \
	. ./cmd/cellgate ./rollout ./proxy >"$out" 2>&1; then
	cat "$out"
	exit 1
fi
echo "== zero-downtime and crash-safety evidence =="
grep -E '^\s+(zerodowntime|reload_e2e|rollout_e2e|handover|lifecycle|restart_e2e|crash|upload|fleet_e2e|failover_e2e|failover_blackbox_e2e|discovery_e2e|discovery_srv_e2e|healthviews_e2e|tiers|failover)_test\.go:[0-9]+: ' "$out" | sed -E 's/^\s+//'
grep -E '^(ok|---)' "$out"
