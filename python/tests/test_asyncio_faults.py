"""redipc.asyncio under faults and odd loops: uvloop, ``CLIENT KILL`` and a server restart
while 100 tasks await, closing while every kind of wait is pending, no thread or task left
after many clients, live loops in several threads, cancelling each kind of wait; and the
typed asyncio example runs.

Every wait is bounded (``asyncio.wait_for``): a hang fails the test instead of the run.
The plain cases (1,000 concurrent gets, cancelling a ``BLPOP``, one loop per thread) are in
test_asyncio.py.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

import redipc
import redipc.asyncio as ra
from conftest import RedisServer

try:
    import uvloop
except ImportError:  # optional (scripts/lib/setup.sh installs it best effort)
    uvloop = None  # type: ignore[assignment]

# What a call cut off by a fault may raise: the sync client's typed errors.
FAULT_ERRORS = (redipc.ConnectionError, redipc.TimeoutError)
# The bound on any single wait of these tests: past it, the call hung.
HANG = 10.0


async def bounded(aw: Awaitable[Any], what: str, limit: float = HANG) -> Any:
    """``await aw``, failing the test (instead of hanging) when it takes over ``limit``."""
    try:
        return await asyncio.wait_for(aw, limit)
    except asyncio.TimeoutError as e:
        if isinstance(e, redipc.RedipcError):
            raise  # redipc.TimeoutError is a TimeoutError too: the call's own answer
        pytest.fail(f"{what} still waiting after {limit}s: it hangs")


async def recovered(c: ra.Client, limit: float = 5.0) -> None:
    """Wait until calls succeed again (the reconnect runs in the background), then check
    the patterns the fault tests use: commands, the cache, a blocking stream read, a new
    subscription."""
    deadline = time.monotonic() + limit
    while True:
        try:
            assert await bounded(c.command("PING"), "PING") == "PONG"
            break
        except FAULT_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    assert await c.set("after", "yes")
    assert await c.get("after") == b"yes"
    waiter = asyncio.ensure_future(c.cache_wait("after:cache", 5))
    await asyncio.sleep(0.05)
    await c.cache_set("after:cache", "woken")
    assert await bounded(waiter, "cache_wait after the fault") == b"woken"
    reader = asyncio.ensure_future(c.stream_read("after:stream", "$", 10, 5))
    await asyncio.sleep(0.05)
    await c.stream_publish("after:stream", payload="p")
    got = await bounded(reader, "stream_read after the fault")
    assert [e.fields for e in got] == [{b"payload": b"p"}]
    async with c.subscribe("after:ch") as sub:
        first = await bounded(sub.get(5), "subscribe after the fault")
        assert first is not None and first.kind == "activated"
        await c.publish("after:ch", "m")
        m = await bounded(sub.get(5), "a message after the fault")
        assert m is not None and m.kind == "message" and m.payload == b"m"


async def message_arrives(c: ra.Client, sub: ra.Subscription, channel: str, limit: float = 5.0) -> None:
    """Publish to ``channel`` until ``sub`` delivers one of those messages (a subscription
    made before a fault is re-established in the background)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            await c.publish(channel, "again")
        except FAULT_ERRORS:
            pass
        m = await bounded(sub.get(0.1), "sub.get")
        while m is not None:
            if m.kind == "message" and m.payload == b"again":
                return
            m = await bounded(sub.get(0.01), "sub.get")
    pytest.fail(f"the subscription to {channel} delivered nothing after the fault")


async def a_hundred_waits(c: ra.Client) -> list[asyncio.Future[Any]]:
    """100 tasks awaiting blocking-ish calls (each bounded by HANG): cache waits, blocking
    pops, blocking stream reads, and runs of gets. Returns once they are all waiting."""

    async def one(i: int) -> Any:
        kind = i % 4
        if kind == 0:
            return await c.cache_wait(f"absent{i}", 1)
        if kind == 1:
            return await c.command("BLPOP", f"never{i}", 1)
        if kind == 2:
            return await c.stream_read(f"quiet{i}", "$", 10, 1)
        return [await c.get("k") for _ in range(30)]

    tasks = [asyncio.ensure_future(asyncio.wait_for(one(i), HANG)) for i in range(100)]
    await asyncio.sleep(0.1)
    return tasks


