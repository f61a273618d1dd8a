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
# shellcheck source=../scripts/lib/cluster.sh
source "$here/../scripts/lib/cluster.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redipc-c-tests.XXXXXX")
noconfig_pid=
obs_pid=
tls_pids=()
cleanup() {
  redis_stop
  cluster_stop
  for p in "${tls_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ -n "$noconfig_pid" ]; then kill "$noconfig_pid" 2>/dev/null; wait "$noconfig_pid" 2>/dev/null; fi
  if [ -n "$obs_pid" ]; then kill "$obs_pid" 2>/dev/null; wait "$obs_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_start "$tmp/redis" || exit 1
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') at $REDIS_TCP_URL and $REDIS_UNIX_URL"

# A second private server with CONFIG renamed away, as on many embedded boards (fleet_test:
# everything works there, and watch_keys says why it cannot switch notifications on).
mkdir -p "$tmp/noconfig"
NOCONFIG_SOCK="$tmp/noconfig/redis.sock"
redis-server --port 0 --unixsocket "$NOCONFIG_SOCK" --unixsocketperm 700 --save "" --appendonly no \
  --dir "$tmp/noconfig" --logfile "$tmp/noconfig/redis.log" --rename-command CONFIG "" \
  --daemonize no >/dev/null 2>&1 &
noconfig_pid=$!
for i in $(seq 1 100); do
  [ -S "$NOCONFIG_SOCK" ] && redis-cli -s "$NOCONFIG_SOCK" ping >/dev/null 2>&1 && break
  sleep 0.05
done
NOCONFIG_URL="unix://$NOCONFIG_SOCK"

# A third private server for observability_test alone: it sets maxmemory and requirepass and
# pauses every client for a moment (then restores them), which no other test may see.
mkdir -p "$tmp/obs"
OBS_SOCK="$tmp/obs/redis.sock"
OBS_PORT=$(redis_free_port)
redis-server --port "$OBS_PORT" --bind 127.0.0.1 --unixsocket "$OBS_SOCK" --unixsocketperm 700 \
  --save "" --appendonly no --dir "$tmp/obs" --logfile "$tmp/obs/redis.log" \
  --daemonize no >/dev/null 2>&1 &
obs_pid=$!
for i in $(seq 1 100); do
  [ -S "$OBS_SOCK" ] && redis-cli -s "$OBS_SOCK" ping >/dev/null 2>&1 && break
  sleep 0.05
done
OBS_TCP_URL="redis://127.0.0.1:$OBS_PORT/0"
OBS_UNIX_URL="unix://$OBS_SOCK"

# Two TLS servers for tls_test, with certificates made now: one on 127.0.0.1 and 127.0.0.2
# (its certificate names only the first), one requiring client certificates.
CERTS="$tmp/certs"
bash "$here/../scripts/lib/tls-certs.sh" "$CERTS" || exit 1
tls_server() { # NAME AUTH_CLIENTS BIND...: sets TLS_PORT
  local name=$1 auth=$2 i
  shift 2
  mkdir -p "$tmp/$name"
  TLS_PORT=$(redis_free_port)
  redis-server --port 0 --unixsocket "$tmp/$name/redis.sock" --unixsocketperm 700 --bind "$@" \
    --tls-port "$TLS_PORT" --tls-cert-file "$CERTS/server.crt" --tls-key-file "$CERTS/server.key" \
    --tls-ca-cert-file "$CERTS/ca.crt" --tls-auth-clients "$auth" \
    --save "" --appendonly no --dir "$tmp/$name" --logfile "$tmp/$name/redis.log" \
    --daemonize no >/dev/null 2>&1 &
  tls_pids+=($!)
  for i in $(seq 1 100); do
    [ -S "$tmp/$name/redis.sock" ] && redis-cli -s "$tmp/$name/redis.sock" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "could not start the TLS server $name (see $tmp/$name/redis.log)" >&2
  return 1
}
tls_server tls no 127.0.0.1 127.0.0.2 || exit 1
TLS_PORT1=$TLS_PORT
tls_server mtls yes 127.0.0.1 || exit 1
MTLS_PORT=$TLS_PORT
TLS_PLAIN_URL="unix://$tmp/tls/redis.sock"

# A master, its replica and three sentinels for sentinel_test (sentinels rewrite their
# config files, each in its own directory).
start_data() { # NAME PORT [ARGS...]
  local name=$1 port=$2 i
  shift 2
  mkdir -p "$tmp/$name"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp/$name" \
    --logfile "$tmp/$name/redis.log" --daemonize no "$@" >/dev/null 2>&1 &
  tls_pids+=($!)
  for i in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "could not start $name" >&2
  return 1
}
SENTINEL_MASTER_PORT=$(redis_free_port)
# (replicas sync at once: Redis waits 5 s for more replicas by default)
start_data sentinel-master "$SENTINEL_MASTER_PORT" --repl-diskless-sync-delay 0 || exit 1
start_data sentinel-replica "$(redis_free_port)" --replicaof 127.0.0.1 "$SENTINEL_MASTER_PORT" || exit 1
SENTINEL_PORTS=
for n in 1 2 3; do
  sp=$(redis_free_port)
  mkdir -p "$tmp/sentinel$n"
  printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 4000\nsentinel parallel-syncs mymaster 1\n' \
    "$sp" "$tmp/sentinel$n" "$SENTINEL_MASTER_PORT" >"$tmp/sentinel$n/sentinel.conf"
  redis-server "$tmp/sentinel$n/sentinel.conf" --sentinel --logfile "$tmp/sentinel$n/sentinel.log" >/dev/null 2>&1 &
  tls_pids+=($!)
  SENTINEL_PORTS="${SENTINEL_PORTS:+$SENTINEL_PORTS,}$sp"
done
# Ready when every sentinel knows the replica and the two other sentinels.
sentinels_ready() {
  local p
  for p in ${SENTINEL_PORTS//,/ }; do
    [ "$(redis-cli -p "$p" SENTINEL replicas mymaster 2>/dev/null | grep -c '^name$')" -ge 1 ] || return 1
    [ "$(redis-cli -p "$p" SENTINEL sentinels mymaster 2>/dev/null | grep -c '^name$')" -ge 2 ] || return 1
  done
}
for i in $(seq 1 400); do sentinels_ready && break; sleep 0.05; done
sentinels_ready || echo "the sentinels did not meet in 20 s" >&2

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

# fleet_daemon_example URL: the fleet daemon example against the fleet played with redis-cli
# (no redipc on this side): bare queues, the status hash with RFC 3339 timestamps and its
# announcements, the fault set/stream/channel, JSON RPC on the redis-ipc wire, SIGTERM.
fleet_daemon_example() {
  local url=$1 p="fleetd:$$:$RANDOM" out="$tmp/fleet_daemon.txt" sub="$tmp/fleet_sub.txt"
  local pid spid i status=0 got want
  rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }
  # until CMD... prints WANT (up to 5 s)
  until_is() {
    local want=$1 i
    shift
    for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
    echo "timed out: $* is '$("$@")', want '$want'"
    return 1
  }
  # A fleet caller: SUBSCRIBE <list>:reply:<32 hex>, then LPUSH the envelope; prints the reply.
  fleet_rpc() {
    local method=$1 id ch rs="$tmp/fleet_reply.txt" rpid deadline i
    id=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    ch="$p:rpc:reply:$id"
    redis-cli -s "$REDIS_SOCK" SUBSCRIBE "$ch" >"$rs" 2>&1 &
    rpid=$!
    for i in $(seq 1 100); do [ "$(sed -n 3p "$rs")" = 1 ] && break; sleep 0.05; done
    deadline=$(($(date +%s%3N) + 5000))
    rcli LPUSH "$p:rpc" "{\"id\":\"$id\",\"method\":\"$method\",\"reply_channel\":\"$ch\",\"deadline\":$deadline,\"payload\":null}" >/dev/null
    for i in $(seq 1 100); do [ -n "$(sed -n 6p "$rs")" ] && break; sleep 0.05; done
    kill "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    sed -n 6p "$rs"
  }
  # The fleet's watcher of the status hash: a plain SUBSCRIBE on its channel.
  redis-cli -s "$REDIS_SOCK" SUBSCRIBE "$p:vehicle" >"$sub" 2>&1 &
  spid=$!
  for i in $(seq 1 100); do [ "$(sed -n 3p "$sub")" = 1 ] && break; sleep 0.05; done
  "$build/fleet_daemon" "$url" "$p" >"$out" 2>&1 &
  pid=$!
  for i in $(seq 1 200); do grep -q '^ready$' "$out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  # The initial status, stamped in RFC 3339.
  [ "$(rcli HGET "$p:vehicle" state)" = unlocked ] || { echo "initial state"; status=1; }
  [ "$(rcli HGET "$p:vehicle" seatbox:lock)" = closed ] || { echo "initial seatbox"; status=1; }
  rcli HGET "$p:vehicle" state:timestamp | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z' ||
    { echo "state:timestamp is not RFC 3339: $(rcli HGET "$p:vehicle" state:timestamp)"; status=1; }
  # Bare queues: the seatbox opens; locking is then refused with fault 23.
  rcli LPUSH "$p:seatbox" open >/dev/null
  until_is open rcli HGET "$p:vehicle" seatbox:lock || status=1
  rcli LPUSH "$p:state" lock >/dev/null
  until_is 1 rcli SISMEMBER "$p:vehicle:fault" 23 || status=1
  [ "$(rcli HGET "$p:vehicle" state)" = unlocked ] || { echo "locked with the seatbox open"; status=1; }
  # Closing the seatbox clears the fault; locking now works.
  rcli LPUSH "$p:seatbox" close >/dev/null
  rcli LPUSH "$p:state" lock >/dev/null
  until_is locked rcli HGET "$p:vehicle" state || status=1
  [ "$(rcli SCARD "$p:vehicle:fault")" = 0 ] || { echo "fault not cleared"; status=1; }
  got=$(rcli XRANGE events:faults - + | tr '\n' '|')
  [[ "$got" == *"|group|$p:vehicle|code|23|description|cannot lock: seatbox open|"* ]] ||
    { echo "no fault 23 in events:faults"; status=1; }
  [[ "$got" == *"|group|$p:vehicle|code|-23|"* ]] || { echo "no cleared fault in events:faults"; status=1; }
  # JSON RPC on the redis-ipc wire.
  got=$(fleet_rpc get-state)
  want='{"ok":true,"payload":{"state":"locked","seatbox":"closed"}}'
  [ "$got" = "$want" ] || { echo "get-state: '$got', want '$want'"; status=1; }
  got=$(fleet_rpc fly)
  want='{"ok":false,"error":"unknown method: fly"}'
  [ "$got" = "$want" ] || { echo "fly: '$got', want '$want'"; status=1; }
  # What the fleet's watcher saw on the hash's channel, in order.
  got=$(awk 'NR > 3 && NR % 3 == 0' "$sub" | tr '\n' ' ')
  want='replaced seatbox:lock seatbox:opened fault seatbox:lock fault state '
  [ "$got" = "$want" ] || { echo "announcements: '$got', want '$want'"; status=1; }
  kill -TERM "$pid"
  wait "$pid" || { echo "fleet_daemon exited $?"; status=1; }
  grep -q '^stopped$' "$out" || { echo "no 'stopped' after SIGTERM"; status=1; }
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  cat "$out"
  return $status
}
export -f fleet_daemon_example
export build tmp

for transport in tcp unix; do
  if [ "$transport" = tcp ]; then url=$REDIS_TCP_URL obs_url=$OBS_TCP_URL; else url=$REDIS_UNIX_URL obs_url=$OBS_UNIX_URL; fi
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
  run "fleet_test [$transport]" 120 "$build/fleet_test" "$url" "$NOCONFIG_URL"
  run "fleet_daemon example [$transport]" 60 bash -c 'fleet_daemon_example "$1"' _ "$url"
  run "observability_test [$transport]" 120 "$build/observability_test" "$obs_url" "$OBS_TCP_URL"
  run "coord_test [$transport]" 120 "$build/coord_test" "$url"
done
# TLS is over TCP only.
run "tls_test [tls]" 120 "$build/tls_test" "$TLS_PORT1" "$MTLS_PORT" "$CERTS" "$TLS_PLAIN_URL"
# Sentinel: TCP; it fails the master over (the valgrind run does again).
run "sentinel_test [sentinel]" 120 "$build/sentinel_test" "$SENTINEL_PORTS"

# Redis Cluster (six nodes, started here once): the cluster test, then the pub/sub and RPC
# examples unchanged against the cluster's URL (a seed list).
if cluster_start "$tmp/cluster"; then
  run "cluster_test [cluster]" 120 "$build/cluster_test" "$CLUSTER_URL" "$REDIS_TCP_URL"
  run "pubsub example [cluster]" 60 bash -c 'pubsub_example "$1"' _ "$CLUSTER_URL"
  run "rpc_echo example [cluster]" 60 bash -c 'rpc_echo_example "$1"' _ "$CLUSTER_URL"
else
  failed=$((failed + 1))
  echo "FAIL could not start the Redis Cluster"
fi

if [ -n "${REDIPC_VALGRIND:-}" ] && command -v valgrind >/dev/null 2>&1; then
  for prog in api_test pubsub_test tx_test queue_rpc_test stream_test state_test lifecycle_test report_test fleet_test observability_test coord_test; do
    extra=()
    server=$REDIS_UNIX_URL
    [ "$prog" = fleet_test ] && extra=("$NOCONFIG_URL")
    [ "$prog" = observability_test ] && server=$OBS_UNIX_URL extra=("$OBS_TCP_URL")
    run "$prog under valgrind [unix]" 180 env REDIPC_TEST_QUICK=1 \
      valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      --show-possibly-lost=no \
      "$build/$prog" "$server" "${extra[@]}"
  done
  run "tls_test under valgrind [tls]" 180 \
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-possibly-lost=no --suppressions="$here/valgrind-tls.supp" \
    "$build/tls_test" "$TLS_PORT1" "$MTLS_PORT" "$CERTS" "$TLS_PLAIN_URL"
  run "sentinel_test under valgrind [sentinel]" 180 \
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-possibly-lost=no "$build/sentinel_test" "$SENTINEL_PORTS"

else
  echo "skip the valgrind runs: set REDIPC_VALGRIND=1 (and install valgrind) to include them"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
