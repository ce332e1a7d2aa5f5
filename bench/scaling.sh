#!/usr/bin/env bash
# scaling.sh - how cellgate's req/s, CPU per request and memory scale with
# the number of cells, client connections and active session pins
# (bench/README.md, "Scaling"; issue 20).
#
# For every point it starts a fresh cellgate (GOMAXPROCS=THREADS) with a
# generated config in front of the shared bench upstream (127.0.0.1:19000,
# GET / -> 128 bytes), drives it closed-loop with `cellgate bench -c C`,
# and records:
#   rps          the generator's requests/s over the measured time
#   us_per_req   cellgate's CPU (user+sys ticks from /proc/PID/stat, read
#                when the generator's warm-up ends and after it exits)
#                divided by the measured requests, as baseline.sh does
#   rss_*_kb     VmRSS before any client (base), with C connections open and
#                nearly idle (idle: open loop at C/2 req/s, so each
#                connection sends about once per 2 s; conns sweep only),
#                right after the load (load), and VmHWM (peak)
#   pins         cellgate_cell_pinned_sessions summed, after the load
#   core         the HTTP/1.1 core the node chose (its `serving` log line:
#                loop or goroutine)
# one CSV row per point and rep into $OUT/scaling.csv, then draws the SVGs
# with `cellgate bench plot`. Every process it starts is stopped by PID.
#
# Sweeps (SWEEPS="cells conns pins"):
#   cells  1/16/128 cells of weight 100 on the same upstream, 64 conns,
#          CELL_KEYS users (X-User-ID, default KEYS_SMALL) spread over the
#          cells; CELL_KEYS=0 sends no key header (every request hashes
#          the client address, so all go to one cell)
#   conns  one cell, C connections
#   pins   two cells, old (100) and new (0), pins on (routing.pin_memory =
#          PIN_MEMORY); for P pins: K = P/0.9 keys are visited once in turn
#          (-key-dist seq), new's weight is raised to 900 (a promotion: ~90 %
#          of the keys now pick new), and the keys are visited again, which
#          pins each moved, active session to old. The load then draws the K
#          keys at random, so ~90 % of requests look their pin up. P = 0
#          keeps K = KEYS_SMALL keys and no promotion; a "keys" row with
#          K = the largest K and no promotion separates the cost of a large
#          key space from the cost of the pins.
#
# Knobs (environment): DURATION=4 WARMUP=2 (seconds) REPS=1 THREADS=1
#   CELLS="1 16 128" CONNS="64 1000 9600" PINS="0 10000 1000000"
#   SWEEPS="cells conns pins" PIN_MEMORY=536870912 KEYS_SMALL=11136
#   UPSTREAM_CONNS=10000 (upstream.max_conns_per_endpoint: the default 1024
#   answers 503 upstream-busy to requests beyond 1024 in flight, which at
#   9600 closed-loop connections is most of them)
#   KEYS_CONTROL=1 (0: no "keys" row)
#   PLOT_ONLY=FILE.csv: no sweep, only draw FILE's charts into OUT (needs BIN)
#   PIN_REPS=1 (reps of the pin sweep, at most REPS: its million-key
#   passes take ~1.5 min each)
#   OUT=folder for scaling.csv and the SVGs (default: the run folder)
#   BIN=path of a built cellgate (default: go build into the run folder)
#   BASELINE_DIR=/work/shared/bench (holds upstream/)
#   CORE=loop|goroutine: pins listen.core (default: none, the config
#   default "auto", which is the loop core on Linux's plain listeners)
#
# 10 000 connections: cellgate keeps two descriptors per client connection
# (proxy/fdbudget.go), so RLIMIT_NOFILE must allow ~2 C + 600; the script
# raises the soft limit to the hard one. With a hard limit of 20 000 cellgate
# admits at most 9 711 clients, hence CONNS' default of 9600.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DURATION="${DURATION:-4}"; WARMUP="${WARMUP:-2}"; REPS="${REPS:-1}"; THREADS="${THREADS:-1}"
CELLS="${CELLS:-1 16 128}"; CONNS="${CONNS:-64 1000 9600}"; PINS="${PINS:-0 10000 1000000}"
SWEEPS="${SWEEPS:-cells conns pins}"; PIN_REPS="${PIN_REPS:-1}"
PIN_MEMORY="${PIN_MEMORY:-536870912}"; KEYS_SMALL="${KEYS_SMALL:-11136}"
UPSTREAM_CONNS="${UPSTREAM_CONNS:-10000}"; KEYS_CONTROL="${KEYS_CONTROL:-1}"
CELL_KEYS="${CELL_KEYS:-$KEYS_SMALL}"
BASELINE_DIR="${BASELINE_DIR:-/work/shared/bench}"; CORE="${CORE:-}"
RUN="$(mktemp -d -t cellgate-scaling.XXXXXX)"
OUT="${OUT:-$RUN}"
# shellcheck source=measure.sh
. "$HERE/measure.sh"
UPSTREAM=127.0.0.1:19000
ALL_PIDS=()
log() { echo "# $*" >&2; }