def check_outcomes(results: list[Any]) -> collections.Counter[str]:
    """Each of the 100 got a result of its kind or a typed redipc error; none hung (an
    ``asyncio.TimeoutError`` from ``wait_for``) or failed otherwise."""
    seen: collections.Counter[str] = collections.Counter()
    for i, r in enumerate(results):
        kind = ("cache_wait", "BLPOP", "stream_read", "get")[i % 4]
        if isinstance(r, asyncio.TimeoutError) and not isinstance(r, redipc.RedipcError):
            pytest.fail(f"task {i} ({kind}) still waiting after {HANG}s: it hangs")
        if isinstance(r, BaseException):
            assert isinstance(r, FAULT_ERRORS), f"task {i} ({kind}): {r!r} is not a typed fault error"
            seen[f"{kind}: {type(r).__name__}"] += 1
            continue
        if kind == "get":
            assert r == [b"v"] * 30, f"task {i}: {r!r}"
        else:
            assert r in (None, []), f"task {i} ({kind}): {r!r}"
        seen[f"{kind}: result"] += 1
    return seen


# -- uvloop ---------------------------------------------------------------------------


def test_a_small_workload_under_uvloop(server: RedisServer, transport: str) -> None:
    if uvloop is None:
        pytest.skip("uvloop is not installed (optional: scripts/lib/setup.sh tries to install it)")

    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async with ra.Client(server.url(transport)) as c:
            await c.command("FLUSHALL")
            assert await c.set("k", "v") is True
            assert await c.get("k") == b"v"
            p = c.pipeline()
            for i in range(200):
                p.add("SET", f"k{i}", i)
            assert len(await p.exec()) == 200
            got = await asyncio.gather(*(c.get(f"k{i}") for i in range(200)))
            assert got == [str(i).encode() for i in range(200)]
            assert await c.tx().add("INCR", "n").add("INCR", "n").exec() == [1, 2]
            async with c.subscribe("ch") as sub:
                assert (await bounded(sub.get(5), "activated")).kind == "activated"
                for i in range(20):
                    await c.publish("ch", str(i))
                payloads = []
                async for m in sub:
                    payloads.append(m.payload)
                    if len(payloads) == 20:
                        break
                assert payloads == [str(i).encode() for i in range(20)]
            waiter = asyncio.ensure_future(c.cache_wait("cfg", 5))
            await asyncio.sleep(0.05)
            await c.cache_set("cfg", "x")
            assert await bounded(waiter, "cache_wait") == b"x"
            async with c.lock("res", ttl=5, wait=1) as lock:
                assert lock.held
            t = asyncio.ensure_future(c.command("BLPOP", "never", 0))
            await asyncio.sleep(0.05)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            assert await c.command("PING") == "PONG"
            pending = asyncio.ensure_future(c.command("BLPOP", "never", 0))
            await asyncio.sleep(0.05)
        with pytest.raises(redipc.ClosedError):
            await bounded(pending, "BLPOP after close")

    uvloop.run(main())


# -- faults while tasks await ---------------------------------------------------------


def test_client_kill_while_a_hundred_tasks_await(server: RedisServer, transport: str) -> None:
    killer = redipc.Client(server.url(transport))

    async def main() -> None:
        async with ra.Client(server.url(transport)) as c:
            await c.command("FLUSHALL")
            await c.set("k", "v")
            sub = await c.subscribe("before")
            assert (await bounded(sub.get(5), "activated")).kind == "activated"
            tasks = await a_hundred_waits(c)
            killed = killer.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            killed += killer.command("CLIENT", "KILL", "TYPE", "pubsub")
            assert killed >= 1
            check_outcomes(await asyncio.gather(*tasks, return_exceptions=True))
            await recovered(c)
            # The subscription made before the kill delivers again.
            await message_arrives(c, sub, "before")
            sub.close()

    try:
        asyncio.run(main())
    finally:
        killer.close()


