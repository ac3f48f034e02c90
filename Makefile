# lowrank: command-line tools for low-rank adaptation of transformers.
# `make help` lists the targets.

VERSION := 0.1.0
PREFIX ?= /usr/local

CXX ?= g++
OPTIMIZE ?= -O2 -march=native
CXXFLAGS ?= $(OPTIMIZE) -g
WARNINGS := -Wall -Wextra -Werror
CPPFLAGS += -Ilib -isystem /usr/include/stb -DLOWRANK_VERSION='"$(VERSION)"' -MMD -MP
# --as-needed: a tool links only the libraries it calls (no OpenBLAS threads in glue-eval).
LDLIBS := -Wl,--as-needed -lboost_program_options -lfmt -lopenblas -ljpeg -lz -lpcre2-8 -lutf8proc -pthread

# `make check SANITIZE=1`: everything built with AddressSanitizer and UndefinedBehaviorSanitizer
# (LeakSanitizer included) into build/sanitize/, and the tests run on those binaries.
ifdef SANITIZE
BUILD := build/sanitize
BIN := $(BUILD)/bin
LIBRARY := $(BUILD)/liblowrank.a
SANITIZER_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# The tools' tests run with LeakSanitizer on, and a leak exits 23 (never a tool's own 0, 1
# or 2), so that a leak fails the test that ran the tool. Options given in the environment
# follow (and win): e.g. ASAN_OPTIONS=log_path=/tmp/asan to gather every report in files.
# The unit tests run without it: at the exit of that one long process, which has loaded
# oneDNN, LeakSanitizer's own tracer crashes ("Tracer caught signal 11").
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:$(ASAN_OPTIONS) LSAN_OPTIONS=exitcode=23:$(LSAN_OPTIONS)
UNIT_SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=0:$(ASAN_OPTIONS)
else
BUILD := build
BIN := bin
LIBRARY := lib/liblowrank.a
SANITIZER_FLAGS :=
SANITIZER_ENV :=
UNIT_SANITIZER_ENV :=
endif
# -fopenmp-simd: `#pragma omp simd` vectorizes float sums (no OpenMP runtime is linked).
ALL_CXXFLAGS := -std=c++20 -pthread -fopenmp-simd $(WARNINGS) $(CXXFLAGS) $(SANITIZER_FLAGS)

# Debian packages: to build, to run the tests, to run the demo, to run the benchmarks, to fuzz.
DEPS_BUILD := g++ make libopenblas-dev libboost-program-options-dev libfmt-dev \
	doctest-dev libstb-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev zlib1g-dev libjpeg62-turbo-dev \
	libdnnl-dev libopenmpi-dev
DEPS_CHECK := mandoc python3 nodejs dataset-fashion-mnist python3-numpy fortunes openmpi-bin file
DEPS_DEMO := fortunes dataset-fashion-mnist gnuplot-nox
DEPS_BENCH := python3-numpy python3-scipy python3-sklearn bc python3-torch nodejs sentencepiece time \
	python3-pil python3-torchvision python-matplotlib-data
DEPS_FUZZ := clang libclang-rt-14-dev

