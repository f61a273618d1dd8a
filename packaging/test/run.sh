#!/usr/bin/env bash
# Install libredipc into a temporary prefix with `make install`, then build C programs the
# ways users do: with pkg-config (shared and static), with CMake's find_package(redipc)
# (shared and static), and without installing (cc -Iinclude -Ltarget/release -lredipc, run
# with LD_LIBRARY_PATH); run each against a private redis-server. Prints "N passed, M failed".
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/lib/redis.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/redipc-install.XXXXXX")
trap 'redis_stop; rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
passed=0 failed=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     | /' "$tmp/out" | tail -n 30; fi
}

check "make install PREFIX=..." make -s -C "$root" install PREFIX="$prefix"
check "SONAME carries the major version" bash -c "objdump -p '$prefix/lib/libredipc.so' | grep -q 'SONAME *libredipc.so.0'"
check "library links installed" test -L "$prefix/lib/libredipc.so" -a -L "$prefix/lib/libredipc.so.0" -a -f "$prefix/lib/libredipc.a"
check "header installed" test -f "$prefix/include/redipc.h"
# The shipped build: stripped, its debug info in a separate file the library points to.
check "installed library is stripped" bash -c "! readelf -S '$prefix/lib/libredipc.so' | grep -q '\.symtab\|\.debug_info'"
check "debug info installed beside it" bash -c "readelf -S \$(ls '$prefix'/lib/libredipc.so.*.debug) | grep -q '\.debug_info' && readelf -p .gnu_debuglink '$prefix/lib/libredipc.so' | grep -q 'libredipc.so.*\.debug'"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config knows redipc" pkg-config --exists redipc
hello="$root/c-examples/hello.c"
# shellcheck disable=SC2046
check "cc with pkg-config (shared)" cc -std=c99 -Wall -Wextra -Wpedantic -Werror -o "$tmp/hello_pc" "$hello" \
  $(pkg-config --cflags --libs redipc) -Wl,-rpath,"$prefix/lib"
native=$(pkg-config --static --libs-only-l redipc | sed 's/-lredipc//')
# shellcheck disable=SC2046,SC2086
check "cc with pkg-config (static)" cc -std=c99 -Wall -Wextra -Wpedantic -Werror -o "$tmp/hello_pc_static" "$hello" \
  $(pkg-config --cflags redipc) "$prefix/lib/libredipc.a" $native

if command -v cmake >/dev/null; then
  check "cmake find_package(redipc)" cmake -S "$root/packaging/test/cmake" -B "$tmp/cmake-build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DHELLO_SOURCE="$hello" -DCMAKE_BUILD_RULE_MESSAGES=OFF
  check "cmake build (shared and static)" cmake --build "$tmp/cmake-build"
else
  failed=$((failed + 1)); echo "FAIL cmake is not installed (apt-get install cmake)"
fi

# The no-install path: cargo's profile directory has the SONAME link (ffi/build.rs).
release=${CARGO_TARGET_DIR:-$root/target}/release
check "no install: libredipc.so.0 -> libredipc.so in $release" \
  bash -c "[ \"\$(readlink '$release/libredipc.so.0')\" = libredipc.so ] && [ -e '$release/libredipc.so.0' ]"
check "no install: cc -Iinclude -L$release -lredipc" cc -std=c99 -Wall -Wextra -Wpedantic -Werror \
  -o "$tmp/hello_noinstall" "$hello" -I"$root/include" -L"$release" -lredipc
check "make install honours CARGO_TARGET_DIR" \
  bash -c "make -s -n -C '$root' install PREFIX=/p CARGO_TARGET_DIR=/elsewhere | grep -q '/elsewhere/dist/libredipc.so'"

redis_start "$tmp/redis" || exit 1
check "run hello_noinstall (LD_LIBRARY_PATH=$release)" env LD_LIBRARY_PATH="$release" "$tmp/hello_noinstall" "$REDIS_UNIX_URL"
for prog in "$tmp/hello_pc" "$tmp/hello_pc_static" "$tmp/cmake-build/hello_shared" "$tmp/cmake-build/hello_static"; do
  check "run $(basename "$prog")" "$prog" "$REDIS_UNIX_URL"
done
check "the shared build uses the installed library" bash -c "ldd '$tmp/hello_pc' | grep -q '$prefix/lib/libredipc.so.0'"

# The shipped library's layout and dependencies (docs/SIZE.md, "Idle memory"): the code a C
# client runs laid out first (ffi/link-order.ld), no libm (its own hidden `pow`, for the
# multi-thread runtime of io_threads > 1, which this program runs), nothing but ipc_* exported.
check "installed library: code laid out (.text.redipc_ordered)" bash -c "readelf -SW '$prefix/lib/libredipc.so' | grep -q '\.text\.redipc_ordered'"
check "installed library needs no libm, exports only ipc_*" bash -c \
  "! readelf -d '$prefix/lib/libredipc.so' | grep -q 'libm\.so' && ! nm -D --defined-only '$prefix/lib/libredipc.so' | awk '{print \$3}' | grep -v '^ipc_' | grep -q ."
