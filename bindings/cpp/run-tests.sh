#!/usr/bin/env bash
# Runs the C++ wrapper's example (hello) and test (test_cpp) against a private
# redis-server (started here, in a temp dir, on a free port and a unix socket), each over
# TCP and over the unix socket, and test_cpp once more under valgrind (quick check for
# leaks of the callback boxes) when it is installed. Prints one summary line
# "N passed, M failed" last and exits non-zero on any failure.
#
#   ./run-tests.sh [BUILD_DIR]        (default: build; `make test` calls it)
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/build}" && pwd) || { echo "no build dir; run make first" >&2; exit 1; }

# shellcheck source=../../scripts/lib/redis.sh
source "$here/../../scripts/lib/redis.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redipc-cpp-tests.XXXXXX")
cleanup() {
  redis_stop
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_start "$tmp/redis" || exit 1
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') at $REDIS_TCP_URL and $REDIS_UNIX_URL"

passed=0
failed=0

# run NAME TIMEOUT_SECONDS COMMAND...: one test; it passes when the command exits 0 and,
# if it prints a "N passed, M failed" line, M is 0.
run() {
  local name=$1 limit=$2 out status summary
  shift 2
  out="$tmp/out.txt"
  timeout "$limit" "$@" >"$out" 2>&1
  status=$?
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ "$status" -eq 0 ] && { [ -z "$summary" ] || [[ "$summary" == *", 0 failed" ]]; }; then
    passed=$((passed + 1))
    echo "ok   $name${summary:+ ($summary)}"
  else
    failed=$((failed + 1))
    echo "FAIL $name (exit $status${summary:+, $summary})"
    sed 's/^/     | /' "$out" | tail -n 40
  fi
}

for transport in tcp unix; do
  if [ "$transport" = tcp ]; then url=$REDIS_TCP_URL; else url=$REDIS_UNIX_URL; fi
  run "hello [$transport]" 30 "$build/hello" "$url"
  run "test_cpp [$transport]" 120 "$build/test_cpp" "$url"
done

if command -v valgrind >/dev/null 2>&1 && [ -z "${REDIPC_NO_VALGRIND:-}" ]; then
  run "test_cpp under valgrind [unix]" 300 \
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-possibly-lost=no "$build/test_cpp" "$REDIS_UNIX_URL"
else
  echo "skip the valgrind run of test_cpp (valgrind is not installed, or REDIPC_NO_VALGRIND is set)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
