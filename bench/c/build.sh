#!/usr/bin/env bash
# Build the C bench programs into OUT (default bench/build): bench_redipc (links
# target/release/libredipc.so) and bench_hiredis (Debian's libhiredis-dev), and the idle
# footprint programs idle_redipc and idle_hiredis (issue 18; bench/c/idle.h), with
#   -O2 -Wall -Wextra -Werror.
# The redipc programs find the library through a RUNPATH (OUT/lib), which LD_LIBRARY_PATH
# overrides: the harness runs idle_redipc against the stripped shipped build that way.
# A workload that needs a newer part of the C API is compiled in only when
# include/redipc.h declares its function; OUT/notes.txt lists what was left out and why.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/build}
mkdir -p "$OUT"
CC=${CC:-cc}
CFLAGS=(-std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Ibench/c -Iinclude)
: > "$OUT/notes.txt"
status=0

# hiredis
if [ -f /usr/include/hiredis/hiredis.h ]; then
  if ! $CC "${CFLAGS[@]}" -o "$OUT/bench_hiredis" bench/c/bench_hiredis.c -lhiredis -lpthread; then
    echo "bench_hiredis: does not compile" >&2
    status=1
  fi
  if ! $CC "${CFLAGS[@]}" -o "$OUT/idle_hiredis" bench/c/idle_hiredis.c -lhiredis; then
    echo "idle_hiredis: does not compile" >&2
    status=1
  fi
else
  echo "hiredis: libhiredis-dev is not installed; the hiredis C bench is skipped" >> "$OUT/notes.txt"
  rm -f "$OUT/bench_hiredis" "$OUT/idle_hiredis"
fi

# redipc: the optional workloads, each FEATURE:SYMBOL:FILE
defs=()
objs=()
for spec in PIPELINE:ipc_batch_exec:redipc_pipeline.c TX:ipc_batch_exec:redipc_tx.c \
            QUEUE:ipc_worker_new:redipc_queue.c RPC:ipc_call:redipc_rpc.c; do
  IFS=: read -r feat sym file <<< "$spec"
  if ! grep -qE "\\b$sym\\(" include/redipc.h; then
    echo "redipc C: no $sym in include/redipc.h yet: its workload is skipped" >> "$OUT/notes.txt"
    continue
  fi
  if [ ! -f "bench/c/$file" ]; then
    echo "redipc C: include/redipc.h has $sym but bench/c/$file is not written yet" >> "$OUT/notes.txt"
    continue
  fi
  if $CC "${CFLAGS[@]}" -DHAVE_IPC_$feat -c -o "$OUT/${file%.c}.o" "bench/c/$file" 2> "$OUT/${file%.c}.err"; then
    defs+=(-DHAVE_IPC_$feat)
    objs+=("$OUT/${file%.c}.o")
  else
    echo "redipc C: bench/c/$file does not compile against include/redipc.h (see $OUT/${file%.c}.err): skipped" >> "$OUT/notes.txt"
    cat "$OUT/${file%.c}.err" >&2
  fi
done
if [ -f target/release/libredipc.so ]; then
  # A private copy of the library (a rebuild of target/ during a run does not change what is
  # measured), also under its SONAME (libredipc.so.MAJOR) for the loader.
  mkdir -p "$OUT/lib"
  rm -f "$OUT"/lib/libredipc.so*
  cp target/release/libredipc.so "$OUT/lib/libredipc.so"
  soname=$(readelf -d "$OUT/lib/libredipc.so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  [ -n "$soname" ] && [ "$soname" != libredipc.so ] && ln -s libredipc.so "$OUT/lib/$soname"
  libdir=$(cd "$OUT/lib" && pwd)
  if ! $CC "${CFLAGS[@]}" "${defs[@]}" -o "$OUT/bench_redipc" bench/c/bench_redipc.c "${objs[@]}" \
      -L"$libdir" -Wl,-rpath,"$libdir" -lredipc -lpthread; then
    echo "bench_redipc: does not compile" >&2
    status=1
  fi
  if ! $CC "${CFLAGS[@]}" -o "$OUT/idle_redipc" bench/c/idle_redipc.c \
      -L"$libdir" -Wl,--enable-new-dtags,-rpath,"$libdir" -lredipc; then
    echo "idle_redipc: does not compile" >&2
    status=1
  fi
else
  echo "redipc C: target/release/libredipc.so is missing (cargo build --release -p redipc-ffi)" >> "$OUT/notes.txt"
  status=1
fi
cat "$OUT/notes.txt" >&2
exit $status
