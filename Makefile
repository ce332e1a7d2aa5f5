# cellgate — build, test, bench, demo. Needs only Go.
GO      ?= go
BIN     ?= bin/cellgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 5s

.PHONY: build test test-short fuzz evidence bench demo vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/cellgate

# test is what CI runs (.ci/run): vet, the whole suite under the race
# detector, then every fuzz target for FUZZTIME each.
test: vet
	$(GO) test -race -count=1 -timeout 8m ./...
	$(GO) test -count=1 -run 'Demo' ./demo
	./scripts/evidence.sh
	./scripts/fuzz.sh $(FUZZTIME)

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

evidence:
	./scripts/evidence.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1,2 ./balancer ./proxy/... ./slo

demo: build
	./$(BIN) demo $(DEMO_FLAGS)

clean:
	rm -rf bin
