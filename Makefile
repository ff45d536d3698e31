# libfoolc: build, test, demo, bench and install.
#   make           libfoolc.a, libfoolc.so, the foolc command and the examples (in build/)
#   make deps      installs the Debian packages the project needs (apt-get as root)
#   make check     deps + build + every Check suite + the examples + the CLI and Python tests
#   make check-asan   the same tests on a build with AddressSanitizer + UBSan (in build-asan/)
#   make check-tsan   the thread tests (C and Python) under ThreadSanitizer (in build-tsan/)
#   make check-torch  installs python3-torch, then the PyTorch tests of the bindings
#   make demo      deps + build + train the reference CNN once (cached) + a foolc report
#   make bench     the engine and attack benchmarks (by hand; never part of check)
#   make install PREFIX=/usr/local
.SUFFIXES:

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O2
DEBS     = build-essential pkg-config libdnnl-dev libopenblas-dev check zlib1g-dev \
           libpng-dev dataset-fashion-mnist python3-numpy libprotobuf-c-dev \
           protobuf-c-compiler libonnx-dev libglpk-dev libopenmpi-dev openmpi-bin
PYTHON3 ?= /usr/bin/python3
CACHE   ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/foolc
WERROR  ?=
ASAN_BUILD ?= build-asan

# One source of the version: include/foolc/version.h. The soname follows its major number.
version_part = $(shell sed -n 's/^.define FOOLC_VERSION_$(1)  *\([0-9][0-9]*\).*/\1/p' \
                 include/foolc/version.h)
VERSION := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SOVER   := $(call version_part,MAJOR)
ifneq ($(words $(subst ., ,$(VERSION))),3)
$(error cannot read FOOLC_VERSION_MAJOR, _MINOR and _PATCH from include/foolc/version.h)
endif

# oneDNN's OpenMP threads spin after each parallel region unless told otherwise, and a
# spinning thread steals the core OpenBLAS (or another process) needs next: measured 30x
# slower attack runs on a loaded 2-core machine. Every recipe gets the passive policy unless
# the caller chose one (docs/bench.md, "Threads"). The library itself never sets it.
OMP_WAIT_POLICY ?= passive
export OMP_WAIT_POLICY

# Evaluated lazily, so a 'make check' that first installs the packages still finds them.
BLAS_CFLAGS = $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
BLAS_LIBS   = $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

# WERROR=1 (CI) turns every warning into an error.
WARN     = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           $(if $(filter-out 0 no,$(WERROR)),-Werror)
CFLAGS  ?= $(OPT) -g
LDFLAGS ?=
# The library sees its internal headers; the CLI and the examples see include/ only, so
# they prove the public API is enough on its own.
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden \
             -Iinclude -Ilib -Iattacks $(BLAS_CFLAGS)
PUBLIC_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) -Iinclude
LIBS     = -ldnnl $(BLAS_LIBS) -lprotobuf-c -lglpk -lz -lm -lpthread

