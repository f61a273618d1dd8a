"""Driver of bench/coord: one call of each coordination primitive, redipc vs redis-py.

Sequential calls on one thread over the unix socket; each (workload, implementation) run is
timed with its process CPU time; repetitions alternate the order (ABBA); medians reported.
redis-py is skipped (and said so) when it is not installed.
"""

import argparse
import statistics
import sys
import time

import redipc

try:
    import redis
except ImportError:  # pragma: no cover - the peer is optional in --smoke
    redis = None

SCRIPT = "return redis.call('INCR', KEYS[1])"

# The same GCRA as redipc's limiter (src/patterns/ratelimit.rs), as users hand-write it.
GCRA = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[3]) * interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}"""


def redipc_workloads(c):
    script = c.script(SCRIPT)
    rl = c.rate_limiter("bench-rl", 1e6, per=1.0, burst=1_000_000)
    sem = c.semaphore("bench-sem", 4, lease=30.0)

    def sem_pair():
        p = sem.acquire(timeout=5.0)
        p.release()

    return {
        "script": lambda: script(keys=("bench-n",)),
        "rate": lambda: rl.acquire(),
        "semaphore": sem_pair,
        "delayed": lambda: c.send_request("bench-q", b"x" * 16, delay=60.0),
    }


def redispy_workloads(r):
    script = r.register_script(SCRIPT)
    gcra = r.register_script(GCRA)
    lock = r.lock("bench-lock", timeout=30)
    seq = [0]

    def lock_pair():
        lock.acquire(blocking_timeout=5)
        lock.release()

    def zadd():
        seq[0] += 1
        r.zadd("bench-delayed", {b"%d" % seq[0] + b"x" * 16: time.time() * 1000 + 60000})

    return {
        "script": lambda: script(keys=["bench-n2"]),
        "rate": lambda: gcra(keys=["bench-rl2"], args=[1, 1_000_000, 1]),
        "semaphore": lock_pair,
        "delayed": zadd,
    }


def run(fn, n):
    for _ in range(min(200, n)):
        fn()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return n / (t1 - t0), (c1 - c0) / n * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    smoke = a.mode == "smoke"
    reps = a.reps or (1 if smoke else 5)
    n = 200 if smoke else 20_000
    impls = {"redipc": redipc_workloads(redipc.Client(a.url))}
    notes = []
    if redis is not None:
        path = a.url[len("unix://"):]
        impls["redis-py"] = redispy_workloads(redis.Redis(unix_socket_path=path))
    else:
        notes.append("redis-py is not installed: redipc alone")
    names = list(impls["redipc"])
    results = {(w, i): [] for w in names for i in impls}
    order = list(impls)
    for rep in range(reps):
        for w in names:
            for i in order if rep % 2 == 0 else order[::-1]:
                results[(w, i)].append(run(impls[i][w], n))
    lines = [
        "# Coordination primitives: one call from Python (bench/coord)",
        "",
        f"{reps} repetition(s) of {n} sequential calls each, unix socket, one thread; medians.",
        "",
        "| workload | redipc ops/s | redipc CPU µs/call | redis-py ops/s | redis-py CPU µs/call | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for w in names:
        ops = statistics.median(r[0] for r in results[(w, "redipc")])
        cpu = statistics.median(r[1] for r in results[(w, "redipc")])
        if "redis-py" in impls:
            pops = statistics.median(r[0] for r in results[(w, "redis-py")])
            pcpu = statistics.median(r[1] for r in results[(w, "redis-py")])
            lines.append(
                f"| {w} | {ops:,.0f} | {cpu:.1f} | {pops:,.0f} | {pcpu:.1f} | {ops / pops:.2f}× |"
            )
        else:
            lines.append(f"| {w} | {ops:,.0f} | {cpu:.1f} | – | – | – |")
    lines += [""] + [f"Note: {x}" for x in notes]
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
