# RSPP — see README.md. `make help` lists the targets.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
PROVIDERS  := pocketsphinx rules espeak
PROVIDERS  += openai flite
# The runtime re-execs itself as the sandbox entry point; a static binary
# keeps that path free of cgo (landlock + cgo in a PID namespace hang).
export CGO_ENABLED ?= 0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOBIN      := $(shell $(GO) env GOPATH)/bin
APT_PKGS   := protobuf-compiler espeak-ng pocketsphinx pocketsphinx-en-us sox
APT_PKGS   += flite
# The LiveKit transport's Opus helper (bin/rspp-opus, the only cgo binary).
APT_PKGS   += libopus-dev libopusfile-dev libsoxr-dev pkg-config
LIVEKIT_SERVER_VERSION := 1.13.5
NODE_TEST_NODE := test/nodejs/echo-node
# Node authors' SDKs (sdk/): Node.js (TypeScript, built with tsc) and Python
# (Debian's grpcio/protobuf: PyPI is not used).
SDK_NODE   := sdk/node
SDK_APT    := python3-grpcio python3-protobuf python3-cryptography protobuf-compiler-grpc
DEMO_DIR   := demo-out
DEMO_PHRASE ?= what time is it
WEB_ADDR   ?= 127.0.0.1:8080

.PHONY: help build deps test-deps test test-short proto proto-check bench demo web clean tools sdk

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
	@# The lease authority tests (test/authority, supervisor/authority) run a real etcd.
	@command -v etcd >/dev/null || bash scripts/deps.sh etcd-server
	@# This machine kind ships Node.js with npm (nodesource's nodejs, which
	@# conflicts with Debian's npm package): install only what is missing.
	@command -v node >/dev/null || bash scripts/deps.sh nodejs
	@command -v npm >/dev/null || bash scripts/deps.sh npm
	@$(MAKE) --no-print-directory sdk
	@# npm ci again whenever the lock file or the SDK build it copies is newer than what is installed.
	@[ $(NODE_TEST_NODE)/node_modules/.package-lock.json -nt $(NODE_TEST_NODE)/package-lock.json ] && [ $(NODE_TEST_NODE)/node_modules/.package-lock.json -nt sdk/node/dist/src/index.js ] || npm ci --prefix $(NODE_TEST_NODE) --no-audit --no-fund >/dev/null
	@# The LiveKit e2e tests (test/livekit) run the pinned server; built once, cached.
	@bash scripts/livekit-server.sh $(LIVEKIT_SERVER_VERSION)

test: test-deps build ## run all tests with the race detector (root-only tests run when root)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

test-short: build ## quick tests, no race detector
	$(GO) test -count=1 ./...

sdk: ## the SDKs' dependencies: Debian's Python gRPC, the Node.js SDK's locked modules, built
	@/usr/bin/python3 -c 'import grpc.aio, google.protobuf, cryptography' 2>/dev/null || bash scripts/deps.sh $(SDK_APT)
	@command -v grpc_python_plugin >/dev/null || bash scripts/deps.sh protobuf-compiler-grpc
	@[ -d $(SDK_NODE)/node_modules ] || npm ci --prefix $(SDK_NODE) --no-audit --no-fund >/dev/null
	@npm run --prefix $(SDK_NODE) --silent build

proto: tools sdk ## regenerate Go, TypeScript (sdk/node) and Python (sdk/python) code from proto/rspp/v1
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative proto/rspp/v1/*.proto
	cp proto/rspp/v1/rspp.proto $(SDK_NODE)/proto/rspp.proto
	rm -rf $(SDK_NODE)/src/gen && npm run --prefix $(SDK_NODE) --silent gen >/dev/null
	protoc -I proto/rspp/v1 --python_out=sdk/python/rspp_node/gen --grpc_python_out=sdk/python/rspp_node/gen \
	  --plugin=protoc-gen-grpc_python=$$(command -v grpc_python_plugin) proto/rspp/v1/rspp.proto
	sed -i 's/^import rspp_pb2 as rspp__pb2/from . import rspp_pb2 as rspp__pb2/' sdk/python/rspp_node/gen/rspp_pb2_grpc.py

proto-check: proto ## fail if the committed generated code differs from the .proto
	@git diff --exit-code -- proto/ $(SDK_NODE)/proto $(SDK_NODE)/src/gen sdk/python/rspp_node/gen || { echo "generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/ $(SDK_NODE)/proto $(SDK_NODE)/src/gen sdk/python/rspp_node/gen)" || { git status --porcelain -- proto/ $(SDK_NODE)/src/gen sdk/python/rspp_node/gen; echo "untracked generated files"; exit 1; }

demo: deps build ## synthesise an utterance, run it through rspp, show the result
	@bash scripts/demo.sh "$(DEMO_PHRASE)" $(DEMO_DIR)

web: deps build ## serve the browser page and WebSocket endpoint on the example pipeline; prints the URL (Ctrl-C stops)
	@echo "open http://$(WEB_ADDR)/ in a browser and talk to the agent (phrases: examples/grammar.jsgf)"
	$(BIN)/rspp serve --config examples/voice-agent.yaml --listen $(WEB_ADDR)

clean: ## remove build outputs
	rm -rf $(BIN) $(DEMO_DIR)

-include bench/bench.mk
