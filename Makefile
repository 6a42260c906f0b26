# subway — build, test, demo.  Plain make; see README.md.
CC       ?= cc
BUILD    := build
SANITIZE ?= 0

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral -Werror
HARDEN   := -fstack-protector-strong -fPIE -D_FORTIFY_SOURCE=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Isrc
LDFLAGS  += -pie -Wl,-z,relro,-z,now -pthread
LDLIBS   := -lmnl -lssl -lcrypto

ifeq ($(SANITIZE),1)
OBJDIR   := $(BUILD)/obj-san
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
            -fstack-protector-strong -fPIE
LDFLAGS  += -fsanitize=address,undefined
else
OBJDIR   := $(BUILD)/obj
CFLAGS   += $(HARDEN)
endif

SRCS     := $(shell find src -name '*.c' | sort)
LIBSRCS  := $(filter-out src/main.c src/tools/%,$(SRCS))
OBJS     := $(SRCS:%.c=$(OBJDIR)/%.o)
LIBOBJS  := $(LIBSRCS:%.c=$(OBJDIR)/%.o)
LIB      := $(OBJDIR)/libsubway.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PYTEST   ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?=

.PHONY: all deps test unit integration demo clean fuzz fuzz-smoke format bench bench-smoke bench-relay bench-parse
all: $(BUILD)/subway $(BUILD)/subway-load

deps:
	@sh scripts/deps.sh

# The binary and objects depend on the flags, so SANITIZE=1 and back rebuilds.
$(BUILD)/flags.$(SANITIZE): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:
# Which build the binaries were last linked from: switching back relinks.
$(BUILD)/mode: FORCE
	@mkdir -p $(BUILD)
	@echo '$(SANITIZE)' | cmp -s - $@ || echo '$(SANITIZE)' > $@

$(OBJDIR)/%.o: %.c $(BUILD)/flags.$(SANITIZE)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIBOBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/subway: $(OBJDIR)/src/main.o $(LIB) $(BUILD)/flags.$(SANITIZE) $(BUILD)/mode
	@$(CC) $(LDFLAGS) -o $@ $(OBJDIR)/src/main.o $(LIB) $(LDLIBS)
	@echo "built $@$(if $(filter 1,$(SANITIZE)), (address,undefined sanitizers))"

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(BUILD)/flags.$(SANITIZE) $(BUILD)/mode
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB) -lcmocka $(LDLIBS)

# The benchmark's load tool (bench/README.md); not part of subway itself.
$(BUILD)/subway-load: $(OBJDIR)/src/tools/load.o $(LIB) $(BUILD)/flags.$(SANITIZE) $(BUILD)/mode
	@$(CC) $(LDFLAGS) -o $@ $(OBJDIR)/src/tools/load.o $(LIB) $(LDLIBS)
	@echo "built $@"

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: $(BUILD)/subway
	SUBWAY=$(CURDIR)/$(BUILD)/subway $(PYTEST) -q -rs tests/integration $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory integration

# The benchmark (bench/README.md): direct vs subway vs sshuttle on one lab.
# bench-smoke runs every case once in under a minute and judges no number.
bench: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench.py $(BENCH_ARGS)

bench-smoke: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench.py --smoke --out $(BUILD)/bench-smoke $(BENCH_ARGS)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

# libFuzzer targets: one per parser of untrusted bytes (tests/fuzz/fuzz_*.c),
# linked against one instrumented copy of the library (built once).
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=address,undefined
FUZZ_OBJDIR := $(BUILD)/fuzz/obj
FUZZ_LIBOBJS := $(LIBSRCS:%.c=$(FUZZ_OBJDIR)/%.o)
FUZZ_LIB := $(BUILD)/fuzz/libsubway-fuzz.a
$(FUZZ_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_LIB): $(FUZZ_LIBOBJS)
	@rm -f $@
	@ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS) -pthread
fuzz-smoke: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  $$f -runs=20000 -seed=1 $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | tail -n 1 || exit 1; done
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | tail -n 3 || exit 1; done

# TLS against the splice relay: throughput and new-connection cost.
BENCH_RELAY_MIB ?= 1024
$(BUILD)/perf/relay_bench: tests/perf/relay_bench.c $(LIB) $(BUILD)/flags.$(SANITIZE)
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-relay: $(BUILD)/perf/relay_bench
	@$(BUILD)/perf/relay_bench $(BENCH_RELAY_MIB)

# What one pkt4_parse costs, in instructions (callgrind) and nanoseconds.
$(BUILD)/perf/parse_bench: tests/perf/parse_bench.c $(LIB) $(BUILD)/flags.$(SANITIZE)
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-parse: $(BUILD)/perf/parse_bench
	@$(BUILD)/perf/parse_bench
	@for k in 0 1 2 3 4 5 all; do \
	  valgrind --tool=callgrind --toggle-collect=pkt4_parse --callgrind-out-file=/dev/null \
	    $(BUILD)/perf/parse_bench $${k#all} 2>&1 | \
	  awk -v k=$$k '/^kind/ && k != "all" { w = $$0 } /parses/ { n = $$1 } /Collected/ { c = $$4 } \
	    END { printf "%-40s %6.1f instructions per parse\n", k == "all" ? "all kinds" : w, c / n }'; done

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d) $(FUZZ_LIBOBJS:.o=.d)
