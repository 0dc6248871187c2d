# Snowfall build, test and demo entry points. See README.md.
GO ?= go
BIN := $(CURDIR)/bin
CMDS := $(wildcard broker/cmd/* server/cmd/* client/cmd/* proxy/cmd/*)

.PHONY: all build test unit fuzz-seeds integration demo deps clean bench wasm

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./,$(CMDS))

deps:
	@./scripts/install-deps.sh

# The browser proxy, ready to serve statically from proxy-wasm/dist/.
wasm:
	GO=$(GO) ./proxy-wasm/build.sh

# Unit tests (with the race detector) also run every fuzz target over its
# seed corpus; the integration tests start real processes.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /common/interop)
	SNOWFALL_BIN=$(BIN) $(GO) test -count=1 -timeout 30m -v ./common/interop/ 2>&1 | tee out.interop.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|    [a-z_]+\.go)' ; exit $${PIPESTATUS[0]}

demo: deps build
	SNOWFALL_BIN=$(BIN) $(GO) run ./common/interop/cmd/demo

clean:
	rm -rf $(BIN) out.*.log
