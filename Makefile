# RSPP — see README.md. `make help` lists the targets.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
PROVIDERS  := pocketsphinx rules espeak
# The runtime re-execs itself as the sandbox entry point; a static binary
# keeps that path free of cgo (landlock + cgo in a PID namespace hang).
export CGO_ENABLED ?= 0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOBIN      := $(shell $(GO) env GOPATH)/bin
APT_PKGS   := protobuf-compiler espeak-ng pocketsphinx pocketsphinx-en-us sox
# The LiveKit transport's Opus helper (bin/rspp-opus, the only cgo binary).
APT_PKGS   += libopus-dev libopusfile-dev libsoxr-dev pkg-config
LIVEKIT_SERVER_VERSION := 1.13.5
NODE_TEST_NODE := test/nodejs/echo-node
DEMO_DIR   := demo-out
DEMO_PHRASE ?= what time is it
WEB_ADDR   ?= 127.0.0.1:8080

.PHONY: help build deps test-deps test test-short proto proto-check bench demo web clean tools

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

deps: ## install system packages the runtime and tests need (apt, as root) or say how
	@bash scripts/deps.sh $(APT_PKGS)

tools: ## install pinned protoc plugins
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

build: ## build bin/rspp, bin/rspp-node and bin/providers/*
	$(GO) build -o $(BIN)/rspp ./cmd/runtime
	$(GO) build -o $(BIN)/rspp-node ./cmd/node-sdk
	@for p in $(PROVIDERS); do $(GO) build -o $(BIN)/providers/$$p ./providers/$$p || exit 1; done
	@# rspp stays cgo-free (sandbox entry); Opus is libopus, so it is a helper of its own.
	@if pkg-config --exists opus opusfile soxr 2>/dev/null; then CGO_ENABLED=1 $(GO) build -o $(BIN)/rspp-opus ./cmd/rspp-opus; \
	  else echo "skipping bin/rspp-opus (LiveKit transport codec): needs libopus-dev libopusfile-dev libsoxr-dev pkg-config (make deps)"; fi

test-deps: deps ## what only the tests need: Chromium (browser tests), Node.js and the Node.js test node's locked modules
	@# The browser tests drive Debian's Chromium, never a downloaded browser.
	@command -v chromium >/dev/null || bash scripts/deps.sh chromium
	@# This machine kind ships Node.js with npm (nodesource's nodejs, which
	@# conflicts with Debian's npm package): install only what is missing.
	@command -v node >/dev/null || bash scripts/deps.sh nodejs
	@command -v npm >/dev/null || bash scripts/deps.sh npm
	@[ -d $(NODE_TEST_NODE)/node_modules ] || npm ci --prefix $(NODE_TEST_NODE) --no-audit --no-fund >/dev/null
	@# The LiveKit e2e tests (test/livekit) run the pinned server; built once, cached.
	@bash scripts/livekit-server.sh $(LIVEKIT_SERVER_VERSION)

test: test-deps build ## run all tests with the race detector (root-only tests run when root)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

test-short: build ## quick tests, no race detector
	$(GO) test -count=1 ./...

proto: tools ## regenerate Go code from proto/rspp/v1
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative proto/rspp/v1/*.proto

proto-check: proto ## fail if the committed generated code differs from the .proto
	@git diff --exit-code -- proto/ || { echo "proto/: generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "proto/: untracked generated files"; exit 1; }

demo: deps build ## synthesise an utterance, run it through rspp, show the result
	@bash scripts/demo.sh "$(DEMO_PHRASE)" $(DEMO_DIR)

web: deps build ## serve the browser page and WebSocket endpoint on the example pipeline; prints the URL (Ctrl-C stops)
	@echo "open http://$(WEB_ADDR)/ in a browser and talk to the agent (phrases: examples/grammar.jsgf)"
	$(BIN)/rspp serve --config examples/voice-agent.yaml --listen $(WEB_ADDR)

clean: ## remove build outputs
	rm -rf $(BIN) $(DEMO_DIR)

-include bench/bench.mk
