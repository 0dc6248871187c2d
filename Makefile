# Snowfall build, test and demo entry points. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
CMDS := $(wildcard broker/cmd/* server/cmd/* client/cmd/* proxy/cmd/*)

# Packages with tests behind the "integration" build tag: they need root
# (network namespaces), Debian's tor, snowflake-client, snowflake-proxy and
# chromium, and Tor's current Snowflake programs (built from
# internal/interop/upstream). Without the tag, go test ./... runs the unit
# tests only, as any user.
INTEGRATION_PKGS := ./internal/interop/ ./internal/testbed/ ./internal/geoip/

# Caches the tests keep outside the tree between runs: Tor's programs built
# from internal/interop/upstream, and scripts/container-check.sh's default
# WORK directory (a WORK of your own is yours to remove).
UPSTREAM_CACHE := $(or $(SNOWFALL_UPSTREAM_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/snowfall-upstream)
CONTAINER_WORK := /tmp/snowfall-container

.PHONY: all build test unit integration demo deps clean bench wasm container-check units-check fingerprints

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./,$(CMDS))

deps:
	@./scripts/install-deps.sh

# The browser proxy, ready to serve statically from proxy-wasm/dist/.
wasm:
	GO=$(GO) ./proxy-wasm/build.sh

# make test = make unit, then make integration (as root).
test: unit integration

# Any user: vet (native, the integration-tagged files, js/wasm) and the unit
# tests with the race detector (every fuzz target runs over its seed corpus).
unit:
	$(GO) vet ./...
	$(GO) vet -tags integration $(INTEGRATION_PKGS)
	GOOS=js GOARCH=wasm $(GO) vet ./proxy-wasm/ ./proxy/ ./common/encapsulation/ ./common/messages/ ./common/websocketconn/ ./common/sdpwire/ ./internal/safelog/
	@# The browser build's own scrubbing (RegExp) and IDNA (URL parser), under node.
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$$($(GO) env GOROOT)/lib/wasm/go_js_wasm_exec" ./internal/safelog/ ./proxy/ ./common/sdpwire/
	$(GO) test -race -count=1 -timeout 15m ./...

# Root: installs the Debian packages, checks the systemd units and the
# container images, then runs the integration tests, which start real
# processes in network namespaces. The full log is kept in out.interop.log.
integration: deps build
	./scripts/units-check.sh
	./scripts/container-check.sh
	set -o pipefail; SNOWFALL_BIN=$(BIN) $(GO) test -tags integration -count=1 -timeout 40m -v $(INTEGRATION_PKGS) 2>&1 \
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

# Everything the build and the tests leave: in the tree, and the caches
# they keep elsewhere (the next make test rebuilds them, about a minute).
clean:
	rm -rf $(BIN) out.*.log proxy-wasm/dist internal/interop/artifacts dist out
	find . -path ./.git -prune -o \( -name '*.test' -o -name '*.prof' \) -type f -print0 | xargs -0r rm -f
	rm -rf $(UPSTREAM_CACHE)
	@# Shared /tmp: remove the container work directory only if it is ours
	@# (make test as root leaves it owned by root).
	@if [ -e $(CONTAINER_WORK) ] && [ ! -O $(CONTAINER_WORK) ]; then \
	  echo "clean: $(CONTAINER_WORK) belongs to another user; left in place"; \
	else rm -rf $(CONTAINER_WORK); fi

# Re-captures the Chromium handshake profile (internal/fingerprint/chromium.json)
# from the Chromium installed here. Root: it runs Chromium in a namespace.
fingerprints: deps
	$(GO) run ./internal/fingerprint/cmd/snowfall-fingerprints
