# Phoenix build.
#
#   make            build every binary into build/bin/
#   make test       install missing packages, build with ASan+UBSan, run every test
#   make test-scale 3 replicas of every pool, one of each killed mid-run (CI runs it after make test)
#   make fuzz       libFuzzer targets (tests/fuzz) for FUZZ_SECONDS each (default 60)
#   make analyze    static analysis (cppcheck, clang-tidy), clean on the tree
#   make deps-report  linked libraries and Debian packages, with pending (security) updates
#   make demo       install, build, start the local stack, run examples/calc-chain.json
#   make up|down|status   the local stack (ops/dev/stack), state under var/
#   make bench      Phoenix against Celery 5 (phx-bench), figures into docs/benchmarks.md
#   make bench-scale  throughput at 1, 2 and 4 replicas (phx-bench), into docs/benchmarks.md
#   make chaos      10,000 jobs through injected faults (kill -9, Redis restart, broker down)
#   make deps       apt-get install the Debian packages Phoenix needs, when missing
#   make format     clang-format every C file in place
#   make docs       regenerate docs/config-reference.md from every binary's --help
#
# Variables: BUILD (output dir, default build), SAN=1 (AddressSanitizer + UBSan),
# PHX_EVAL_DIR (public evaluation data, default ../shared/eval; tests skip what is absent).
#
# Layout of a program: every directory listed in PROGS holds main.c plus modules. Modules
# (every .c but main.c) also go into libmods.a so unit tests can link them without a main().

BUILD ?= build
SAN ?=
CC ?= cc
PHX_EVAL_DIR ?= ../shared/eval
export PHX_EVAL_DIR

PKGS := rdkafka hiredis jansson libcurl libmicrohttpd libcrypto libseccomp icu-uc icu-i18n libjwt libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# -Wno-format-truncation: every snprintf into a fixed buffer truncates on purpose (bounded
# log and error text); GCC cannot tell that from a bug, and the noise would hide real ones.
CFLAGS := -std=gnu11 -g -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Ilib $(PKG_CFLAGS)
LDFLAGS :=
ifeq ($(SAN),1)
CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS += -O2
endif
LDLIBS := $(PKG_LIBS) -lpthread -lm
# FUZZ=1 (with SAN=1): clang with libFuzzer's coverage instrumentation, for tests/fuzz.
# -Wno-missing-field-initializers: libseccomp's SCMP_A0..A5 macros initialise a struct
# positionally without its last field, which clang (unlike GCC) reports at our call sites.
ifeq ($(FUZZ),1)
CC := clang
CFLAGS += -fsanitize=fuzzer-no-link -Wno-unknown-warning-option -Wno-missing-field-initializers
endif

# program name -> source directory. A program is built once its directory has a main.c, so a
# pool under construction does not break the build of the others.
ALL_PROGS := phx-planner:workers/planner phx-tools:workers/tools phx-exec:workers/exec \
             phx-llm:workers/llm phx-safety:workers/safety phx-kb:workers/kb \
             phx-sentinel:workers/sentinel \
             phx-ingress:producers/ingress phx:producers/cli phx-devbroker:ops/devbroker \
             phx-freeport:ops/dev/freeport phx-bench:ops/bench
