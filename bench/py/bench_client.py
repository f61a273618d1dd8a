"""Python side of the benchmark: one program for redipc, redis-py (+hiredis) and glide-sync.

    bench_client.py --impl redipc|redispy|glide (--sock PATH | --host H --port P)
                    [--tls-ca PATH] [--timeout S] SPEC...

Each SPEC is LABEL:WORKLOAD:N:SIZE:DEPTH, as for the C programs (bench/c/common.h); one
JSON line is printed per SPEC. Wall time is ``time.perf_counter``; CPU time is user+sys of
this whole process (every thread: the clients' own I/O and dispatcher threads count),
from ``resource.getrusage(RUSAGE_SELF)``.

``--tls-ca PATH`` connects with TLS to ``--host``/``--port``, trusting the CA certificates
in the PEM file PATH (redipc: ``rediss://`` and ``tls_ca=``; redis-py: ``ssl=True,
ssl_ca_certs=``; glide: ``use_tls`` with ``root_pem_cacerts``); the JSON lines then say
``"transport": "tls"`` (bench/tls).

A workload an implementation cannot run prints ``{"skipped": "why"}`` instead, so that a
missing API shows in the report rather than as a crash.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from typing import Any

CHANNEL = "bench:ch"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Skip(Exception):
    """The implementation cannot run this workload (yet)."""


def value(size: int) -> bytes:
    return bytes(ord("a") + i % 26 for i in range(size))


def quantile(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


class Sub:
    """Counts messages given to a callback; stamps the first and the last."""

    def __init__(self, want: int, size: int) -> None:
        self.want = want
        self.size = size
        self.got = 0
        self.bad = 0
        self.t0 = self.c0 = self.t1 = self.c1 = 0.0
        self.done = threading.Event()

    def first(self) -> None:
        self.t0 = time.perf_counter()
        self.c0 = cpu()

    def last(self) -> None:
        self.t1 = time.perf_counter()
        self.c1 = cpu()
        self.done.set()

    def result(self, timeout: float) -> dict:
        note = None
        if not self.done.wait(timeout):
            note = "timed out before every message arrived"
            self.t1, self.c1 = time.perf_counter(), cpu()
        if self.bad:
            raise RuntimeError("sub: bad payload")
        return dict(ops=max(0, self.got - 1), wall_s=self.t1 - self.t0, cpu_s=self.c1 - self.c0, note=note)


def timed_loop(n: int, fn, *args) -> dict:
    c0, t0 = cpu(), time.perf_counter()
    for _ in range(n):
        fn(*args)
    return dict(ops=n, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)


def rtt_loop(n: int, fn, *args) -> dict:
    lat = [0.0] * n
    pc = time.perf_counter
    c0, t0 = cpu(), pc()
    for i in range(n):
        s = pc()
        fn(*args)
        lat[i] = (pc() - s) * 1e6
    r = dict(ops=n, wall_s=pc() - t0, cpu_s=cpu() - c0)
    r.update(p50_us=quantile(lat, 0.5), p99_us=quantile(lat, 0.99))
    return r


def batches_loop(batches: int, per: int, fn, *args) -> dict:
    c0, t0 = cpu(), time.perf_counter()
    for _ in range(batches):
        fn(*args)
    return dict(ops=batches * per, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)


class Impl:
    name = "?"
    c: Any  # the client

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a

    # Workloads; `key` is unique per SPEC label.
    def get(self, key: str, n: int, size: int, timed: bool) -> dict:
        self.c.set(key, value(size))
        assert self.c.get(key) == value(size)
        return (rtt_loop if timed else timed_loop)(n, self.c.get, key)

    def set(self, key: str, n: int, size: int) -> dict:
        return timed_loop(n, self.c.set, key, value(size))

    def hgetall(self, key: str, n: int, size: int, fields: int) -> dict:
        self.c.delete(key)
        for i in range(fields):
            self.c.hset(key, f"f{i}", value(size))
        got = self.c.hgetall(key)
        assert len(got) == fields, len(got)
        return timed_loop(n, self.c.hgetall, key)

    def pipe(self, key: str, n: int, size: int, depth: int) -> dict:
        raise Skip("no pipeline")

    def threads(self, key: str, n: int, size: int, t: int) -> dict:
        """n GETs from t threads at once (n / t each) on this one client object (redis-py:
        its connection pool gives each thread a connection)."""
        self.c.set(key, value(size))
        per = n // t
        go = threading.Barrier(t + 1)

        def work() -> None:
            get = self.c.get
            assert get(key) == value(size)  # a pooled connection per thread, made now
            go.wait()
            for _ in range(per):
                get(key)

        ths = [threading.Thread(target=work) for _ in range(t)]
        for th in ths:
            th.start()
        go.wait()
        c0, t0 = cpu(), time.perf_counter()
        for th in ths:
            th.join()
        return dict(ops=per * t, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)

    def multi(self, key: str, n: int, depth: int) -> dict:
        raise Skip("no transaction")

    def sub(self, n: int, size: int) -> dict:
        raise Skip("no subscriber")

    def queue(self, key: str, n: int, size: int) -> dict:
        raise Skip("no queue")

    def prefill(self, key: str, n: int, size: int) -> None:
        """LPUSH n items (untimed) with this client's own pipelining."""
        raise Skip("no prefill")

    def rpc(self, n: int, size: int) -> dict:
        raise Skip("RPC is redipc only")

    def serve(self, n: int, size: int) -> dict:
        raise Skip("RPC is redipc only")


