# screening-gateway — see README.  `make` builds build/bin/; `make check`
# builds with ASan+UBSan into build/check/ and runs the TAP tests in t/.

PREFIX   ?= /usr/local
DESTDIR  ?=
# Where the unit goes (systemd also searches /usr/local/lib/systemd/system),
# the configuration, the data directory and the service's user.
UNITDIR  ?= $(PREFIX)/lib/systemd/system
CONFDIR  ?= /etc/screening-gateway
STATEDIR ?= /var/lib/screening-gateway
GW_USER  ?= screening-gateway
VERSION  := 0.1.0

CC       ?= cc
PKGS     := sqlite3 openssl zlib libpng libjpeg libopenjp2 charls jansson libcurl libwebsockets
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

BUILD    ?= build
OPT      ?= -O2 -g
SAN      ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) $(SAN) \
	     -DGW_VERSION='"$(VERSION)"' -Ilib -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = -Wl,--as-needed $(PKG_LIBS) -lm $(LDLIBS)

LIB_SRC  := $(wildcard lib/*/*.c)
LIB_HDR  := $(wildcard lib/*/*.h)
SQL      := $(wildcard sql/*.sql)
GEN_OBJ  := $(BUILD)/obj/gen/dicom_dict.o $(SQL:sql/%.sql=$(BUILD)/obj/gen/sql_%.o)
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/obj/lib/%.o) $(GEN_OBJ)
PROGS    := $(patsubst bin/%.c,%,$(wildcard bin/*.c))
BINS     := $(PROGS:%=$(BUILD)/bin/%)
UNITS    := $(patsubst t/unit/%.c,%,$(wildcard t/unit/*.c))
UNIT_BINS := $(UNITS:%=$(BUILD)/t/%)
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/replay/fuzz_%)
DICT     := /usr/share/libdcmtk17/dicom.dic

CHECK_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all check check-layers test run deps deps-run install install-user uninstall bench \
	fuzz fuzzers clean units demo
.SUFFIXES:
# Keep generated sources (build/gen/*.c) instead of deleting them as intermediates.
.SECONDARY:

all: $(BINS)

units: $(UNIT_BINS) $(REPLAY_BINS)

$(BUILD)/gen/dicom_dict.c: tools/gendict.awk $(DICT)
	@mkdir -p $(@D)
	awk -f tools/gendict.awk $(DICT) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/dicom_dict.o: $(BUILD)/gen/dicom_dict.c lib/dicom/dicom.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Schemas are compiled in: sql/pacs.sql becomes the string db_schema_pacs.
$(BUILD)/gen/sql_%.c: sql/%.sql tools/embed.awk
	@mkdir -p $(@D)
	awk -v name=db_schema_$* -f tools/embed.awk $< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/sql_%.o: $(BUILD)/gen/sql_%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/lib/libgateway.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: bin/%.c $(BUILD)/lib/libgateway.a $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/lib/libgateway.a $(LDLIBS_ALL)

# storescp-hook runs once per image: linking libcrypto statically saves
# the dynamic loader about 3 ms of relocations per run (bench/ingest).
$(BUILD)/bin/storescp-hook: LDLIBS_ALL = -Wl,-Bstatic -lcrypto -Wl,-Bdynamic \
	-Wl,--as-needed $(PKG_LIBS) -lm $(LDLIBS)

$(BUILD)/t/%: t/unit/%.c $(BUILD)/lib/libgateway.a $(LIB_HDR) t/unit/tap.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/lib/libgateway.a $(LDLIBS_ALL)

# lib/ is layered (tools/check-layers: each subsystem includes only lower
# ones, through their one public header).
check-layers:
	@sh tools/check-layers

# The test build: ASan + UBSan, its own tree, then every t/*.t under prove.
# The programs make run builds (-O2, where the compiler warns of more)
# must build too.
check: deps check-layers
	$(MAKE) all
	$(MAKE) BUILD=build/check OPT='-O1 -g' SAN='$(CHECK_SAN)' all units
	GW_BUILD=$(CURDIR)/build/check GW_ROOT=$(CURDIR) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	prove -j2 --timer t/

test: check

# Debian packages only (no npm: a hospital box has no registry).  The
# configuration is ./gateway.env or the defaults, never the installed
# /etc/screening-gateway/gateway.env; the log goes to the terminal and to
# gatewayd.log in the data directory; the exit status is gatewayd's
# (tools/run).
run: deps-run all
	@sh tools/run

# Everything to build, run and test (CI, make check).
deps:
	@sh tools/deps all

deps-run:
	@sh tools/deps run

# The whole gateway played by modality-emu: two worklist items, eight
# images, and what arrived (tools/demo; data in a new directory under
# $TMPDIR, never GATEWAY_DATA_DIR).
demo: deps-run all
	sh tools/demo

# Benchmarks print their figures (README quotes them); each compares with
# a dcmtk reference in the same run (bench/tomo: with the 64 MB target).
# The units build their helpers: t/findbench (bench/qr's C-FIND client),
# t/gen_tomo (bench/ingest, bench/tomo), t/maxrss (bench/tomo).
bench: deps all units
	bench/ingest
	bench/mwl
	bench/thumb
	bench/upload
	bench/qr
	bench/purge
	bench/tomo

# libFuzzer targets (clang): build/fuzz/fuzzers/fuzz_<t> (make fuzzers),
# each run by make fuzz for FUZZ_SECONDS on its own seeds, fuzz/seeds/<t>/,
# growing build/fuzz/corpus/<t>; bench/fuzz/run for the recorded runs.
# The same targets linked with fuzz/replay.c (a main() feeding it every file
# of a directory) are built with the units, so make check replays each seed
# corpus under ASan+UBSan (t/0900-fuzz-replay.t).
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
fuzzers:
	$(MAKE) BUILD=build/fuzz CC=clang OPT='-O1 -g' \
	  SAN='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' build/fuzz/lib/libgateway.a
	$(MAKE) BUILD=build/fuzz CC=clang OPT='-O1 -g' \
	  SAN='-fsanitize=fuzzer $(FUZZ_SAN)' $(FUZZ_TARGETS:%=build/fuzz/fuzzers/fuzz_%)

fuzz: fuzzers
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  build/fuzz/fuzzers/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    build/fuzz/corpus/$$t fuzz/seeds/$$t/ || exit 1; \
	done

$(BUILD)/fuzzers/%: fuzz/%.c $(BUILD)/lib/libgateway.a $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/lib/libgateway.a $(LDLIBS_ALL)

$(BUILD)/replay/%: fuzz/%.c fuzz/replay.c $(BUILD)/lib/libgateway.a $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< fuzz/replay.c $(BUILD)/lib/libgateway.a $(LDLIBS_ALL)

# DESTDIR-aware.  Without DESTDIR, as root, also creates the service's
# user (install-user); the configuration and data are never overwritten.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/screening-gateway/sql \
	  $(DESTDIR)$(PREFIX)/share/screening-gateway/pipeline \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/man/man7 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 pipeline/gatewayd $(DESTDIR)$(PREFIX)/bin/gatewayd
	install -m 644 sql/*.sql $(DESTDIR)$(PREFIX)/share/screening-gateway/sql/
	install -m 644 pipeline/*.service pipeline/gateway.env.example \
	  $(DESTDIR)$(PREFIX)/share/screening-gateway/pipeline/
	sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' \
	  -e 's|/var/lib/screening-gateway|$(STATEDIR)|g' \
	  -e 's|^User=.*|User=$(GW_USER)|' -e 's|^Group=.*|Group=$(GW_USER)|' \
	  pipeline/gatewayd.service > $(DESTDIR)$(UNITDIR)/gatewayd.service.tmp
	chmod 644 $(DESTDIR)$(UNITDIR)/gatewayd.service.tmp
	mv $(DESTDIR)$(UNITDIR)/gatewayd.service.tmp $(DESTDIR)$(UNITDIR)/gatewayd.service
	for m in man/*.[1578]; do \
	  s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory install-user; \
	else echo "install: user $(GW_USER) not created (DESTDIR set or not root): make install-user on the server"; fi
	install -d -m 750 $(DESTDIR)$(CONFDIR) $(DESTDIR)$(STATEDIR)
	[ -e $(DESTDIR)$(CONFDIR)/gateway.env ] || \
	  sed 's|^GATEWAY_DATA_DIR=.*|GATEWAY_DATA_DIR=$(STATEDIR)|' pipeline/gateway.env.example \
	  > $(DESTDIR)$(CONFDIR)/gateway.env
	chmod 640 $(DESTDIR)$(CONFDIR)/gateway.env
	@if getent passwd $(GW_USER) >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  chgrp $(GW_USER) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(CONFDIR)/gateway.env && \
	  chown $(GW_USER):$(GW_USER) $(DESTDIR)$(STATEDIR); fi

# The service's system user and group (no login, home = the data), in
# group himds where the Azure Connected Machine agent made it: reading
# HIMDS's key file (the managed identity on an Arc machine) needs it.
install-user:
	getent group $(GW_USER) >/dev/null || groupadd --system $(GW_USER)
	getent passwd $(GW_USER) >/dev/null || useradd --system --gid $(GW_USER) \
	  --home-dir $(STATEDIR) --no-create-home --shell /usr/sbin/nologin $(GW_USER)
	if getent group himds >/dev/null; then usermod -a -G himds $(GW_USER); \
	else echo "install-user: no group himds (not an Azure Arc machine): $(GW_USER) not added"; fi

# Removes what install put under PREFIX and the unit; keeps the
# configuration, the data directory and the user (remove those by hand).
uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(PREFIX)/bin/%) $(DESTDIR)$(PREFIX)/bin/gatewayd \
	  $(DESTDIR)$(UNITDIR)/gatewayd.service
	for m in man/*.[1578]; do \
	  s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/}; done
	rm -rf $(DESTDIR)$(PREFIX)/share/screening-gateway
	@echo "uninstall: kept $(CONFDIR), $(STATEDIR) and user $(GW_USER)"

clean:
	rm -rf build
