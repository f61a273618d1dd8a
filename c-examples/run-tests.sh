#!/usr/bin/env bash
# Runs the C programs against a private redis-server (started here, in a temp dir, on a
# free port and a unix socket), each over TCP and over the unix socket, and api_test and
# pubsub_test once more under valgrind (quick mode) when it is installed. Prints one summary
# line "N passed, M failed" last and exits non-zero on any failure.
#
#   ./run-tests.sh [BUILD_DIR]        (default: build; `make test` calls it)
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/build}" && pwd) || { echo "no build dir; run make first" >&2; exit 1; }

# shellcheck source=../scripts/lib/redis.sh
source "$here/../scripts/lib/redis.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redipc-c-tests.XXXXXX")
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

# pubsub_example URL: the example's subscriber (poll mode) gets what its publisher sends.
pubsub_example() {
  local url=$1 channel="example:$$:$RANDOM" subout="$tmp/sub.txt" pid i status
  "$build/pubsub" sub "$url" "$channel" 3 >"$subout" 2>&1 &
  pid=$!
  for i in $(seq 1 200); do
    grep -q "^activated $channel\$" "$subout" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  "$build/pubsub" pub "$url" "$channel" 3 hello || { kill "$pid" 2>/dev/null; wait "$pid"; return 1; }
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill "$pid" 2>/dev/null
  wait "$pid"
  status=$?
  cat "$subout"
  [ "$status" -eq 0 ] && diff <(printf 'activated %s\nmessage %s hello0\nmessage %s hello1\nmessage %s hello2\n' \
    "$channel" "$channel" "$channel" "$channel") "$subout"
}
export -f pubsub_example
export build tmp

for transport in tcp unix; do
  if [ "$transport" = tcp ]; then url=$REDIS_TCP_URL; else url=$REDIS_UNIX_URL; fi
  run "hello [$transport]" 30 "$build/hello" "$url"
  run "hello_cpp [$transport]" 30 "$build/hello_cpp" "$url"
  run "api_test [$transport]" 120 "$build/api_test" "$url"
  run "threads [$transport]" 300 "$build/threads" "$url"
  run "pubsub example [$transport]" 30 bash -c 'pubsub_example "$1"' _ "$url"
  run "pubsub_test [$transport]" 300 "$build/pubsub_test" "$url"
done

if command -v valgrind >/dev/null 2>&1; then
  run "api_test under valgrind [unix]" 120 env REDIPC_TEST_QUICK=1 \
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-possibly-lost=no \
    "$build/api_test" "$REDIS_UNIX_URL"
  run "pubsub_test under valgrind [unix]" 120 env REDIPC_TEST_QUICK=1 \
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-possibly-lost=no \
    "$build/pubsub_test" "$REDIS_UNIX_URL"
else
  echo "skip api_test and pubsub_test under valgrind: valgrind is not installed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
