"""redipc.asyncio.Client's twins of the sync client's helpers: each awaited call gives what
the sync ``redipc.Client`` gives for the same call (on keys of its own). Unix socket, plain
``asyncio.run``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import redipc
import redipc.asyncio as ra
from conftest import RedisServer


def test_async_helpers_match_the_sync_client(server: RedisServer) -> None:
    s = redipc.Client(server.url("unix"))

    async def main() -> None:
        async with ra.Client(server.url("unix")) as c:
            await c.command("FLUSHALL")

            async def same(name: str, *args: Any, **kw: Any) -> Any:
                """The async call on ``a:``-keys and the sync one on ``s:``-keys agree."""
                a_args = [f"a:{x[1:]}" if isinstance(x, str) and x.startswith("@") else x for x in args]
                s_args = [f"s:{x[1:]}" if isinstance(x, str) and x.startswith("@") else x for x in args]
                got = await getattr(c, name)(*a_args, **kw)
                want = getattr(s, name)(*s_args, **kw)
                assert got == want, (name, got, want)
                assert type(got) is type(want), (name, got, want)
                return got

            # Plain commands (the local connection).
            await c.set("a:n", 10)
            s.set("s:n", 10)
            assert await same("decr", "@n") == 9
            assert await same("decr", "@n", 4) == 5
            assert await same("expire", "@n", 100) is True
            assert await same("expire", "@missing", 1) is False
            assert await same("hset", "@h", "f", "v") == 1
            assert await same("hset", "@h", mapping={"g": 1, "k": b"x"}) == 2
            assert await same("hget", "@h", "f") == b"v"
            assert await same("hget", "@h", "nope") is None
            assert await same("hgetall", "@h") == {b"f": b"v", b"g": b"1", b"k": b"x"}
            assert await same("hgetall", "@none") == {}
            assert await same("hdel", "@h", "g", "nope") == 1
            assert await same("lpush", "@l", "a", "b") == 2
            assert await same("rpush", "@l", "c") == 3
            assert await same("llen", "@l") == 3
            assert await same("lpop", "@l") == b"b"
            assert await same("rpop", "@l") == b"c"
            assert await same("rpop", "@empty") is None
            assert await same("ping") is True
            assert await same("spublish", "ch", "m") == 0
            with pytest.raises(TypeError):
                await c.hset("a:h", "f")
            with pytest.raises(redipc.InvalidArgument):
                await c.decr("a:n", -(2**63))
            with pytest.raises(redipc.InvalidArgument):
                await c.lpush("a:l")
            with pytest.raises(redipc.ResponseError):
                await c.hget("a:l", "f")  # WRONGTYPE

            # Through the runtime.
            cmds = [["SET", "a:p", "1"], ["INCR", "a:p"], ["HGET", "a:p", "x"]]
            got = await c.pipeline_raw(cmds)
            want = s.pipeline_raw([[x.replace("a:", "s:") for x in cmd] for cmd in cmds])
            assert got[:2] == want[:2] and type(got[2]) is type(want[2]) is redipc.ResponseError
            assert await c.pipeline_raw([]) == s.pipeline_raw([]) == []
            await c.cache_set("a:k", "v")
            s.cache_set("s:k", "v")
            assert await same("cache_exists", "@k") is True
            assert await same("cache_delete", "@k") is True
            assert await same("cache_delete", "@k") is False
            assert await same("cache_exists", "@k") is False
            assert await same("hash_set_many", "@hs", {"a": 1, "b": 2}, summary=True) is None
            assert await same("hash_delete", "@hs", "a", channel="chan") is True
            assert await same("hash_delete", "@hs", "a") is False
            assert await c.hgetall("a:hs") == s.hgetall("s:hs") == {b"b": b"2"}
            assert await same("hash_replace_all", "@hs", {"z": "9"}, announce="replaced") is None
            assert await c.hgetall("a:hs") == s.hgetall("s:hs") == {b"z": b"9"}
            assert await same("hash_set", "@ts", "f", "v", timestamp="unix_ms", channel="chan") is None
            assert set(await c.hgetall("a:ts")) == set(s.hgetall("s:ts")) == {b"f", b"f:timestamp"}
            assert await same("hash_clear", "@hs") is None
            assert await c.exists("a:hs") == s.exists("s:hs") == 0
            with pytest.raises(TypeError):
                await c.hash_set_many("a:hs", {"a": 1}, True, announce="x")
            assert await same("fault_set", "@g", 3, "hot") is True
            assert await same("fault_set", "@g", 3, "hot") is False
            assert await same("fault_clear", "@g", 3) is True
            assert await same("fault_clear", "@g", 3) is False
            await c.send_request("a:q", "job")
            s.send_request("s:q", "job")
            got_q, want_q = await c.queue_stats("a:q"), s.queue_stats("s:q")
            assert (got_q.pending, got_q.dead) == (want_q.pending, want_q.dead) == (1, 0)
            assert await same("dead_letters", "@q") == []
            assert await same("requeue_dead_letters", "@q") == 0

            script = c.script("return {KEYS[1], ARGV[1]}")
            assert script.sha == s.script("return {KEYS[1], ARGV[1]}").sha
            assert await script(["k"], ["v"]) == s.script(script.source)(["k"], ["v"]) == [b"k", b"v"]
            batch = c.pipeline()
            assert script(["k2"], ["v2"], client=batch) is batch
            assert await batch.exec() == [[b"k2", b"v2"]]
            assert await c.batch(atomic=True).add("PING").exec() == s.batch(True).add("PING").exec()

            # RPC helpers: a server of the async client, seen by both.
            async def hello(call: Any) -> bytes:
                return b"hi " + bytes(call.payload)

            async with c.serve_methods("a:svc", {"hello": hello}):
                assert await c.call("a:svc", "you", method="hello") == b"hi you"
                services = await c.services()
                assert services == s.services() and b"a:svc" in services
                found = await c.instances("a:svc")
                assert [i.pid for i in found] == [i.pid for i in s.instances("a:svc")]

            # A subscription group whose handlers run on the loop.
            seen: list[bytes] = []
            loop = asyncio.get_running_loop()

            async def on_msg(msg: Any) -> None:
                assert asyncio.get_running_loop() is loop
                if msg.kind == "message":
                    seen.append(msg.payload)

            async with await c.subscribe_group("grp") as group:
                assert await group.handle("a:gch", on_msg) is on_msg
                assert group.names == [b"a:gch"] and group.name == "grp"
                await c.publish("a:gch", "one")
                for _ in range(500):
                    if seen:
                        break
                    await asyncio.sleep(0.005)
                assert seen == [b"one"]
            assert group.closed

    try:
        asyncio.run(main())
    finally:
        s.close()
