# fedlogin: build, demo and tests. Run as root on Debian 12.
#
#   make demo    a sandboxed first login: IdP, directory, daemon, real PAM
#   make check   every test (unit, C shim, integration through real parts)
#   make         build the daemon, CLI, directory service and PAM module
#
# Each target installs what it needs (scripts/deps.sh: Debian packages and a
# Python venv in .venv) and changes none of the host's login files.

SWIFT       ?= swift
BIN         := $(CURDIR)/.build/debug
OUT         := $(CURDIR)/out
PYTHON      := $(CURDIR)/.venv/bin/python
export FEDLOGIN_BIN := $(BIN)
export FEDLOGIN_OUT := $(OUT)

.PHONY: fuzz-replay fuzz-swift
.PHONY: all deps build modules demo check unit-tests c-tests integration-tests need-root clean bench deb lint-deb man-check system-tests fuzz

all: build modules

need-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "fedlogin: 'make $(MAKECMDGOALS)' needs root: it installs Debian packages and runs the tests in a private mount namespace (the host's /etc is never changed). Run it with sudo."; \
		exit 1; fi

deps: need-root
	bash scripts/deps.sh

build: deps
	$(SWIFT) build

modules: deps
	$(MAKE) -C pam OUT=$(OUT)

demo: build modules
	$(PYTHON) scripts/demo.py

unit-tests: build
	$(SWIFT) test --disable-xctest
	$(MAKE) fuzz-replay

# The Swift fuzz targets' corpora (and any crash kept there) through the
# ordinary build: a regression test of every input fuzzing found interesting.
fuzz-replay:
	$(BIN)/fedlogin-fuzz wire Tests/fixtures/protocol fuzz/corpus/frame fuzz/corpus/swift-wire
	$(BIN)/fedlogin-fuzz directory fuzz/corpus/swift-directory
	$(BIN)/fedlogin-fuzz config fuzz/corpus/swift-config

c-tests: modules
	$(MAKE) -C pam OUT=$(OUT) check
	$(MAKE) -C pam OUT=$(OUT) fuzz-smoke

integration-tests: build modules
	$(MAKE) -C pam OUT=$(OUT) asan-module
	bash Tests/integration/run-in-namespace.sh $(PYTHON) -m pytest -q -p no:cacheprovider Tests/integration

# The Debian package, out/fedlogin_<version>_amd64.deb (release build, static Swift stdlib).
deb: deps
	bash packaging/build-deb.sh

# lintian: no errors, no warnings (docs/packaging.md lists the info tags).
lint-deb: deb
	lintian --fail-on error,warning $$(ls -t $(OUT)/fedlogin_*_amd64.deb | head -1)

# Every configuration key documented in fedlogin.conf(5); the man pages render.
man-check: deps
	bash docs/man/build.sh --check

# The package under a real systemd: a booted Debian 12 container (systemd-nspawn).
system-tests: deb
	bash Tests/system/test_systemd.sh $$(ls -t $(OUT)/fedlogin_*_amd64.deb | head -1)

check: need-root unit-tests c-tests integration-tests man-check lint-deb system-tests

# Long fuzzing run (docs/security.md#fuzzing): 10 million executions per target,
# the C codec's and the Swift decoders' (a third build flavour, .build-fuzz).
FUZZ_RUNS ?= 10000000
fuzz: deps
	$(MAKE) -C pam OUT=$(OUT) fuzz
	$(MAKE) fuzz-swift

fuzz-swift:
	$(SWIFT) build --product fedlogin-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld --scratch-path .build-fuzz
	bash fuzz/run-swift.sh .build-fuzz/debug/fedlogin-fuzz $(FUZZ_RUNS) $(OUT)/fuzz

# Benchmarks (not part of check): results go to docs/performance.md.
bench: need-root build modules
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf .build .build-release .build-fuzz out
