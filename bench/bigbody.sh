#!/usr/bin/env bash
# bigbody.sh — big-body throughput, download and upload, cellgate beside
# HAProxy in one run (bench/README.md, "Big bodies").
#
# Starts the shared bench upstream ($SHARED/upstream: GET /bytes?n=N streams
# N bytes, POST /upload reads the body), HAProxy with the shared config
# template, and a cellgate built from this tree, each on ports of its own
# (29000, 28080, 28090) so it does not collide with baseline.sh; then runs
# wrk against each proxy, round-robin for REPS rounds: GET of N bytes, and
# POST of an N-byte body (wrk Lua). GB/s = req/s × N / 1e9. Everything it
# starts is stopped by PID on exit.
#
# Knobs: N=104857600 CONNS=4 DURATION=10s REPS=3 THREADS=1
#        KINDS="download upload" SHARED=/work/shared/bench
# Columns: req/s and GB/s from wrk; cpu_ms/GB = CPU time (user+system) the
# proxy process used per GB moved, which a loaded machine disturbs less
# than the rate.
set -u
N="${N:-104857600}"
CONNS="${CONNS:-4}"
DURATION="${DURATION:-10s}"
REPS="${REPS:-3}"
THREADS="${THREADS:-1}"
SHARED="${SHARED:-/work/shared/bench}"
KINDS="${KINDS:-download upload}"
declare -A PID_OF
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=measure.sh
. "$ROOT/bench/measure.sh"
RUN="$(mktemp -d -t bigbody.XXXXXX)"
PIDS=()

log() { echo "# $*" >&2; }
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    log "stopped pids: ${PIDS[*]}; raw output in $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { # name cmd...
    local name=$1; shift
    "$@" >"$RUN/$name.log" 2>&1 &
    PIDS+=("$!")
    PID_OF[$name]=$!
}
ready() { # port
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/bytes?n=1" && return 0
        sleep 0.1
    done
    log "nothing answers on :$1"; exit 1
}

for c in wrk haproxy curl go; do command -v "$c" >/dev/null || { log "needs $c"; exit 1; }; done
log "building upstream and cellgate"
(cd "$SHARED/upstream" && go build -o "$RUN/upstream" .) || exit 1
(cd "$ROOT" && go build -o "$RUN/cellgate" ./cmd/cellgate) || exit 1

start upstream "$RUN/upstream" -addr 127.0.0.1:29000
ready 29000
sed -e "s/@THREADS@/$THREADS/" -e '/pidfile/d' -e 's/127.0.0.1:18080/127.0.0.1:28080/' \
    -e 's/127.0.0.1:19000/127.0.0.1:29000/' "$SHARED/conf/haproxy.cfg.tmpl" >"$RUN/haproxy.cfg"
start haproxy haproxy -db -f "$RUN/haproxy.cfg"
cat >"$RUN/cellgate.toml" <<EOF
node_name = "bigbody-bench"
[listen]
addr = "127.0.0.1:28090"
[state]
path = "$RUN/cellgate.db"
[[cell]]
name = "direct"
version = "v1"
weight = 100
endpoints = ["127.0.0.1:29000"]
EOF
start cellgate env GOMAXPROCS="$THREADS" "$RUN/cellgate" serve -config "$RUN/cellgate.toml"
ready 28080
ready 28090

cat >"$RUN/upload.lua" <<EOF
wrk.method = "POST"
wrk.path = "/upload"
wrk.body = string.rep("u", $N)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# run name port kind → prints req/s
run() {
    local out="$RUN/$1-$3-$4.txt"
    if [ "$3" = download ]; then
        wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 30s "http://127.0.0.1:$2/bytes?n=$N" >"$out" 2>&1
    else
        wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 30s -s "$RUN/upload.lua" "http://127.0.0.1:$2/upload" >"$out" 2>&1
    fi
    awk '/Requests\/sec/ {print $2}' "$out"
}

log "wrk -t1 -c$CONNS -d$DURATION, bodies of $N bytes, THREADS=$THREADS"
printf '%-10s %-9s %4s %9s %8s %10s\n' target direction rep 'req/s' 'GB/s' 'cpu_ms/GB'
for rep in $(seq 1 "$REPS"); do
    for kind in $KINDS; do
        for t in haproxy:28080 cellgate:28090; do
            name="${t%%:*}"
            c0=$(cpu_ticks "${PID_OF[$name]}")
            rps=$(run "$name" "${t##*:}" "$kind" "$rep")
            c1=$(cpu_ticks "${PID_OF[$name]}")
            reqs=$(awk '/requests in/{print $1; exit}' "$RUN/$name-$kind-$rep.txt")
            gbs=$(awk -v r="${rps:-0}" -v n="$N" 'BEGIN {printf "%.2f", r * n / 1e9}')
            cpg=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v q="${reqs:-0}" -v n="$N" \
                'BEGIN {if (q > 0) printf "%.0f", 1000 * (b - a) / hz / (q * n / 1e9); else print "?"}')
            printf '%-10s %-9s %4s %9s %8s %10s\n' "$name" "$kind" "$rep" "${rps:-?}" "$gbs" "$cpg"
        done
    done
done
