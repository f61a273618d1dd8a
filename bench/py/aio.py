"""Driver of bench/aio: redipc.asyncio against redis.asyncio, one event loop.

Each (workload, implementation) run is timed with the wall clock and the process CPU time;
repetitions alternate the order (ABBA); medians reported. redis.asyncio is skipped (and
said so) when it is not installed.
"""

import argparse
import asyncio
import statistics
import sys
import time

import redipc.asyncio

try:
    import redis.asyncio as redis_asyncio
except ImportError:  # pragma: no cover - the peer is optional in --smoke
    redis_asyncio = None


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
        notes.append("redis.asyncio is not installed: redipc alone")
    notes.append("valkey-glide's asyncio client is not installed here (glide-sync is): not compared")
    names = list(impls["redipc"])
    results = {(w, i): [] for w in names for i in impls}
    order = list(impls)
    for rep in range(reps):
        for w in names:
            for i in order if rep % 2 == 0 else order[::-1]:
                results[(w, i)].append(await timed(impls[i][w], n))
    titles = {
        "seq": "sequential await get",
        "gather": "1,000 concurrent GETs (gather)",
        "pipe": "pipeline of 1,000 GETs",
        "multi": "MULTI/EXEC of 100 INCR",
        "pubsub": "pub/sub delivery (`async for`)",
    }
    lines = [
        "# redipc.asyncio vs redis.asyncio (bench/aio)",
        "",
        f"{reps} repetition(s), about {n} operations each, unix socket, one event loop; medians.",
        "",
        "| workload | redipc ops/s | redipc CPU µs/op | redis.asyncio ops/s | redis.asyncio CPU µs/op | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for w in names:
        ops = statistics.median(r[0] for r in results[(w, "redipc")])
        cpu = statistics.median(r[1] for r in results[(w, "redipc")])
        if "redis.asyncio" in impls:
            pops = statistics.median(r[0] for r in results[(w, "redis.asyncio")])
            pcpu = statistics.median(r[1] for r in results[(w, "redis.asyncio")])
            lines.append(
                f"| {titles[w]} | {ops:,.0f} | {cpu:.1f} | {pops:,.0f} | {pcpu:.1f} | {ops / pops:.2f}× |"
            )
        else:
            lines.append(f"| {titles[w]} | {ops:,.0f} | {cpu:.1f} | – | – | – |")
    lines += [""] + [f"Note: {x}" for x in notes]
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    await ours.close()
    if peer is not None:
        await peer.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
