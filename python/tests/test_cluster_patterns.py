"""Every pattern's happy path against the session's Redis Cluster (the ``cluster``
fixture): request queues (plain, reliable, several queues on different nodes, delayed),
RPC, streams with a consumer group and dead letters, the cache with ``cache_wait``, hash
state and its watcher, locks, semaphores, rate limiters, scripts, and a pub/sub round
trip. Keys are spread on purpose over the three primaries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redipc
from conftest import RedisCluster


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.01)


def _names_on_different_slots(prefix: str, n: int) -> list[str]:
    """``n`` names whose library keys (``ipc:{q:NAME}:...``) are in different slots."""
    out: list[str] = []
    slots: set[int] = set()
    i = 0
    while len(out) < n:
        name = f"{prefix}{i}"
        s = redipc.keyslot(f"q:{name}")
        if s not in slots:
            slots.add(s)
            out.append(name)
        i += 1
    return out


def test_request_queues(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c:
        seen: list[bytes] = []
        lock = threading.Lock()

        def handler(req: redipc.Request) -> None:
            with lock:
                seen.append(req.payload)

        # Plain, one queue, four loops.
        with c.handle_requests("cl:jobs", handler, concurrency=4, block_timeout=0.2) as w:
            for i in range(500):
                c.send_request("cl:jobs", str(i))
            wait_until(lambda: w.stats().handled >= 500, "all handled")
        assert sorted(seen) == sorted(str(i).encode() for i in range(500))
        # Several queues on different slots, plain and reliable: each request once.
        for reliable in (False, True):
            seen.clear()
            queues = _names_on_different_slots(f"cl:multi:{reliable}:", 3)
            with c.handle_requests(queues, handler, reliable=reliable, block_timeout=0.2) as w:
                for q in queues:
                    for i in range(50):
                        c.send_request(q, f"{q}:{i}")
                wait_until(lambda: w.stats().handled >= 150, "all handled")
            assert len(seen) == 150 and len(set(seen)) == 150
            for q in queues:
                assert c.queue_stats(q).as_dict() == {"pending": 0, "inflight": 0, "dead": 0, "delayed": 0}
        # Delayed requests.
        seen.clear()
        with c.handle_requests("cl:later", handler, block_timeout=0.2):
            c.send_request("cl:later", "soon", delay=0.3)
            wait_until(lambda: seen == [b"soon"], "the delayed request")


def test_rpc(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as server, redipc.Client(cluster.url) as caller:
        with server.serve("cl:upper", lambda call: bytes(call.payload).upper()):
            for i in range(20):
                assert caller.call("cl:upper", f"hello {i}", timeout=5) == f"HELLO {i}".encode()
            assert [i.service for i in caller.instances("cl:upper")] == [b"cl:upper"]


def test_streams_groups_and_dead_letters(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c:
        c.stream_group_create("cl:events", "g", "0")
        for i in range(100):
            c.stream_publish("cl:events", {"n": str(i)})
        assert len(c.stream_read("cl:events", "0", 1000)) == 100
        got: list[bytes] = []

        def handler(e: redipc.StreamEntry) -> None:
            if e["n"] == b"13":
                raise ValueError("poison")
            got.append(e["n"])

        with c.stream_consume(
            "cl:events", "g", "c1", handler, block=0.2, max_deliveries=2, min_idle=0.2
        ) as consumer:
            wait_until(lambda: consumer.stats().dead_lettered == 1, "the poison entry dead-lettered")
        assert len(got) == 99
        dead = c.stream_dead_letters("cl:events")
        assert len(dead) == 1 and dead[0]["n"] == b"13" and b"poison" in dead[0]["_error"]


def test_cache_hash_state_and_coordination(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c, redipc.Client(cluster.url) as other:
        # cache_wait woken by another client's cache_set.
        t = threading.Timer(0.2, lambda: other.cache_set("cl:answer", "42", ttl=10))
        t.start()
        assert c.cache_wait("cl:answer", 5) == b"42"
        t.join()
        # Hash state and its watcher.
        changes: list[tuple[bytes, bytes | None]] = []
        with c.hash_watch("cl:device", on_any=lambda f, v: changes.append((f, v))):
            other.hash_set("cl:device", "battery", "80")
            wait_until(lambda: (b"battery", b"80") in changes, "the change")
        # A lock, a semaphore, a rate limiter.
        with c.lock("cl:lock", ttl=5):
            try:
                other.lock("cl:lock", ttl=5, wait=0.1)
                raise AssertionError("the lock was taken twice")
            except redipc.TimeoutError:
                pass
        sem = c.semaphore("cl:sem", permits=2)
        p1, p2 = sem.acquire(1), sem.acquire(1)
        try:
            sem.acquire(0)
            raise AssertionError("a third permit")
        except redipc.TimeoutError:
            pass
        p1.release()
        p2.release()
        rl = c.rate_limiter("cl:rl", rate=5, per=1.0)
        assert [rl.acquire()[0] for _ in range(6)] == [True] * 5 + [False]
        # A script with keys of one slot.
        s = c.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        assert s(keys=["cl:scripted"], args=[3]) == 3


def test_pubsub_round_trip(cluster: RedisCluster) -> None:
    with redipc.Client(cluster.url) as c, redipc.Client(cluster.url) as pub:
        with c.subscribe("cl:news") as sub:
            assert sub.get(timeout=5).kind == "activated"
            for i in range(100):
                pub.publish("cl:news", str(i))
            got = [sub.get(timeout=5).payload for _ in range(100)]
        assert got == [str(i).encode() for i in range(100)], "in order"


def test_keyspace_watch_and_shard_channels(cluster: RedisCluster) -> None:
    """Keyspace notifications come from every primary's keys (one subscription per
    primary); shard channels are subscribed on their slots' owners."""
    with redipc.Client(cluster.url) as c, redipc.Client(cluster.url) as other:
        got: set[bytes] = set()
        lock = threading.Lock()

        def on_key(key: bytes, event: str) -> None:
            with lock:
                got.add(key)

        keys = [f"cl:ks:{i}" for i in range(30)]
        assert len({redipc.keyslot(k) // 5462 for k in keys}) == 3, "spread over the slot ranges"
        with c.watch_keys("cl:ks:*", on_key, events=["set"]):
            time.sleep(0.3)  # every primary's connection confirms
            for k in keys:
                other.set(k, "1")
            wait_until(lambda: got == {k.encode() for k in keys}, "every key's event")
        channels = [f"cl:shard:{i}" for i in range(12)]
        with c.ssubscribe(*channels) as sub:
            for _ in channels:
                assert sub.get(timeout=5).kind == "activated"
            for ch in channels:
                assert other.spublish(ch, ch) == 1
            payloads = {sub.get(timeout=5).payload for _ in channels}
        assert payloads == {ch.encode() for ch in channels}
