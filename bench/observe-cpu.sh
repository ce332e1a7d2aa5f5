#!/usr/bin/env bash
# observe-cpu.sh - CPU per request of cellgate with the access log and
# tracing off and on, all in one run (bench/README.md, "Access log and
# tracing cost").
#
# Starts the shared bench upstream (127.0.0.1:19000, from baseline.sh's
# folder) and one cellgate node per variant, each proxying to it on its own
# port, then runs wrk against each variant round-robin for REPS rounds and
# prints the CPU time per request of each node process, as baseline.sh
# measures it, and each variant's ratio to "off" (medians over the rounds).
# Every process it starts is stopped by PID on exit.
#
# Knobs (environment): DURATION=10s CONNS=64 WARMUP=2s REPS=3 THREADS=1
#   BIN=path of a built cellgate (default: go build into the run folder)
#   BASELINE_DIR=/work/shared/bench (holds upstream/)
#   VARIANTS="off log0.01 log1 tracing" (also: flags8, eight [[flag]]s;
#   log0.01+flags8, both: issue 20's "access log at sample = 0.01 and 8
#   flags configured" goal)
#   BIN2=path of a second build: a variant named NAME@2 runs NAME's config
#   on BIN2, so two builds are compared in one run (its ratio is to off@2),
#   e.g. BIN=old BIN2=new VARIANTS="off log0.01+flags8 off@2 log0.01+flags8@2"
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DURATION="${DURATION:-10s}"; CONNS="${CONNS:-64}"; WARMUP="${WARMUP:-2s}"
REPS="${REPS:-3}"; THREADS="${THREADS:-1}"
BASELINE_DIR="${BASELINE_DIR:-/work/shared/bench}"
VARIANTS="${VARIANTS:-off log0.01 log1 tracing}"
RUN="$(mktemp -d -t observe-cpu.XXXXXX)"
# shellcheck source=measure.sh
. "$HERE/measure.sh"
declare -A PID_OF PORT_OF
ALL_PIDS=()
log() { echo "# $*" >&2; }

cleanup() {
    local pid
    for pid in "${ALL_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${ALL_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${ALL_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    log "stopped pids: ${ALL_PIDS[*]}; raw output in $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name cmd...
    local name=$1; shift
    "$@" >"$RUN/$name.log" 2>&1 &
    PID_OF[$name]=$!
    ALL_PIDS+=("$!")
}

wait_ready() { # name port
    for _ in $(seq 1 100); do
        curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/" 2>/dev/null | grep -q '^200$' && return 0
        kill -0 "${PID_OF[$1]}" 2>/dev/null || { log "$1 died; see $RUN/$1.log"; return 1; }
        sleep 0.1
    done
    log "$1 not ready on :$2"; return 1
}

# config TABLES PORT: a one-cell node on PORT with extra TOML tables.
config() {
    cat <<EOT
node_name = "observe-$2"
[listen]
addr = "127.0.0.1:$2"
[admin]
addr = "127.0.0.1:$(($2 + 100))"
[state]
path = "$RUN/$2.db"
[[cell]]
name = "direct"
version = "v1"
weight = 100
endpoints = ["127.0.0.1:19000"]
$1
EOT
}

variant_tables() {
    case $1 in
    off) ;;
    log0.01) printf '[access_log]\npath = "%s"\nsample = 0.01\n' "$RUN/access-$1.log" ;;
    log1) printf '[access_log]\npath = "%s"\nsample = 1\n' "$RUN/access-$1.log" ;;
    tracing) printf '[tracing]\ngenerate = true\n' ;;
    flags8) for i in 1 2 3 4 5 6 7 8; do printf '[[flag]]\nname = "flag-%d"\ntype = "boolean"\nvariants = { on = 10, off = 90 }\n' "$i"; done ;;
    log0.01+flags8) printf '[access_log]\npath = "%s"\nsample = 0.01\n' "$RUN/access-$1.log"; variant_tables flags8 ;;
    *) log "unknown variant $1"; return 1 ;;
    esac
}

build_bins
start upstream "$RUN/upstream" -addr 127.0.0.1:19000
sleep 0.3

port=18100
for v in $VARIANTS; do
    port=$((port + 1)); PORT_OF[$v]=$port
    bin=$BIN
    case $v in *@2) bin=${BIN2:?BIN2 is needed for variant $v} ;; esac
    variant_tables "${v%@2}" >"$RUN/$v.tables.in" || exit 1
    sed "s|access-${v%@2}.log|access-$v.log|" "$RUN/$v.tables.in" >"$RUN/$v.tables"
    config "$(cat "$RUN/$v.tables")" "$port" >"$RUN/$v.toml"
    start "$v" env GOMAXPROCS="$THREADS" "$bin" serve -config "$RUN/$v.toml"
    wait_ready "$v" "$port" || exit 1
done

log "host: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS -d$DURATION; GOMAXPROCS=$THREADS"
printf '%-10s %4s %11s %8s\n' variant rep rps us/req
for rep in $(seq 1 "$REPS"); do
    for v in $VARIANTS; do
        url="http://127.0.0.1:${PORT_OF[$v]}/"
        wrk -t1 -c"$CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1
        out="$RUN/wrk-$v-$rep.txt"
        c0=$(cpu_ticks "${PID_OF[$v]}")
        wrk -t1 -c"$CONNS" -d"$DURATION" "$url" >"$out" 2>&1
        c1=$(cpu_ticks "${PID_OF[$v]}")
        rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
        reqs=$(awk '/requests in/{print $1; exit}' "$out")
        us=$(us_per_req "$c0" "$c1" "$reqs" "?")
        printf '%-10s %4s %11s %8s\n' "$v" "$rep" "${rps:-FAIL}" "$us" | tee -a "$RUN/table"
    done
done

median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
off=$(awk '$1=="off"{print $3 == "FAIL" ? "" : $4}' "$RUN/table" | median)
off2=$(awk '$1=="off@2"{print $3 == "FAIL" ? "" : $4}' "$RUN/table" | median)
echo
printf '%-10s %12s %10s\n' variant median_us/req ratio_to_off
for v in $VARIANTS; do
    o=$off
    case $v in *@2) o=$off2 ;; esac
    m=$(awk -v v="$v" '$1==v{print $4}' "$RUN/table" | median)
    printf '%-10s %12s %10s\n' "$v" "$m" "$(awk -v m="$m" -v o="$o" 'BEGIN{ if (o>0) printf "%.3f", m/o; else print "?" }')"
done
for v in $VARIANTS; do
    f="$RUN/access-$v.log"
    [ -f "$f" ] && log "$v: $(wc -l <"$f") access lines written"
done