cat >"$tmp/iothreads.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "redipc.h"
int main(int argc, char **argv) {
    (void)argc;
    ipc_options *o = NULL;
    ipc_client *c = NULL;
    if (ipc_options_new(&o) != IPC_OK || ipc_options_set_io_threads(o, 2) != IPC_OK) return 1;
    if (ipc_client_new(argv[1], o, &c) != IPC_OK) { fprintf(stderr, "%s\n", ipc_last_error_message()); return 2; }
    ipc_options_free(o);
    for (int i = 0; i < 2000; i++) {
        char v[32], *buf = NULL;
        size_t len = 0;
        bool found = false;
        int n = snprintf(v, sizeof v, "value-%d", i);
        if (ipc_set(c, "iothreads", 9, v, (size_t)n, 0) != IPC_OK) return 3;
        if (ipc_get(c, "iothreads", 9, &buf, &len, &found) != IPC_OK || !found) return 4;
        int same = len == (size_t)n && !memcmp(buf, v, len);
        ipc_buf_free(buf, len);
        if (!same) return 5;
    }
    ipc_client_free(c);
    return 0;
}
C
check "io_threads=2 (tokio's multi-thread runtime, the library's pow) with the installed library" bash -c \
  "cc -std=c99 -Wall -Werror -o '$tmp/iothreads' '$tmp/iothreads.c' \$(pkg-config --cflags --libs redipc) -Wl,-rpath,'$prefix/lib' && '$tmp/iothreads' '$REDIS_UNIX_URL'"

# The smallest build (docs/SIZE.md): optimised for size, without TLS, Redis Cluster,
# Sentinel and the patterns; rediss://, cluster mode and redis-sentinel:// are refused as
# unsupported, the patterns' functions are neither in the library nor in its installed
# header, everything else works.
small=${CARGO_TARGET_DIR:-$root/target}/dist-small
sprefix="$tmp/small-prefix"
check "make install PROFILE=dist-small FEATURES= (no TLS, cluster, sentinel, patterns)" \
  make -s -C "$root" install PROFILE=dist-small FEATURES= PREFIX="$sprefix"
check "the smallest header defines no IPC_FEATURE_*, the default one all ten" bash -c \
  "! grep -q '^#define IPC_FEATURE_' '$sprefix/include/redipc.h' && [ \$(grep -c '^#define IPC_FEATURE_[A-Z]* 1\$' '$prefix/include/redipc.h') -eq 10 ]"
check "the smallest library exports no pattern function, the default one does" bash -c \
  "! nm -D --defined-only '$sprefix/lib/libredipc.so' | grep -E ' ipc_(send_request|worker_|queue_|call|server_|stream_|entries_|hash_set|hash_watch|cache_|lock_|semaphore_|rate_limiter_|services|instances_)' && nm -D --defined-only '$prefix/lib/libredipc.so' | grep -q ' ipc_send_request\$'"
cat >"$tmp/pattern.c" <<'C'
#include "redipc.h"
int main(void) {
#ifdef IPC_FEATURE_QUEUES
    return ipc_send_request(NULL, "q", 1, "x", 1) == IPC_ERR_NULL_ARG ? 0 : 1;
#else
    return 2;
#endif
}
C
check "a program using a pattern compiles against the default header, and takes the #else branch against the smallest one" bash -c \
  "cc -std=c99 -Wall -Werror -o '$tmp/pattern' '$tmp/pattern.c' \$(pkg-config --cflags --libs redipc) -Wl,-rpath,'$prefix/lib' && '$tmp/pattern' \
   && cc -std=c99 -Wall -Werror -o '$tmp/pattern_small' '$tmp/pattern.c' -I'$sprefix/include' -L'$sprefix/lib' -lredipc -Wl,-rpath,'$sprefix/lib'; '$tmp/pattern_small'; [ \$? -eq 2 ]"
printf '#include "redipc.h"\nint main(void) { return ipc_cache_exists(NULL, "k", 1, NULL) != IPC_OK; }\n' >"$tmp/undeclared.c"
check "calling a left-out pattern's function does not compile against the smallest header" bash -c \
  "! cc -std=c99 -Wall -Werror -c -o '$tmp/undeclared.o' '$tmp/undeclared.c' -I'$sprefix/include'"