def test_server_restart_while_a_hundred_tasks_await(server: RedisServer) -> None:
    async def main() -> None:
        async with ra.Client(server.url("tcp"), response_timeout=2) as c:
            await c.command("FLUSHALL")
            await c.set("k", "v")
            sub = await c.subscribe("before")
            assert (await bounded(sub.get(5), "activated")).kind == "activated"
            tasks = await a_hundred_waits(c)
            server.restart()  # kill -9, then the same port and socket again
            check_outcomes(await asyncio.gather(*tasks, return_exceptions=True))
            await recovered(c)
            await message_arrives(c, sub, "before")
            sub.close()

    try:
        asyncio.run(main())
    finally:
        server.ensure_running()


# -- closing while tasks await --------------------------------------------------------


def test_closing_wakes_every_kind_of_wait_with_closed_error(server: RedisServer) -> None:
    async def main() -> None:
        c = ra.Client(server.url("unix"))
        try:
            await c.command("FLUSHALL")
            held = await c.lock("taken", ttl=10)
            sub = await c.subscribe("quiet")
            assert (await bounded(sub.get(5), "activated")).kind == "activated"
            sub2 = await c.subscribe("quiet2")
            assert (await bounded(sub2.get(5), "activated")).kind == "activated"

            async def iterate() -> list[Any]:
                return [m async for m in sub2]

            waits: dict[str, Coroutine[Any, Any, Any]] = {
                "BLPOP": c.command("BLPOP", "never", 0),
                "cache_wait": c.cache_wait("absent", 30),
                "stream_read (blocking)": c.stream_read("quiet", "$", 10, 30),
                "sub.get()": sub.get(),
            }
            tasks = {name: asyncio.ensure_future(w) for name, w in waits.items()}
            iterating = asyncio.ensure_future(iterate())
            await asyncio.sleep(0.1)
            assert not any(t.done() for t in tasks.values())
            await bounded(c.close(), "close()", 1)
            for name, t in tasks.items():
                with pytest.raises(redipc.ClosedError):
                    await bounded(t, name, 3)
            # `async for` over a subscription of a closed client ends.
            assert await bounded(iterating, "async for") == []
            with pytest.raises(redipc.ClosedError):
                await c.get("k")
            with pytest.raises(redipc.ClosedError):
                await sub.get(0.1)
            with pytest.raises(redipc.ClosedError):
                await c.release(held)
        finally:
            await c.close()

    asyncio.run(main())


def test_closing_while_a_slow_command_is_in_flight(server: RedisServer) -> None:
    async def main() -> None:
        c = ra.Client(server.url("unix"))
        try:
            waits: dict[str, Coroutine[Any, Any, Any]] = {
                "a slow command": c.command("DEBUG", "SLEEP", "0.3"),
                "a get behind it": c.get("k"),
                "a pipeline behind it": c.pipeline().add("GET", "k").add("INCR", "n").exec(),
                "BLPOP": c.command("BLPOP", "never", 0),
                "stream_read (blocking)": c.stream_read("quiet", "$", 10, 30),
            }
            tasks = {name: asyncio.ensure_future(w) for name, w in waits.items()}
            await asyncio.sleep(0.1)
            await bounded(c.close(), "close()", 1)
            for name, t in tasks.items():
                with pytest.raises(redipc.ClosedError):
                    await bounded(t, name, 1)
        finally:
            await c.close()

    asyncio.run(main())


# Waits that close() must end at once (each once waited for its own timeout or tick;
# `blocking::Client::spawn_into` now ends every runtime call when the client closes).
PROMPT_CLOSE_KINDS = ["rpc call", "lock wait", "cache_wait", "cache_wait while the server is busy"]


@pytest.mark.parametrize("kind", PROMPT_CLOSE_KINDS)
def test_closing_is_prompt(server: RedisServer, kind: str) -> None:
    async def main() -> None:
        holder = redipc.Client(server.url("unix"))
        c = ra.Client(server.url("unix"), response_timeout=1)
        held: redipc.Lock | None = None
        slow: asyncio.Future[Any] | None = None
        try:
            if kind == "rpc call":
                wait = c.call("nobody", "x", timeout=1, fail_fast=False)
            elif kind == "lock wait":
                held = holder.lock("elsewhere", ttl=5)
                wait = c.lock("elsewhere", ttl=5, wait=1)._make()
            elif kind == "cache_wait":
                wait = c.cache_wait("absent", 1)
            else:
                slow = asyncio.ensure_future(c.command("DEBUG", "SLEEP", "0.2"))
                wait = c.cache_wait("absent", 1)
            waiting = asyncio.ensure_future(wait)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await bounded(c.close(), "close()", 3)
            took = time.monotonic() - started
            with pytest.raises(redipc.ClosedError):
                await bounded(waiting, kind, 3)
            if kind == "cache_wait while the server is busy":
                with pytest.raises(redipc.ClosedError):
                    await slow
            assert took < 0.5, f"close() took {took:.2f}s"
        finally:
            await c.close()
            if slow is not None:
                await asyncio.gather(slow, return_exceptions=True)
            if held is not None:
                held.release()
            holder.close()

    asyncio.run(main())


