# qstorefs - build, test, demo and benchmark.  `make check` on a fresh
# machine installs what it needs (make deps), builds and runs every test.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS := -Iinclude -D_GNU_SOURCE -DQS_GOLDEN='"$(abspath tests/golden/golden.qst)"'
BASE    := -std=gnu11 -pthread -fno-strict-aliasing $(WARN)
LIBS    := -lzstd -ljansson -lxxhash -lcrypto -lm -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# hardening of the normal build (what dpkg-buildflags gives Debian packages):
# fortified libc calls, stack protector, full RELRO with immediate binding
HARDEN    := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
HARDEN_LD := -Wl,-z,relro,-z,now

B       := build
CODEC_SRC := $(wildcard codec/*.c codec/common/*.c codec/compress/*.c codec/decompress/*.c)
SERVE_SRC := $(wildcard serve/*.c)
FS_SRC    := $(wildcard fs/*.c)
HDRS    := $(wildcard include/*.h codec/*/*.h serve/*.h fs/*.h cli/*.h)
TOOLS   := $(B)/genmodel $(B)/stcast $(B)/qsbench $(B)/libfailshim.so
FS_LIBS := $(shell pkg-config --libs fuse3 liburing libsystemd 2>/dev/null)
FS_CFLAGS := $(shell pkg-config --cflags fuse3 liburing libsystemd 2>/dev/null)


.PHONY: all bench-deps profile deps deps-apt check test test-unit test-cli test-fs test-asan demo bench clean golden test-big install deb fuzz soak exports
# keep objects of the unit tests between runs
.SECONDARY:

all: $(B)/libqstore.a $(B)/qstore $(B)/qstorefs $(TOOLS)

# ---- objects (normal and sanitizer builds) -----------------------------------
# The library is built with hidden visibility: only QS_API symbols (the
# public headers) leave libqstore.a, see the archive rules below.
$(B)/obj/codec/%.o: codec/%.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"; $(CC) $(CPPFLAGS) $(BASE) -fvisibility=hidden $(CFLAGS) $(HARDEN) -c $< -o $@
$(B)/asan/codec/%.o: codec/%.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC asan $<"; $(CC) $(CPPFLAGS) $(BASE) -fvisibility=hidden -O1 -g $(SAN) -c $< -o $@
$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"; $(CC) $(CPPFLAGS) $(FS_CFLAGS) $(BASE) $(CFLAGS) $(HARDEN) -c $< -o $@
$(B)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC asan $<"; $(CC) $(CPPFLAGS) $(FS_CFLAGS) $(BASE) -O1 -g $(SAN) -c $< -o $@

# libqstore.a: one relocatable object whose hidden symbols are made local,
# so only the public API is exported (make exports lists it).
# libqstore-internal.a: every object as it is, for the unit tests that test
# the library's parts directly.
define archive
	@rm -f $@ $@.o
	ld -r -o $@.o $(1)
	objcopy --localize-hidden $@.o
	ar rcs $@ $@.o
	@rm -f $@.o
endef
$(B)/libqstore.a: $(CODEC_SRC:%.c=$(B)/obj/%.o)
	$(call archive,$^)
$(B)/asan/libqstore.a: $(CODEC_SRC:%.c=$(B)/asan/%.o)
	$(call archive,$^)
$(B)/libqstore-internal.a: $(CODEC_SRC:%.c=$(B)/obj/%.o)
	@rm -f $@; ar rcs $@ $^
$(B)/asan/libqstore-internal.a: $(CODEC_SRC:%.c=$(B)/asan/%.o)
	@rm -f $@; ar rcs $@ $^
# the FUSE-free serving layer (links libqstore only)
$(B)/libqsserve.a: $(SERVE_SRC:%.c=$(B)/obj/%.o)
	@rm -f $@; ar rcs $@ $^
$(B)/asan/libqsserve.a: $(SERVE_SRC:%.c=$(B)/asan/%.o)
	@rm -f $@; ar rcs $@ $^

exports: $(B)/libqstore.a
	@nm -g --defined-only $< | awk '$$2 ~ /[TDBR]/ {print $$3}' | sort

CLI_SRC := $(wildcard cli/*.c)
$(B)/qstore: $(CLI_SRC:%.c=$(B)/obj/%.o) $(B)/libqstore.a
	$(CC) $(BASE) $(CFLAGS) $(HARDEN_LD) -o $@ $^ $(LIBS)
$(B)/asan/qstore: $(CLI_SRC:%.c=$(B)/asan/%.o) $(B)/asan/libqstore.a
	$(CC) $(BASE) $(SAN) -o $@ $^ $(LIBS)

# test data generators (C, so large models cost no Python)
$(B)/genmodel: $(B)/obj/tests/tools/genmodel.o
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ -lm
$(B)/stcast: $(B)/obj/tests/tools/stcast.o $(B)/libqstore-internal.a
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ $(LIBS)

# ---- unit tests (cmocka): the library's parts, the serving layer and the
# namespace, none of them through FUSE ------------------------------------------
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT     := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
UNIT_ASAN := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/unit/%)
UNIT_LIBS = $(LIBS) -lcmocka $(shell pkg-config --libs liburing 2>/dev/null)
$(B)/unit/%: $(B)/obj/tests/unit/%.o $(B)/obj/fs/ns.o $(B)/libqsserve.a $(B)/libqstore-internal.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ $(UNIT_LIBS)
$(B)/asan/unit/%: $(B)/asan/tests/unit/%.o $(B)/asan/fs/ns.o $(B)/asan/libqsserve.a $(B)/asan/libqstore-internal.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(SAN) -o $@ $^ $(UNIT_LIBS)

# ---- set-up ------------------------------------------------------------------
APT_PKGS := build-essential pkg-config libzstd-dev libjansson-dev libxxhash-dev libssl-dev \
	libcmocka-dev libfuse3-dev fuse3 liburing-dev libsystemd-dev zstd python3 python3-venv python3-dev time \
	rsync bc dpkg-dev systemd clang libclang-rt-dev groff-base lintian
deps: deps-apt
	@mkdir -p $(B)
	@tests/tools/setup-venv.sh $(B)/venv
	@tests/tools/fetch-minilm.sh $(B)/minilm

# the Debian packages alone (enough to build and for make demo)
deps-apt:
	@command -v dpkg >/dev/null || { echo "make deps: needs a Debian-like system (apt-get)"; exit 1; }
	@missing=$$(for p in $(APT_PKGS) $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all Debian packages present"; fi

# ---- tests ---------------------------------------------------------------------
test-unit: $(UNIT)
	@set -e; for t in $(UNIT); do echo "== $$t"; CMOCKA_MESSAGE_OUTPUT=stdout $$t; done

CLI_ENV = GENMODEL=$(B)/genmodel QS_SHIM=$(abspath $(B))/libfailshim.so QS_PYTHON=$(if $(wildcard $(B)/venv/bin/python),$(B)/venv/bin/python) QS_MINILM=$(B)/minilm
test-cli: all
	@QSTORE=$(B)/qstore $(CLI_ENV) tests/cli/run-all.sh

test-asan: $(B)/asan/qstore $(B)/asan/qstorefs $(UNIT_ASAN) $(TOOLS)
	@set -e; for t in $(UNIT_ASAN); do echo "== $$t (ASan+UBSan)"; $$t; done
	@QSTORE=$(B)/asan/qstore $(CLI_ENV) QS_QUICK=1 tests/cli/run-all.sh
	@echo "== fs/ (real FUSE mounts, qstorefs under ASan+UBSan)"
	@QS_BUILD=$(abspath $(B)) QSTOREFS=$(abspath $(B))/asan/qstorefs QS_ASAN=1 $(PYTEST) tests/fs
	@echo "== hf/ (loaders on a mount served by qstorefs under ASan+UBSan)"
	@QS_BUILD=$(abspath $(B)) QSTOREFS=$(abspath $(B))/asan/qstorefs QS_MINILM=$(abspath $(B))/minilm $(PYTEST) tests/hf

# real FUSE mounts (needs /dev/fuse and fusermount3)
PYTEST = $(B)/venv/bin/python -m pytest -q -p no:cacheprovider
test-fs: all
	@echo "== fs/ (real FUSE mounts)"
	@QS_BUILD=$(abspath $(B)) $(PYTEST) tests/fs
	@echo "== hf/ (transformers, compressed-tensors and safetensors on the mount)"
	@QS_BUILD=$(abspath $(B)) QS_MINILM=$(abspath $(B))/minilm $(PYTEST) tests/hf

test: test-unit test-cli test-fs test-asan

check: deps
	$(MAKE) all
	$(MAKE) test
	$(MAKE) fuzz FUZZ_SECONDS=60

demo: deps-apt
	@$(MAKE) --no-print-directory -s all
	@tests/demo.sh $(B)

# the peers make bench compares against, in the test venv (torch and numpy kept at its pins)
BENCH_PIP := zipnn==0.5.4 lmzip==1.3.0
bench-deps: deps
	@$(B)/venv/bin/pip install -q --disable-pip-version-check $(BENCH_PIP) torch==2.13.0 numpy==2.3.5 2>&1 \
		| grep -v "^WARNING: Location" || true
	@$(B)/venv/bin/python -c "import zipnn" && test -x $(B)/venv/bin/lmz

bench: all bench-deps
	@tests/bench/bench.sh $(B)

# where the decoder's time goes (README "Where the time goes"): perf over
# qsbench on make bench's generated container
profile: all
	@$(MAKE) --no-print-directory deps-apt EXTRA_APT=linux-perf
	@tests/bench/profile.sh $(B)

# regenerate the committed golden container (only when the format changes on purpose)
golden: all
	tests/golden/make-golden.sh $(B)

clean:
	rm -rf $(B)

$(B)/qsbench: $(B)/obj/tests/bench/qsbench.o $(B)/libqstore.a
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ $(LIBS)

# a shard above 4 GiB; needs ~10 GB of disk, not part of make check
test-big: all
	@QSTORE=$(abspath $(B))/qstore GENMODEL=$(abspath $(B))/genmodel QS_BIG=1 bash -c 'cd tests/cli && bash test_bigshard.sh'

# ---- the FUSE daemon: a thin adapter over serve/ ----------------------------------
$(B)/qstorefs: $(FS_SRC:%.c=$(B)/obj/%.o) $(B)/libqsserve.a $(B)/libqstore.a
	$(CC) $(BASE) $(CFLAGS) $(HARDEN_LD) -o $@ $^ $(FS_LIBS) $(LIBS)
$(B)/asan/qstorefs: $(FS_SRC:%.c=$(B)/asan/%.o) $(B)/asan/libqsserve.a $(B)/asan/libqstore.a
	$(CC) $(BASE) $(SAN) -o $@ $^ $(FS_LIBS) $(LIBS)

# ---- install, .deb ----------------------------------------------------------------
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/qstorefs
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPDIR ?= $(PREFIX)/share/bash-completion/completions

install: $(B)/qstore $(B)/qstorefs
	install -D -m 0755 $(B)/qstore $(DESTDIR)$(BINDIR)/qstore
	install -D -m 0755 $(B)/qstorefs $(DESTDIR)$(BINDIR)/qstorefs
	install -D -m 0644 packaging/man/qstore.1 $(DESTDIR)$(MANDIR)/man1/qstore.1
	install -D -m 0644 packaging/man/qstorefs.8 $(DESTDIR)$(MANDIR)/man8/qstorefs.8
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/qstorefs@.service > $(DESTDIR)$(UNITDIR)/qstorefs@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/qstorefs@.service
	install -D -m 0644 qstorefs.conf.example $(DESTDIR)$(DOCDIR)/qstorefs.conf.example
	install -D -m 0644 codec/FORMAT.md $(DESTDIR)$(DOCDIR)/FORMAT.md
	install -D -m 0644 packaging/completions/qstore $(DESTDIR)$(COMPDIR)/qstore
	install -D -m 0644 packaging/completions/qstorefs $(DESTDIR)$(COMPDIR)/qstorefs

deb: all
	@packaging/mkdeb.sh $(B)

# ---- fuzzing (libFuzzer, clang) ------------------------------------------------
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := container safetensors config
$(B)/fuzz/fuzz_container: tests/fuzz/fuzz_container.c $(CODEC_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(BASE) $(FUZZ_FLAGS) -o $@ $< $(CODEC_SRC) $(LIBS)
$(B)/fuzz/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c $(CODEC_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(BASE) $(FUZZ_FLAGS) -o $@ $< $(CODEC_SRC) $(LIBS)
$(B)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c fs/config.c serve/log.c codec/common/util.c fs/config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(BASE) $(FUZZ_FLAGS) -o $@ $< fs/config.c serve/log.c codec/common/util.c

# Each target for FUZZ_SECONDS from the committed seeds (new inputs go to
# build/fuzz/corpus-*); inputs that once crashed stay in tests/fuzz/regress/
# and are replayed first.
fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(B)/fuzz/corpus-$$t; \
		if [ -n "$$(ls tests/fuzz/regress/$$t 2>/dev/null)" ]; then \
			echo "== fuzz $$t: replaying tests/fuzz/regress/$$t"; \
			$(B)/fuzz/fuzz_$$t tests/fuzz/regress/$$t/* 2>&1 | tail -1; fi; \
		echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
		$(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(B)/fuzz/crash-$$t- $(B)/fuzz/corpus-$$t tests/fuzz/seeds/$$t > $(B)/fuzz/$$t.log 2>&1 || true; \
		grep -E "^stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" $(B)/fuzz/$$t.log || true; \
		grep -q "^stat::number_of_executed_units" $(B)/fuzz/$$t.log || { echo "fuzz $$t did not run:"; tail -3 $(B)/fuzz/$$t.log; exit 1; }; \
		if ls $(B)/fuzz/crash-$$t-* >/dev/null 2>&1; then echo "fuzz $$t: crash, see $(B)/fuzz/crash-$$t-*"; exit 1; fi; \
	done

# LD_PRELOAD shim for the fault-injection tests
$(B)/libfailshim.so: tests/tools/failshim.c
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -shared -fPIC -o $@ $< -ldl

# 16 readers over several models for SOAK_SECONDS (default 600), verified
soak: all
	@$(B)/venv/bin/python tests/soak/soak.py $(B) $(B)/bench
