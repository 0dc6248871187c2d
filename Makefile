# Snowfall build, test and demo entry points. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
CMDS := $(wildcard broker/cmd/* server/cmd/* client/cmd/* proxy/cmd/*)

.PHONY: all build test demo deps clean bench wasm container-check units-check

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./,$(CMDS))

deps:
	@./scripts/install-deps.sh

# The browser proxy, ready to serve statically from proxy-wasm/dist/.
wasm:
	GO=$(GO) ./proxy-wasm/build.sh

# make test: vet (native and js/wasm), unit tests with the race detector
# (every fuzz target runs over its seed corpus), the systemd unit and
# container checks, then
# the integration tests, which start real processes in network namespaces.
# The full integration log is kept in out.interop.log.
test: deps build
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./proxy-wasm/ ./proxy/ ./common/encapsulation/ ./common/messages/ ./common/websocketconn/
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /internal/interop$$)
	./scripts/units-check.sh
	./scripts/container-check.sh
	set -o pipefail; SNOWFALL_BIN=$(BIN) $(GO) test -count=1 -timeout 40m -v ./internal/interop/ 2>&1 \
	  | tee out.interop.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|^    [a-z_]+\.go:[0-9]+:'

# The proxy, broker and bridge images (podman, no Docker engine needed).
container-check:
	./scripts/container-check.sh

# systemd-analyze verify of the units in deploy/systemd and proxy/.
units-check: build
	./scripts/units-check.sh

demo: deps build
	SNOWFALL_BIN=$(BIN) $(GO) run ./internal/interop/cmd/demo

# Measures Snowfall's chain and Tor's 2.5.1 side by side on this machine
# (root: network namespaces) and rewrites the results section of
# doc/performance.md. BENCHFLAGS adds flags, e.g. BENCHFLAGS="-rounds 3".
bench: deps build
	SNOWFALL_BIN=$(BIN) $(GO) run ./internal/interop/cmd/bench -out doc/performance.md $(BENCHFLAGS)

clean:
	rm -rf $(BIN) out.*.log
