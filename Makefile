# Build and install libredipc (the C API) with its header, pkg-config file and CMake package.
#
#   make                                build target/dist/libredipc.{so,a} (the shipped build:
#                                       LTO, one codegen unit; docs/SIZE.md)
#   make install PREFIX=/usr/local      install it stripped, its debug info beside it in
#                                       libredipc.so.VERSION.debug (DESTDIR and
#                                       CARGO_TARGET_DIR are honoured)
#   make uninstall PREFIX=/usr/local
#
# Smaller builds for small boards: PROFILE=dist-small (optimised for size) and/or fewer
# FEATURES (default "tls cluster sentinel patterns"; without tls, rediss:// URLs are refused
# with IPC_ERR_UNSUPPORTED; without cluster, a Redis Cluster is; without sentinel,
# redis-sentinel:// URLs are; `patterns` is queues rpc streams state cache coordination
# registry, which can be named one by one: the functions of one left out are not in the
# library, and the installed header does not declare them; FEATURES= leaves out everything
# but commands, pipelines, transactions, pub/sub and keyspace watches). BUILD_STD=1 also
# rebuilds Rust's standard library without its backtrace printer (about 230 KB less; panics
# are still caught at the C boundary): it needs nightly Rust with its sources, `rustup
# toolchain install nightly --component rust-src` (NIGHTLY= names another toolchain), and
# builds into target/TRIPLE/PROFILE.
#
# Without installing: `cargo build --release -p redipc-ffi` leaves libredipc.so and its
# SONAME link libredipc.so.0 in target/release (ffi/build.rs), so
#   cc app.c -Iinclude -Ltarget/release -lredipc && LD_LIBRARY_PATH=target/release ./app
# runs.
#
# The two project commands are scripts/showcase and scripts/test (see README.md).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CARGO ?= cargo

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
# System libraries a static libredipc.a needs (what rustc reports for this target).
NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
# The cargo profile and the features of redipc-ffi (default: all of them).
PROFILE ?= dist
FEATURES ?= tls cluster sentinel patterns
# The patterns (ffi/Cargo.toml); the installed header keeps the IPC_FEATURE_* line of each
# feature built (ffi/cbindgen.toml) and declares only their functions.
PATTERNS := queues rpc streams state cache coordination registry
# BUILD_STD=1: std, alloc, core and the unwinder built from source with the library, without
# std's default `backtrace` feature (gimli, addr2line, the demangler: docs/SIZE.md), by
# nightly cargo's -Zbuild-std, which needs an explicit target (the host's by default).
BUILD_STD ?=
NIGHTLY ?= nightly
TARGET ?= $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
ifeq ($(BUILD_STD),1)
TOOLCHAIN := +$(NIGHTLY)
STD_ARGS := -Zbuild-std=std,panic_unwind -Zbuild-std-features=panic-unwind --target $(TARGET)
TRIPLE_DIR := $(TARGET)/
else ifneq ($(BUILD_STD),)
$(error BUILD_STD is 1 or empty, not "$(BUILD_STD)")
endif
BUILT := $(filter-out patterns,$(FEATURES)) $(if $(filter patterns,$(FEATURES)),$(PATTERNS))
LEFT_OUT := $(filter-out $(BUILT),tls cluster sentinel $(PATTERNS))
hash := \#
HEADER_SED := $(foreach f,$(LEFT_OUT),-e '/^$(hash)define IPC_FEATURE_$(shell echo $(f) | tr a-z A-Z) 1$$/d')
# Where cargo leaves the library (cargo honours CARGO_TARGET_DIR, and so does this).
RELEASE ?= $(or $(CARGO_TARGET_DIR),target)/$(TRIPLE_DIR)$(PROFILE)
# The code layout of the shared library: the functions a C client runs, together at the start
# of its code (ffi/link-order.ld, made by scripts/link-order; docs/SIZE.md "Idle memory").
# LINK_ORDER= links without it (e.g. with a linker that has no INSERT in its scripts).
LINK_ORDER ?= ffi/link-order.ld
LINK_ARGS = $(if $(LINK_ORDER),-- -C link-arg=-Wl$(comma)-T$(comma)$(abspath $(LINK_ORDER)))
OBJCOPY ?= objcopy
STRIP ?= strip
empty :=
space := $(empty) $(empty)
comma := ,

.PHONY: all install uninstall

# `cargo rustc`: the link argument goes to the library's own link, not to its dependencies.
all:
	$(if $(TOOLCHAIN),@test -d "$$(rustc $(TOOLCHAIN) --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library/std" || \
	  { echo "make: BUILD_STD=1 needs Rust $(NIGHTLY) with its sources: rustup toolchain install $(NIGHTLY) --component rust-src" >&2; exit 1; })
	$(CARGO) $(TOOLCHAIN) rustc --profile $(PROFILE) --locked -p redipc-ffi --lib --no-default-features --features "$(FEATURES)" $(STD_ARGS) $(LINK_ARGS)

# Paths of the CMake package relative to its own directory, so an installed tree can move.
CMAKEDIR := $(LIBDIR)/cmake/redipc

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(CMAKEDIR)
	$(OBJCOPY) --only-keep-debug $(RELEASE)/libredipc.so $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION).debug
	chmod 644 $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION).debug
	$(STRIP) --strip-unneeded -o $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION) $(RELEASE)/libredipc.so
	cd $(DESTDIR)$(LIBDIR) && $(OBJCOPY) --add-gnu-debuglink=libredipc.so.$(VERSION).debug libredipc.so.$(VERSION)
	chmod 755 $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION)
	ln -sf libredipc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libredipc.so.$(MAJOR)
	ln -sf libredipc.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libredipc.so
	install -m 644 $(RELEASE)/libredipc.a $(DESTDIR)$(LIBDIR)/libredipc.a
	sed -e '' $(HEADER_SED) include/redipc.h > $(DESTDIR)$(INCLUDEDIR)/redipc.h
	chmod 644 $(DESTDIR)$(INCLUDEDIR)/redipc.h
	if [ -f bindings/cpp/redipc.hpp ]; then install -m 644 bindings/cpp/redipc.hpp $(DESTDIR)$(INCLUDEDIR)/redipc.hpp; fi
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@NATIVE_LIBS@|$(NATIVE_LIBS)|' \
	    packaging/redipc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/redipc.pc
	rel() { python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$$1" "$$2"; }; \
	sed -e "s|@REL_PREFIX@|$$(rel $(PREFIX) $(CMAKEDIR))|" \
	    -e "s|@REL_LIBDIR@|$$(rel $(LIBDIR) $(PREFIX))|" \
	    -e "s|@REL_INCLUDEDIR@|$$(rel $(INCLUDEDIR) $(PREFIX))|" \
	    -e 's|@MAJOR@|$(MAJOR)|' -e 's|@NATIVE_LIBS_CMAKE@|$(subst $(space),;,$(NATIVE_LIBS))|' \
	    packaging/redipcConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/redipcConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(MAJOR)|' \
	    packaging/redipcConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/redipcConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libredipc.so $(DESTDIR)$(LIBDIR)/libredipc.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libredipc.a \
	      $(DESTDIR)$(LIBDIR)/libredipc.so.$(VERSION).debug \
	      $(DESTDIR)$(INCLUDEDIR)/redipc.h $(DESTDIR)$(INCLUDEDIR)/redipc.hpp \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/redipc.pc \
	      $(DESTDIR)$(CMAKEDIR)/redipcConfig.cmake $(DESTDIR)$(CMAKEDIR)/redipcConfigVersion.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR)
