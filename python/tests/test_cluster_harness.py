"""The Redis Cluster fixture itself (``cluster`` in conftest.py, scripts/lib/cluster.sh):
three primaries with one replica each, the 16384 slots covered, a key written through a
cluster client."""

from __future__ import annotations

import subprocess

from conftest import RedisCluster


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True
    ).stdout


def test_cluster_topology(cluster: RedisCluster) -> None:
    assert len(set(cluster.ports)) == 6 and 6379 not in cluster.ports
    assert len(cluster.primaries) == 3 and len(cluster.replicas) == 3
    assert len(cluster.pids) == 6
    assert cluster.url == "redis://" + ",".join(f"127.0.0.1:{p}" for p in cluster.ports) + "/"

    # Every node sees the whole cluster; roles as the fixture says.
    for port in cluster.ports:
        info = _cli(port, "cluster", "info").split()
        for line in ("cluster_state:ok", "cluster_known_nodes:6", "cluster_slots_assigned:16384"):
            assert line in info, (port, line)
        role = _cli(port, "role").split()[0]
        assert role == ("master" if port in cluster.primaries else "slave"), (port, role)

    try:
        from redis.cluster import RedisCluster as PyRedisCluster
    except ImportError:  # redis-py absent: redis-cli -c only
        assert _cli(cluster.replicas[0], "-c", "set", "harness:py", "1").strip() == "OK"
        return

    rc = PyRedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    try:
        assert sorted(n.port for n in rc.get_primaries()) == sorted(cluster.primaries)
        nodes = rc.cluster_nodes()  # {"127.0.0.1:P@bus": {"flags": ..., "connected": ...}}
        assert len(nodes) == 6
        by_role: dict[str, list[int]] = {"master": [], "slave": []}
        for address, node in nodes.items():
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            assert node["connected"], address
            by_role["master" if "master" in str(node["flags"]) else "slave"].append(port)
        assert sorted(by_role["master"]) == sorted(cluster.primaries)
        assert sorted(by_role["slave"]) == sorted(cluster.replicas)
        slots = rc.cluster_slots()
        covered = sorted((start, end) for (start, end) in slots)
        assert covered[0][0] == 0 and covered[-1][1] == 16383
        assert sum(end - start + 1 for start, end in covered) == 16384
        for key in ("harness:a", "harness:b", "{user1}:c"):
            assert rc.set(key, "v")
            assert rc.get(key) == "v"
    finally:
        rc.close()


def test_keyslot_agrees_with_the_cluster(cluster: RedisCluster) -> None:
    import redipc

    port = cluster.primaries[0]
    for key in ("foo", "key:17", "{user7}:cart", "a{}{b}", "x{y}{z}"):
        assert redipc.keyslot(key) == int(_cli(port, "cluster", "keyslot", key)), key
    tag = redipc.hash_tag_for_slot(9000)
    assert int(_cli(port, "cluster", "keyslot", "{%s}:jobs" % tag)) == 9000