class Redipc(Impl):
    name = "redipc-py"

    def __init__(self, a):
        super().__init__(a)
        import redipc

        self.mod = redipc
        url = f"unix://{a.sock}" if a.sock else f"{'rediss' if a.tls_ca else 'redis'}://{a.host}:{a.port}/0"
        self.url = url
        kw = dict(tls_ca=a.tls_ca) if a.tls_ca else {}
        self.c = redipc.Client(url, response_timeout=a.timeout, **kw)

    def pipe(self, key, n, size, depth):
        self.c.set(key, value(size))
        batches = max(1, n // depth)
        if hasattr(self.c, "pipeline"):
            p = self.c.pipeline()

            def once():
                for _ in range(depth):
                    p.add("GET", key)
                return p.exec()  # empties the pipeline

            r = once()
            assert len(r) == depth and r[0] == value(size)
            return batches_loop(batches, depth, once)
        cmds = [("GET", key)] * depth
        r = self.c.pipeline_raw(cmds)
        assert len(r) == depth and r[0] == value(size)
        r = batches_loop(batches, depth, self.c.pipeline_raw, cmds)
        r["note"] = "pipeline_raw (no pipeline() in the package yet)"
        return r

    def multi(self, key, n, depth):
        self.c.delete(key)
        batches = max(1, n // depth)
        if hasattr(self.c, "tx"):
            t = self.c.tx()

            def once():
                for _ in range(depth):
                    t.add("INCR", key)
                return t.exec()  # empties the transaction

            r = batches_loop(batches, depth, once)
        else:
            cmds = [("MULTI",)] + [("INCR", key)] * depth + [("EXEC",)]
            r = batches_loop(batches, depth, self.c.pipeline_raw, cmds)
            r["note"] = "MULTI/EXEC sent with pipeline_raw (no tx() in the package yet)"
        assert int(self.c.get(key)) == batches * depth
        return r

    def sub(self, n, size):
        s = Sub(n, size)

        def cb(m):
            # The first event is the channel's "activated": not counted.
            if m.kind != "message":
                return
            s.got += 1
            if s.got == 1:
                s.first()
            elif s.got == s.want:
                s.last()

        sub = self.c.subscribe(CHANNEL, callback=cb)
        ready()
        r = s.result(self.a.timeout)
        sub.close()
        return r

    def pub(self, n, size, depth):
        # Only the stand-in publisher when hiredis is not installed (bench/c is preferred).
        cmds = [("PUBLISH", CHANNEL, value(size))] * depth
        c0, t0 = cpu(), time.perf_counter()
        sent = 0
        while sent < n:
            k = min(depth, n - sent)
            self.c.pipeline_raw(cmds[:k])
            sent += k
        return dict(ops=sent, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)

    def queue(self, key, n, size, prefetch=0):
        if not hasattr(self.c, "handle_requests"):
            raise Skip("the Python package has no request queues yet")
        name = f"bench-{key.split(':')[1]}"
        pending = f"ipc:{{q:{name}}}:pending"
        self.c.delete(pending)
        v = value(size)
        for start in range(0, n, 1000):
            self.c.command("LPUSH", pending, *([v] * min(1000, n - start)))
        s = Sub(n, size)

        def handler(req):
            s.got += 1
            if s.got == 1:
                s.first()
            elif s.got == s.want:
                s.last()

        kw = dict(block_timeout=0.1)
        if prefetch:
            kw["prefetch"] = prefetch
        w = self.c.handle_requests(name, handler, **kw)
        r = s.result(self.a.timeout)
        w.stop()
        return r

    def rpc(self, n, size):
        if not hasattr(self.c, "call"):
            raise Skip("the Python package has no RPC yet")
        v = value(size)
        call = self.c.call
        for _ in range(50):
            assert call("bench", v, timeout=self.a.timeout) == v
        return rtt_loop(n, call, "bench", v)

    def serve(self, n, size):
        if not hasattr(self.c, "serve"):
            raise Skip("the Python package has no RPC yet")
        import signal

        srv = self.c.serve("bench", lambda call: call.payload)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        ready()
        c0, t0 = cpu(), time.perf_counter()
        while not stop.wait(0.1):
            pass
        srv.stop()
        return dict(ops=0, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)


class RedisPy(Impl):
    name = "redis-py"

    def __init__(self, a):
        super().__init__(a)
        import redis

        if not redis.utils.HIREDIS_AVAILABLE:
            print("warning: redis-py without the hiredis parser", file=sys.stderr)
        self.mod = redis
        if a.sock:
            self.c = redis.Redis(unix_socket_path=a.sock, socket_timeout=a.timeout)
        elif a.tls_ca:
            self.c = redis.Redis(host=a.host, port=a.port, socket_timeout=a.timeout, ssl=True, ssl_ca_certs=a.tls_ca)
        else:
            self.c = redis.Redis(host=a.host, port=a.port, socket_timeout=a.timeout)

    def pipe(self, key, n, size, depth):
        self.c.set(key, value(size))

        def once():
            p = self.c.pipeline(transaction=False)
            for _ in range(depth):
                p.get(key)
            return p.execute()

        assert len(once()) == depth
        return batches_loop(max(1, n // depth), depth, once)

    def multi(self, key, n, depth):
        self.c.delete(key)
        batches = max(1, n // depth)

        def once():
            p = self.c.pipeline(transaction=True)
            for _ in range(depth):
                p.incr(key)
            return p.execute()

        r = batches_loop(batches, depth, once)
        assert int(self.c.get(key)) == batches * depth
        return r

    def sub(self, n, size):
        ps = self.c.pubsub(ignore_subscribe_messages=True)
        ps.subscribe(CHANNEL)
        ready()
        got = 0
        t0 = c0 = 0.0
        note = None
        deadline = time.monotonic() + self.a.timeout
        get = ps.get_message
        while got < n:
            m = get(timeout=1.0)
            if m is None:
                if time.monotonic() > deadline:
                    note = "timed out before every message arrived"
                    break
                continue
            got += 1
            if got == 1:
                t0, c0 = time.perf_counter(), cpu()
        t1, c1 = time.perf_counter(), cpu()
        ps.close()
        return dict(ops=max(0, got - 1), wall_s=t1 - t0, cpu_s=c1 - c0, note=note)

    def prefill(self, key, n, size):
        self.c.delete(key)
        v = value(size)
        for start in range(0, n, 1000):
            p = self.c.pipeline(transaction=False)
            for _ in range(min(1000, n - start)):
                p.lpush(key, v)
            p.execute()

    def queue(self, key, n, size):
        self.prefill(key, n, size)
        brpop = self.c.brpop
        assert brpop(key, 1) is not None
        c0, t0 = cpu(), time.perf_counter()
        for _ in range(n - 1):
            if brpop(key, 1) is None:
                raise RuntimeError("queue ran dry")
        return dict(ops=n - 1, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)


class Glide(Impl):
    name = "glide-sync"

    def __init__(self, a):
        super().__init__(a)
        import glide_sync as g

        self.g = g
        self.c = self._client()

    def _client(self, pubsub=None):
        g = self.g
        if self.a.sock:
            addr = g.NodeAddress(unix_socket_path=self.a.sock)
        else:
            addr = g.NodeAddress(self.a.host, self.a.port)
        tls = {}
        if self.a.tls_ca:
            with open(self.a.tls_ca, "rb") as f:
                ca = f.read()
            tls = dict(
                use_tls=True,
                advanced_config=g.AdvancedGlideClientConfiguration(
                    tls_config=g.TlsAdvancedConfiguration(root_pem_cacerts=ca)
                ),
            )
        cfg = g.GlideClientConfiguration(
            [addr], request_timeout=int(self.a.timeout * 1000), pubsub_subscriptions=pubsub, **tls
        )
        return g.GlideClient.create(cfg)

    def hgetall(self, key, n, size, fields):
        self.c.delete([key])
        self.c.hset(key, {f"f{i}": value(size) for i in range(fields)})
        assert len(self.c.hgetall(key)) == fields
        return timed_loop(n, self.c.hgetall, key)

    def pipe(self, key, n, size, depth):
        self.c.set(key, value(size))

        def once():
            b = self.g.Batch(is_atomic=False)
            for _ in range(depth):
                b.get(key)
            return self.c.exec(b, raise_on_error=True)

        assert len(once()) == depth
        return batches_loop(max(1, n // depth), depth, once)

    def multi(self, key, n, depth):
        self.c.delete([key])
        batches = max(1, n // depth)

        def once():
            b = self.g.Batch(is_atomic=True)
            for _ in range(depth):
                b.incr(key)
            return self.c.exec(b, raise_on_error=True)

        r = batches_loop(batches, depth, once)
        assert int(self.c.get(key)) == batches * depth
        return r

    def sub(self, n, size):
        g = self.g
        s = Sub(n, size)

        def cb(msg, _ctx):
            s.got += 1
            if s.got == 1:
                s.first()
            elif s.got == s.want:
                s.last()

        modes = g.GlideClientConfiguration.PubSubChannelModes
        subs = g.GlideClientConfiguration.PubSubSubscriptions({modes.Exact: {CHANNEL}}, cb, None)
        sc = self._client(subs)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the subscription is made in the background
            r = self.c.custom_command(["PUBSUB", "NUMSUB", CHANNEL])
            subs = next(iter(r.values())) if isinstance(r, dict) else r[1]
            if subs >= 1:
                break
            time.sleep(0.005)
        ready()
        r = s.result(self.a.timeout)
        sc.close()
        return r

    def queue(self, key, n, size):
        self.c.delete([key])
        v = value(size)
        for start in range(0, n, 1000):
            b = self.g.Batch(is_atomic=False)
            for _ in range(min(1000, n - start)):
                b.lpush(key, [v])
            self.c.exec(b, raise_on_error=True)
        brpop = self.c.brpop
        keys = [key]
        assert brpop(keys, 1.0) is not None
        c0, t0 = cpu(), time.perf_counter()
        for _ in range(n - 1):
            if brpop(keys, 1.0) is None:
                raise RuntimeError("queue ran dry")
        return dict(ops=n - 1, wall_s=time.perf_counter() - t0, cpu_s=cpu() - c0)

    def set(self, key, n, size):
        return timed_loop(n, self.c.set, key, value(size))


IMPLS = {"redipc": Redipc, "redispy": RedisPy, "glide": Glide}


def ready() -> None:
    """Tell the harness the subscriber is in place (it then pauses us, publishes, resumes)."""
    print("READY", file=sys.stderr, flush=True)


def run(impl: Impl, label: str, workload: str, n: int, size: int, depth: int) -> dict:
    key = f"bench:{label}:k"
    if workload == "get":
        return impl.get(key, n, size, False)
    if workload == "rtt":
        return impl.get(key, n, size, True)
    if workload == "set":
        return impl.set(key, n, size)
    if workload == "hgetall":
        return impl.hgetall(f"bench:{label}:h", n, size, depth or 100)
    if workload == "pipe":
        return impl.pipe(key, n, size, depth or 16)
    if workload == "threads":
        if isinstance(impl, Glide):
            raise Skip("glide-sync: not measured with threads")
        return impl.threads(key, n, size, depth or 1)
    if workload == "multi":
        return impl.multi(f"bench:{label}:ctr", n, depth or 100)
    if workload == "sub":
        return impl.sub(n, size)
    if workload == "pub":
        if not hasattr(impl, "pub"):
            raise Skip("no publisher")
        return impl.pub(n, size, depth or 100)
    if workload == "queue":
        if isinstance(impl, Redipc):
            return impl.queue(f"bench:{label}:q", n, size, depth)
        return impl.queue(f"bench:{label}:q", n, size)
    if workload == "rpc":
        return impl.rpc(n, size)
    if workload == "serve":
        return impl.serve(n, size)
    raise Skip(f"unknown workload {workload}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--impl", required=True, choices=sorted(IMPLS))
    p.add_argument("--sock")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--tls-ca", help="connect with TLS, trusting the CA certificates in this PEM file")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("specs", nargs="+")
    a = p.parse_args()
    if not a.sock and not a.port:
        p.error("give --sock or --port")
    if a.sock and a.tls_ca:
        p.error("--tls-ca needs --port (TLS is over TCP)")
    impl = IMPLS[a.impl](a)
    for spec in a.specs:
        label, workload, n, size, depth = spec.split(":")
        n, size, depth = int(n), int(size), int(depth)
        out = dict(
            impl=impl.name,
            label=label,
            workload=workload,
            transport="unix" if a.sock else "tls" if a.tls_ca else "tcp",
            n=n,
            size=size,
            depth=depth,
        )
        try:
            r = run(impl, label, workload, n, size, depth)
        except Skip as e:
            out["skipped"] = str(e)
        else:
            if r.get("note") is None:
                r.pop("note", None)
            out.update(r)
            out["ops_per_s"] = r["ops"] / r["wall_s"] if r["wall_s"] > 0 else 0.0
            out["cpu_us_per_op"] = r["cpu_s"] * 1e6 / r["ops"] if r["ops"] else 0.0
        print(json.dumps(out), flush=True)
    sys.stdout.flush()
    # glide-sync's and redipc's background threads end with the process.
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
