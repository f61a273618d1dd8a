"""The client against a Redis Cluster (the session's ``cluster`` fixture: three primaries,
three replicas): routing by key over every slot, split and refused multi-key commands,
batches and transactions, the ``cluster=`` option, seed lists, redirects after a slot
moves, and the asyncio client."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

import redipc
import redipc.asyncio as aio
from conftest import RedisCluster


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _owner(cluster: RedisCluster, slot: int) -> int:
    """The port of the primary serving ``slot``: the one whose own line of CLUSTER NODES
    lists it."""
    for port in cluster.primaries:
        for line in _cli(port, "cluster", "nodes").splitlines():
            fields = line.split()
            if "myself" not in fields[2]:
                continue
            for r in fields[8:]:
                if r.startswith("["):
                    continue
                start, _, end = r.partition("-")
                if int(start) <= slot <= int(end or start):
                    return port
    raise AssertionError(f"slot {slot} not covered")


def test_keys_over_every_slot(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c:
        for i in range(2000):
            c.set(f"py:spread:{i}", str(i))
        for i in range(0, 2000, 3):
            assert c.get(f"py:spread:{i}") == str(i).encode()
        # Each primary holds a share, and a key is on its slot's owner.
        for port in cluster.primaries:
            assert int(_cli(port, "dbsize")) > 300, port
        assert c.incr("py:counter", 2) == 2
        c.hset("py:h", "f", "v")
        assert c.hget("py:h", "f") == b"v"
        assert c.command("PING") == "PONG"


def test_multi_key_commands_split_or_refused(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c:
        keys = [f"py:multi:{i}" for i in range(12)]
        for i, k in enumerate(keys):
            if i % 2:
                c.set(k, str(i))
        values = c.command("MGET", *keys)
        assert values == [str(i).encode() if i % 2 else None for i in range(12)]
        assert c.exists(*keys) == 6
        assert c.delete(*keys) == 6
        a, b = "py:cross:a", "py:cross:b"
        assert redipc.keyslot(a) != redipc.keyslot(b)
        with pytest.raises(redipc.InvalidArgument, match="CROSSSLOT.*nothing was sent"):
            c.command("MSET", a, "1", b, "2")
        assert c.exists(a, b) == 0
        # One hash tag: one slot, fine.
        c.command("MSET", "{py}a", "1", "{py}b", "2")
        assert c.command("MGET", "{py}a", "{py}b") == [b"1", b"2"]


def test_batches_and_transactions(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c:
        p = c.pipeline()
        for i in range(500):
            p.add("SET", f"py:batch:{i}", str(i))
        assert len(p.exec()) == 500
        for i in range(500):
            p.add("GET", f"py:batch:{i}")
        assert p.exec() == [str(i).encode() for i in range(500)]
        tx = c.tx()
        tx.add("INCR", "{py:acct}:a").add("INCR", "{py:acct}:b")
        assert tx.exec() == [1, 1]
        tx.add("INCR", "py:tx:a").add("INCR", "py:tx:b")
        with pytest.raises(redipc.InvalidArgument, match="one slot"):
            tx.exec()
        assert c.exists("py:tx:a", "py:tx:b") == 0

        def bump(s: redipc.WatchSession) -> None:
            n = int(s.command("GET", "{py:acct}:a") or 0)
            s.queue("SET", "{py:acct}:a", n + 10)

        assert c.transaction(bump, "{py:acct}:a") == ["OK"]
        assert c.get("{py:acct}:a") == b"11"
        with pytest.raises(redipc.InvalidArgument):
            c.transaction(bump, "py:tx:a", "py:tx:b")


def test_cluster_option_and_seed_lists(cluster: RedisCluster, redis_server: object) -> None:
    # Through one replica's address: the map still comes, commands land.
    with redipc.Client(f"redis://127.0.0.1:{cluster.replicas[0]}/", cluster=True) as c:
        c.set("py:seed", "1")
        assert c.get("py:seed") == b"1"
    # A dead first seed is skipped.
    dead = "127.0.0.1:1"
    with redipc.Client(f"redis://{dead},127.0.0.1:{cluster.ports[3]}/") as c:
        assert c.get("py:seed") == b"1"
    # cluster=False on a cluster node: that node alone; keys of other slots fail (MOVED).
    port = cluster.primaries[0]
    with redipc.Client(f"redis://127.0.0.1:{port}/", cluster=False) as c:
        errors = 0
        for i in range(50):
            try:
                c.get(f"py:standalone:{i}")
            except redipc.ResponseError as e:
                assert "MOVED" in str(e)
                errors += 1
        assert errors > 0
    # cluster=True on a standalone server: refused.
    url = redis_server.tcp_url  # type: ignore[attr-defined]
    with pytest.raises(redipc.UnsupportedError, match="not a cluster node"):
        redipc.Client(url, cluster=True)
    with redipc.Client(url) as c:
        assert c.stats().redirects == 0


def test_redirect_after_a_slot_moves(cluster: RedisCluster) -> None:
    key = "{py:moving}:k"
    slot = redipc.keyslot(key)
    with redipc.Client(cluster.url) as c:
        c.set(key, "x")
        c.delete(key)
        owner = _owner(cluster, slot)
        target = next(p for p in cluster.primaries if p != owner)
        target_id = _cli(target, "cluster", "myid")
        for p in cluster.primaries:
            _cli(p, "cluster", "setslot", str(slot), "node", target_id)
        before = c.stats().redirects
        c.set(key, "after")
        assert c.stats().redirects == before + 1
        assert _cli(target, "get", key) == "after"
        for _ in range(20):
            assert c.get(key) == b"after"
        assert c.stats().redirects == before + 1


def test_asyncio_client_on_a_cluster(cluster: RedisCluster) -> None:
    async def main() -> None:
        async with aio.Client(cluster.url) as c:
            await asyncio.gather(*(c.set(f"py:aio:{i}", str(i)) for i in range(1000)))
            values = await asyncio.gather(*(c.get(f"py:aio:{i}") for i in range(1000)))
            assert values == [str(i).encode() for i in range(1000)]
            assert await c.command("MGET", "py:aio:1", "py:aio:2") == [b"1", b"2"]
            with pytest.raises(redipc.InvalidArgument):
                await c.command("MSET", "py:cross:a", "1", "py:cross:b", "2")

    asyncio.run(main())


def _replica_gets(cluster: RedisCluster) -> int:
    total = 0
    for p in cluster.replicas:
        stats = _cli(p, "info", "commandstats")
        if "cmdstat_get:calls=" in stats:
            total += int(stats.split("cmdstat_get:calls=")[1].split(",")[0])
    return total


def test_read_from_replicas(cluster: RedisCluster) -> None:
    """Reads go to replicas once the map lists them (a node leaves a replica that has
    no data yet out of CLUSTER SLOTS; the client asks again, at most every 5 s)."""
    with redipc.Client(cluster.url) as w, redipc.Client(cluster.url, read_from_replicas=True) as r:
        w.set("py:replica", "v")
        before = _replica_gets(cluster)
        deadline = time.monotonic() + 12
        while _replica_gets(cluster) == before:
            assert time.monotonic() < deadline, "no read went to a replica"
            assert r.get("py:replica") in (b"v", None)  # a replica may lag
            time.sleep(0.05)
        w.set("py:replica:w", "1")
        assert w.get("py:replica:w") == b"1"


def test_node_stats_and_a_tag_per_node(cluster: RedisCluster, redis_server: object) -> None:
    with redipc.Client(cluster.url) as c:
        nodes = c.node_stats()
        primaries = [n for n in nodes if n.primary]
        assert len(primaries) == 3 and 3 <= len(nodes) <= 6, nodes
        assert sum(b - a + 1 for n in primaries for a, b in n.slots) == 16384
        for port in cluster.primaries:
            addr = f"127.0.0.1:{port}"
            tag = c.hash_tag_for_node(addr)
            key = f"{{{tag}}}:py:node"
            assert _owner(cluster, redipc.keyslot(key)) == port, key
            c.set(key, "warm")  # opens the node's connection (its handshake counts)
            (before,) = [n for n in c.node_stats() if n.addr == addr]
            for i in range(30):
                c.set(key, str(i))
            (after,) = [n for n in c.node_stats() if n.addr == addr]
            assert after.connected and after.commands - before.commands == 30, after
            assert after.bytes_out > before.bytes_out and after.redirects == 0
            assert after.as_dict()["addr"] == addr
            c.delete(key)
        assert sum(n.commands for n in c.node_stats()) == c.stats().commands
        with pytest.raises(redipc.InvalidArgument, match="its primaries: 127.0.0.1:"):
            c.hash_tag_for_node("127.0.0.1:1")

    async def on_the_loop() -> None:
        async with aio.Client(cluster.url) as a:
            await a.set("py:node:aio", "1")
            assert [n for n in a.node_stats() if n.primary][0].slots[0][0] == 0
            assert isinstance(a.hash_tag_for_node(primaries[0].addr), str)

    asyncio.run(on_the_loop())
    url = redis_server.tcp_url  # type: ignore[attr-defined]
    with redipc.Client(url) as s:
        s.command("PING")
        (one,) = s.node_stats()
        assert one.primary and one.connected and one.slots == [] and one.commands > 0
        with pytest.raises(redipc.UnsupportedError, match="not connected to a cluster"):
            s.hash_tag_for_node("127.0.0.1:1")