# -- no leak after close ---------------------------------------------------------------


def _threads() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/task"))


def test_no_thread_or_task_is_left_after_many_clients(server: RedisServer) -> None:
    async def clients(n: int) -> None:
        me = asyncio.current_task()
        for i in range(n):
            c = ra.Client(server.url("unix" if i % 2 else "tcp"))
            await asyncio.gather(*(c.get("k") for _ in range(20)))
            sub = await c.subscribe(f"leak{i}")
            await bounded(sub.get(5), "activated")
            async with c.lock(f"leak{i}", ttl=5):
                pass
            assert await c.cache_wait(f"leak{i}", 0.01) is None
            waiting = [
                asyncio.ensure_future(sub.get()),
                asyncio.ensure_future(c.command("BLPOP", f"leak{i}", 0)),
            ]
            await asyncio.sleep(0.01)
            await bounded(c.close(), "close()", 3)
            for t in waiting:
                with pytest.raises(redipc.ClosedError):
                    await bounded(t, "a wait after close", 3)
        assert asyncio.all_tasks() == {me}, "only this test's own task is left"

    asyncio.run(clients(4))  # warm: the runtime and its threads exist from here on
    before = _threads()
    for _ in range(3):
        asyncio.run(clients(10))
    # Threads of closed clients may take a moment to exit.
    deadline = time.monotonic() + 5
    while _threads()[0] > before[0] or _threads()[1] > before[1]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    after = _threads()
    assert after[0] <= before[0], f"threading.active_count: {before[0]} before, {after[0]} after"
    assert after[1] <= before[1], f"/proc/self/task: {before[1]} before, {after[1]} after"


# -- several live loops in several threads ----------------------------------------------


def test_live_loops_in_threads_each_with_its_own_client(server: RedisServer) -> None:
    """Three loops run at once in three threads, each with its own client, all correct;
    a client used from another live loop raises InvalidArgument, and still works on its
    own loop (and from another thread through ``run_coroutine_threadsafe``)."""
    n = 3
    loops: list[asyncio.AbstractEventLoop | None] = [None] * n
    made: list[ra.Client | None] = [None] * n
    ready = threading.Barrier(n, timeout=HANG)
    crossed = threading.Barrier(n, timeout=HANG)
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        async def main() -> None:
            async with ra.Client(server.url("unix" if i % 2 else "tcp")) as c:
                loops[i], made[i] = asyncio.get_running_loop(), c
                await asyncio.to_thread(ready.wait)
                # Use this loop's client ...
                p = c.pipeline()
                for j in range(100):
                    p.add("SET", f"loop{i}:{j}", j)
                await p.exec()
                got = await asyncio.gather(*(c.get(f"loop{i}:{j}") for j in range(100)))
                assert got == [str(j).encode() for j in range(100)]
                async with c.subscribe(f"loop{i}") as sub:
                    assert (await bounded(sub.get(5), "activated")).kind == "activated"
                    await c.publish(f"loop{i}", "hi")
                    m = await bounded(sub.get(5), "message")
                    assert m is not None and m.payload == b"hi"
                waiter = asyncio.ensure_future(c.cache_wait(f"loop{i}:cfg", 5))
                await asyncio.sleep(0.02)
                await c.cache_set(f"loop{i}:cfg", i)
                assert await bounded(waiter, "cache_wait") == str(i).encode()
                # ... and the next loop's, while that loop runs: a clear error.
                other = made[(i + 1) % n]
                assert other is not None
                with pytest.raises(redipc.InvalidArgument, match="another event loop"):
                    await other.get(f"loop{i}:0")
                # The right way: run it on its own loop.
                other_loop = loops[(i + 1) % n]
                assert other_loop is not None
                fut = asyncio.run_coroutine_threadsafe(other.get(f"loop{i}:1"), other_loop)
                assert await asyncio.wrap_future(fut) == b"1"
                await asyncio.to_thread(crossed.wait)  # no client closes while used
                assert await c.get(f"loop{i}:2") == b"2"

        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            ready.abort()
            crossed.abort()

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a loop hangs"
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    assert not real and not errors, errors


