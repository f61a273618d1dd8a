"""Driver of bench/aio: redipc.asyncio against redis.asyncio and valkey-glide's asyncio
client (GlideClient), one event loop, all three on the same unix socket.

Each (workload, implementation) run is timed with the wall clock and the process CPU time;
repetitions alternate the order (ABBA); medians reported. redis.asyncio and glide are each
skipped (and said so) when not installed.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time

import redipc.asyncio

try:
    import redis.asyncio as redis_asyncio
except ImportError:  # pragma: no cover - the peer is optional in --smoke
    redis_asyncio = None

try:
    import glide
except ImportError:  # pragma: no cover - optional (scripts/lib/setup.sh installs it best effort)
    glide = None


def workloads(c, pipeline, tx):
    async def seq(n):
        for _ in range(n):
            await c.get("k")
        return n

    async def gather(n):
        rounds = max(1, n // 1000)
        for _ in range(rounds):
            await asyncio.gather(*(c.get("k") for _ in range(1000)))
        return rounds * 1000

    async def pipe(n):
        rounds = max(1, n // 1000)
        for _ in range(rounds):
            p = pipeline()
            for _ in range(1000):
                p.get("k") if not hasattr(p, "add") else p.add("GET", "k")
            await p.execute() if hasattr(p, "execute") else await p.exec()
        return rounds * 1000

    async def multi(n):
        rounds = max(1, n // 100)
        for _ in range(rounds):
            t = tx()
            for _ in range(100):
                t.incr("n") if not hasattr(t, "add") else t.add("INCR", "n")
            await t.execute() if hasattr(t, "execute") else await t.exec()
        return rounds * 100

    return {"seq": seq, "gather": gather, "pipe": pipe, "multi": multi}


def ours_pubsub(c):
    """Messages delivered through `async for`, published in pipelines of 1,000 meanwhile."""

    async def pubsub(n):
        async with c.subscribe("bench-ch") as sub:
            assert (await sub.get(5)).kind == "activated"

            async def publish():
                for _ in range(n // 1000):
                    p = c.pipeline()
                    for _ in range(1000):
                        p.add("PUBLISH", "bench-ch", b"x" * 16)
                    await p.exec()

            pub = asyncio.ensure_future(publish())
            got = 0
            async for m in sub:
                got += m.kind == "message"
                if got == (n // 1000) * 1000:
                    break
            await pub
        return got

    return pubsub


def peer_pubsub(r):
    async def pubsub(n):
        ps = r.pubsub()
        await ps.subscribe("bench-ch2")
        await ps.get_message(timeout=5)  # the subscribe confirmation

        async def publish():
            for _ in range(n // 1000):
                p = r.pipeline(transaction=False)
                for _ in range(1000):
                    p.publish("bench-ch2", b"x" * 16)
                await p.execute()

        pub = asyncio.ensure_future(publish())
        got = 0
        async for m in ps.listen():
            got += m["type"] == "message"
            if got == (n // 1000) * 1000:
                break
        await pub
        await ps.aclose()
        return got

    return pubsub


def glide_workloads(g):
    """The same workloads through glide's asyncio client: batches are glide.Batch
    (is_atomic for MULTI/EXEC), sent with ``client.exec``."""

    async def seq(n):
        for _ in range(n):
            await g.get("k")
        return n

    async def gather(n):
        rounds = max(1, n // 1000)
        for _ in range(rounds):
            await asyncio.gather(*(g.get("k") for _ in range(1000)))
        return rounds * 1000

    async def pipe(n):
        rounds = max(1, n // 1000)
        for _ in range(rounds):
            b = glide.Batch(is_atomic=False)
            for _ in range(1000):
                b.get("k")
            await g.exec(b, raise_on_error=True)
        return rounds * 1000

    async def multi(n):
        rounds = max(1, n // 100)
        for _ in range(rounds):
            b = glide.Batch(is_atomic=True)
            for _ in range(100):
                b.incr("n")
            await g.exec(b, raise_on_error=True)
        return rounds * 100

    async def pubsub(n):
        # RESP3: the subscribed client goes on sending commands (the publishing batches).
        await g.subscribe({"bench-ch3"}, timeout_ms=5000)

        async def publish():
            for _ in range(n // 1000):
                b = glide.Batch(is_atomic=False)
                for _ in range(1000):
                    b.publish(b"x" * 16, "bench-ch3")
                await g.exec(b, raise_on_error=True)

        pub = asyncio.ensure_future(publish())
        got = 0
        while got < (n // 1000) * 1000:
            await g.get_pubsub_message()
            got += 1
        await pub
        await g.unsubscribe({"bench-ch3"}, timeout_ms=5000)
        return got

    return {"seq": seq, "gather": gather, "pipe": pipe, "multi": multi, "pubsub": pubsub}


class _Floor(asyncio.Protocol):
    """The least an asyncio client can do for a sequential GET: write the packed command,
    let the loop call ``data_received``, complete a future when the bulk reply is whole. No
    pool, no reply object, no error handling: a reference for what the machine allows, not
    a client."""

    def __init__(self):
        self.buf = b""
        self.waiter = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        head = self.buf.find(b"\r\n")
        if head < 0 or self.waiter is None:
            return
        size = int(self.buf[1:head])
        end = head + 2 + max(size, 0) + (2 if size >= 0 else 0)
        if len(self.buf) >= end:
            value, self.buf = self.buf[head + 2 : end - 2], self.buf[end:]
            waiter, self.waiter = self.waiter, None
            waiter.set_result(value)

    async def get(self, packed):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(packed)
        return await self.waiter


def floor_workloads(proto):
    packed = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"

    async def seq(n):
        for _ in range(n):
            await proto.get(packed)
        return n

    return {"seq": seq}


def pinned(seq, server_pid, apart):
    """``seq`` with the event loop's thread on CPU 0 and the server's main thread on CPU 1
    (``apart``) or CPU 0 too; both put back afterwards. A sequential round trip costs very
    differently on one core (a direct switch) and on two (each side wakes the other's idle
    CPU), and an unpinned run lands on either."""

    async def run(n):
        mine, theirs = os.sched_getaffinity(0), os.sched_getaffinity(server_pid)
        os.sched_setaffinity(0, {0})
        os.sched_setaffinity(server_pid, {1 if apart else 0})
        try:
            return await seq(n)
        finally:
            os.sched_setaffinity(0, mine)
            os.sched_setaffinity(server_pid, theirs)

    return run


async def timed(fn, n):
    await fn(max(1000, n // 20))  # warm
    c0, t0 = time.process_time(), time.perf_counter()
    done = await fn(n)
    t1, c1 = time.perf_counter(), time.process_time()
    return done / (t1 - t0), (c1 - c0) / done * 1e6


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--server-pid", type=int, default=None)
    a = ap.parse_args()
    smoke = a.mode == "smoke"
    reps = a.reps or (1 if smoke else 5)
    n = 1000 if smoke else 20_000
    ours = redipc.asyncio.Client(a.url)
    await ours.set("k", b"v" * 16)
    impls = {"redipc": {**workloads(ours, ours.pipeline, ours.tx), "pubsub": ours_pubsub(ours)}}
    notes = []
    peer = None
    if redis_asyncio is not None:
        path = a.url[len("unix://"):]
        peer = redis_asyncio.Redis(unix_socket_path=path, max_connections=2000)
        impls["redis.asyncio"] = {
            **workloads(
                peer, lambda: peer.pipeline(transaction=False), lambda: peer.pipeline(transaction=True)
            ),
            "pubsub": peer_pubsub(peer),
        }
    else:
        notes.append("redis.asyncio is not installed: not compared")
    gl = None
    if glide is not None:
        gl = await glide.GlideClient.create(
            glide.GlideClientConfiguration(
                [glide.NodeAddress(unix_socket_path=a.url[len("unix://"):])],
                # The default (250 ms) is short for a 1,000-command batch on a busy machine.
                request_timeout=10_000,
            )
        )
        impls["glide"] = glide_workloads(gl)
        version = "?"
        try:
            from importlib.metadata import version as _version

            version = _version("valkey-glide")
        except Exception:  # noqa: BLE001 - only for the note
            pass
        notes.append(
            f"glide: valkey-glide {version} asyncio GlideClient on the same unix socket "
            "(its Rust core runs in this process, so its CPU is counted like redipc's); its "
            "pub/sub through `get_pubsub_message` (no `async for`), published in batches by "
            "the subscribed client itself (RESP3)"
        )
    else:
        notes.append(
            "valkey-glide's asyncio client is not installed (pip install valkey-glide): not compared"
        )
    # The floor: a hand-written asyncio protocol, sequential workloads only.
    _, floor = await asyncio.get_running_loop().create_unix_connection(_Floor, a.url[len("unix://"):])
    impls["floor"] = floor_workloads(floor)
    if a.server_pid and len(os.sched_getaffinity(0)) >= 2:
        for w in impls.values():
            w["seq_same"] = pinned(w["seq"], a.server_pid, apart=False)
            w["seq_apart"] = pinned(w["seq"], a.server_pid, apart=True)
    names = list(impls["redipc"])
    results = {(w, i): [] for w in names for i in impls if w in impls[i]}
    order = list(impls)
    for rep in range(reps):
        for w in names:
            for i in order if rep % 2 == 0 else order[::-1]:
                if w in impls[i]:
                    results[(w, i)].append(await timed(impls[i][w], n))
    titles = {
        "seq": "sequential await get",
        "seq_same": "sequential, loop and server pinned to one CPU",
        "seq_apart": "sequential, loop and server pinned to two CPUs",
        "gather": "1,000 concurrent GETs (gather)",
        "pipe": "pipeline of 1,000 GETs",
        "multi": "MULTI/EXEC of 100 INCR",
        "pubsub": "pub/sub delivery (`async for`)",
    }
    lines = [
        "# redipc.asyncio vs redis.asyncio and valkey-glide (bench/aio)",
        "",
        f"{reps} repetition(s), about {n} operations each, unix socket, one event loop; medians.",
        "ratio: redipc ÷ redis.asyncio; ratio vs glide: redipc ÷ glide (ops/s).",
        "floor: a hand-written asyncio protocol (write the packed GET, complete a future in",
        "`data_received`; sequential rows only): what an asyncio client can reach on this machine;",
        "floor ÷ redis.asyncio is the best ratio any asyncio client could show here.",
        "",
        "| workload | redipc ops/s | redipc CPU µs/op | redis.asyncio ops/s | redis.asyncio CPU µs/op | ratio "
        "| glide ops/s | glide CPU µs/op | ratio vs glide | floor ops/s | floor CPU µs/op | redipc ÷ floor "
        "| floor ÷ redis.asyncio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def column(w, name, ops):
        if (w, name) not in results:
            return "– | – | –"
        pops = statistics.median(r[0] for r in results[(w, name)])
        pcpu = statistics.median(r[1] for r in results[(w, name)])
        return f"{pops:,.0f} | {pcpu:.1f} | {ops / pops:.2f}×"

    for w in names:
        ops = statistics.median(r[0] for r in results[(w, "redipc")])
        cpu = statistics.median(r[1] for r in results[(w, "redipc")])
        over_peer = "–"
        if (w, "floor") in results and (w, "redis.asyncio") in results:
            fops = statistics.median(r[0] for r in results[(w, "floor")])
            pops = statistics.median(r[0] for r in results[(w, "redis.asyncio")])
            over_peer = f"{fops / pops:.2f}×"
        lines.append(
            f"| {titles[w]} | {ops:,.0f} | {cpu:.1f} | {column(w, 'redis.asyncio', ops)} | {column(w, 'glide', ops)} "
            f"| {column(w, 'floor', ops)} | {over_peer} |"
        )
    lines += [""] + [f"Note: {x}" for x in notes]
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    await ours.close()
    floor.transport.close()
    if peer is not None:
        await peer.aclose()
    if gl is not None:
        await gl.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
