# The front door. Everything a developer or CI runs starts here:
#   make        build the module, authtokend, authtokenctl and the unit tests
#   make test   build, then run the unit tests (CTest) and the t/ suite (prove)
#   make run    start Redis + authtokend + nginx with the module on 127.0.0.1
#   make stop   stop what `make run` started
#   make bench  measure (loopback only, bounded in time)
# Each target first installs the Debian packages it needs (as root) or
# prints the apt-get line to run.

BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PROVE_ARGS ?= -r t/

MODULE_SO  := $(abspath $(BUILD))/ngx_http_auth_token_module.so

.PHONY: all deps build test unit-test t-test run stop bench clean

all: build

deps:
	@tools/ensure-deps build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test:
	@tools/ensure-deps test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory unit-test t-test

unit-test:
	cd $(BUILD) && ctest --output-on-failure

# The t/ suite starts its own redis-server and nginx on free 127.0.0.1 ports
# and stops them afterwards; nothing here touches system services.
t-test:
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_LOAD_MODULES=$(MODULE_SO) \
	AUTHTOKEN_BUILD_DIR=$(abspath $(BUILD)) \
	prove -It/lib $(PROVE_ARGS)

run:
	@tools/ensure-deps run
	@$(MAKE) --no-print-directory build
	@tools/run-demo start $(abspath $(BUILD))

stop:
	@tools/run-demo stop $(abspath $(BUILD))

bench:
	@tools/ensure-deps bench
	@$(MAKE) --no-print-directory build
	@tools/bench $(abspath $(BUILD))

clean:
	rm -rf $(BUILD) t/servroot t/servroot-*
