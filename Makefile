# cellgate — build, test, bench, demo. Needs only Go.
GO      ?= go
BIN     ?= bin/cellgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 5s

.PHONY: build test test-short fuzz evidence slosim slosim-fleet bench pgo demo vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/cellgate

# test is deterministic: vet, the whole suite under the race detector (every
# fuzz target's seed corpus and saved crashers in testdata/fuzz run as
# regression tests), the full single-node SLO false-revert simulation and 50
# five-node fleet rollouts without the race detector (it is too slow under
# it; make slosim-fleet runs the 200 fleet rollouts of slo/README.md), the demo, the rollout scenario and the
# bench comparison (wall-clock schedules and ratios, also without it), and
# the evidence counts.
# Time-boxed fuzzing, which explores new inputs, is its own step: make fuzz.
# CI (.ci/run) runs make test, then make fuzz.
# -pgo=off: tests check behaviour, and cmd/cellgate/default.pgo would
# compile every dependency a second time (race + profile) for that one
# package's test binary.
# -p 4: go test runs at most -p actions at once, compiles and test binaries
# alike (default: the number of cores), and the root and proxy packages'
# binaries mostly wait on wall-clock schedules (20 s of a rollout test is
# 7 s of CPU): with 2 they held both of CI's slots while the rest of the
# race build waited.
# The root package's e2e tests run on the default core, listen.core =
# "auto" (the loop core on Linux; the goroutine core on TLS listeners),
# and those comparing the cores pin both. The proxy package's tests run on
# the goroutine core (-proxy.core), which serves what the loop hands over.
# LOOP_TESTS are the proxy tests run a second time on the loop core
# (listen.core = "loop", proxy/loopcore.go): fidelity, faults, lost-request
# retries, limits, failover, timeouts, the allocation test, and flags, pins,
# overrides, the access log and tracing (which the loop serves through the
# goroutine core's route and finish).
LOOP_TESTS = 'TestIdleKeepAliveMemory|TestFlagsHeaderReplacesClientCopy|TestNoFlagsStillRemovesClientCopy|TestExposureMarked|TestAccessLogCarriesFlags|TestOverrideFromTrustedProxyOnly|TestPinsProxyPromotion|TestPinsCookieAcrossNodes|TestOverrideCookie|TestAccessLogPerRequest|TestAccessLogErrorsAlwaysLogged|TestTraceContext|TestTraceIDsInAccessLog|TestSpansExportedOverOTLP|TestFidelity|TestTruncatedUpstreamBody|TestContentLengthAndChunked|TestStalledReaderFreesUpstream|TestStaleRetryNeverResendsABody|TestLostRequestRetriedWithoutEvidence|TestSlowClientsAreCut|TestMaxConnsAnswers503|TestServedAllocs|TestResponseHead|TestCellFailover|TestInflightRequestsWhenCellDies|TestUnreachableCell|TestRequestHeaderHygiene|TestResponseHeaderHygiene|TestErrorCauses|TestRetry|TestNoRetry|TestShutdown|TestReloadUnderLoad|TestSSE|TestStalledStream|TestStickyDistribution|TestSetCookie|TestStaleKeepAliveRetried|TestStaleKeepAliveRace|TestChunkExtensionWhitespace|TestExpectContinue'

test: vet
	$(GO) test -race -pgo=off -count=1 -p 4 -timeout 14m ./...
	$(GO) test -race -pgo=off -count=1 -timeout 5m -run $(LOOP_TESTS) ./proxy -proxy.core=loop
	./scripts/slosim.sh
	$(GO) test -count=1 -p 1 -run 'Demo|TestRollout|TestCompareRatios' ./demo ./bench ./bench/scenario
	./scripts/evidence.sh

test-short:
	$(GO) test -short -count=1 ./...

# -pgo=off: with the default -pgo=auto, vet compiled cmd/cellgate's whole
# dependency graph, standard library included, a second time with its
# default.pgo (seen on CI's cold cache), for checks the profile does not
# change.
vet:
	$(GO) vet -pgo=off ./...

# fuzz runs every native fuzz target for FUZZTIME each. A crasher it finds
# is written under testdata/fuzz (so make test replays it from then on) and
# fails the step: fix the bug and commit the input.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

evidence:
	./scripts/evidence.sh

slosim:
	./scripts/slosim.sh

# slosim-fleet runs FLEETN (default 200) healthy five-node fleet rollouts,
# the false-revert figure in slo/README.md (about 1 s of CPU a rollout, so
# make test runs 50 of them).
FLEETN ?= 200
slosim-fleet:
	$(GO) test -count=1 -timeout 60m -v -run '^TestSimHealthyFleet$$' ./slo -args -slo.fleetn $(FLEETN)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1,2 ./balancer ./proxy/... ./slo

# pgo refreshes cmd/cellgate/default.pgo, the CPU profile go build applies
# to cellgate (-pgo=auto): a cellgate built without it serves one cell under
# 20 s of closed-loop load and its profile is kept (bench/README.md, "PGO").
# Run it after changes to the request path and commit the result.
pgo:
	$(GO) run ./internal/pgoprofile -o cmd/cellgate/default.pgo

demo: build
	./$(BIN) demo $(DEMO_FLAGS)

clean:
	rm -rf bin
