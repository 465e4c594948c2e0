# bench/bench.mk: the `make bench` target, included by the top-level
# Makefile (`include bench/bench.mk`). It depends on that Makefile's `build`
# target because other packages' benchmarks start the bin/ binaries.
#
# Speed targets are judged as ratios measured in this one run, never as
# timings asserted in unit tests. Two steps:
#   1. the Go benchmarks of the packages below -> bench/gobench.txt
#      (-v so that a skip says why, e.g. "needs root");
#   2. bin/rspp-bench: the frame round trip real path vs bare go-plugin gRPC
#      vs raw unix socket, interleaved; the live path (rspp serve --listen
#      driven by test/wsload clients: first-audio and barge-in fence
#      latency, client and supervisor side, 1 client vs BENCH_LIVE_CLIENTS);
#      the LiveKit path beside the WebSocket one (one-way media latency
#      client -> kernel and kernel -> client, first audio through
#      rspp serve --livekit-url; in its own network namespace, root only);
#      plus step 1 parsed, -> bench/results.json and a summary on stdout.
# A failing Go benchmark still gets its results.json written; the target
# then exits non-zero.

BENCH_DIRS    ?= kernel isolation supervisor
# Time to first token through the openai plugin vs direct from its test endpoint.
BENCH_DIRS    += providers/openai
BENCH_PKGS    := $(foreach d,$(BENCH_DIRS),$(if $(wildcard $(d)/),./$(d)/...))
# 1s per benchmark keeps the whole target within ~6 minutes on 2 cores;
# benchmarks that need many samples for a p99 should loop inside b.N.
BENCHTIME     ?= 1s
# Per test binary: a hung benchmark fails its package, not the target.
BENCH_TIMEOUT ?= 4m
# Round trips per path for the driver.
BENCH_N       ?= 5000
BENCH_GO      ?= go
# Live path: clients of the loaded phase, length of each phase (0s: skip).
BENCH_LIVE_CLIENTS ?= 20
BENCH_LIVE_PHASE   ?= 25s
# Capacity ladder (rspp serve --realtime --play-out, light SDK nodes):
# session counts (the first is the latency baseline), seconds each; the
# example pipeline ladder with autoscaled pools and the HA run (an STT
# instance SIGKILLed at 30 s); a soak (BENCH_SOAK=30m) prints the RSS curve.
# Empty or 0 skips a part.
BENCH_CAPACITY_LADDER ?= 10,100,200,500,1000
BENCH_CAPACITY_PHASE  ?= 40s
# Runs of each rung: a rung reports its run of median p99 (this machine's
# run-to-run spread at 1,000 sessions is ~30 ms, most of the budget).
BENCH_CAPACITY_RUNS   ?= 3
BENCH_EXAMPLE_LADDER  ?= 10,20,30,40
BENCH_EXAMPLE_PHASE   ?= 40s
BENCH_HA_PHASE        ?= 60s
BENCH_SOAK            ?= 0
BENCH_SOAK_SESSIONS   ?= 200
# LiveKit path (needs root: its own network namespace; the pinned
# livekit-server, built once by scripts/livekit-server.sh; bin/rspp-opus):
# one-way marker samples per transport (0: skip) and first-audio turns.
BENCH_LIVEKIT_MARKERS ?= 100
BENCH_LIVEKIT_TURNS   ?= 5

.PHONY: bench
bench: build
	$(BENCH_GO) build -o bin/rspp-bench ./test/bench/cmd/rspp-bench
	$(BENCH_GO) build -o bin/bench/energystt ./test/wsload/testdata/nodes/energystt
	$(BENCH_GO) build -o bin/bench/tonetts ./test/bench/testdata/nodes/tonetts
	@if [ "$(BENCH_LIVEKIT_MARKERS)" != 0 ]; then bash scripts/livekit-server.sh $(LIVEKIT_SERVER_VERSION); fi
	@status=0; \
	if [ -n "$(BENCH_PKGS)" ]; then \
		echo "go test -bench . $(BENCH_PKGS) > bench/gobench.txt"; \
		$(BENCH_GO) test -run '^$$' -bench . -benchtime=$(BENCHTIME) -benchmem -count=1 -v \
			-timeout $(BENCH_TIMEOUT) $(BENCH_PKGS) > bench/gobench.txt 2>&1 || status=$$?; \
	else \
		: > bench/gobench.txt; \
	fi; \
	if [ $$status -ne 0 ]; then \
		echo "go benchmarks failed (exit $$status); end of bench/gobench.txt:"; \
		tail -n 30 bench/gobench.txt; \
	fi; \
	bin/rspp-bench -gobench bench/gobench.txt -out bench/results.json -n $(BENCH_N) \
		-live-bin bin -live-clients $(BENCH_LIVE_CLIENTS) -live-phase $(BENCH_LIVE_PHASE) \
		-capacity-ladder "$(BENCH_CAPACITY_LADDER)" -capacity-phase $(BENCH_CAPACITY_PHASE) -capacity-runs $(BENCH_CAPACITY_RUNS) \
		-example-ladder "$(BENCH_EXAMPLE_LADDER)" -example-phase $(BENCH_EXAMPLE_PHASE) -ha-phase $(BENCH_HA_PHASE) \
		-soak $(BENCH_SOAK) -soak-sessions $(BENCH_SOAK_SESSIONS) \
		-livekit-markers $(BENCH_LIVEKIT_MARKERS) -livekit-turns $(BENCH_LIVEKIT_TURNS) || status=$$?; \
	exit $$status

# The must-show of issue #12 at full length: `rspp chaos` for 60 s with a
# fault every 2 s on the example HA agent, then `rspp replay --check` and
# `--mode resimulate` on its timeline (test/replay). Output to
# bench/replay-chaos.txt; the summary lines on stdout.
REPLAY_CHAOS ?= 60s
.PHONY: replay-chaos
replay-chaos: build
	@echo "RSPP_REPLAY_CHAOS=$(REPLAY_CHAOS) go test ./test/replay -run TestChaosTimelineHasEvidenceAndResimulates > bench/replay-chaos.txt"
	@RSPP_REPLAY_CHAOS=$(REPLAY_CHAOS) $(BENCH_GO) test -count=1 -v -timeout 15m -run TestChaosTimelineHasEvidenceAndResimulates ./test/replay/ > bench/replay-chaos.txt 2>&1; \
	status=$$?; grep -E "faults injected|turns opened|evidence:|resimulate:|^(--- |ok|FAIL)" bench/replay-chaos.txt; exit $$status
