# Depot build. Sources are picked up by wildcard: a module adds files, not Makefile lines.
#   make            build/depot, build/depotctl and the libraries
#   make run        install missing packages, build, start on 127.0.0.1:9092 with ./data
#   make test       unit tests (cmocka) + end-to-end tests with real Kafka clients
#   make test-asan  the same under ASan+UBSan
#   make test-tsan  unit tests under ThreadSanitizer (build/tsan; tests/tsan.supp)
#   make test-valgrind  e2e smoke tests with the broker under valgrind memcheck
#   make debug      -O0 build in build/debug
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each
#   make fuzz-smoke every fuzz target built, its corpus replayed and 10 s fuzzed (in make test)
#   make bench      benchmarks (not part of test)
#   make cross      ARM cross-builds in build/<arch>/ (ARCH=arm64|armhf, both when unset)
#   make test-cross the same, then every unit test under qemu-user (docs/operations.md)
#   make deb        Debian package build/depot_<version>_<arch>.deb (systemd unit, conffile)

CC      ?= cc
PKGS    := libuv libzstd libxxhash liblz4 snappy jansson libssl libcrypto
BUILD   ?= build
OPT     ?= -O2 -g
SAN     ?=
# _FILE_OFFSET_BITS=64: 64-bit off_t, stat and readdir on 32-bit targets too (armhf): segments
# may pass 2 GiB, libuv is built that way (uv_fs_t holds an off_t), and without it readdir fails
# with EOVERFLOW on 64-bit directory cookies (what qemu-arm on a 64-bit kernel hands back).
# No effect on 64-bit targets.
CFLAGS  := -std=gnu11 -Wall -Wextra -Werror $(OPT) $(SAN) -I. -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
# libhttp-parser ships no pkg-config file, hence the explicit -lhttp_parser (scripts/cross
# overrides it: Debian's foreign-architecture build of it has no -dev package we can install).
HTTP_PARSER_LIB ?= -lhttp_parser
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(HTTP_PARSER_LIB) -lz -lpthread -lm
TESTLIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# librdkafka, for the uplink only (broker/uplink/ includes it; docs/operations.md "Building").
#   RDKAFKA=pinned  (default) librdkafka 2.12.1 built from source by scripts/build-rdkafka into
#                   $(DEPOT_DEPS_CACHE) (default build/deps; shared by every BUILD dir) and
#                   linked statically: Debian 12's 2.0.2 cannot do SCRAM against Kafka 4.x
#   RDKAFKA=system  Debian's librdkafka-dev through pkg-config (make cross; bench/ always)
# Its headers come in with -isystem, and only where the uplink's code includes them, so our
# -Werror does not apply to them. RDKAFKA_LIBS follows the features scripts/build-rdkafka
# asks configure for (each with --enable-*, so none can go missing silently).
RDKAFKA ?= pinned
RDKAFKA_VERSION := 2.12.1
ifeq ($(RDKAFKA),pinned)
RDKAFKA_DIR    := $(or $(DEPOT_DEPS_CACHE),build/deps)/rdkafka-$(RDKAFKA_VERSION)
RDKAFKA_LIB    := $(RDKAFKA_DIR)/lib/librdkafka.a
RDKAFKA_CFLAGS := -isystem $(RDKAFKA_DIR)/include
RDKAFKA_LIBS   := $(RDKAFKA_LIB) -lsasl2 -lssl -lcrypto -lzstd -llz4 -lz -lm -ldl -lpthread -lrt
else
RDKAFKA_DIR    :=
RDKAFKA_LIB    :=
RDKAFKA_CFLAGS := $(shell pkg-config --cflags rdkafka 2>/dev/null)
RDKAFKA_LIBS   := $(shell pkg-config --libs rdkafka 2>/dev/null)
endif

