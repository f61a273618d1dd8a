"""redipc.asyncio (first part): commands, typed helpers, batches, errors, cancellation,
closing while tasks await, several loops in several threads, and no thread or task left
behind. Plain ``asyncio.run`` in each test (no plugin needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import redipc
import redipc.asyncio as ra
from conftest import RedisServer


def run(server: RedisServer, transport: str, body: Callable[[ra.Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with ra.Client(server.url(transport)) as c:
            await c.command("FLUSHALL")
            return await body(c)

    return asyncio.run(main())


@pytest.fixture(params=["tcp", "unix"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_commands_and_typed_helpers(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        assert await c.set("k", "v") is True
        assert await c.set("k", "w", nx=True) is False
        assert await c.get("k") == b"v"
        assert await c.get("missing") is None
        assert await c.command("PING") == "PONG"
        assert await c.incr("n") == 1
        assert await c.incr("n", 5) == 6
        assert await c.exists("k", "n", "missing") == 2
        assert await c.delete("k", "n") == 2
        assert await c.publish("nobody", "x") == 0
        assert await c.command("HSET", "h", "a", "1") == 1
        assert await c.command("HGETALL", "h") == {b"a": b"1"}
        assert "asyncio.Client" in repr(c)
        assert c.is_connected
        assert c.stats().commands >= 10

    run(server, transport, body)


def test_a_thousand_concurrent_gets_are_all_correct(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        p = c.pipeline()
        for i in range(1000):
            p.add("SET", f"k{i}", f"v{i}")
        assert len(await p.exec()) == 1000
        got = await asyncio.gather(*(c.get(f"k{i}") for i in range(1000)))
        assert got == [f"v{i}".encode() for i in range(1000)]
        # And as tasks.
        tasks = [asyncio.create_task(c.get(f"k{i}")) for i in range(100)]
        assert [await t for t in tasks] == [f"v{i}".encode() for i in range(100)]

    run(server, transport, body)


def test_pipelines_and_transactions(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        p = c.pipeline().add("SET", "a", "1").add("INCR", "a").add("INCR", "text")
        await c.set("text", "x")
        r = await p.exec()
        assert r[:2] == ["OK", 2]
        assert isinstance(r[2], redipc.ResponseError)
        assert len(p) == 0, "empty after exec"
        t = c.tx()
        assert t.atomic and not c.pipeline().atomic
        t.add("INCR", "a").add("INCR", "a")
        assert await t.exec() == [3, 4]
        assert "asyncio.Transaction" in repr(c.tx())

    run(server, transport, body)


def test_errors_are_the_sync_clients(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        await c.set("text", "x")
        with pytest.raises(redipc.ResponseError) as e:
            await c.incr("text")
        assert e.value.code == "ERR"
        with pytest.raises(redipc.InvalidArgument):
            await c.command()
        with pytest.raises(redipc.InvalidArgument):
            await c.command("SUBSCRIBE", "x")
        # The client goes on.
        assert await c.get("text") == b"x"

    run(server, transport, body)


def test_cancelling_a_task_cancels_its_call(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        t = asyncio.create_task(c.command("BLPOP", "never", 0))
        await asyncio.sleep(0.1)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        # The blocked pop was given up: the server has no client blocked any more.
        for _ in range(100):
            info = await c.command("INFO", "clients")
            if "blocked_clients:0" in info:
                break
            await asyncio.sleep(0.02)
        assert "blocked_clients:0" in info
        # A timeout is a cancellation too.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.command("BLPOP", "never", 0), 0.1)
        assert await c.command("PING") == "PONG"

    run(server, transport, body)


def test_a_cancelled_blocking_pop_loses_nothing(server: RedisServer, transport: str) -> None:
    sync = redipc.Client(server.url(transport))

    def blocked() -> int:
        info = sync.command("INFO", "clients")
        return int(info.split("blocked_clients:")[1].split()[0])

    def until(check: Callable[[], bool], what: str) -> None:
        for _ in range(250):
            if check():
                return
            time.sleep(0.02)
        pytest.fail(what)

    async def body(c: ra.Client) -> None:
        # Cancelled after the pop took its item, its reply already back but not yet seen
        # by the loop (held here by blocking calls): the item is put back at the head.
        t = asyncio.create_task(c.command("BLPOP", "q", 10))
        await asyncio.sleep(0)
        until(lambda: blocked() == 1, "the pop never blocked")
        sync.rpush("q", "x", "y")  # the pop takes "x"
        time.sleep(0.2)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        until(lambda: sync.command("LRANGE", "q", 0, -1) == [b"x", b"y"], "x was lost")
        # Cancelled while it waits: the server stops waiting at once, and what comes
        # afterwards stays in the list.
        t = asyncio.create_task(c.command("BRPOP", "q2", 0))
        await asyncio.sleep(0)
        until(lambda: blocked() == 1, "the pop never blocked")
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        until(lambda: blocked() == 0, "the server still waits for the cancelled pop")
        sync.rpush("q2", "z")
        assert sync.command("LRANGE", "q2", 0, -1) == [b"z"]
        # A pop that completes is the caller's.
        assert await c.command("BLPOP", "q", 1) == [b"q", b"x"]
        assert sync.command("LRANGE", "q", 0, -1) == [b"y"]

    try:
        run(server, transport, body)
    finally:
        sync.close()


def test_closing_wakes_every_awaiting_task_with_closed_error(
    server: RedisServer, transport: str
) -> None:
    async def main() -> None:
        c = ra.Client(server.url(transport))
        waiting = [asyncio.create_task(c.command("BLPOP", f"never{i}", 0)) for i in range(5)]
        await asyncio.sleep(0.1)
        await c.close()
        for t in waiting:
            with pytest.raises(redipc.ClosedError):
                await t
        with pytest.raises(redipc.ClosedError):
            await c.get("k")
        await c.close()  # twice is harmless

    asyncio.run(main())


def test_a_client_belongs_to_its_loop(server: RedisServer) -> None:
    with pytest.raises(redipc.InvalidArgument, match="running event loop"):
        ra.Client(server.url("tcp"))

    async def make() -> ra.Client:
        return ra.Client(server.url("tcp"))

    c = asyncio.run(make())

    async def use() -> None:
        with pytest.raises(redipc.InvalidArgument, match="another event loop"):
            await c.get("k")

    asyncio.run(use())


def test_several_loops_in_several_threads(server: RedisServer) -> None:
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        async def main() -> None:
            async with ra.Client(server.url("unix")) as c:
                for j in range(200):
                    await c.set(f"t{i}:{j}", j)
                got = await asyncio.gather(*(c.get(f"t{i}:{j}") for j in range(200)))
                assert got == [str(j).encode() for j in range(200)]

        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_no_thread_or_task_is_left_after_close(server: RedisServer) -> None:
    async def main() -> None:
        before_tasks = len(asyncio.all_tasks())
        for _ in range(5):
            async with ra.Client(server.url("tcp")) as c:
                await asyncio.gather(*(c.get("k") for _ in range(50)))
        assert len(asyncio.all_tasks()) == before_tasks

    asyncio.run(main())  # warm: the runtime and its threads exist from here on
    before = threading.active_count()
    asyncio.run(main())
    assert threading.active_count() <= before


def test_a_server_restart_while_tasks_await(server: RedisServer) -> None:
    async def main() -> None:
        async with ra.Client(server.url("tcp"), response_timeout=2) as c:
            await c.set("k", "v")
            waiting = asyncio.create_task(c.command("BLPOP", "never", 0))
            await asyncio.sleep(0.1)
            server.restart()
            with pytest.raises((redipc.ConnectionError, redipc.TimeoutError)):
                await waiting
            # Then it recovers.
            for _ in range(100):
                try:
                    assert await c.command("PING") == "PONG"
                    break
                except (redipc.ConnectionError, redipc.TimeoutError):
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("no recovery")

    asyncio.run(main())


def test_subscriptions_with_async_for_and_get(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        async with c.subscribe("a", "b") as sub:
            first = await sub.get(2)
            assert first is not None and first.kind == "activated"
            assert sorted(sub.names) == [b"a", b"b"]
            for i in range(100):
                await c.publish("a" if i % 2 else "b", str(i))
            got = []
            async for m in sub:
                if m.kind == "message":
                    got.append(int(m.payload))
                if len(got) == 100:
                    break
            assert got == list(range(100)), "in order, none lost"
            assert await sub.get(0.05) is None, "nothing more"
        # Closed on leaving: an async for over it ends.
        assert [m async for m in sub] == []
        p = await c.psubscribe("news.*")
        assert (await p.get(2)).kind == "activated"  # type: ignore[union-attr]
        await c.publish("news.x", "hello")
        pm = await p.get(2)
        assert pm is not None and pm.pattern == b"news.*" and pm.payload == b"hello"
        p.close()
        s = await c.ssubscribe("shard1")
        assert s.kind == "shard"
        s.close()
        # A cancelled wait leaves the subscription usable.
        q = await c.subscribe("q")
        await q.get(2)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.get(), 0.05)
        await c.publish("q", "after")
        qm = await q.get(2)
        assert qm is not None and qm.payload == b"after"
        q.close()

    run(server, transport, body)


def test_requests_rpc_calls_and_the_cache(server: RedisServer, transport: str) -> None:
    sync = redipc.Client(server.url(transport))
    handled: list[bytes] = []
    worker = sync.handle_requests("jobs", lambda r: handled.append(bytes(r.payload)))
    srv = sync.serve("upper", lambda call: bytes(call.payload).upper())

    async def body(c: ra.Client) -> None:
        await c.send_request("jobs", "now")
        await c.send_request("jobs", "later", delay=0.2)
        assert await c.call("upper", "hi", timeout=2) == b"HI"
        got = await asyncio.gather(*(c.call("upper", f"m{i}", timeout=5) for i in range(50)))
        assert got == [f"M{i}".encode() for i in range(50)]
        with pytest.raises(redipc.NoServerError):
            await c.call("nobody", "x", timeout=0.2)
        # cache_wait is woken by the write, not by polling.
        waiter = asyncio.create_task(c.cache_wait("cfg", 5))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await c.cache_set("cfg", "v1")
        assert await asyncio.wait_for(waiter, 2) == b"v1"
        assert await c.cache_get("cfg") == b"v1"
        assert await c.cache_wait("absent", 0.1) is None
        for _ in range(100):
            if len(handled) == 2:
                break
            await asyncio.sleep(0.02)
        assert handled == [b"now", b"later"]

    try:
        run(server, transport, body)
    finally:
        worker.stop()
        srv.stop()
        sync.close()


def test_workers_and_servers_with_async_handlers(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        seen: list[bytes] = []
        loop = asyncio.get_running_loop()

        async def handle(req: redipc.Request) -> None:
            assert asyncio.get_running_loop() is loop, "runs on the client's loop"
            await asyncio.sleep(0.001)
            if req.payload == b"bad":
                raise ValueError("told to fail")
            seen.append(bytes(req.payload))

        async def upper(call: redipc.Call) -> bytes:
            await asyncio.sleep(0)
            return bytes(call.payload).upper()

        async with c.handle_requests("jobs", handle, concurrency=2) as w, c.serve("up", upper):
            for p in ("a", "bad", "b"):
                await c.send_request("jobs", p)
            assert await c.call("up", "hi", timeout=2) == b"HI"
            for _ in range(200):
                if sorted(seen) == [b"a", b"b"] and w.stats().failed == 1:
                    break
                await asyncio.sleep(0.01)
            assert sorted(seen) == [b"a", b"b"]
            assert w.stats().failed == 1, "the raising handler failed its request, the worker went on"
        assert w.stopped

    run(server, transport, body)


def test_locks(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        async with c.lock("res", ttl=10, wait=1) as first:
            assert first.held and first.token >= 1
            # Another waiter gets it once released, woken by the release.
            waiter = asyncio.ensure_future(c.lock("res", ttl=10, wait=5))
            await asyncio.sleep(0.1)
            assert not waiter.done()
            with pytest.raises(redipc.TimeoutError):
                await c.lock("res", wait=0.05)
        second = await asyncio.wait_for(waiter, 2)
        assert second.token > first.token, "fencing tokens grow"
        assert not first.held
        assert await c.release(second) is True
        assert await c.release(second) is False

    run(server, transport, body)


def test_streams_and_hash_state(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        first = await c.stream_publish("events", {"kind": "start"})
        await c.stream_publish("events", payload="p2")
        entries = await c.stream_read("events")
        assert [e.id for e in entries][0] == first
        assert entries[0].fields == {b"kind": b"start"}
        assert entries[1].fields == {b"payload": b"p2"}
        # A blocking read is woken by the next publish.
        reader = asyncio.create_task(c.stream_read("events", entries[1].id, 10, 5))
        await asyncio.sleep(0.1)
        assert not reader.done()
        await c.stream_publish("events", payload="p3")
        got = await asyncio.wait_for(reader, 2)
        assert [e.fields for e in got] == [{b"payload": b"p3"}]
        with pytest.raises(TypeError):
            await c.stream_publish("events", {"a": 1}, payload="both")
        # Hash state: the write is announced on the hash's channel.
        async with c.subscribe("vehicle") as sub:
            await sub.get(2)
            await c.hash_set("vehicle", "speed", 30)
            assert await c.hash_set_if_changed("vehicle", "speed", 30) is False
            assert await c.hash_set_if_changed("vehicle", "speed", 31) is True
            m1, m2 = await sub.get(2), await sub.get(2)
            assert m1 is not None and m1.payload == b"speed"
            assert m2 is not None and m2.payload == b"speed"
        assert await c.command("HGET", "vehicle", "speed") == b"31"

    run(server, transport, body)
