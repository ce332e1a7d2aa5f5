#!/usr/bin/env bash
# sidebyside.sh - the shared baseline.sh with a second candidate (cand2) in
# the same run, so two cellgate builds or configs are measured round-robin
# beside HAProxy and the direct upstream, each rep alternating targets.
# The shared script is not copied: it is read from $BASELINE (default
# ../shared/bench/baseline.sh) and cand2 is spliced into its port table and
# target list, so its measuring code stays the one every run uses.
#
#   CAND2_CMD    command line of the second candidate; it must listen on
#                127.0.0.1:$CAND2_PORT (default 18091) and proxy to
#                127.0.0.1:19000
#   WRK_SCRIPT   a wrk Lua script (wrk -s) for every wrk run, e.g.
#                bench/post1k.lua with URL_PATH=/upload: 1 KiB POSTs
#   everything else as baseline.sh (CANDIDATE_CMD, TARGETS, REPS, CONNS...)
#
# Example (bench/README.md, "Loop core"):
#   TARGETS="direct haproxy candidate cand2" REPS=3 DURATION=5s WARMUP=1s \
#     CANDIDATE_CMD="/tmp/cg serve -config $PWD/bench/peer-loop.toml" \
#     CAND2_CMD="/tmp/cg serve -config $PWD/bench/peer2.toml" bench/sidebyside.sh
set -eu
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASELINE="${BASELINE:-$HERE/../../shared/bench/baseline.sh}"
[ -r "$BASELINE" ] || { echo "sidebyside: $BASELINE not found (set BASELINE)" >&2; exit 1; }
SHARED="$(cd "$(dirname "$BASELINE")" && pwd)"
export CAND2_CMD="${CAND2_CMD:-}" CAND2_PORT="${CAND2_PORT:-18091}"
script="$(mktemp -t sidebyside.XXXXXX.sh)"
trap 'rm -f "$script"' EXIT
# HERE must stay the shared folder (upstream, conf templates); cand2 gets a
# port and a case beside candidate's.
sed -e "s#^HERE=.*#HERE=\"$SHARED\"#" \
    -e 's/^PORT_OF\[caddy\]=.*/&; PORT_OF[cand2]=$CAND2_PORT/' \
    -e "s#^WRK=\"\\\$(pin 0) wrk\"#WRK=\"\\\$(pin 0) wrk${WRK_SCRIPT:+ -s $(realpath "$WRK_SCRIPT")}\"#" \
    -e 's/^    candidate)$/    cand2)\n        [ -n "$CAND2_CMD" ] || { log "skip cand2 (CAND2_CMD unset)"; continue; }\n        start cand2 env GOMAXPROCS="$THREADS" $(pin 1) bash -c "exec $CAND2_CMD" ;;\n&/' \
    "$BASELINE" >"$script"
grep -q 'PORT_OF\[cand2\]' "$script" && grep -q 'start cand2' "$script" &&
    { [ -z "${WRK_SCRIPT:-}" ] || grep -q '^WRK=.* -s ' "$script"; } ||
    { echo "sidebyside: $BASELINE changed shape; cand2 not spliced in" >&2; exit 1; }
bash "$script"
