# shellcheck shell=bash
# Helpers to start and stop a private Redis Cluster for tests and examples: six
# `redis-server --cluster-enabled yes` processes on 127.0.0.1 (three primaries, three
# replicas), never on 6379. Source this file, then:
#   cluster_start DIR   starts the nodes with their files in DIR/<port>/, creates the cluster
#                       (`redis-cli --cluster create ... --cluster-replicas 1`) and waits
#                       until every node says cluster_state:ok, knows the six nodes, sees
#                       all 16384 slots assigned and three primaries and three replicas,
#                       and every replica is in sync; sets and
#                       exports CLUSTER_PORTS (the six ports, space separated), CLUSTER_PIDS
#                       (the same order), CLUSTER_PRIMARIES (the primaries' ports) and
#                       CLUSTER_URL (redis://127.0.0.1:P1,127.0.0.1:P2,.../: every node as
#                       a seed list)
#   cluster_stop        stops every node (SIGTERM, then SIGKILL) by its PID
#
# Ports: a node listens on P and on P+10000 (the cluster bus); both must be free. They are
# drawn from 15000-21999 (bus 25000-31999), below the kernel's ephemeral range, so that
# they do not collide with the ports other tests get from bind(0).
# Tunables: CLUSTER_NODE_TIMEOUT (ms, default 2000).

cluster_free_ports() {
  # cluster_free_ports N: N distinct ports P with P and P+10000 free on 127.0.0.1.
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False
ports = []
while len(ports) < n:
    p = random.randrange(15000, 22000)
    if p != 6379 and p not in ports and free(p) and free(p + 10000):
        ports.append(p)
print(" ".join(map(str, ports)))
PY
}

# cluster_node_start DIR PORT: start one node in DIR/PORT/ and add its PID to CLUSTER_PIDS
# (started from this shell, not a subshell, so that cluster_stop can wait for it).
cluster_node_start() {
  local dir=$1/$2 port=$2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout "${CLUSTER_NODE_TIMEOUT:-2000}" \
    --save "" --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no \
    </dev/null >/dev/null 2>&1 &
  CLUSTER_PIDS="${CLUSTER_PIDS:+$CLUSTER_PIDS }$!"
}

# cluster_info_ok PORT: the node's CLUSTER INFO says the whole cluster is up.
cluster_info_ok() {
  local info
  info=$(redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r') || return 1
  grep -qx 'cluster_state:ok' <<<"$info" &&
    grep -qx 'cluster_known_nodes:6' <<<"$info" &&
    grep -qx 'cluster_slots_assigned:16384' <<<"$info"
}

# cluster_node_ready PORT: cluster_info_ok, the node's CLUSTER NODES shows three primaries
# and three replicas, all connected and none failing (roles spread by gossip after the
# replicas' CLUSTER REPLICATE), and a replica is in sync with its primary.
cluster_node_ready() {
  cluster_info_ok "$1" || return 1
  local repl roles
  roles=$(redis-cli -p "$1" cluster nodes 2>/dev/null | awk '
    $3 ~ /fail|handshake|noaddr|nofailover/ || $8 != "connected" { bad++ }
    $3 ~ /master/ { m++ } $3 ~ /slave/ { s++ }
    END { print (bad + 0) " " (m + 0) " " (s + 0) }') || return 1
  [ "$roles" = "0 3 3" ] || return 1
  repl=$(redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r') || return 1
  grep -qx 'role:master' <<<"$repl" || grep -qx 'master_link_status:up' <<<"$repl"
}

cluster_start() {
  local dir=$1 try port i
  command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2; return 1; }
  command -v redis-cli >/dev/null || { echo "redis-cli is not installed (Debian: apt-get install redis-tools)" >&2; return 1; }
  mkdir -p "$dir"
  for try in 1 2 3; do
    CLUSTER_PORTS=$(cluster_free_ports 6)
    CLUSTER_PIDS=
    for port in $CLUSTER_PORTS; do cluster_node_start "$dir" "$port"; done
    export CLUSTER_PORTS CLUSTER_PIDS
    if cluster_wait_nodes && cluster_create "$dir" && cluster_wait_ready; then
      local seeds=
      for port in $CLUSTER_PORTS; do seeds="$seeds,127.0.0.1:$port"; done
      CLUSTER_URL="redis://${seeds#,}/"
      CLUSTER_PRIMARIES=
      for port in $CLUSTER_PORTS; do
        if redis-cli -p "$port" role 2>/dev/null | head -1 | grep -qx master; then
          CLUSTER_PRIMARIES="$CLUSTER_PRIMARIES $port"
        fi
      done
      CLUSTER_PRIMARIES=${CLUSTER_PRIMARIES# }
      export CLUSTER_URL CLUSTER_PRIMARIES
      return 0
    fi
    cluster_stop
    for port in $CLUSTER_PORTS; do rm -rf "${dir:?}/$port"; done
  done
  echo "could not start a redis cluster (see $dir/*/redis.log)" >&2
  return 1
}

# cluster_wait_nodes: every node answers PING (a node that exited: port taken, give up).
cluster_wait_nodes() {
  local port pid i
  set -- $CLUSTER_PIDS
  for port in $CLUSTER_PORTS; do
    pid=$1; shift
    for i in $(seq 1 200); do
      redis-cli -p "$port" ping 2>/dev/null | grep -qx PONG && continue 2
      kill -0 "$pid" 2>/dev/null || return 1
      sleep 0.05
    done
    return 1
  done
}

cluster_create() {
  local port nodes=()
  for port in $CLUSTER_PORTS; do nodes+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$1/create.log" 2>&1
}

# cluster_wait_ready: every node is ready (cluster_node_ready) within 30 s.
cluster_wait_ready() {
  local port i
  for i in $(seq 1 300); do
    for port in $CLUSTER_PORTS; do
      cluster_node_ready "$port" || { sleep 0.1; continue 2; }
    done
    return 0
  done
  return 1
}

cluster_stop() {
  # Safe under `set -e` and from an EXIT trap: nodes already gone are not an error.
  [ -n "${CLUSTER_PIDS:-}" ] || return 0
  local pid i
  for pid in $CLUSTER_PIDS; do kill "$pid" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    for pid in $CLUSTER_PIDS; do kill -0 "$pid" 2>/dev/null && { sleep 0.05; continue 2; }; done
    break
  done
  for pid in $CLUSTER_PIDS; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  CLUSTER_PIDS=
  return 0
}
