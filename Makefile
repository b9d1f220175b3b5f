# The front door. Everything a developer or CI runs starts here:
#   make        build the module, authtokend, authtokenctl and the unit tests
#   make check  check the C++ formatting (clang-format), build, then run the
#               unit tests (CTest) and the t/ suite (prove); make format fixes
#               the formatting
#   make test   check, then the same under ASan+UBSan, valgrind, the fuzzers,
#               the module's files against a second, newer nginx, the
#               Debian packages, and the CI subset of the planted faults
#   make test-mutation   every planted fault in mutants/ must be caught
#   make run    start Redis + authtokend + nginx with the module on 127.0.0.1
#   make stop   stop what `make run` started
#   make bench  measure (loopback only, bounded in time)
#   make capacity  memory per user at 10^5 and 10^6 users, lookups and
#               logins per core (docs/capacity.md; CAPACITY_ARGS=--quick)
#   make install  install (PREFIX=/usr/local, DESTDIR=); make deb  the
#               Debian packages; make test-install  run them unpacked
# Each target first installs the Debian packages it needs (as root) or
# prints the apt-get line to run.

BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PROVE_ARGS ?= -r t/

MODULE_SO  := $(abspath $(BUILD))/ngx_http_auth_token_module.so

.PHONY: all deps build check format format-check test unit-test t-test test-asan test-valgrind \
        test-fuzz test-nginx-matrix test-mutation run stop bench soak \
        capacity clean

all: build

deps:
	@tools/ensure-deps build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Everything CI runs (.ci/run): the suite, then the hardening runs.
test:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory test-nginx-matrix
	@$(MAKE) --no-print-directory test-valgrind
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory test-install
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-mutation MUTANTS=ci

# The quick loop while developing.
check:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory unit-test t-test

# Every C++ file as .clang-format says (clang-format 14, Debian 12's);
# `make format` rewrites them.
FORMAT_FILES = $(shell find src fuzz -name '*.cpp' -o -name '*.h' | sort)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) \
	  || { echo "make format-check: run 'make format' (clang-format) and commit" >&2; exit 1; }
format:
	clang-format -i $(FORMAT_FILES)

unit-test:
	cd $(BUILD) && ctest --output-on-failure

# The t/ suite starts its own redis-server and nginx on free 127.0.0.1 ports
# and stops them afterwards; nothing here touches system services.
t-test:
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_LOAD_MODULES=$(MODULE_SO) \
	AUTHTOKEN_BUILD_DIR=$(abspath $(BUILD)) \
	prove -It/lib $(PROVE_ARGS)

# The module's files (t/0*, t/5*) against a second, newer nginx: the newest
# nginx source of Debian's next release (tools/build-nginx: trixie by
# default, NGINX_SUITE=... for another), built with our module through
# nginx's own --add-dynamic-module and our `config` file.  By default that
# nginx is also the pool-debug ASan build (NGX_DEBUG_PALLOC: every pool
# allocation is its own malloc, so ASan sees overflows that the pool hides
# from test-asan); NGINX_FLAVOUR=plain builds it without.  The download and
# build are cached in $(NGINX_BUILD); the issuer binaries come from $(BUILD).
NGINX_BUILD   ?= build-nginx
NGINX_FLAVOUR ?= palloc-asan
MATRIX_PROVE  ?= t/0*.t t/116-schema3-token-key-migration.t t/5*.t
MATRIX_SANITIZER_DIR := $(abspath $(NGINX_BUILD))/sanitizer-reports

