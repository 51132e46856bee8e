# echos — top-level build. `make` builds release binaries into bin/; `make check` builds
# the AddressSanitizer+UBSan flavour into build/asan/ and runs both test tiers with it;
# `make demo` runs the whole system on loopback. tools/deps.sh installs missing Debian
# packages first (and does nothing when all are present).

PKGS      := libnghttp2 libevent libevent_openssl openssl hiredis libmaxminddb libmicrohttpd libcurl
CC        ?= cc
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
             -Wformat=2 -Wvla
BASE_CFLAGS = -std=gnu11 -g $(WARN) -D_GNU_SOURCE -Icommon -Ipolicy \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS       = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -lm
REL_CFLAGS  := -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2
ASAN_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
PYTHON    := /usr/bin/python3

DAEMONS   := echos-redirector echos-edge echos-origin-shim echos-policy echosctl \
             $(if $(wildcard policy/sim_main.c),echos-sim)
LIB_SRC    = $(wildcard common/*.c) $(wildcard policy/pol_*.c)
rdr_SRC    = $(wildcard redirector/*.c)
edge_SRC   = $(wildcard edge/*.c)
shim_SRC   = $(wildcard origin-shim/*.c)
pold_SRC   = $(wildcard policy/pold_*.c)
ctl_SRC    = $(wildcard ctl/*.c)
sim_SRC    = $(wildcard policy/sim_*.c)
UNIT_SRC   = $(wildcard tests/unit/test_*.c)

objs = $(patsubst %.c,build/$(1)/%.o,$(2))

.PHONY: all deps asan check unit integration demo bench clean distclean help
.DEFAULT_GOAL := all

all: deps $(addprefix bin/,$(DAEMONS))

help:
	@echo "make            build bin/ (installs missing Debian packages first)"
	@echo "make check      build with ASan+UBSan and run unit and integration tests"
	@echo "make demo       run the whole system on loopback (ONCE=1: exit after the summary)"
	@echo "make bench      run the benchmarks in bench/"

deps: build/.deps-ok
build/.deps-ok: tools/deps.sh
	@mkdir -p build
	@sh tools/deps.sh
	@touch $@

# --- compile rules (two flavours) ---------------------------------------------------
build/rel/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(REL_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
build/asan/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

define daemon_rules
bin/$(1): $$(call objs,rel,$$(LIB_SRC) $$($(2)_SRC))
	@mkdir -p bin
	$$(CC) $$(REL_CFLAGS) -o $$@ $$^ $$(LIBS) $$(LDFLAGS)
build/asan/bin/$(1): $$(call objs,asan,$$(LIB_SRC) $$($(2)_SRC))
	@mkdir -p build/asan/bin
	$$(CC) $$(ASAN_CFLAGS) -o $$@ $$^ $$(LIBS) $$(LDFLAGS)
endef
$(eval $(call daemon_rules,echos-redirector,rdr))
$(eval $(call daemon_rules,echos-edge,edge))
$(eval $(call daemon_rules,echos-origin-shim,shim))
$(eval $(call daemon_rules,echos-policy,pold))
$(eval $(call daemon_rules,echosctl,ctl))
$(eval $(call daemon_rules,echos-sim,sim))

# --- tests --------------------------------------------------------------------------
UNIT_BINS = $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRC))
.SECONDEXPANSION:
$(UNIT_BINS): build/asan/tests/%: build/asan/tests/unit/%.o $$(call objs,asan,$$(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka $(LDFLAGS)

# The HTTP core's test server (tests/integration/test_http_core.py drives it).
build/asan/tests/ec_http_testsrv: $$(call objs,asan,tests/http/ec_http_testsrv.c $$(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS) $(LDFLAGS)

# send() cut short for the test server (tests/integration/test_http_core.py preloads it)
build/asan/tests/short_send.so: tests/http/short_send.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -fPIC -shared $(WARN) -o $@ $< -ldl

asan: deps $(addprefix build/asan/bin/,$(DAEMONS)) $(UNIT_BINS) build/asan/tests/ec_http_testsrv \
      build/asan/tests/short_send.so

unit: asan
	@sh tests/run-unit.sh $(UNIT_BINS)

integration: asan
	ECHOS_BIN=$(CURDIR)/build/asan/bin $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

check: all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

demo: all
	@bash tools/demo.sh $(if $(ONCE),--once)

bench: all
	@sh tools/deps.sh --bench
	@for b in bench/*.sh; do bash $$b || exit 1; done

clean:
	rm -rf build bin
distclean: clean

# The dashboard page is assembled into the binary (.incbin).
build/rel/policy/pold_dash.o build/asan/policy/pold_dash.o: policy/pold_dash.html

-include $(shell find build -name '*.d' 2>/dev/null)
