#!/usr/bin/env bash
# h2-compare.sh — cellgate and HAProxy side by side in one run, HTTP/2
# (bench/README.md "HTTP/2 and gRPC"): (1) TLS h2 front to an HTTP/1.1
# upstream, (2) gRPC unary over h2c to an h2c upstream. Each proxy gets one
# core's worth of workers (GOMAXPROCS=1, nbthread 1); h2load is the client.
# Prints req/s, p99 (from h2load's per-request log) and proxy CPU per
# request (utime+stime of the proxy process over the run).
# Needs: h2load (Debian nghttp2-client), haproxy, openssl, go.
set -euo pipefail
DUR=${DUR:-10}; C=${C:-16}; M=${M:-8}
R=$(mktemp -d /tmp/h2cmp.XXXX)
cd "$(dirname "$0")/.."
go build -o $R/cellgate ./cmd/cellgate
go build -o $R/grpcecho ./internal/grpcecho/cmd/grpcecho
(cd /work/shared/bench/upstream && go build -o $R/benchupstream .)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout $R/key.pem -out $R/cert.pem 2>/dev/null
cat $R/cert.pem $R/key.pem > $R/both.pem
cat > $R/haproxy.cfg <<CFG
global
    nbthread 1
    maxconn 4096
    tune.bufsize 16384
defaults
    mode http
    no log
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend tls
    bind 127.0.0.1:18443 ssl crt $R/both.pem alpn h2,http/1.1
    default_backend h1
frontend grpc
    bind 127.0.0.1:18445 proto h2
    default_backend g
backend h1
    server s1 127.0.0.1:19000 maxconn 1000
backend g
    server g1 127.0.0.1:19001 proto h2
CFG
cat > $R/cellgate.toml <<CFG
node_name = "h2-bench"
[listen]
addr = "127.0.0.1:18490"
tls_cert = "$R/cert.pem"
tls_key = "$R/key.pem"
[admin]
addr = ""
[state]
path = "$R/cg.db"
[[cell]]
name = "h1"
version = "v1"
weight = 100
endpoints = ["127.0.0.1:19000"]
CFG
cat > $R/cellgate-grpc.toml <<CFG
node_name = "grpc-bench"
[listen]
addr = "127.0.0.1:18491"
h2c = true
[admin]
addr = ""
[state]
path = "$R/cg-grpc.db"
[[cell]]
name = "g"
version = "v1"
weight = 100
protocol = "h2c"
endpoints = ["127.0.0.1:19001"]
CFG
printf '\x00\x00\x00\x00\x04\x0a\x02hi' > $R/grpc-req.bin
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
$R/benchupstream -addr 127.0.0.1:19000 >/dev/null 2>&1 & pids+=($!)
$R/grpcecho -addr 127.0.0.1:19001 >/dev/null 2>&1 & pids+=($!)
haproxy -db -f $R/haproxy.cfg >/dev/null 2>&1 & HAP=$!; pids+=($HAP)
GOMAXPROCS=1 $R/cellgate serve -config $R/cellgate.toml >/dev/null 2>&1 & CG=$!; pids+=($CG)
GOMAXPROCS=1 $R/cellgate serve -config $R/cellgate-grpc.toml >/dev/null 2>&1 & CGG=$!; pids+=($CGG)
sleep 2 # startup; the run itself measures nothing before h2load starts

cpu() { awk '{print $14+$15}' /proc/$1/stat; } # clock ticks
tick=$(getconf CLK_TCK)
# run NAME PID URL [h2load args…]
run() {
	local name=$1 pid=$2 url=$3; shift 3
	local before after
	before=$(cpu $pid)
	h2load -D $DUR -c $C -m $M --log-file=$R/$name.log "$@" "$url" > $R/$name.out 2>&1 || true
	after=$(cpu $pid)
	local ok rps p99
	ok=$(awk '$2 >= 200 && $2 < 300' $R/$name.log | wc -l)
	rps=$(grep -o 'finished in [^,]*, [0-9.]* req/s' $R/$name.out | awk '{print $(NF-1)}')
	p99=$(awk '{print $3}' $R/$name.log | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]/1000}')
	printf '%-22s %10s req/s  p99 %7s ms  cpu/req %6.1f µs  (%s 2xx)\n' "$name" "$rps" "$p99" \
		"$(echo "($after - $before) / $tick / $ok * 1000000" | bc -l)" "$ok"
}
echo "h2load -D $DUR -c $C -m $M; proxies on one core each; $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
run cellgate-tls-h2 $CG https://127.0.0.1:18490/
run haproxy-tls-h2 $HAP https://127.0.0.1:18443/
run cellgate-grpc-h2c $CGG http://127.0.0.1:18491/cellgate.test.Echo/Unary -d $R/grpc-req.bin -H 'content-type: application/grpc' -H 'te: trailers'
run haproxy-grpc-h2c $HAP http://127.0.0.1:18445/cellgate.test.Echo/Unary -d $R/grpc-req.bin -H 'content-type: application/grpc' -H 'te: trailers'
grep -h "status codes" $R/*.out | head -4
rm -rf $R
