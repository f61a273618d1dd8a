# shellcheck shell=bash
# Install what the build, the tests and the showcase need, if it is missing:
#   Debian packages (redis-server, redis-tools, valgrind, pkg-config, cmake, openssl for the
#   TLS tests' certificates) when run as root,
#   cbindgen 0.29.4 (pinned: it writes include/redipc.h), and a Python venv in .venv with
#   maturin, pytest and pytest-timeout (and, best effort, uvloop and valkey-glide), and, best
#   effort, nightly Rust's sources (rust-src) for the lean C library (make BUILD_STD=1).
# Source it from the repository root, then call `setup_all`.

CBINDGEN_VERSION=0.29.4
VENV=${REDIPC_VENV:-$PWD/.venv}

say() { printf '\n== %s\n' "$*"; }

setup_debian() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v valgrind >/dev/null || missing+=(valgrind)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v cc >/dev/null || missing+=(gcc)
  command -v g++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v cmake >/dev/null || missing+=(cmake)
  command -v objdump >/dev/null || missing+=(binutils)
  command -v openssl >/dev/null || missing+=(openssl)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: ${missing[*]}. Install them (Debian: sudo apt-get install ${missing[*]}) and run again." >&2
    return 1
  fi
  say "installing Debian packages: ${missing[*]}"
  # Keep the packaged redis service from starting on 6379: the tests run their own servers.
  local made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
  local rc=$?
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

setup_cbindgen() {
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  if command -v cbindgen >/dev/null && cbindgen --version | grep -q " $CBINDGEN_VERSION\$"; then
    return 0
  fi
  say "installing cbindgen $CBINDGEN_VERSION (cargo install, once)"
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet </dev/null
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the Python venv $VENV"
    python3 -m venv "$VENV" || return 1
  fi
  if ! "$VENV/bin/python" -c 'import maturin, pytest, pytest_timeout' 2>/dev/null; then
    say "installing maturin, pytest into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'maturin>=1.9,<2' 'pytest>=8' 'pytest-timeout>=2' </dev/null || return 1
  fi
  setup_venv_optional
}

# Optional, best effort: uvloop (the asyncio tests run a workload under it) and valkey-glide's
# asyncio client (a column of bench/aio). A failed install fails nothing: those tests skip
# and the benchmark leaves glide out, each saying why.
setup_venv_optional() {
  local spec mod
  for spec in 'uvloop>=0.18:uvloop' 'valkey-glide>=2.1:glide'; do
    mod=${spec##*:}
    "$VENV/bin/python" -c "import $mod" 2>/dev/null && continue
    say "installing ${spec%%:*} into $VENV (optional)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${spec%%:*}" </dev/null ||
      echo "note: pip install ${spec%%:*} failed; what needs it is skipped" >&2
  done
  return 0
}

# Optional, best effort: the sources of nightly Rust's standard library, which the lean C
# library builds from (`make BUILD_STD=1`, docs/SIZE.md); packaging/test/run.sh builds and
# checks it when they are there and says so when not. Nothing without nightly Rust.
setup_rust_src() {
  rustup run nightly rustc --version >/dev/null 2>&1 || return 0
  [ -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library/std" ] && return 0
  say "installing nightly Rust's rust-src (optional: the lean C library, make BUILD_STD=1)"
  timeout 300 rustup component add rust-src --toolchain nightly </dev/null >/dev/null ||
    echo "note: rustup component add rust-src --toolchain nightly failed; the lean C library's checks are skipped" >&2
  return 0
}

setup_all() {
  setup_debian && setup_cbindgen && setup_venv && setup_rust_src
}
