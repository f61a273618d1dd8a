"""A small typed asyncio program, checked with `mypy --strict` by the packaging test
(scripts/test-python-packaging, run by scripts/test).

Run: `python async_example.py URL` (default redis://127.0.0.1:6379/0). It touches the keys
`example:*` and the channel `example:news`.
"""

from __future__ import annotations

import asyncio
import sys

import redipc
import redipc.asyncio


async def commands(c: redipc.asyncio.Client) -> None:
    created: bool = await c.set("example:greeting", "hello", ttl=60)
    value: bytes | None = await c.get("example:greeting")
    print(f"set: {created}, get: {value!r}")
    # Many concurrent awaits share the client's one connection.
    values: list[bytes | None] = await asyncio.gather(*(c.get("example:greeting") for _ in range(100)))
    print(f"{len(values)} concurrent gets")
    visits: int = await c.incr("example:visits")
    pipe = c.pipeline().add("SET", "example:a", 1).add("INCR", "example:a")
    replies: list[object] = await pipe.exec()
    counters: list[object] = await c.tx().add("INCR", "example:n").add("INCR", "example:n").exec()
    print(f"visits {visits}, pipeline {replies}, transaction {counters}")


async def pubsub(c: redipc.asyncio.Client) -> None:
    async with c.subscribe("example:news") as sub:
        first: redipc.Message | None = await sub.get(timeout=5)
        assert first is not None and first.kind == "activated"
        for i in range(3):
            await c.publish("example:news", f"item {i}")
        received: list[bytes] = []
        async for msg in sub:
            if msg.kind == "message":
                received.append(msg.payload)
            if len(received) == 3:
                break
        print(f"received {received}")


async def rpc_and_cache(c: redipc.asyncio.Client) -> None:
    async def upper(call: redipc.Call) -> bytes:
        await asyncio.sleep(0)  # an async handler runs on this event loop
        return call.payload.upper()

    async with c.serve("example:upper", upper):
        reply: bytes = await c.call("example:upper", "shout", timeout=5)
        print(f"rpc reply {reply!r}")

    # A cache waiter is woken by the writer.
    waiter: asyncio.Task[bytes | None] = asyncio.create_task(c.cache_wait("example:config", 5))
    await asyncio.sleep(0.05)
    await c.cache_set("example:config", "v1", ttl=60)
    print(f"cache_wait got {await waiter!r}")

    async with c.lock("example:resource", ttl=10, wait=5) as lock:
        token: int = lock.token
        print(f"holding the lock, fencing token {token}")

    # Any wait can be bounded or cancelled; the client goes on.
    try:
        await asyncio.wait_for(c.command("BLPOP", "example:nothing", 0), 0.1)
    except asyncio.TimeoutError:
        print("gave up waiting")


async def main(url: str) -> int:
    try:
        async with redipc.asyncio.Client(url, client_name="async-example") as c:
            await commands(c)
            await pubsub(c)
            await rpc_and_cache(c)
            stats: redipc.ClientStats = c.stats()
            print(f"{stats.commands} commands, p99 {stats.latency.p99 * 1e3:.2f} ms")
    except redipc.ConnectionError as e:
        print(f"cannot reach {url}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0")))