# Each pattern left out alone: the C and the C++ header still compile (the header's #if
# blocks and redipc.hpp's agree).
for f in QUEUES RPC STREAMS STATE CACHE COORDINATION REGISTRY ANY; do
  mkdir -p "$tmp/hdr-$f"
  if [ "$f" = ANY ]; then sed '/^#define IPC_FEATURE_/d' "$root/include/redipc.h" >"$tmp/hdr-$f/redipc.h"
  else sed "/^#define IPC_FEATURE_$f 1\$/d" "$root/include/redipc.h" >"$tmp/hdr-$f/redipc.h"; fi
  printf '#include "redipc.h"\n' >"$tmp/hdr-$f/a.c"
  printf '#include "redipc.hpp"\n' >"$tmp/hdr-$f/a.cpp"
  check "headers without IPC_FEATURE_$f compile (C, C++; ANY: none defined)" bash -c \
    "cc -std=c99 -Wall -Werror -fsyntax-only -I'$tmp/hdr-$f' '$tmp/hdr-$f/a.c' && c++ -std=c++17 -Wall -Werror -fsyntax-only -I'$tmp/hdr-$f' -I'$root/bindings/cpp' '$tmp/hdr-$f/a.cpp'"
done
cat >"$tmp/notls.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "redipc.h"
int main(int argc, char **argv) {
    ipc_client *c = NULL;
    if (ipc_client_new("rediss://127.0.0.1:1", NULL, &c) != IPC_ERR_UNSUPPORTED) return 1;
    if (!strstr(ipc_last_error_message(), "tls")) return 2;
    ipc_options *o = NULL;
    if (ipc_options_new(&o) != IPC_OK || ipc_options_set_cluster(o, IPC_CLUSTER_ON) != IPC_OK) return 5;
    if (ipc_client_new("redis://127.0.0.1:1", o, &c) != IPC_ERR_UNSUPPORTED) return 6;
    if (!strstr(ipc_last_error_message(), "`cluster` feature")) return 7;
    ipc_options_free(o);
    if (ipc_client_new("redis-sentinel://127.0.0.1:1/0#m", NULL, &c) != IPC_ERR_UNSUPPORTED) return 8;
    if (!strstr(ipc_last_error_message(), "`sentinel` feature")) return 9;
    if (ipc_client_new(argv[1], NULL, &c) != IPC_OK) return 3;
    int ok = ipc_set(c, "notls", 5, "x", 1, 0) == IPC_OK;
    ipc_client_free(c);
    return ok ? 0 : 4;
}
C
check "without TLS, cluster, sentinel, patterns: rediss://, cluster mode, redis-sentinel:// are IPC_ERR_UNSUPPORTED, redis:// works" bash -c \
  "cc -std=c99 -Wall -Werror -o '$tmp/notls' '$tmp/notls.c' -I'$sprefix/include' -L'$sprefix/lib' -lredipc -Wl,-rpath,'$sprefix/lib' && '$tmp/notls' '$REDIS_UNIX_URL'"
# The lean minimal build (docs/SIZE.md): the same with std rebuilt without its backtrace
# printer (nightly cargo's -Zbuild-std, which needs nightly Rust's sources, rust-src).
lprefix="$tmp/lean-prefix"
check "BUILD_STD=1 with a toolchain that lacks rust-src says what to install" bash -c \
  "! make -s -C '$root' all BUILD_STD=1 NIGHTLY=redipc-no-such-toolchain 2>'$tmp/bstd.err' && grep -q 'needs Rust redipc-no-such-toolchain with its sources: rustup toolchain install' '$tmp/bstd.err'"
sizes=("$prefix/lib/libredipc.so" "$sprefix/lib/libredipc.so")
if rustup run nightly rustc --version >/dev/null 2>&1 &&
   [ -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  check "make install PROFILE=dist-small FEATURES= BUILD_STD=1 (std without its backtrace printer)" \
    make -s -C "$root" install PROFILE=dist-small FEATURES= BUILD_STD=1 PREFIX="$lprefix"
  check "the lean library is stripped, exports only ipc_*, needs no libm, and is <= 1.2 MB (10^6 B) stripped" bash -c \
    "! readelf -S '$lprefix/lib/libredipc.so' | grep -q '\.symtab' && ! readelf -d '$lprefix/lib/libredipc.so' | grep -q 'libm\.so' \
     && ! nm -D --defined-only '$lprefix/lib/libredipc.so' | awk '{print \$3}' | grep -v '^ipc_' | grep -q . \
     && [ \$(stat -L -c %s '$lprefix/lib/libredipc.so') -le 1200000 ]"
  check "the lean library: rediss://, cluster mode, redis-sentinel:// are IPC_ERR_UNSUPPORTED, redis:// works" bash -c \
    "cc -std=c99 -Wall -Werror -o '$tmp/notls_lean' '$tmp/notls.c' -I'$lprefix/include' -L'$lprefix/lib' -lredipc -Wl,-rpath,'$lprefix/lib' && '$tmp/notls_lean' '$REDIS_UNIX_URL'"
  sizes+=("$lprefix/lib/libredipc.so")
else
  echo "skip the lean library (make BUILD_STD=1): nightly Rust with rust-src is not installed (rustup toolchain install nightly --component rust-src)"
fi
for f in "${sizes[@]}"; do
  echo "size: $f $(stat -L -c %s "$f") bytes ($(strip --strip-unneeded -o "$tmp/s.so" "$f" && stat -c %s "$tmp/s.so") stripped)"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
