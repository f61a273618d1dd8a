# shellcheck shell=bash
# Helpers to start and stop a private redis-server for tests, examples and the showcase.
# Source this file, then:
#   redis_start DIR     starts redis-server with its unix socket and files in DIR, on a free
#                       TCP port of 127.0.0.1 (never 6379); sets REDIS_PID, REDIS_PORT,
#                       REDIS_SOCK, REDIS_TCP_URL, REDIS_UNIX_URL
#   redis_stop          stops it (SIGTERM, then SIGKILL)

redis_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

redis_start() {
  local dir=$1 try
  command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2; return 1; }
  mkdir -p "$dir"
  for try in 1 2 3 4 5; do
    REDIS_PORT=$(redis_free_port)
    REDIS_SOCK="$dir/redis.sock"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
      --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" --daemonize no \
      >/dev/null 2>&1 &
    REDIS_PID=$!
    local i
    for i in $(seq 1 100); do
      if [ -S "$REDIS_SOCK" ] && redis-cli -s "$REDIS_SOCK" ping >/dev/null 2>&1; then
        REDIS_TCP_URL="redis://127.0.0.1:$REDIS_PORT/0"
        REDIS_UNIX_URL="unix://$REDIS_SOCK"
        export REDIS_PID REDIS_PORT REDIS_SOCK REDIS_TCP_URL REDIS_UNIX_URL
        return 0
      fi
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
  done
  echo "could not start redis-server (see $dir/redis.log)" >&2
  return 1
}

redis_stop() {
  # Safe under `set -e` (the showcase calls it from its EXIT trap): a server that is
  # already gone is not an error.
  [ -n "${REDIS_PID:-}" ] || return 0
  kill "$REDIS_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=
  return 0
}
