"""Driver of bench/cluster: redipc against redis-py's RedisCluster (with hiredis when
installed) and valkey-glide-sync's GlideClusterClient in Python, and redipc's C client
against hiredis talking directly to the slot's owner (no C cluster peer is packaged), on a
private 3-primary cluster.

Workloads:
  seq     sequential GETs of one key (Python, and C: bench_redipc/bench_hiredis `get`)
  aseq    the same from asyncio: `await get` in one task, redipc.asyncio against
          redis.asyncio's RedisCluster (one event loop for the run)
  spread  batches of 1,000 GETs of keys spread over every slot (a pipeline; redis-py's
          cluster pipeline; glide's non-atomic ClusterBatch)
  shard   shard pub/sub delivery: a subscriber of one shard channel receives N 16-byte
          messages that redis-benchmark publishes (SPUBLISH, pipelines of 100) on the
          channel's slot owner; rate from the first message to the last

Each (workload, implementation) run is timed with the wall clock and the process CPU time;
repetitions alternate the order (ABBA); medians reported with the ratios. A peer that is
not installed is left out, and the report says so.
"""

import argparse
import json
import shutil
import os
import statistics
import subprocess
import sys
import time

import redipc

try:
    import redis.cluster as redis_cluster
except ImportError:  # pragma: no cover - optional peer
    redis_cluster = None

try:
    import glide_sync
except ImportError:  # pragma: no cover - optional peer
    glide_sync = None


def cpu() -> float:
    t = os.times()
    return t.user + t.system


class _Aio:
    """An asyncio client `c` on `loop`: `await c.get` in one task."""

    def aseq(self, n):
        async def run():
            get = self.c.get
            for _ in range(n):
                await get("bench:seq:k")

        self.loop.run_until_complete(run())


class AioRedipc(_Aio):
    name = "redipc.asyncio"

    def __init__(self, url, loop):
        import redipc.asyncio as ra

        self.loop = loop
        self.c = loop.run_until_complete(ra.Client.connect(url))

    def close(self):
        self.loop.run_until_complete(self.c.close())


class AioRedisPy(_Aio):
    name = "redis.asyncio"

    def __init__(self, host, port, loop):
        from redis.asyncio.cluster import RedisCluster

        self.loop = loop
        self.c = RedisCluster(host=host, port=port)
        loop.run_until_complete(self.c.initialize())

    def close(self):
        self.loop.run_until_complete(self.c.aclose())


def spread_keys(n=1000):
    return [f"bench:spread:{i}" for i in range(n)]


