# fedlogin: build, demo and tests. Run as root on Debian 12.
#
#   make demo    a sandboxed first login: IdP, directory, daemon, real PAM
#   make check   every test (unit, C shim, integration through real parts,
#                the package under a real systemd); prints how long each
#                step took against its budget
#   make test    the unit suites alone (Swift and C): no root, no packages
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

# The executables linked with the Swift runtime inside, as the package needs
# them. A debug build links statically only when Foundation's archives are
# named again, in this order (the release build's dead stripping hides that).
STATIC_LINK := --static-swift-stdlib -Xlinker -z -Xlinker now \
	$(foreach l,FoundationNetworking FoundationXML Foundation FoundationInternationalization \
		FoundationEssentials CoreFoundation _FoundationICU _FoundationCollections _FoundationCShims \
		_CFURLSessionInterface _CFXMLInterface swiftSynchronization BlocksRuntime dispatch stdc++,-Xlinker -l$(l))

# Each step of `make check` is timed against a budget (seconds on this
# 2-core machine, packages installed); the summary ends the run.
TIMES := $(OUT)/check-times.txt
TIMED = bash scripts/timed.sh $(TIMES)

.PHONY: fuzz-replay fuzz-swift
.PHONY: format format-check
.PHONY: all deps build modules demo check test unit-tests c-tests integration-tests need-root clean bench deb lint-deb man-check system-tests fuzz static check-deb

all: build modules

need-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "fedlogin: 'make $(MAKECMDGOALS)' needs root: it installs Debian packages and runs the tests in a private mount namespace (the host's /etc is never changed). Run it with sudo."; \
		exit 1; fi

deps: need-root
	bash scripts/deps.sh

build: deps
	$(TIMED) "swift build" 330 $(SWIFT) build

# The executables linked again with the Swift runtime inside (a relink, no
# compile): the integration tests run fedlogind, fedloginctl and
# fedlogin-directoryd; the package of `make check` holds fedlogin, the three in
# one executable.
static: build
	$(TIMED) "static relink" 60 $(SWIFT) build $(STATIC_LINK)

modules: deps
	$(MAKE) -C pam OUT=$(OUT)

demo: build modules
	$(PYTHON) scripts/demo.py

unit-tests: build
	$(TIMED) "unit tests" 120 sh -c '$(SWIFT) build --build-tests && $(SWIFT) test --skip-build --disable-xctest'
	$(MAKE) fuzz-replay

# Formatting by the committed configurations: .swift-format (swift format,
# part of the toolchain) and .clang-format (the C modules, Debian's
# clang-format). `make format` applies both; check fails on any difference.
C_SOURCES := pam/*.c pam/*.h pam/tests/*.c fuzz/*.c Tests/system/pam_client.c
format:
	$(SWIFT) format format -i -r Sources Tests Package.swift
	clang-format -i $(C_SOURCES)

format-check: deps
	$(TIMED) "formatting" 30 sh -c '$(SWIFT) format lint --strict -r Sources Tests Package.swift && clang-format --dry-run --Werror $(C_SOURCES)'

# The unit suites alone: Swift Testing and the C module tests. Needs no root
# and installs nothing (the toolchain and libpam0g-dev must be there).
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest
	$(MAKE) fuzz-replay
	$(MAKE) -C pam OUT=$(OUT) check

# The Swift fuzz targets' corpora (and any crash kept there) through the
# ordinary build: a regression test of every input fuzzing found interesting.
fuzz-replay:
	$(BIN)/fedlogin-fuzz wire Tests/fixtures/protocol fuzz/corpus/frame fuzz/corpus/swift-wire
	$(BIN)/fedlogin-fuzz directory fuzz/corpus/swift-directory
	$(BIN)/fedlogin-fuzz config fuzz/corpus/swift-config

c-tests: modules
	$(TIMED) "C tests" 90 sh -c '$(MAKE) -C pam OUT=$(OUT) check && $(MAKE) -C pam OUT=$(OUT) fuzz-smoke'

# Two shards side by side, each in a namespace of its own; the ten slowest
# tests of each are listed.
integration-tests: build modules
	$(MAKE) -C pam OUT=$(OUT) asan-module
	$(TIMED) "integration tests" 300 $(PYTHON) Tests/integration/run_shards.py --shards 2 --out $(OUT) $(PYTHON) --durations=10

# The Debian package, out/fedlogin_<version>_amd64.deb (release build, static Swift stdlib).
deb: deps
	bash packaging/build-deb.sh

# The package `make check` installs: the tested build, stripped, gzip -1
# (the release package, `make deb`, adds 7 minutes of release
# build and 1.5 of xz, and holds the same files).
# Run after `make static` (check does): build-deb refuses a fedlogin that
# links the Swift runtime dynamically.
check-deb: modules
	$(TIMED) "package" 60 env FEDLOGIN_DEB_COMPRESSION=gzip FEDLOGIN_DEB_LEVEL=1 FEDLOGIN_DEB_BIN=$(BIN) bash packaging/build-deb.sh --no-build

# Which package lint-deb and system-tests take: `make deb`'s, or check's.
DEB_TARGET ?= deb

# lintian: no errors, no warnings (docs/packaging.md lists the info tags).
lint-deb: $(DEB_TARGET)
	$(TIMED) "lintian" 90 lintian --fail-on error,warning $$(ls -t $(OUT)/fedlogin_*_amd64.deb | head -1)

# Every configuration key documented in fedlogin.conf(5); the man pages render.
man-check: deps
	bash docs/man/build.sh --check

# The package under a real systemd: a booted Debian 12 container (systemd-nspawn).
system-tests: $(DEB_TARGET)
	$(TIMED) "system tests" 150 bash Tests/system/test_systemd.sh $$(ls -t $(OUT)/fedlogin_*_amd64.deb | head -1)

check: need-root
	@mkdir -p $(OUT) && rm -f $(TIMES)
	$(MAKE) format-check unit-tests c-tests static integration-tests man-check
	$(MAKE) lint-deb system-tests DEB_TARGET=check-deb
	@echo "make check: time per step"; cat $(TIMES)

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
