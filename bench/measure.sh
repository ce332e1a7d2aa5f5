# measure.sh - what the bench scripts share to measure a proxy's CPU per
# request, sourced (not run) by observe-cpu.sh, scaling.sh and bigbody.sh.
# A process's CPU is its user+system clock ticks from /proc/PID/stat, as
# baseline.sh reads it, read before and after a measured run and divided
# by that run's requests.
#
# The sourcing script defines log() and, for build_bins, RUN (its run
# folder), BASELINE_DIR (holds upstream/) and optionally BIN.

CLK_TCK="$(getconf CLK_TCK)"
MEASURE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# cpu_ticks PID: utime+stime of PID in clock ticks. Fields are counted
# after the ") " that ends the command name, which may hold spaces.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

# us_per_req C0 C1 REQUESTS [NONE]: CPU microseconds per request between
# two cpu_ticks readings; NONE (default: empty) when no request counted.
us_per_req() {
    awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" -v n="${3:-0}" -v none="${4:-}" \
        'BEGIN{ if (n>0) printf "%.2f", 1e6*(b-a)/hz/n; else print none }'
}

# build_bins: cellgate from this tree into RUN/cellgate unless BIN names a
# build already, and the shared bench upstream into RUN/upstream. A failed
# build ends the script.
build_bins() {
    BIN="${BIN:-}"
    if [ -z "$BIN" ]; then
        BIN="$RUN/cellgate"
        log "building cellgate"; (cd "$MEASURE_DIR/.." && go build -o "$BIN" ./cmd/cellgate) || exit 1
    fi
    log "building upstream"; (cd "$BASELINE_DIR/upstream" && go build -o "$RUN/upstream" .) || exit 1
}