class Redipc:
    name = "redipc"

    def __init__(self, url):
        self.c = redipc.Client(url)

    def seq(self, n):
        c = self.c
        for _ in range(n):
            c.get("bench:seq:k")

    def spread(self, n):
        keys = spread_keys()
        for _ in range(max(1, n // 1000)):
            p = self.c.pipeline()
            for k in keys:
                p.add("GET", k)
            if len(p.exec()) != 1000:
                raise RuntimeError("lost replies")


    def shard_sub(self, channel):
        sub = self.c.ssubscribe(channel)
        ev = sub.get(timeout=5)
        if ev is None or ev.kind != "activated":
            raise RuntimeError(f"ssubscribe: {ev}")

        def next_payload():
            ev = sub.get(timeout=10)
            return None if ev is None else ev.payload

        return next_payload, sub.close


class RedisPy:
    name = "redis-py"

    def __init__(self, host, port):
        self.c = redis_cluster.RedisCluster(host=host, port=port)

    def seq(self, n):
        c = self.c
        for _ in range(n):
            c.get("bench:seq:k")

    def spread(self, n):
        keys = spread_keys()
        for _ in range(max(1, n // 1000)):
            p = self.c.pipeline()
            for k in keys:
                p.get(k)
            if len(p.execute()) != 1000:
                raise RuntimeError("lost replies")


    def shard_sub(self, channel):
        p = self.c.pubsub(ignore_subscribe_messages=True)
        p.ssubscribe(channel)
        deadline = time.time() + 5
        while time.time() < deadline:  # the confirmation
            p.get_sharded_message(timeout=0.1)
            if p.subscribed:
                break

        def next_payload():
            end = time.time() + 10
            while time.time() < end:
                m = p.get_sharded_message(ignore_subscribe_messages=True, timeout=1.0)
                if m is not None and m.get("type") == "smessage":
                    return m["data"]
            return None

        return next_payload, p.close


class Glide:
    name = "glide-sync"

    def __init__(self, host, port):
        g = glide_sync
        self.host, self.port = host, port
        cfg = g.GlideClusterClientConfiguration([g.NodeAddress(host, port)])
        self.c = g.GlideClusterClient.create(cfg)

    def seq(self, n):
        c = self.c
        for _ in range(n):
            c.get("bench:seq:k")

    def spread(self, n):
        keys = spread_keys()
        for _ in range(max(1, n // 1000)):
            b = glide_sync.ClusterBatch(is_atomic=False)
            for k in keys:
                b.get(k)
            if len(self.c.exec(b, raise_on_error=True)) != 1000:
                raise RuntimeError("lost replies")


    def shard_sub(self, channel):
        g = glide_sync
        cfg = g.GlideClusterClientConfiguration(
            [g.NodeAddress(self.host, self.port)],
            pubsub_subscriptions=g.GlideClusterClientConfiguration.PubSubSubscriptions(
                {g.GlideClusterClientConfiguration.PubSubChannelModes.Sharded: {channel}}, None, None
            ),
        )
        sub = g.GlideClusterClient.create(cfg)
        time.sleep(0.3)  # the subscription is made at connect

        def next_payload():
            m = sub.get_pubsub_message()
            return None if m is None else m.message

        return next_payload, sub.close


def shard_delivery(impl, n, owner_port):
    """Messages per second from the first to the last, and CPU µs per message."""
    next_payload, close = impl.shard_sub("bench:shard")
    pub = subprocess.Popen(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(owner_port), "-c", "1", "-P", "100",
         "-n", str(n), "-q", "SPUBLISH", "bench:shard", "0123456789abcdef"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    got = 0
    try:
        if next_payload() is None:
            raise RuntimeError(f"{impl.name}: no shard message")
        c0, t0 = cpu(), time.perf_counter()
        got = 1
        while got < n:
            if next_payload() is None:
                raise RuntimeError(f"{impl.name}: shard messages stopped at {got} of {n}")
            got += 1
        wall, used = time.perf_counter() - t0, cpu() - c0
    finally:
        pub.wait(timeout=60)
        close()
    return (n - 1) / wall, used * 1e6 / (n - 1)


def owner_port(url, slot):
    """The port of the primary serving `slot` (CLUSTER SLOTS through a standalone client)."""
    hp = url.split("://", 1)[1].split(",")[0].rstrip("/")
    c = redipc.Client(f"redis://{hp}/", cluster=False)
    try:
        for r in c.command("CLUSTER", "SLOTS"):
            if r[0] <= slot <= r[1]:
                return int(r[2][1])
    finally:
        c.close()
    raise RuntimeError(f"slot {slot} is not covered")


def timed(fn, n):
    c0, t0 = cpu(), time.perf_counter()
    fn(n)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return n / wall, used * 1e6 / n


def c_bench(program, host, port, n):
    spec = f"get16:get:{n}:16:1"
    out = subprocess.run(
        [program, "--host", host, "--port", str(port), spec],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["ops_per_s"], r["cpu_us_per_op"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--owner-port", type=int, required=True, help="the owner of bench:get16:k's slot")
    ap.add_argument("--c-redipc")
    ap.add_argument("--c-hiredis")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    smoke = a.mode == "smoke"
    reps = a.reps or (1 if smoke else 5)
    n = {
        "seq": 500 if smoke else 20_000,
        "aseq": 500 if smoke else 20_000,
        "spread": 1000 if smoke else 50_000,
        "c": 1000 if smoke else 50_000,
        "shard": 2000 if smoke else 100_000,
    }
    first = a.url.split("://", 1)[1].split(",")[0].rstrip("/")
    host, port = first.rsplit(":", 1)
    port = int(port)

    impls = [Redipc(a.url)]
    notes = []
    if redis_cluster is None:
        notes.append("redis-py is not installed: left out")
    else:
        impls.append(RedisPy(host, port))
        try:
            import hiredis  # noqa: F401

            notes.append("redis-py parses with hiredis")
        except ImportError:
            notes.append("redis-py without hiredis (not installed)")
    if glide_sync is None:
        notes.append("valkey-glide-sync is not installed: left out")
    else:
        impls.append(Glide(host, port))
    impls[0].c.set("bench:seq:k", "x" * 16)
    for k in spread_keys():
        impls[0].c.set(k, "v")

    import asyncio

    loop = asyncio.new_event_loop()
    aio = [AioRedipc(a.url, loop)]
    try:
        aio.append(AioRedisPy(host, port, loop))
    except ImportError:
        notes.append("redis.asyncio is not installed: left out")

    shard_owner = owner_port(a.url, redipc.keyslot("bench:shard"))
    have_benchmark = shutil.which("redis-benchmark") is not None
    if not have_benchmark:
        notes.append("redis-benchmark is not installed: the shard pub/sub rows are left out")
    results = {}  # (workload, impl) -> [(ops/s, cpu us/op)]
    for rep in range(reps):
        order = impls if rep % 2 == 0 else list(reversed(impls))
        for wl in ("seq", "spread"):
            for impl in order:
                fn = getattr(impl, wl)
                fn(max(1, n[wl] // 20))  # warm-up
                results.setdefault((wl, impl.name), []).append(timed(fn, n[wl]))
        for impl in aio if rep % 2 == 0 else list(reversed(aio)):
            impl.aseq(max(1, n["aseq"] // 20))  # warm-up
            results.setdefault(("aseq", impl.name), []).append(timed(impl.aseq, n["aseq"]))
        if have_benchmark:
            for impl in order:
                results.setdefault(("shard", impl.name), []).append(
                    shard_delivery(impl, n["shard"], shard_owner)
                )
        if a.c_redipc and a.c_hiredis:
            progs = [("redipc-c", a.c_redipc, port), ("hiredis-c (slot owner)", a.c_hiredis, a.owner_port)]
            if rep % 2:
                progs.reverse()
            for name, prog, p in progs:
                results.setdefault(("c-seq", name), []).append(c_bench(prog, host, p, n["c"]))
    if not (a.c_redipc and a.c_hiredis):
        notes.append("the C bench programs were not built: the C rows are left out")
    for impl in aio:
        impl.close()
    loop.close()

    def med(wl, name):
        v = results.get((wl, name))
        if not v:
            return None
        return statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)

    lines = [
        "# Redis Cluster benchmark (bench/cluster)",
        "",
        f"A private cluster of 3 primaries + 3 replicas on 127.0.0.1 (TCP), {reps} repetition(s), "
        "ABBA order, medians. Ratios are redipc's ops/s over the peer's; CPU is the whole "
        "client process's user+sys per operation.",
        "",
        "| workload | implementation | ops/s | CPU µs/op | redipc ÷ it |",
        "|---|---|---:|---:|---:|",
    ]
    summary = {}
    for wl, ours, peers in [
        ("seq", "redipc", ["redis-py", "glide-sync"]),
        ("aseq", "redipc.asyncio", ["redis.asyncio"]),
        ("spread", "redipc", ["redis-py", "glide-sync"]),
        ("shard", "redipc", ["redis-py", "glide-sync"]),
        ("c-seq", "redipc-c", ["hiredis-c (slot owner)"]),
    ]:
        mine = med(wl, ours)
        if mine is None:
            continue
        lines.append(f"| {wl} | {ours} | {mine[0]:,.0f} | {mine[1]:.1f} | |")
        for p in peers:
            theirs = med(wl, p)
            if theirs is None:
                continue
            ratio = mine[0] / theirs[0]
            summary[f"{wl} vs {p}"] = round(ratio, 2)
            lines.append(f"| {wl} | {p} | {theirs[0]:,.0f} | {theirs[1]:.1f} | {ratio:.2f}× |")
    lines += ["", "Targets (issue 12): Python seq ≥ 1.5× redis-py cluster; spread ≥ 3× redis-py "
              "cluster and ≥ 1.0× glide; C seq ≥ 0.95× hiredis on the slot owner (shard pub/sub: "
              "no number given; reported). asyncio seq: issue 15's sequential target (≥ 1.5× "
              "redis.asyncio) on a cluster.", ""]
    lines += [f"- {x}" for x in notes]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    print("summary:", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