stop_pid() { # pid: TERM, wait up to 10 s, then KILL
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    for pid in "${ALL_PIDS[@]}"; do stop_pid "$pid"; done
    log "stopped pids: ${ALL_PIDS[*]}; raw output in $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null
log "RLIMIT_NOFILE $(ulimit -n)"

vm_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; } # pid VmRSS|VmHWM

wait_ready() { # pid port
    for _ in $(seq 1 200); do
        curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/" 2>/dev/null | grep -q '^200$' && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# config PORT CELLS PINS: a node on PORT (admin on PORT+1000) with CELLS
# cells on the upstream; with PINS=1, the pin sweep's two cells instead.
config() {
    local port=$1 cells=$2 pins=$3 i
    cat <<EOT
node_name = "scaling-$port"
[listen]
addr = "127.0.0.1:$port"
${CORE:+core = \"$CORE\"}
[admin]
addr = "127.0.0.1:$((port + 1000))"
[state]
path = "$RUN/$port.db"
[upstream]
max_conns_per_endpoint = $UPSTREAM_CONNS
EOT
    if [ "$pins" = 1 ]; then
        printf '[routing]\npin_memory = %s\n' "$PIN_MEMORY"
        printf '[[cell]]\nname = "old"\nversion = "v1"\nweight = 100\nendpoints = ["%s"]\n' "$UPSTREAM"
        printf '[[cell]]\nname = "new"\nversion = "v2"\nweight = 0\nendpoints = ["%s"]\n' "$UPSTREAM"
        return
    fi
    for i in $(seq 1 "$cells"); do
        printf '[[cell]]\nname = "c%d"\nversion = "v1"\nweight = 100\nendpoints = ["%s"]\n' "$i" "$UPSTREAM"
    done
}

pinned() { # admin port: pinned sessions summed over cells
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^cellgate_cell_pinned_sessions/{s+=$2} END{printf "%d", s}'
}

# keys_pass PORT KEYS PASS: every key once, in turn, 64 connections; the
# run lasts long enough at 12 000 req/s (the JSON says how many were sent,
# and the pins column what was made).
keys_pass() {
    local secs=$(( $2 / 12000 + 2 ))
    "$BIN" bench -c 64 -keys "$2" -key-dist seq -duration "${secs}s" -warmup 0s -o json \
        "http://127.0.0.1:$1/" >"$RUN/pass-$1-$3.json" 2>"$RUN/pass-$1-$3.err"
    local sent; sent=$(jq .requests "$RUN/pass-$1-$3.json")
    [ "${sent:-0}" -ge "$2" ] || log "pass $3 on :$1 sent $sent requests for $2 keys: some keys not visited"
}

PORT=20100
# point SWEEP REP CELLS CONNS PINS KEYS PROMOTE
point() {
    local sweep=$1 rep=$2 cells=$3 conns=$4 pins=$5 keys=$6 promote=$7
    PORT=$((PORT + 2)); local port=$PORT admin=$((PORT + 1000)) pinson=0
    [ "$sweep" = pins ] || [ "$sweep" = keys ] && pinson=1
    config "$port" "$cells" "$pinson" >"$RUN/$port.toml"
    GOMAXPROCS="$THREADS" "$BIN" serve -config "$RUN/$port.toml" >"$RUN/$port.log" 2>&1 &
    local pid=$!; ALL_PIDS+=("$pid")
    if ! wait_ready "$pid" "$port"; then log "cellgate :$port not ready; see $RUN/$port.log"; stop_pid "$pid"; return 1; fi
    local base idle=""; base=$(vm_kb "$pid" VmRSS)
    if [ "$sweep" = conns ]; then
        # Open loop at C/2 req/s: every connection is opened within ~2 s
        # and then sends about once per 2 s. RSS is read at 2.5 s.
        "$BIN" bench -c "$conns" -rate $((conns / 2)) -duration 3s -warmup 0s -o json \
            "http://127.0.0.1:$port/" >"$RUN/idle-$port.json" 2>"$RUN/idle-$port.err" &
        local bpid=$!
        sleep 2.5; idle=$(vm_kb "$pid" VmRSS); wait "$bpid"
    fi
    local keyflags=()
    if [ "$keys" -gt 0 ]; then
        keyflags=(-keys "$keys")
        keys_pass "$port" "$keys" 1
        if [ "$promote" = 1 ]; then
            curl -s -o "$RUN/weight-$port.json" -X PUT -H 'Content-Type: application/json' \
                -d '{"weight": 900, "reason": "scaling.sh promotion"}' "http://127.0.0.1:$admin/v1/cells/new/weight"
            keys_pass "$port" "$keys" 2
        fi
    fi
    local out="$RUN/load-$port.json"
    "$BIN" bench -c "$conns" -duration "${DURATION}s" -warmup "${WARMUP}s" -timeout 10s -o json \
        "${keyflags[@]}" "http://127.0.0.1:$port/" >"$out" 2>"$RUN/load-$port.err" &
    local bpid=$!
    sleep "$WARMUP"; local c0; c0=$(cpu_ticks "$pid")
    wait "$bpid"; local c1; c1=$(cpu_ticks "$pid")
    local rss hwm npins=0; rss=$(vm_kb "$pid" VmRSS); hwm=$(vm_kb "$pid" VmHWM)
    [ "$pinson" = 1 ] && npins=$(pinned "$admin")
    stop_pid "$pid"
    local reqs errs rps p99
    reqs=$(jq .requests "$out"); errs=$(jq .errors "$out"); rps=$(jq '.rps|floor' "$out")
    p99=$(jq '.latency.p99_ns/1e6' "$out")
    local us; us=$(us_per_req "$c0" "$c1" "$reqs")
    local core; core=$(grep -m1 -o 'msg=serving .*core=[a-z]*' "$RUN/$port.log" | sed 's/.*core=//')
    local row="$sweep,$rep,$cells,$conns,$pins,$keys,$npins,$reqs,$errs,$rps,$us,$p99,$base,$idle,$rss,$hwm,$(cut -d' ' -f1 /proc/loadavg),$core"
    echo "$row" >>"$CSV"; echo "$row"
}

if [ -n "${PLOT_ONLY:-}" ]; then
    [ -n "${BIN:-}" ] || { log "PLOT_ONLY needs BIN"; exit 2; }
    mkdir -p "$OUT"; CSV="$PLOT_ONLY"
else
    build_bins
    "$RUN/upstream" -addr "$UPSTREAM" >"$RUN/upstream.log" 2>&1 &
    ALL_PIDS+=("$!")
    sleep 0.3

    mkdir -p "$OUT"
    CSV="$OUT/scaling.csv"
    echo "sweep,rep,cells,conns,pins_target,keys,pins,requests,errors,rps,us_per_req,p99_ms,rss_base_kb,rss_idle_kb,rss_load_kb,hwm_kb,load1,core" >"$CSV"
    log "host: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); commit $(cd "$HERE" && git rev-parse --short HEAD 2>/dev/null); GOMAXPROCS=$THREADS; ${WARMUP}s warm-up + ${DURATION}s per point"
    head -1 "$CSV"
    maxkeys=0
    for rep in $(seq 1 "$REPS"); do
        for sweep in $SWEEPS; do
            case $sweep in
            cells) for n in $CELLS; do point cells "$rep" "$n" 64 0 "$CELL_KEYS" 0; done ;;
            conns) for c in $CONNS; do point conns "$rep" 1 "$c" 0 0 0; done ;;
            pins)
                [ "$rep" -le "$PIN_REPS" ] || continue
                for p in $PINS; do
                    # K = P / 0.9, a multiple of 64 so the 64 stripes of
                    # -key-dist seq are all of one length.
                    k=$(( (p * 10 / 9 + 63) / 64 * 64 )); [ "$p" = 0 ] && k=$KEYS_SMALL
                    [ "$k" -gt "$maxkeys" ] && maxkeys=$k
                    if [ "$p" = 0 ]; then point pins "$rep" 2 64 0 "$k" 0; else point pins "$rep" 2 64 "$p" "$k" 1; fi
                done
                [ "$KEYS_CONTROL" = 1 ] && [ "$maxkeys" -gt "$KEYS_SMALL" ] && point keys "$rep" 2 64 0 "$maxkeys" 0
                ;;
            *) log "unknown sweep $sweep"; exit 2 ;;
            esac
        done
    done
    log "load $(cut -d' ' -f1-3 /proc/loadavg) at the end"