# -- cancelling each kind of wait -----------------------------------------------------


def run(server: RedisServer, transport: str, body: Callable[[ra.Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with ra.Client(server.url(transport)) as c:
            await c.command("FLUSHALL")
            return await body(c)

    return asyncio.run(main())


async def cancelled(t: asyncio.Future[Any], what: str) -> None:
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(t, what)


async def no_blocked_clients(c: ra.Client) -> None:
    """The server has no client blocked any more (a cancelled blocking read was given up)."""
    info = ""
    for _ in range(100):
        info = await c.command("INFO", "clients")
        if "blocked_clients:0" in info:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"a cancelled blocking call still blocks the server: {info}")


def test_cancelling_gets(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        await c.set("k", "v")
        # Half of 1,000 gets in flight cancelled: those raise CancelledError, the others
        # are correct.
        tasks = [asyncio.ensure_future(c.get("k")) for _ in range(1000)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        results = await bounded(asyncio.gather(*tasks, return_exceptions=True), "gather")
        for i, r in enumerate(results):
            if i % 2:
                assert r == b"v"
            else:
                assert isinstance(r, asyncio.CancelledError), r
        # A get waiting behind a slow command, cancelled.
        slow = asyncio.ensure_future(c.command("DEBUG", "SLEEP", "0.2"))
        behind = asyncio.ensure_future(c.get("k"))
        await asyncio.sleep(0.05)
        await cancelled(behind, "get")
        assert await bounded(slow, "DEBUG SLEEP") == "OK"
        assert await c.get("k") == b"v"
        assert await c.set("k", "w") and await c.get("k") == b"w"

    run(server, transport, body)


def test_cancelling_cache_wait_and_blocking_stream_read(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        waiter = asyncio.ensure_future(c.cache_wait("cfg", 30))
        await asyncio.sleep(0.05)
        await cancelled(waiter, "cache_wait")
        # The key can be waited for again, and the new waiter is woken.
        again = asyncio.ensure_future(c.cache_wait("cfg", 5))
        await asyncio.sleep(0.05)
        await c.cache_set("cfg", "v1")
        assert await bounded(again, "cache_wait") == b"v1"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.cache_wait("other", 30), 0.05)
        assert await c.cache_wait("other", 0.05) is None

        reader = asyncio.ensure_future(c.stream_read("events", "$", 10, 30))
        await asyncio.sleep(0.05)
        await cancelled(reader, "stream_read")
        await no_blocked_clients(c)
        first = await c.stream_publish("events", payload="p1")
        again_r = asyncio.ensure_future(c.stream_read("events", first, 10, 5))
        await asyncio.sleep(0.05)
        await c.stream_publish("events", payload="p2")
        got = await bounded(again_r, "stream_read")
        assert [e.fields for e in got] == [{b"payload": b"p2"}]
        assert await c.command("PING") == "PONG"

    run(server, transport, body)


def test_cancelling_sub_get(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        async with c.subscribe("ch") as sub:
            assert (await bounded(sub.get(5), "activated")).kind == "activated"
            for _ in range(3):
                await cancelled(asyncio.ensure_future(sub.get()), "sub.get()")
            # The subscription goes on: later messages come in order, none duplicated.
            for i in range(10):
                await c.publish("ch", str(i))
            got = []
            while len(got) < 10:
                m = await bounded(sub.get(5), "sub.get()")
                assert m is not None
                got.append(m.payload)
            assert got == [str(i).encode() for i in range(10)]
            assert await sub.get(0.05) is None
        assert await c.command("PING") == "PONG"

    run(server, transport, body)


def test_cancelling_sub_get_while_messages_wait_loses_none(server: RedisServer, transport: str) -> None:
    """Waits cancelled at every point of their life (before they start, while the native
    future is being completed, after it completed and before the task ran again) while
    messages wait in the queue: every message still comes once, in order."""
    n = 3000

    async def body(c: ra.Client) -> None:
        async with c.subscribe("cx") as sub:
            assert (await bounded(sub.get(5), "activated")).kind == "activated"
            with redipc.Client(server.url(transport)) as pub:
                for i in range(n):
                    pub.publish("cx", str(i))
            got: list[bytes] = []
            cancels = 0
            deadline = time.monotonic() + 30
            i = 0
            while len(got) < n and time.monotonic() < deadline:
                t = asyncio.ensure_future(sub.get(5))
                for _ in range(i % 5):
                    await asyncio.sleep(0)
                i += 1
                if t.cancel():
                    cancels += 1
                try:
                    m = await bounded(t, "sub.get()")
                except asyncio.CancelledError:
                    continue
                assert m is not None
                got.append(m.payload)
            assert got == [str(k).encode() for k in range(n)], f"{len(got)} of {n} ({cancels} cancelled waits)"
            assert cancels > 100
            assert await sub.get(0.05) is None

    run(server, transport, body)


def test_cancelling_a_lock_wait(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        first = await c.lock("res", ttl=10, wait=1)
        waiter = asyncio.ensure_future(c.lock("res", ttl=30, wait=30)._make())
        await asyncio.sleep(0.1)
        await cancelled(waiter, "lock wait")
        assert await c.release(first) is True
        # The cancelled waiter did not take the lock behind our back: it is free at once.
        second = await bounded(c.lock("res", ttl=10, wait=1)._make(), "lock", 3)
        assert second.held and second.token > first.token
        assert await c.release(second) is True
        # Cancelling an `async with` that waits.
        third = await c.lock("res", ttl=10, wait=1)

        async def use() -> None:
            async with c.lock("res", ttl=10, wait=30):
                pytest.fail("got a lock that is held")

        await asyncio.sleep(0)
        user = asyncio.ensure_future(use())
        await asyncio.sleep(0.1)
        await cancelled(user, "async with lock")
        assert await c.release(third) is True
        async with c.lock("res", ttl=10, wait=1) as fourth:
            assert fourth.held
        assert await c.command("PING") == "PONG"

    run(server, transport, body)


def test_cancelling_an_rpc_call(server: RedisServer, transport: str) -> None:
    async def body(c: ra.Client) -> None:
        waiting = asyncio.ensure_future(c.call("slow", "x", timeout=30, fail_fast=False))
        await asyncio.sleep(0.1)
        await cancelled(waiting, "call")
        sync = redipc.Client(server.url(transport))
        try:
            with sync.serve("slow", lambda call: bytes(call.payload).upper()):
                assert await bounded(c.call("slow", "hi", timeout=5), "call") == b"HI"
        finally:
            sync.close()
        # Closing is prompt: nothing of the cancelled call is left to wait for.
        await bounded(c.close(), "close()", 1)

    run(server, transport, body)


# -- the typed example --------------------------------------------------------------


def test_the_typed_async_example_runs(server: RedisServer) -> None:
    """python/examples/async_example.py (type-checked by scripts/test-python-packaging)
    runs against the suite's server."""
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "async_example.py")
    done = subprocess.run(
        [sys.executable, example, server.unix_url], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "rpc reply b'SHOUT'" in done.stdout and "cache_wait got b'v1'" in done.stdout


def test_connect_without_blocking_the_loop(server: RedisServer) -> None:
    async def main() -> None:
        c = await ra.Client.connect(server.url("unix"))
        try:
            await c.set("connect:k", "v")
            assert await c.get("connect:k") == b"v"
        finally:
            await c.close()
        # A server that does not answer: the loop keeps running while the connect waits.
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        server.pause()
        try:
            with pytest.raises(redipc.ConnectionError, match="connect timeout"):
                await ra.Client.connect(server.url("tcp"), connect_timeout=0.4)
        finally:
            server.resume()
            ticker.cancel()
        assert ticks >= 5, ticks
        with pytest.raises(redipc.InvalidArgument):
            await ra.Client.connect("nonsense://x")

    asyncio.run(main())