test-nginx-matrix:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory build
	@set -e; out=$$(tools/build-nginx $(NGINX_FLAVOUR) $(NGINX_BUILD)); \
	nginx=$$(echo "$$out" | sed -n 1p); so=$$(echo "$$out" | sed -n 2p); \
	run=$$nginx; [ "$(NGINX_FLAVOUR)" = plain ] || run=$(abspath tools/nginx-asan); \
	echo "test-nginx-matrix: $$($$nginx -v 2>&1) ($(NGINX_FLAVOUR)) with $$so"; \
	rm -rf $(MATRIX_SANITIZER_DIR) && mkdir -p $(MATRIX_SANITIZER_DIR); \
	rc=0; \
	AUTHTOKEN_SANITIZER_DIR=$(MATRIX_SANITIZER_DIR) NGINX_ASAN_BINARY=$$nginx \
	TEST_NGINX_BINARY=$$run TEST_NGINX_LOAD_MODULES=$$so \
	AUTHTOKEN_BUILD_DIR=$(abspath $(BUILD)) \
	TEST_NGINX_SERVROOT=$(abspath $(NGINX_BUILD))/servroot \
	prove -It/lib $(MATRIX_PROVE) || rc=1; \
	if [ -n "$$(ls -A $(MATRIX_SANITIZER_DIR))" ]; then \
	    echo "sanitizer reports:"; head -50 $(MATRIX_SANITIZER_DIR)/*; rc=1; \
	else echo "test-nginx-matrix: no sanitizer reports"; fi; \
	exit $$rc

# The whole suite again with AddressSanitizer and UBSan in the module (loaded
# into Debian's nginx with the runtime preloaded), the daemon, the CLI and
# the unit tests. Any sanitizer report fails the target.
ASAN_BUILD := build-asan
SANITIZER_DIR := $(abspath $(ASAN_BUILD))/sanitizer-reports

test-asan:
	@tools/ensure-deps test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAUTHTOKEN_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@rm -rf $(SANITIZER_DIR) && mkdir -p $(SANITIZER_DIR)
	cd $(ASAN_BUILD) && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(SANITIZER_DIR)/unit \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZER_DIR)/unit-ubsan \
	ctest --output-on-failure
	AUTHTOKEN_SANITIZER_DIR=$(SANITIZER_DIR) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(SANITIZER_DIR)/issuer \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZER_DIR)/issuer-ubsan \
	TEST_NGINX_BINARY=$(abspath tools/nginx-asan) \
	TEST_NGINX_LOAD_MODULES=$(abspath $(ASAN_BUILD))/ngx_http_auth_token_module.so \
	AUTHTOKEN_BUILD_DIR=$(abspath $(ASAN_BUILD)) \
	prove -It/lib $(PROVE_ARGS)
	@if [ -n "$$(ls -A $(SANITIZER_DIR))" ]; then \
	    echo "sanitizer reports:"; head -50 $(SANITIZER_DIR)/*; exit 1; \
	else echo "test-asan: no sanitizer reports"; fi

# nginx with the module under memcheck (master_process off), driven through
# a representative part of the suite; fails on any invalid access or
# definite leak through our code.
test-valgrind:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory build
	tools/valgrind-check $(abspath $(BUILD))

# Each libFuzzer target from its seed corpus for FUZZ_SECONDS; each checks an
# invariant (see fuzz/README.md), not only crashes.
FUZZ_SECONDS ?= 30

test-fuzz:
	@tools/ensure-deps test
	NGX_TREE=$(abspath $(BUILD))/nginx tools/fuzz $(abspath $(BUILD))/fuzz $(FUZZ_SECONDS)

# Each planted fault in mutants/*.mut is applied, alone, to a copy of the
# tree (build-mutate/, rebuilt incrementally), and the tests it names must
# fail (see mutants/README.md). MUTANTS=all (the default) runs every one;
# `make test` runs MUTANTS=ci, the fixed subset in mutants/ci.list; any
# list of mutant names works too: make test-mutation MUTANTS="a b". Every
# mutant must still apply (tools/mutate --check all), whichever run.
MUTANTS ?= all

test-mutation:
	@tools/ensure-deps test
	@tools/mutate --check all >/dev/null
	tools/mutate $(MUTANTS)

run:
	@tools/ensure-deps run
	@$(MAKE) --no-print-directory build
	@tools/run-demo start $(abspath $(BUILD))

stop:
	@tools/run-demo stop $(abspath $(BUILD))

# A bounded soak (default 3 minutes, loopback): wrk with valid, invalid and
# inactive tokens while the CLI rotates, revokes and deactivates and a
# client logs in through the issuer; then every verdict is checked against
# the final Redis state, and worker memory and logs are reported.
SOAK_SECONDS ?= 180

soak:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory build
	@tools/soak $(abspath $(BUILD)) $(SOAK_SECONDS)

bench:
	@tools/ensure-deps bench
	@$(MAKE) --no-print-directory build
	@tools/bench $(abspath $(BUILD))

# docs/capacity.md's figures: private redis-server, redis-benchmark and
# authtokend on loopback (about 15 minutes; --quick: 10^4 users, about
# 20 s, which t/600-capacity-quick.t runs in the suite).
CAPACITY_ARGS ?=

capacity:
	@tools/ensure-deps capacity
	@$(MAKE) --no-print-directory build
	@tools/capacity --build-dir $(abspath $(BUILD)) $(CAPACITY_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(DEB_BUILD) $(NGINX_BUILD) build-mutate t/servroot t/servroot-*

# --- install and Debian packages -----------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: CMake's install rules
# (CMakeLists.txt, "install"); PREFIX=/usr is the Debian packages' layout.
# make deb: the two Debian packages, built by dpkg-buildpackage from a copy
# of the tree in $(DEB_BUILD) (kept, so the next build is incremental); the
# .deb files land in $(DEB_BUILD). make test-install: install them into a
# throwaway root and run the quickstart against the installed files.
PREFIX    ?= /usr/local
DEB_BUILD ?= build-deb

.PHONY: install deb test-install

install:
	@tools/ensure-deps install
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

deb:
	@tools/ensure-deps deb
	@tools/build-deb $(abspath $(DEB_BUILD))

test-install: deb
	@tools/ensure-deps test
	tools/test-install $(abspath $(DEB_BUILD))