fi

# plot NAME SWEEP X Y XLABEL YLABEL [flags]: one chart per metric.
plot() {
    "$BIN" bench plot -in "$CSV" -where "sweep=$2" -x "$3" -y "$4" -xlabel "$5" -ylabel "$6" \
        -title "$6 against $5" "${@:7}" -o "$OUT/$1.svg" || log "plot $1 failed"
}
has() { grep -q "^$1," "$CSV"; }
if has cells; then
    plot scaling-cells-rps cells cells rps "cells" "requests/s" -logx -names "req/s (GOMAXPROCS=$THREADS)"
    plot scaling-cells-cpu cells cells us_per_req "cells" "CPU µs per request" -logx -names "µs CPU/request"
fi
if has conns; then
    plot scaling-conns-rps conns conns rps "client connections" "requests/s" -logx -names "req/s (GOMAXPROCS=$THREADS)"
    plot scaling-conns-cpu conns conns us_per_req "client connections" "CPU µs per request" -logx -names "µs CPU/request"
    plot scaling-conns-memory conns conns rss_base_kb,rss_idle_kb,rss_load_kb "client connections" "RSS (MiB)" -logx \
        -yscale 0.0009765625 -names "before any client,connections open and idle,after closed-loop load"
fi
if has pins; then
    plot scaling-pins-rps pins pins_target rps "active session pins" "requests/s" -logx -names "req/s (GOMAXPROCS=$THREADS)"
    plot scaling-pins-cpu pins pins_target us_per_req "active session pins" "CPU µs per request" -logx -names "µs CPU/request"
fi
log "wrote $CSV and $OUT/scaling-*.svg"