prog_name = $(word 1,$(subst :, ,$(1)))
prog_dir = $(word 2,$(subst :, ,$(1)))
PROGS := $(foreach p,$(ALL_PROGS),$(if $(wildcard $(call prog_dir,$(p))/main.c),$(p)))
BINS := $(foreach p,$(PROGS),$(BUILD)/bin/$(call prog_name,$(p)))

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/schemas_embedded.o
SCHEMAS := $(sort $(wildcard schemas/*.json))
MOD_SRCS := $(filter-out %/main.c,$(foreach p,$(PROGS),$(wildcard $(call prog_dir,$(p))/*.c)))
MOD_OBJS := $(MOD_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: test-scale bench-scale analyze deps-report fuzz fuzz-build bench-kb bench-ingress bench-exec chaos pkgcheck all deps test test-build demo up down status bench format docs clean
all: $(BINS)

# pkg-config answers nothing when any one package is missing: say so instead of failing later
# with a confusing compile error.
pkgcheck:
	@[ -n "$(PKG_LIBS)" ] || { echo "build: libraries missing; run 'make deps'" >&2; \
	  pkg-config --libs $(PKGS); exit 1; }

$(BUILD)/obj/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/schemas_embedded.c: $(SCHEMAS) ops/build/embed-schemas.sh ops/build/embed-files.sh
	@mkdir -p $(dir $@)
	ops/build/embed-schemas.sh $(SCHEMAS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libphx.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libmods.a: $(MOD_OBJS)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(BUILD)/bin/$(call prog_name,$(1)): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard $(call prog_dir,$(1))/*.c)) $(BUILD)/libphx.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))
# phx-ingress serves the ops page (ops/page/), compiled in like the schemas.
OPS_PAGE := $(sort $(wildcard ops/page/*))
$(BUILD)/gen/ops_assets.c: $(OPS_PAGE) ops/build/embed-files.sh
	@mkdir -p $(dir $@)
	ops/build/embed-files.sh phx_ops_assets "" $(OPS_PAGE) > $@.tmp && mv $@.tmp $@
$(BUILD)/bin/phx-ingress: $(BUILD)/obj/gen/ops_assets.o
# phx-safety judges URLs with the address policy of tool.http_fetch (one policy, not two), and
# asks a policy's guard model through the LLM pool's provider chain (one client, not two).
$(BUILD)/bin/phx-safety: $(BUILD)/obj/workers/tools/http_fetch.o \
	$(patsubst %,$(BUILD)/obj/workers/llm/%.o,provider task)
# ...which comes after libphx.a on the link line and needs it (intel.c) again.
$(BUILD)/bin/phx-safety: LDLIBS := $(BUILD)/libphx.a $(LDLIBS)
# phx-kb embeds texts through the LLM pool's providers (PHX_KB_EMBEDDER=llm): the same chain,
# budget and llm.embed code, not a second client.
PHX_KB_LLM_OBJS := $(patsubst %,$(BUILD)/obj/workers/llm/%.o,provider embed budget task)
$(BUILD)/bin/phx-kb: $(PHX_KB_LLM_OBJS)
$(BUILD)/bin/phx-kb: LDLIBS := $(BUILD)/libphx.a $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libmods.a $(BUILD)/libphx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libphx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libmods.a $(BUILD)/libphx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every object's header dependencies, mains included (a changed struct in a header must
# rebuild every object that embeds it).
ALL_OBJS := $(LIB_OBJS) $(patsubst %.c,$(BUILD)/obj/%.o,$(foreach p,$(PROGS),$(wildcard $(call prog_dir,$(p))/*.c)))
-include $(ALL_OBJS:.o=.d)

# --- packages ---------------------------------------------------------------------------
DEB_PKGS := build-essential pkg-config librdkafka-dev libhiredis-dev libjansson-dev \
            libcurl4-openssl-dev libseccomp-dev libmicrohttpd-dev libssl-dev libcmocka-dev libicu-dev \
            libjwt-dev libsodium-dev redis-server redis-tools kcat curl jq wrk python3-jwt bubblewrap python3 \
            python3-celery python3-redis prometheus python3-yaml \
            clang clang-tidy cppcheck chromium python3-websocket
# chromium + python3-websocket: the ops page's end-to-end test drives headless Chromium over
# the DevTools protocol (tests/tools/cdp.py, tests/integration/test_ops_page.sh).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

# --- tests ------------------------------------------------------------------------------
# Tests run against the sanitizer build so every process started by an integration test is
# instrumented too.
TEST_BUILD := build/san
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) test-build BUILD=$(TEST_BUILD) SAN=1
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz-build BUILD=$(FUZZ_BUILD) SAN=1 FUZZ=1
	@tests/run.sh $(TEST_BUILD)

# Scale-out under failure (tests/scale/test_scale.sh): 18 sanitizer-built workers are too many
# to share two cores with tests/run.sh's parallel tests, so this one runs alone, after them, as
# its own target (2.5-8 minutes here), which .ci/run calls after make test: issue 11 allows it,
# and make test stays within its 15 minutes.
test-scale: deps
	@$(MAKE) --no-print-directory -j$$(nproc) test-build BUILD=$(TEST_BUILD) SAN=1
	@echo "test-scale: tests/scale/test_scale.sh (log: $(TEST_BUILD)/test-logs/scale/test_scale.log)"
	@mkdir -p $(TEST_BUILD)/test-logs/scale
	@PHX_BIN=$(CURDIR)/$(TEST_BUILD)/bin ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66} \
	  UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	  bash tests/scale/test_scale.sh >$(TEST_BUILD)/test-logs/scale/test_scale.log 2>&1 && \
	  { grep -E '^# ' $(TEST_BUILD)/test-logs/scale/test_scale.log; echo "PASS  scale/test_scale"; } || \
	  { grep -E '^not ok|^# ' $(TEST_BUILD)/test-logs/scale/test_scale.log | head -60; echo "FAIL  scale/test_scale"; exit 1; }

test-build: all $(UNIT_BINS) $(TOOL_BINS) $(BUILD)/tests/bench_kb

# libFuzzer targets for the parsers that read hostile input (tests/fuzz/, docs/security.md):
# `make fuzz` runs each for FUZZ_SECONDS on its seed corpus; `make test` runs a short pass.
FUZZ_BUILD := build/fuzz
FUZZ_SECONDS ?= 60
fuzz-build: $(FUZZ_BINS)
# fuzz_http reaches the ops page's static files (producers/ingress/ops.c), as phx-ingress does.
$(BUILD)/fuzz/fuzz_http: $(BUILD)/obj/gen/ops_assets.o
fuzz: deps
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz-build BUILD=$(FUZZ_BUILD) SAN=1 FUZZ=1
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Static analysis: cppcheck's warning and portability checks on every C file of the tree, then
# clang-tidy (ops/analyze/tidy.sh, checks in .clang-tidy) and gcc -fanalyzer
# (ops/analyze/fanalyzer.sh) on lib, producers, workers and ops; exit 1 on any finding. False
# positives are suppressed inline with the reason on the line above; docs/security.md has the
# rules.
analyze: deps
	@cppcheck -q --std=c11 --enable=warning,portability --inline-suppr --error-exitcode=1 \
	  -D_GNU_SOURCE -Ilib --include=ops/analyze/cppcheck.h --suppress=missingIncludeSystem \
	  --template='{file}:{line}: {severity}: {message} [{id}]' -j$$(nproc) \
	  lib producers workers ops tests/unit tests/tools tests/fuzz tests/bench
	@ops/analyze/tidy.sh
	@ops/analyze/fanalyzer.sh
	@echo "make analyze: cppcheck, clang-tidy and gcc -fanalyzer clean"

# Every linked library and DEB_PKGS package with its Debian version, flagging pending updates
# (exit 1 on a pending security update); the update process is in docs/security.md.
deps-report: all
	@[ "$$(id -u)" != 0 ] || apt-get update -qq || echo "deps-report: apt-get update failed; using the current lists" >&2
	@ops/analyze/deps-report.sh $(BUILD)/bin $(DEB_PKGS)

# Sandbox overhead of phx-exec against a bare fork+exec and bubblewrap (docs/benchmarks-exec.md).
bench-exec: deps
	@$(MAKE) --no-print-directory all $(BUILD)/libmods.a
	@tests/bench/exec/run.sh $(BUILD)

# phx-ingress: POST /v1/jobs with auth and rate limiting under wrk, req/s and p99
# (tests/bench/bench_ingress.sh; BENCH_SECONDS, BENCH_CONNS, PHX_INGRESS_THREADS).
bench-ingress: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/bench_ingress.sh $(BUILD)

# phx-kb's exact scan and HNSW against faiss on the same data (docs/benchmarks-kb.md). Installs
# python3-faiss for itself (only the benchmark needs it). BENCH_KB_N, BENCH_KB_DIM, BENCH_KB_Q.
bench-kb: deps
	@dpkg -s python3-faiss >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	  --no-install-recommends python3-faiss; }
	@$(MAKE) --no-print-directory all $(BUILD)/tests/bench_kb
	@tests/bench/kb/run.sh $(BUILD)
	@tests/bench/kb/coldstart.sh $(BUILD)

$(BUILD)/tests/bench_kb: tests/bench/kb/bench_kb.c $(BUILD)/libmods.a $(BUILD)/libphx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Safety detection rates (held-out split) and scan speed on $(PHX_EVAL_DIR)/safety.
eval-safety: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench/safety/run.sh

# LLM pool overhead against the fake OpenAI-compatible server (figures: docs/llm.md).
bench-llm: all $(BUILD)/tests/fake_llm
	@tests/bench/bench_llm.sh $(BUILD)

# Phoenix against Celery 5 side by side (tests/bench/pipeline/run.sh; BENCH_JOBS): phx-bench and
# Celery's own workers on this machine; writes the pipeline section of docs/benchmarks.md and
# docs/benchmarks-pipeline.svg. python3-celery and python3-redis (in DEB_PKGS) are its Celery.
bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/pipeline/run.sh $(BUILD)

# The scaling curve (tests/bench/scale/run.sh): one stack scaled out live to 1, 2 and 4 replicas
# of the planner and tools pools, phx-bench at each size; writes docs/benchmarks.md's scale
# section (BENCH_SCALE_REPLICAS, BENCH_SCALE_JOBS, BENCH_SCALE_ROUNDS, BENCH_SCALE_CONCURRENCY).
bench-scale: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/scale/run.sh $(BUILD)

# Full chaos run against the optimised build (tests/chaos/chaos.sh: CHAOS_JOBS, CHAOS_RATE, CHAOS_TYPES, CHAOS_*_S).
chaos: deps
	@$(MAKE) --no-print-directory all
	@PHX_BIN=$(CURDIR)/$(BUILD)/bin tests/chaos/chaos.sh

# --- local stack ------------------------------------------------------------------------
demo: deps
	@$(MAKE) --no-print-directory all
	@PHX_STACK_PROBE=$${PHX_STACK_PROBE:-1} PHX_STACK_EXAMPLES=$${PHX_STACK_EXAMPLES:-1} ops/dev/stack up
	@ops/dev/demo

up: all
	@PHX_STACK_PROBE=$${PHX_STACK_PROBE:-1} PHX_STACK_EXAMPLES=$${PHX_STACK_EXAMPLES:-1} ops/dev/stack up
down:
	@ops/dev/stack down
status:
	@ops/dev/stack status

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

docs: all
	ops/build/config-reference.sh $(BUILD)/bin > docs/config-reference.md

clean:
	rm -rf build
