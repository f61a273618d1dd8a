"""redipc.asyncio, the patterns: stream followers (``async for``), consumer groups with
``async def`` handlers, hash watchers and keyspace watches with ``async def`` callbacks,
``WATCH`` transactions with an ``async def`` function, subscription callbacks, awaitable
``Subscription.add``, rate limiters and semaphores. Each: the happy path, a cancellation,
and a raising callback that is reported while the pattern goes on. Plain ``asyncio.run``
(no plugin)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import redipc
import redipc.asyncio as ra
from conftest import RedisServer


def run(server: RedisServer, body: Callable[[ra.Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with ra.Client(server.url("unix")) as c:
            await c.command("FLUSHALL")
            return await body(c)

    return asyncio.run(main())


async def until(pred: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_stream_follow_with_async_for_cancellation_and_close(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        await c.stream_publish("ev", payload="old")
        f = await c.stream_follow("ev")  # "$": only what comes after
        for i in range(3):
            await c.stream_publish("ev", payload=str(i))
        got = []
        async for e in f:
            got.append(e["payload"])
            if len(got) == 3:
                break
        assert got == [b"0", b"1", b"2"]
        assert f.position == (await c.stream_last("ev")).id  # type: ignore[union-attr]
        # A cancelled wait loses nothing: the next one gets what came meanwhile.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(f.next(), 0.1)
        await c.stream_publish("ev", payload="after")
        after = await f.next(2)
        assert after is not None and after["payload"] == b"after"
        assert await f.next(0.05) is None
        assert await f.next(0) is None
        # From the start, and closing ends an async for that waits.
        everything = c.stream_follow("ev", "0")
        seen = []

        async def consume() -> None:
            async for e in everything:
                seen.append(e["payload"])

        task = asyncio.create_task(consume())
        await until(lambda: len(seen) == 5)
        everything.close()
        await asyncio.wait_for(task, 2)
        assert seen == [b"old", b"0", b"1", b"2", b"after"]
        with pytest.raises(redipc.ClosedError):
            await everything.next()
        with pytest.raises(redipc.InvalidArgument):
            await c.stream_follow("ev", "abc").next(0)
        assert await c.stream_len("ev") == 5

    run(server, body)


def test_closing_the_client_ends_followers_and_callback_tasks(server: RedisServer) -> None:
    async def main() -> None:
        before = len(asyncio.all_tasks())
        c = ra.Client(server.url("unix"))
        f = await c.stream_follow("ev2")
        got: list[Any] = []

        async def follow() -> None:
            async for e in f:
                got.append(e)

        follower = asyncio.create_task(follow())
        sub = await c.subscribe("x", callback=lambda m: None)
        w = await c.hash_watch("hx", on_any=lambda f, v: None)
        await asyncio.sleep(0.05)
        await c.close()
        await asyncio.wait_for(follower, 2)
        assert got == []
        await until(lambda: len(asyncio.all_tasks()) == before, 2)
        assert sub._task is not None and sub._task.done()
        await w.stop()

    asyncio.run(main())


def test_consumer_groups_with_async_handlers(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        assert await c.stream_group_create("orders", "billing", "0") is True
        assert await c.stream_group_create("orders", "billing") is False
        loop = asyncio.get_running_loop()
        handled: list[bytes] = []
        told: list[BaseException] = []

        async def handle(e: redipc.StreamEntry) -> None:
            assert asyncio.get_running_loop() is loop, "runs on the client's loop"
            await asyncio.sleep(0)
            if e["payload"] == b"bad":
                raise ValueError("told to fail")
            handled.append(e["payload"])

        async def on_error(exc: BaseException) -> None:
            told.append(exc)

        async with c.stream_consume(
            "orders", "billing", "w1", handle, block=0.05, min_idle=60, on_error=on_error
        ) as consumer:
            for p in ("a", "bad", "b"):
                await c.stream_publish("orders", payload=p)
            await until(lambda: len(handled) == 2 and consumer.stats().failed == 1)
            assert handled == [b"a", b"b"], "the consumer went on after the failure"
            assert [str(e) for e in told] == ["told to fail"]
            assert consumer.stats().acked == 2
            pending = await c.stream_pending("orders", "billing")
            assert pending.count == 1 and pending.consumers == {"w1": 1}
        assert consumer.stopped
        assert await c.stream_dead_letters("orders") == []

    run(server, body)


def test_hash_watch_with_async_callbacks(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        await c.hash_set("car", "speed", 10)
        loop = asyncio.get_running_loop()
        seen: list[tuple[bytes, bytes | None]] = []
        speeds: list[bytes | None] = []
        told: list[BaseException] = []

        async def on_any(field: bytes, value: bytes | None) -> None:
            assert asyncio.get_running_loop() is loop
            await asyncio.sleep(0)
            if value == b"boom":
                raise RuntimeError("bad value")
            seen.append((field, value))

        async with await c.hash_watch(
            "car", {"speed": lambda f, v: speeds.append(v)}, on_any, on_error=told.append
        ) as w:
            await until(lambda: seen == [(b"speed", b"10")])
            await c.hash_set("car", "gear", "boom")
            await c.hash_set("car", "speed", 20)
            await until(lambda: len(seen) == 2)
            assert seen[1] == (b"speed", b"20"), "the watcher went on after the failure"
            assert [str(e) for e in told] == ["bad value"]
            assert speeds == [b"10", b"20"], "a plain callback runs on the loop too"
        assert w.stopped
        await c.hash_set("car", "speed", 30)
        await asyncio.sleep(0.05)
        assert len(seen) == 2, "nothing after stop"

    run(server, body)


def test_keyspace_watch_with_an_async_callback_and_unraisable(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def body(c: ra.Client) -> None:
        events: list[tuple[bytes, str]] = []

        async def on_key(key: bytes, event: str) -> None:
            await asyncio.sleep(0)
            if key == b"ks:bad":
                raise KeyError("bad key")
            events.append((key, event))

        w = await c.watch_keys("ks:*", on_key, ["set", "del"])
        try:
            await c.set("ks:bad", 1)
            await c.set("ks:a", 1)
            await c.delete("ks:a")
            await c.incr("ks:n")  # not a watched event
            await until(lambda: len(events) == 2)
            assert events == [(b"ks:a", "set"), (b"ks:a", "del")]
            assert len(unraisable) == 1, "no on_error: to sys.unraisablehook, as the sync client"
            assert isinstance(unraisable[0].exc_value, KeyError)
        finally:
            await w.stop()
        assert w.stopped

    run(server, body)


def test_transactions_with_an_async_function(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        await c.set("alice", 100)

        async def transfer(s: ra.WatchSession) -> None:
            balance = int(await s.command("GET", "alice") or 0)
            if balance < 30:
                raise ValueError("insufficient funds")
            s.queue("DECRBY", "alice", 30)
            s.queue("INCRBY", "bob", 30)

        assert await c.transaction(transfer, "alice", "bob") == [70, 30]
        # A conflict is retried: the first attempt's key changes under it.
        attempts = 0

        async def conflicted(s: ra.WatchSession) -> None:
            nonlocal attempts
            attempts += 1
            await s.command("GET", "alice")
            if attempts == 1:
                await c.incr("alice")
            s.queue("INCR", "alice")

        assert await c.transaction(conflicted, "alice") == [72]
        assert attempts == 2

        async def always(s: ra.WatchSession) -> None:
            await c.incr("alice")
            s.queue("INCR", "alice")

        with pytest.raises(redipc.WatchError, match="gave up after 2 attempts"):
            await c.transaction(always, "alice", max_retries=1)
        # The function's exception is raised as itself; nothing queued ran.
        await c.set("alice", 10)
        with pytest.raises(ValueError, match="insufficient"):
            await c.transaction(transfer, "alice", "bob")
        assert await c.get("alice") == b"10"
        # Cancelled while its function waits: given up, nothing ran.
        started = asyncio.Event()

        async def slow(s: ra.WatchSession) -> None:
            s.queue("SET", "alice", "never")
            started.set()
            await asyncio.sleep(10)

        t = asyncio.create_task(c.transaction(slow, "alice"))
        await started.wait()
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert await c.get("alice") == b"10"
        with pytest.raises(redipc.InvalidArgument):
            await c.transaction(transfer)

    run(server, body)


def test_subscription_callbacks_and_awaitable_add(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[str, bytes]] = []
        told: list[BaseException] = []

        async def on_message(m: redipc.Message) -> None:
            assert asyncio.get_running_loop() is loop
            await asyncio.sleep(0)
            if m.payload == b"bad":
                raise ValueError("bad payload")
            got.append((m.kind, m.payload))

        async with c.subscribe("a", callback=on_message, on_error=told.append) as sub:
            assert "callback" in repr(sub)
            await until(lambda: got == [("activated", b"")])
            for p in ("1", "bad", "2"):
                await c.publish("a", p)
            await c.publish("b", "not yet")
            await sub.add("b")  # awaited: confirmed by the server
            assert sorted(sub.names) == [b"a", b"b"]
            await c.publish("b", "3")
            await until(lambda: len(got) == 5)
            assert [p for k, p in got if k == "message"] == [b"1", b"2", b"3"], "in order"
            assert [str(e) for e in told] == ["bad payload"]
            await sub.remove("b")
            assert sub.names == [b"a"]
        task = sub._task
        assert task is not None
        await until(task.done)  # closing ends its task
        # A cancelled add leaves the name subscribed.
        ps = await c.psubscribe("n.*", callback=lambda m: got.append((m.kind, m.payload)))
        adding = asyncio.ensure_future(ps.add("m.*"))
        adding.cancel()
        await until(lambda: b"m.*" in ps.names and got[5:].count(("activated", b"")) == 2)
        ps.close()
        with pytest.raises(redipc.InvalidArgument):
            c.subscribe("a", on_error=told.append)
        s = await c.ssubscribe("shard1", callback=on_message)
        s.close()

    run(server, body)


def test_rate_limiters_and_semaphores(server: RedisServer) -> None:
    async def body(c: ra.Client) -> None:
        rl = c.rate_limiter("api", 20, burst=1)
        assert rl.burst == 1 and rl.name == b"api"
        assert await rl.acquire() == (True, 0.0)
        ok, retry = await rl.acquire()
        assert not ok and 0 < retry <= 0.06
        assert await rl.acquire_wait(timeout=1) is True
        assert await rl.acquire_wait(timeout=0.001) is False

        sem = c.semaphore("gpu", 1, lease=10)
        async with sem.acquire(timeout=1) as permit:
            assert not permit.released
            with pytest.raises(redipc.TimeoutError):
                await sem.acquire(timeout=0.05)
            # A cancelled waiter leaves the queue; a later one is woken by the release.
            cancelled = asyncio.ensure_future(sem.acquire(timeout=5))
            await asyncio.sleep(0.05)
            cancelled.cancel()
            waiter = asyncio.ensure_future(sem.acquire(timeout=5))
            await asyncio.sleep(0.05)
            assert not waiter.done()
        assert permit.released
        second = await asyncio.wait_for(waiter, 2)
        assert await sem.release(second) is True
        assert await sem.release(second) is False

    run(server, body)
