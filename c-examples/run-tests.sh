#!/usr/bin/env bash
# Runs the C programs against a private redis-server (started here, in a temp dir, on a
# free port and a unix socket), each over TCP and over the unix socket, and with
# REDIPC_VALGRIND=1 (scripts/test sets it outside --quick) the test programs once more under
# valgrind (quick mode: leaks, invalid accesses, and userdata freed twice or never). Prints
# one summary line "N passed, M failed" last and exits non-zero on any failure.
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
# device_state_example URL: the device-state daemon publishes battery and speed for one
# second, printing each value it publishes; the hash ends with the last values printed.
device_state_example() {
  local url=$1 hash="device:$$:$RANDOM" out="$tmp/device.txt" battery speed
  "$build/device_state" "$url" "$hash" 1 >"$out" 2>&1 || { cat "$out"; return 1; }
  cat "$out"
  battery=$(sed -n 's/^battery //p' "$out" | tail -n 1)
  speed=$(sed -n 's/^speed //p' "$out" | tail -n 1)
  grep -qx 'battery 100' "$out" && grep -qx 'speed 0' "$out" && grep -qx 'speed 10' "$out" &&
    grep -q '^done: 5 samples, ' "$out" &&
    [ "$(redis-cli -s "$REDIS_SOCK" HGET "$hash" battery)" = "$battery" ] &&
    [ "$(redis-cli -s "$REDIS_SOCK" HGET "$hash" speed)" = "$speed" ]
}
export -f device_state_example
export -f pubsub_example

# rpc_echo_example URL: the CLI of rpc_echo (the C peer of the cross-language RPC tests):
# a reply, a remote error, no server, usage errors, stopping on "quit" and on SIGTERM.
rpc_echo_example() {
  local url=$1 svc="rpc_echo:$$:$RANDOM" out="$tmp/rpc_serve.txt" fifo="$tmp/rpc_stdin" pid i got status
  rm -f "$fifo"; mkfifo "$fifo"
  "$build/rpc_echo" serve "$url" "$svc" <"$fifo" >"$out" 2>&1 &
  pid=$!
  exec 7>"$fifo"
  for i in $(seq 1 200); do grep -q '^ready$' "$out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  status=0
  got=$("$build/rpc_echo" call "$url" "$svc" "hello, World") && [ "$got" = "HELLO, WORLD" ] || { echo "call: $got"; status=1; }
  got=$("$build/rpc_echo" call "$url" "$svc" "" "") && [ -z "$got" ] || { echo "empty call: $got"; status=1; }
  got=$("$build/rpc_echo" call "$url" "$svc" "x" fail) && status=1
  [[ "$got" == "ERROR IPC_ERR_REMOTE "*"failed on purpose" ]] || { echo "fail call: $got"; status=1; }
  got=$("$build/rpc_echo" call "$url" "$svc:nobody" "x" "" 200) && status=1
  [[ "$got" == "ERROR IPC_ERR_NO_SERVER "* ]] || { echo "no-server call: $got"; status=1; }
  "$build/rpc_echo" call "$url" 2>/dev/null; [ $? -eq 2 ] || { echo "usage: not exit 2"; status=1; }
  echo quit >&7
  exec 7>&-
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  wait "$pid" || { echo "serve exited $?"; status=1; }
  grep -q '^stopped$' "$out" || { echo "no 'stopped' after quit"; status=1; }
  # SIGTERM stops it too (stdin at EOF does not).
  "$build/rpc_echo" serve "$url" "$svc" </dev/null >"$out" 2>&1 &
  pid=$!
  for i in $(seq 1 200); do grep -q '^ready$' "$out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  got=$("$build/rpc_echo" call "$url" "$svc" "again") && [ "$got" = "AGAIN" ] || { echo "call after EOF: $got"; status=1; }
  kill -TERM "$pid"
  wait "$pid" || { echo "serve exited $? after SIGTERM"; status=1; }
  grep -q '^stopped$' "$out" || { echo "no 'stopped' after SIGTERM"; status=1; }
  cat "$out"
  return $status
}
export -f rpc_echo_example
export build tmp

for transport in tcp unix; do
  if [ "$transport" = tcp ]; then url=$REDIS_TCP_URL; else url=$REDIS_UNIX_URL; fi
  run "hello [$transport]" 30 "$build/hello" "$url"
  run "hello_cpp [$transport]" 30 "$build/hello_cpp" "$url"
  run "api_test [$transport]" 120 "$build/api_test" "$url"
  run "threads [$transport]" 300 "$build/threads" "$url"
  run "pubsub example [$transport]" 30 bash -c 'pubsub_example "$1"' _ "$url"
  run "pubsub_test [$transport]" 300 "$build/pubsub_test" "$url"
  run "tx_test [$transport]" 120 "$build/tx_test" "$url"
  run "queue_rpc_test [$transport]" 300 "$build/queue_rpc_test" "$url"
  run "rpc_echo example [$transport]" 60 bash -c 'rpc_echo_example "$1"' _ "$url"
  run "stream_test [$transport]" 300 "$build/stream_test" "$url"
  run "state_test [$transport]" 300 "$build/state_test" "$url"
  run "lifecycle_test [$transport]" 300 "$build/lifecycle_test" "$url"
  run "report_test [$transport]" 300 "$build/report_test" "$url"
  run "device_state example [$transport]" 30 bash -c 'device_state_example "$1"' _ "$url"
done

if [ -n "${REDIPC_VALGRIND:-}" ] && command -v valgrind >/dev/null 2>&1; then
  for prog in api_test pubsub_test tx_test queue_rpc_test stream_test state_test lifecycle_test report_test; do
    run "$prog under valgrind [unix]" 180 env REDIPC_TEST_QUICK=1 \
      valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      --show-possibly-lost=no \
      "$build/$prog" "$REDIS_UNIX_URL"
  done
else
  echo "skip the valgrind runs: set REDIPC_VALGRIND=1 (and install valgrind) to include them"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