LIB_SRC  = $(wildcard lib/*.c lib/*/*.c attacks/*/*.c criteria/*.c distances/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC  = $(wildcard cli/*.c)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC = $(wildcard tests/*.c)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EX_SRC   = $(wildcard examples/*.c)
EX_BIN   = $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
PUBLIC_HEADERS = $(wildcard include/*.h include/foolc/*.h)

STATIC   = $(BUILD)/libfoolc.a
SHARED   = $(BUILD)/libfoolc.so.$(VERSION)
FOOLC    = $(BUILD)/foolc
TESTS    = $(BUILD)/tests/check_foolc

all: $(STATIC) $(SHARED) $(FOOLC) $(EX_BIN)

# Header dependencies come from the compiler (-MMD -MP: a .d file beside each object).
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/cli/%.o: cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PUBLIC_CFLAGS) -MMD -MP -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcsP $@ $(LIB_OBJ)

$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libfoolc.so.$(SOVER) -o $@ $(LIB_OBJ) $(LIBS)
	ln -sf libfoolc.so.$(VERSION) $(BUILD)/libfoolc.so.$(SOVER)
	ln -sf libfoolc.so.$(VERSION) $(BUILD)/libfoolc.so

$(FOOLC): $(CLI_OBJ) $(STATIC)
	$(CC) $(PUBLIC_CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LIBS) -lpng

$(BUILD)/examples/%: examples/%.c $(STATIC) $(PUBLIC_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(PUBLIC_CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC) $(PUBLIC_HEADERS) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(TESTS): $(TEST_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LIBS) $(CHECK_LIBS)

deps:
	@sh .ci/deps.sh $(DEBS)

# 'check' and 'demo' install packages first, then build in a second make so that the
# pkg-config queries above see what was just installed.
check: deps
	@$(MAKE) --no-print-directory check-run

# A test that cannot run prints "SKIP: <test>: <why>"; under CI=true a skip is a failure
# (FOOLC_SKIP in tests/testutil.h, ci_skip in .ci/ci.sh, skip() in tests/python/_setup.py).
# SANITIZE=1 (set by check-asan): the sanitizers' settings for every program, and the ASan
# runtime preloaded into the Python interpreter (not instrumented itself, so its leaks are
# not reported; the C programs above report theirs).
TEST_ENV = $(if $(SANITIZE),ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) UBSAN_OPTIONS=print_stacktrace=1)
PY_ENV = $(if $(SANITIZE),LD_PRELOAD=$(or $(shell sh .ci/asan-runtime.sh $(SHARED)),$(error \
  check-asan: no ASan runtime found for $(SHARED))) ASAN_OPTIONS=detect_leaks=0 \
  UBSAN_OPTIONS=print_stacktrace=1)

check-run: all $(TESTS)
	@sh .ci/check-version.sh
	$(TEST_ENV) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(TESTS)
	@$(TEST_ENV) FOOLC_LDFLAGS='$(LDFLAGS)' FOOLC_LIBS='$(LIBS)' sh tests/run_examples.sh $(BUILD)
	@$(TEST_ENV) FOOLC_LDFLAGS='$(LDFLAGS)' FOOLC_LIBS='$(LIBS)' sh tests/cli/run.sh $(BUILD)
	@if $(PYTHON3) -c 'import numpy' 2>/dev/null; then OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	  $(PY_ENV) FOOLC_LIBRARY=$(abspath $(BUILD))/libfoolc.so $(PYTHON3) -m unittest discover \
	  -s tests/python; else . .ci/ci.sh; ci_skip python "$(PYTHON3) with numpy not found"; fi

# The PyTorch tests of the Python bindings (tests/python/test_torch.py), torch required.
check-torch: deps
	@sh .ci/deps.sh python3-torch
	@$(MAKE) --no-print-directory check-torch-run

check-torch-run: all
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} FOOLC_REQUIRE_TORCH=1 \
	  FOOLC_LIBRARY=$(abspath $(BUILD))/libfoolc.so $(PYTHON3) -m unittest discover -s tests/python -p 'test_torch.py' -v

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@mkdir -p $(CACHE)
	@if [ ! -f $(CACHE)/cnn.npz ]; then \
	  echo "demo: training the reference CNN once (cached as $(CACHE)/cnn.npz)"; \
	  $(FOOLC) train --arch cnn --epochs 4 --seed 1 --out $(CACHE)/cnn.npz || exit 1; \
	fi
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(FOOLC) report --model $(CACHE)/cnn.npz \
	  --data fashion-mnist -n 100 --attacks fgsm,pgd-linf,deepfool-l2,bb-l2,boundary \
	  --set pgd-linf.steps=10,bb-l2.steps=100,bb-l2.init=pool,boundary.steps=500,boundary.init=pool \
	  --json $(BUILD)/demo.json --csv $(BUILD)/demo.csv --svg $(BUILD)/demo.svg \
	  --png $(BUILD)/demo.png

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/include/foolc $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	         $(DESTDIR)$(PREFIX)/bin
	cp include/foolc.h $(DESTDIR)$(PREFIX)/include/
	cp include/foolc/*.h $(DESTDIR)$(PREFIX)/include/foolc/
	cp $(STATIC) $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libfoolc.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libfoolc.so.$(SOVER)
	ln -sf libfoolc.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libfoolc.so
	cp $(FOOLC) $(DESTDIR)$(PREFIX)/bin/
	mkdir -p $(DESTDIR)$(PREFIX)/share/man/man1
	cp docs/foolc.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' foolc.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/foolc.pc

# Reliability (docs/reliability.md): sanitizers, valgrind, fuzzing.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= npz idx npy net args
FUZZ_BUILD   ?= build-fuzz

SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# Everything check-run runs (Check suites, examples, CLI and Python tests) on a sanitized
# build in $(ASAN_BUILD).
check-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SAN_FLAGS)" \
	  LDFLAGS="$(SAN_FLAGS)" SANITIZE=1 check-run

# ThreadSanitizer (docs/reliability.md, "Threads"): the Check suite's thread tests (two
# attacks on two built-in nets in two threads, per-thread messages and allocation hook) and
# the Python bindings driven from two threads, on a build with -fsanitize=thread
# (TSAN_BUILD, default build-tsan). A race is an error (exit status 66).
TSAN_BUILD ?= build-tsan
TSAN_ENV = TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(abspath tests/tsan.supp)"
check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) CFLAGS="-O1 -g -fsanitize=thread" \
	  LDFLAGS="-fsanitize=thread" $(TSAN_BUILD)/libfoolc.so.$(VERSION) $(TSAN_BUILD)/tests/check_foolc
	$(TSAN_ENV) CK_RUN_SUITE=model OMP_NUM_THREADS=2 $(TSAN_BUILD)/tests/check_foolc
	$(TSAN_ENV) LD_PRELOAD=$$($(CC) -print-file-name=libtsan.so) OMP_NUM_THREADS=1 \
	  FOOLC_LIBRARY=$(abspath $(TSAN_BUILD))/libfoolc.so PYTHONPATH=$(abspath python) \
	  $(PYTHON3) tests/tsan/threads.py

memcheck: all $(TESTS)
	CK_FORK=no CK_DEFAULT_TIMEOUT=0 OMP_NUM_THREADS=1 DNNL_MAX_CPU_ISA=SSE41 valgrind --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
	  --suppressions=tests/valgrind.supp $(TESTS)

fuzz:
	@FUZZ_BUILD=$(FUZZ_BUILD) sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

.PHONY: check-asan check-tsan memcheck fuzz
.PHONY: all deps check check-run check-torch check-torch-run demo demo-run bench install clean