LIBRARY_SOURCES := $(sort $(wildcard lib/*/*.cpp))
LIBRARY_OBJECTS := $(LIBRARY_SOURCES:%.cpp=$(BUILD)/%.o)
TOOL_SOURCES := $(sort $(wildcard tools/*.cpp))
TOOLS := $(TOOL_SOURCES:tools/%.cpp=$(BIN)/%)
UNIT_SOURCES := $(sort $(wildcard tests/unit/*.cpp))
UNIT_OBJECTS := $(UNIT_SOURCES:%.cpp=$(BUILD)/%.o)
UNIT_TESTS := $(BUILD)/unit-tests
MAN_PAGES := $(sort $(wildcard man/*.[1-9]))

.PHONY: FORCE all deps check unit-tests e2e-tests man-lint bench demo demo-quick fuzz install uninstall clean help
.DEFAULT_GOAL := all
.SECONDARY:

all: deps $(TOOLS)

deps:
	@scripts/install-deps $(DEPS_BUILD) $(DEPS_CHECK) $(DEPS_DEMO)

$(LIBRARY): $(LIBRARY_OBJECTS)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(BUILD)/tools/%.o $(LIBRARY)
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -o $@ $< $(LIBRARY) $(LDLIBS)

# Open MPI, when installed (pkg-config's ompi-c): lora-train trains data-parallel under mpirun.
# lib/train/data_parallel.cpp opens libmpi at run time, so only the header is needed here and
# nothing links against it; built without it, lora-train runs alone and says so under mpirun.
ifeq ($(shell pkg-config --exists ompi-c 2>/dev/null && echo yes),yes)
MPI_FLAGS := -DLOWRANK_MPI $(patsubst -I%,-isystem %,$(shell pkg-config --cflags-only-I ompi-c))
$(BUILD)/lib/train/data_parallel.o: CPPFLAGS += $(MPI_FLAGS)
endif
# The flags it was built with, kept in a file that changes with them: the build after
# `make deps` installed Open MPI rebuilds it.
$(BUILD)/mpi-flags: FORCE
	@mkdir -p $(@D)
	@echo '$(MPI_FLAGS)' | cmp -s - $@ || echo '$(MPI_FLAGS)' >$@
$(BUILD)/lib/train/data_parallel.o: $(BUILD)/mpi-flags

# stb_image parses headers with int arithmetic that can overflow on malformed files: make
# that wrap, as it expects, rather than undefined.
$(BUILD)/lib/image/stb_image.o: ALL_CXXFLAGS += -fwrapv

$(BUILD)/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(ALL_CXXFLAGS) -c -o $@ $<

$(UNIT_TESTS): $(UNIT_OBJECTS) $(LIBRARY)
	$(CXX) $(ALL_CXXFLAGS) -o $@ $(UNIT_OBJECTS) $(LIBRARY) $(LDLIBS)

check: all unit-tests e2e-tests man-lint

unit-tests: $(UNIT_TESTS)
	$(UNIT_SANITIZER_ENV) $(UNIT_TESTS)

e2e-tests: $(TOOLS)
	$(SANITIZER_ENV) LOWRANK_BIN=$(BIN) tests/e2e/run-all

man-lint:
	mandoc -Tlint -Wwarning $(MAN_PAGES)

# Benchmark programs that time the library where no tool does yet (bench/*.cpp).
BENCH_PROGRAMS := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(wildcard bench/*.cpp))

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBRARY)
	$(CXX) $(ALL_CXXFLAGS) -o $@ $< $(LIBRARY) $(LDLIBS)

bench: all $(BENCH_PROGRAMS)
	@scripts/install-deps $(DEPS_BENCH)
	bench/run-all

demo: all
	$(MAKE) -C demo -j$(shell nproc)

demo-quick: all
	$(MAKE) -C demo -j$(shell nproc) QUICK=1 OUT=out-quick

# `make fuzz FUZZ_SECONDS=N`: every libFuzzer target in tests/fuzz/ for N seconds each.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps $(DEPS_BUILD) $(DEPS_FUZZ)
	$(MAKE) -f tests/fuzz/Makefile FUZZ_SECONDS=$(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	for page in $(MAN_PAGES); do \
	    section=$${page##*.}; \
	    install -m 644 $$page $(DESTDIR)$(PREFIX)/share/man/man$$section; \
	done

uninstall:
	rm -f $(TOOLS:$(BIN)/%=$(DESTDIR)$(PREFIX)/bin/%) \
	    $(foreach page,$(MAN_PAGES),$(DESTDIR)$(PREFIX)/share/man/man$(subst .,,$(suffix $(page)))/$(notdir $(page)))

clean:
	rm -rf build bin lib/liblowrank.a
	$(MAKE) -C demo clean
	$(MAKE) -C demo clean OUT=out-quick

help:
	@echo "make                 install missing Debian packages, build lib/liblowrank.a and bin/*"
	@echo "make check           build and run every test: unit, end-to-end, man-page lint"
	@echo "make check SANITIZE=1  the same, built with AddressSanitizer and UBSan (in build/sanitize/)"
	@echo "make demo            run the demo experiment (demo/out/REPORT.md; about 15 minutes on 2 cores)"
	@echo "make demo-quick      the demo's pipeline on small settings (demo/out-quick/REPORT.md; a minute)"
	@echo "make bench           run the benchmarks against their peers (installs the peers)"
	@echo "make fuzz            run every fuzz target for FUZZ_SECONDS (now $(FUZZ_SECONDS)) seconds"
	@echo "make deps            install the Debian packages the build, tests and demo need"
	@echo "make install         install tools and man pages under PREFIX (now $(PREFIX))"
	@echo "make uninstall       remove what make install put under PREFIX"
	@echo "make clean           remove build outputs"
	@echo "Variables: PREFIX, DESTDIR, CXX, OPTIMIZE (now $(OPTIMIZE)), CXXFLAGS, SANITIZE, FUZZ_SECONDS"

-include $(LIBRARY_OBJECTS:.o=.d) $(UNIT_OBJECTS:.o=.d) $(TOOL_SOURCES:%.cpp=$(BUILD)/%.d) $(BENCH_PROGRAMS:=.d)