PROTO_SRC   := $(wildcard protocol/*.c) $(wildcard protocol/gen/*.c)
STORAGE_SRC := $(wildcard storage/*.c)
BROKER_SRC  := $(filter-out broker/main.c,$(wildcard broker/*.c broker/*/*.c))
CLIENT_SRC  := $(filter-out client/depotctl%.c,$(wildcard client/*.c))
CTL_SRC     := $(wildcard client/depotctl*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBKP := $(BUILD)/libkp.a
LIBKS := $(BUILD)/libks.a
LIBKB := $(BUILD)/libkb.a
LIBKC := $(BUILD)/libkc.a

TEST_SRC  := $(wildcard tests/protocol/test_*.c tests/storage/test_*.c tests/broker/test_*.c tests/client/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all run test unit unit-bins cross test-cross e2e test-asan test-tsan test-valgrind debug fuzz fuzz-smoke bench \
        bench-storage format clean check-layers deps gen deb print-broker-ldlibs

all: $(BUILD)/depot $(BUILD)/depotctl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBKP): $(call obj,$(PROTO_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBKS): $(call obj,$(STORAGE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBKB): $(call obj,$(BROKER_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBKC): $(call obj,$(CLIENT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Objects of the uplink see librdkafka's headers; they wait for the pinned build (order-only:
# -MMD leaves -isystem headers out of the .d files, and a rebuilt library changes no header).
UPLINK_OBJ := $(call obj,$(wildcard broker/uplink/*.c))
$(UPLINK_OBJ): CFLAGS += $(RDKAFKA_CFLAGS)
$(UPLINK_OBJ): | $(RDKAFKA_LIB)
# Every uplink unit test includes up_int.h, and so librdkafka's headers (a pattern, so a new
# test_uplink_*.c needs no line here: a fresh box has only the pinned copy of the headers; a
# pattern's stem cannot be empty, hence the two lines).
$(BUILD)/tests/broker/test_uplink: CFLAGS += $(RDKAFKA_CFLAGS)
$(BUILD)/tests/broker/test_uplink_%: CFLAGS += $(RDKAFKA_CFLAGS)

ifneq ($(RDKAFKA_LIB),)
$(RDKAFKA_LIB):
	DEPOT_DEPS_CACHE=$(abspath $(or $(DEPOT_DEPS_CACHE),build/deps)) scripts/build-rdkafka
endif

# The link line for what holds the broker (depot, tests/broker/, tests/fuzz/run.sh).
print-broker-ldlibs:
	@echo $(RDKAFKA_LIBS) $(LDLIBS)

$(BUILD)/depot: $(call obj,broker/main.c $(BROKER_SRC)) $(LIBKS) $(LIBKP) $(RDKAFKA_LIB)
	$(CC) $(CFLAGS) -o $@ $(filter-out $(RDKAFKA_LIB),$^) $(RDKAFKA_LIBS) $(LDLIBS)
$(BUILD)/depotctl: $(call obj,$(CTL_SRC)) $(LIBKC) $(LIBKP)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Each test binary links the layers its directory may depend on.
$(BUILD)/tests/protocol/%: tests/protocol/%.c $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIBKP) $(TESTLIBS) $(LDLIBS)
$(BUILD)/tests/storage/%: tests/storage/%.c $(LIBKS) $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIBKS) $(LIBKP) $(TESTLIBS) $(LDLIBS)
$(BUILD)/tests/broker/%: tests/broker/%.c $(LIBKB) $(LIBKS) $(LIBKP) $(RDKAFKA_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIBKB) $(LIBKS) $(LIBKP) $(TESTLIBS) $(RDKAFKA_LIBS) $(LDLIBS)
$(BUILD)/tests/client/%: tests/client/%.c $(LIBKC) $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIBKC) $(LIBKP) $(TESTLIBS) $(LDLIBS)

# The dashboard page is pulled into dashboard.o with .incbin (see broker/metrics/dashboard.c).
$(BUILD)/obj/broker/metrics/dashboard.o: broker/metrics/dashboard.html

# Debian package build/depot_<version>_<arch>.deb (scripts/build-deb; docs/operations.md).
deb: all
	@BUILD=$(BUILD) RDKAFKA_DIR=$(RDKAFKA_DIR) scripts/build-deb

deps:
	@scripts/install-deps

run: deps
	$(MAKE) all
	mkdir -p data
	$(BUILD)/depot --set log.dirs=./data $(ARGS)

unit-bins: $(TEST_BINS)

unit: $(TEST_BINS)
	@fail=0; for t in $(TEST_BINS); do \
	    echo "== $$t"; $$t || { echo "FAIL: $$t"; fail=1; }; done; exit $$fail

e2e: all
	DEPOT_BIN=$(abspath $(BUILD)/depot) DEPOTCTL_BIN=$(abspath $(BUILD)/depotctl) tests/e2e/run.sh

# fuzz-smoke runs in the plain `make test` (CI) only: under test-asan/test-tsan (SAN set) it
# would rebuild the same sanitized fuzz binaries a second time for nothing.
test: check-layers
	$(MAKE) unit
	$(if $(SAN),,$(MAKE) fuzz-smoke)
	$(MAKE) e2e

# ARM boards: Debian cross gcc + multiarch libraries (scripts/install-deps --cross), unit tests
# under qemu-user. Skips with a printed reason when the toolchain or a library is missing.
ARCH ?=
# Debian's librdkafka for the targets (RDKAFKA=system): the pinned build is for the host only.
cross:
	@PKGS="$(PKGS) rdkafka" MAKE="$(MAKE)" scripts/cross build $(ARCH)
test-cross:
	@PKGS="$(PKGS) rdkafka" MAKE="$(MAKE)" scripts/cross test $(ARCH)

# Sanitized brokers run 2-3x slower: test_admin_offloop.py took 281 s of the 300 s per-file
# limit under ASan (176 s plain; since split in two files), so e2e files get 600 s here.
test-asan:
	E2E_TIMEOUT=$${E2E_TIMEOUT:-600} $(MAKE) BUILD=build/asan CC=clang OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# ThreadSanitizer over every unit test: the storage flusher, checkpoint and cleaner threads,
# the logger, and the broker on its loop (test_h_loop, test_server, ...). Unit tests only: the
# Debian libuv is not instrumented, so the threads that matter are storage's own. Every
# suppression in tests/tsan.supp carries its reason. ignore_noninstrumented_modules: that
# libuv closes descriptors with a raw close syscall TSan never sees, so its later read or
# epoll_ctl on a number a storage thread has since opened again was reported as a race on the
# descriptor (test_h_offloop); its calls still synchronise, only their race checks are off.
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 \
                          ignore_noninstrumented_modules=1 \
                          suppressions=$(abspath tests/tsan.supp)"
test-tsan:
	$(TSAN_ENV) $(MAKE) BUILD=build/tsan CC=clang OPT="-O1 -g" \
	    SAN="-fsanitize=thread -fno-omit-frame-pointer" unit

# The e2e smoke tests with the broker under memcheck (tests/e2e/valgrind-depot): a memory
# error or a definite/possible leak at the clean exit turns into exit status 99, which fails
# the test's clean-shutdown check; the reports are left in $(BUILD)/valgrind/depot.<pid>.log
# (empty when clean). VALGRIND_E2E picks other e2e files. Not test_startup_signals.py (valgrind
# owns the signal dispositions from before main: it skips itself).
VALGRIND_E2E ?= test_smoke.sh test_bad_input.py test_idempotence.py test_audit_loop.py \
                test_admin_offloop.py test_admin_offloop_topics.py test_groups_kafka_python.py \
                test_registry.py test_compaction.py
test-valgrind: all
	@rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	DEPOT_REAL_BIN=$(abspath $(BUILD)/depot) VALGRIND_LOGS=$(abspath $(BUILD)/valgrind) \
	    DEPOT_BIN=$(abspath tests/e2e/valgrind-depot) tests/e2e/run.sh $(VALGRIND_E2E)
	@for f in $(BUILD)/valgrind/*.log; do \
	    if [ -s "$$f" ]; then echo "valgrind reported ($$f):"; cat "$$f"; exit 1; fi; done; \
	    echo "valgrind: $$(ls $(BUILD)/valgrind | wc -l) broker runs, no errors, no leaks"

debug:
	$(MAKE) BUILD=build/debug OPT="-O0 -g3" all

# Regenerate the codecs in protocol/gen/ from Kafka's JSON message definitions (not committed).
KAFKA_MESSAGES ?= ../shared/kafka-protocol/messages
# Kafka 4.1's definitions for the APIs in gen.py's NEWER (scripts/fetch-kafka fetches the jars)
KAFKA_MESSAGES_NEWER ?= $(shell scripts/fetch-kafka --messages 2>/dev/null)
gen:
	python3 protocol/gen/gen.py $(KAFKA_MESSAGES) $(KAFKA_MESSAGES_NEWER)

FUZZ_SECONDS ?= 60
fuzz:
	@MAKE="$(MAKE)" tests/fuzz/run.sh $(FUZZ_SECONDS)
# The fuzz targets are not built by `all`, and twice stopped building unnoticed: every target
# is built, replays its committed corpus and fuzzes FUZZ_SMOKE_SECONDS of new inputs; a build
# failure, crash, leak or hang fails (about 2 minutes on 2 cores; tests/fuzz/run.sh).
FUZZ_SMOKE_SECONDS ?= 10
fuzz-smoke:
	@MAKE="$(MAKE)" tests/fuzz/run.sh --smoke $(FUZZ_SMOKE_SECONDS)

# Bench programs: every bench/*.c except the shared bench/bench_*.c helpers; protocol/ only.
# The load generator and mock broker use Debian's librdkafka (its mock cluster) whatever
# RDKAFKA says: they measure Depot from outside, as any librdkafka client would.
BENCH_LIB   := $(wildcard bench/bench_*.c)
BENCH_PROGS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out $(BENCH_LIB),$(wildcard bench/*.c)))
$(BUILD)/bench/%: bench/%.c $(BENCH_LIB) $(wildcard bench/*.h) $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags rdkafka 2>/dev/null) -o $@ $< $(BENCH_LIB) $(LIBKP) \
	    $(shell pkg-config --libs rdkafka 2>/dev/null) $(LDLIBS)

bench: all $(BENCH_PROGS)
	@scripts/install-deps --bench
	@bench/run.sh

# Storage append MB/s beside the raw disk, same run (BENCH_DIR on the disk to measure).
BENCH_DIR ?= bench/results/tmp
BENCH_MB  ?= 256
$(BUILD)/bench/append: bench/append.c $(LIBKS) $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIBKS) $(LIBKP) $(LDLIBS)
bench-storage: $(BUILD)/bench/append $(BUILD)/bench/cleaner
	@mkdir -p $(BENCH_DIR)
	$(BUILD)/bench/append $(BENCH_DIR) $(BENCH_MB)
	$(BUILD)/bench/cleaner $(BENCH_DIR) $(BENCH_MB)
# Log cleaner MB/s alone and produce MB/s while it cleans (storage only).
.PHONY: bench-cleaner
$(BUILD)/bench/cleaner: bench/cleaner.c $(LIBKS) $(LIBKP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIBKS) $(LIBKP) $(LDLIBS)
bench-cleaner: $(BUILD)/bench/cleaner
	@mkdir -p $(BENCH_DIR)
	$(BUILD)/bench/cleaner $(BENCH_DIR) $(BENCH_MB)

# Arrows point one way (broker -> storage -> protocol, client -> protocol, rooms inside
# broker/ as listed in the script); every folder is checked, tests and generated code included.
# check-sizes: no file over 1,000 lines and no function over 80 lines in broker/.
check-layers:
	@scripts/check-layers
	@scripts/check-sizes

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
