# envdb: the commands people type. `make` builds both extensions, `make check`
# runs every suite, `make demo` shows envdb on SQLite with no server.
#
# The host-neutral core, the SQLite extension (build/envdb.so), the unit tests
# and the Postgres install script are built by CMake; the Postgres extension
# is a PGXS build in pg_ext/ that links the core. `make install` builds only
# what the Postgres extension needs (the core and the install scripts), so it
# needs neither GoogleTest nor SQLite.

PG_CONFIG ?= pg_config
BUILD ?= build
JOBS ?= 2
CMAKE_BUILD_TYPE ?= RelWithDebInfo
ENVDB_WERROR ?= $(if $(CI),1,0)
CMAKE_FLAGS ?=
# The one version, from shared/core/version.hpp.
VERSION := $(shell sed -n 's/.*kVersion = "\(.*\)".*/\1/p' shared/core/version.hpp)
DISTDIR ?= .
DIST := $(DISTDIR)/envdb-$(VERSION).tar.gz

.PHONY: all setup core pg pg-module install uninstall check check-fast check-crash installcheck demo \
  bench fuzz clean dist distcheck

all: core
	@$(MAKE) --no-print-directory pg-module

setup:
	@scripts/setup.sh

# Configures $(BUILD) with CMake. Before that, scripts/check-deps.sh $(1) names
# every build dependency that target lacks at once, with the command that
# installs them: before the first configure, and for `make` (all) also when an
# earlier configure left a part out for a missing dependency (ENVDB_NOT_BUILT).
define configure
	@if ! test -f $(BUILD)/CMakeCache.txt || \
	  { test "$(1)" = all && grep -q '^ENVDB_NOT_BUILT:INTERNAL=.' $(BUILD)/CMakeCache.txt; }; then \
	  PG_CONFIG=$(PG_CONFIG) CMAKE_FLAGS="$(CMAKE_FLAGS)" scripts/check-deps.sh $(1); fi
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) \
	  -DENVDB_WERROR=$(if $(filter 1,$(ENVDB_WERROR)),ON,OFF) $(CMAKE_FLAGS) >/dev/null
endef

# Everything CMake builds: the core, the SQLite extension, the unit tests and
# the Postgres install scripts.
core:
	$(call configure,all)
	@cmake --build $(BUILD) -j$(JOBS)

# The Postgres extension and only what it needs from CMake.
pg:
	$(call configure,pg)
	@cmake --build $(BUILD) -j$(JOBS) --target envdb_core envdb_pg_sql
	@$(MAKE) --no-print-directory pg-module

pg-module:
	@$(MAKE) --no-print-directory -j$(JOBS) -C pg_ext PG_CONFIG=$(PG_CONFIG) \
	  CORE_BUILD=$(abspath $(BUILD)) ENVDB_WERROR=$(ENVDB_WERROR)

# Honours DESTDIR and PG_CONFIG, like any PGXS extension.
install: pg
	@$(MAKE) --no-print-directory -C pg_ext install PG_CONFIG=$(PG_CONFIG) \
	  CORE_BUILD=$(abspath $(BUILD))

uninstall:
	@$(MAKE) --no-print-directory -C pg_ext uninstall PG_CONFIG=$(PG_CONFIG)

# pg_regress against a running server (PGHOST/PGPORT...), after `make install`.
installcheck:
	@$(MAKE) --no-print-directory -C pg_ext installcheck PG_CONFIG=$(PG_CONFIG)

check: setup
	@test/run_all.sh

# The everyday loop: core unit tests and the SQLite end-to-end suite only.
check-fast: setup
	@test/run_fast.sh

# The postgres worker's crash series at full length (test/pg/test_worker_crash.py):
# CRASH_ROUNDS environment lives per crash mode (kill -9 of the worker, pg_ctl
# stop -m immediate), one crash inside each kind of work per life, against a
# cluster of PG_CONFIG's Postgres that the test starts (run as root, like make
# check). make check runs 4 lives per mode.
# Then test/pg/test_copy_pg.py with COPY_KILLS distinct kill -9 points of the
# worker inside copies, resets, backups and restores (make check runs 30), in a
# pg_virtualenv cluster with envdb preloaded.
CRASH_ROUNDS ?= 50
COPY_KILLS ?= 54
check-crash: install
	@ENVDB_PG_BIN=$$($(PG_CONFIG) --bindir) ENVDB_WORKER_CRASH_ROUNDS=$(CRASH_ROUNDS) \
	  /usr/bin/python3 test/pyrun.py test/pg/test_worker_crash.py
	@ENVDB_COPY_KILLS=$(COPY_KILLS) pg_virtualenv -t -o shared_preload_libraries=envdb \
	  /usr/bin/python3 test/pyrun.py test/pg/test_copy_pg.py

demo: setup
	@$(MAKE) --no-print-directory core >$(BUILD).demo.log 2>&1 || { cat $(BUILD).demo.log; exit 1; }
	@scripts/demo.sh

# libFuzzer targets for every parser, FUZZ_SECONDS each (default 60).
fuzz: setup
	@scripts/fuzz.sh

# Optimised build in build-bench/ (and make install from it), envdb measured
# next to a baseline; tables printed and written to bench/results/latest.md.
bench:
	@bench/run.sh

# The source tarball envdb-<version>.tar.gz: the committed tree (git archive
# of HEAD) and nothing generated; the install scripts are made by the build.
dist:
	@git diff --quiet HEAD -- || echo "make dist: uncommitted changes are not in the tarball (it archives HEAD)" >&2
	@mkdir -p $(DISTDIR)
	@git archive --format=tar.gz --prefix=envdb-$(VERSION)/ -o $(DIST) HEAD
	@echo $(DIST)

# Unpacks the tarball in a scratch directory, builds the core, both SQLite
# builds and the Postgres scripts there, and runs the static-library program
# and the SQLite end-to-end suite against what it built.
distcheck:
	@scripts/distcheck.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-bench build-tidy
	@$(MAKE) --no-print-directory -C pg_ext clean PG_CONFIG=$(PG_CONFIG)
