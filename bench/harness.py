"""The benchmark's conductor: runs every implementation on every workload against one
redis-server, alternating implementations, several times; then prints the table of
medians and ratios, checks the targets of issue 6, and writes JSON, Markdown and a PNG.

Started by bench/run (which builds the programs and starts the server); by hand:

    python bench/harness.py --mode quick --build bench/build --sock /tmp/r.sock --port 6399

Every measurement is one process of a bench program (bench/c/bench_*.c,
bench/py/bench_client.py) printing one JSON line per workload; redis-benchmark is run for
the server's ceiling where it has the same workload.

The footprint section (issue 18; `--only footprint` runs it alone) reports the stripped
size of libredipc.so, default build (`make`: profile `dist`, TLS) and minimal build
(`make PROFILE=dist-small FEATURES=`, and the same with `BUILD_STD=1`), beside hiredis's; and, for a C client with one
subscription left idle (bench/c/idle_*.c), its RSS and its wake-ups (voluntary context
switches of all its threads) over a window of 10 s (quick: 3 s, smoke: 1 s), read by this
driver from /proc.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY_BENCH = ROOT / "bench" / "py" / "bench_client.py"

# ---------------------------------------------------------------------------------------
# Workloads. A workload is LABEL -> (bench workload, value size, depth, transport, unit).

SEQ = []
for _tr in ("unix", "tcp"):
    for _op in ("get", "set"):
        for _sz, _szl in ((16, "16"), (1024, "1k")):
            SEQ.append(f"{_op}{_szl}_{_tr}")

WORKLOADS: dict[str, dict] = {}
for _l in SEQ:
    _op, _rest = _l[:3], _l[3:]
    _szl, _tr = _rest.split("_")
    WORKLOADS[_l] = dict(
        workload=_op,
        size=16 if _szl == "16" else 1024,
        depth=0,
        transport=_tr,
        unit="ops/s",
        title=f"sequential {_op.upper()} {'16 B' if _szl == '16' else '1 KiB'}, {_tr}",
    )
WORKLOADS.update(
    {
        "pipe16": dict(workload="pipe", size=16, depth=16, transport="unix", unit="cmds/s", title="pipeline of 16 GETs"),
        "pipe1000": dict(workload="pipe", size=16, depth=1000, transport="unix", unit="cmds/s", title="pipeline of 1000 GETs"),
        "multi100": dict(workload="multi", size=0, depth=100, transport="unix", unit="cmds/s", title="MULTI/EXEC of 100 INCR"),
        "hgetall100": dict(workload="hgetall", size=16, depth=100, transport="unix", unit="ops/s", title="HGETALL, 100 fields of 16 B"),
        "pubsub64": dict(workload="sub", size=64, depth=0, transport="unix", unit="msgs/s", title="pub/sub delivery, 64 B messages"),
        "pubsublive64": dict(workload="sub", size=64, depth=0, transport="unix", unit="msgs/s",
                             title="pub/sub delivery, 64 B messages, 4 live publishers (pipelines of 100)"),
        "queue": dict(workload="queue", size=16, depth=0, transport="unix", unit="items/s", title="queue drain (redipc worker: default prefetch 16)"),
        "queue1": dict(workload="queue", size=16, depth=1, transport="unix", unit="items/s", title="queue drain (redipc worker: prefetch 1)"),
        "rtt_get": dict(workload="rtt", size=16, depth=0, transport="unix", unit="ops/s", title="GET round trip"),
        "rpc": dict(workload="rpc", size=16, depth=0, transport="unix", unit="calls/s", title="RPC round trip (hiredis: hand-rolled)"),
    }
)
# Issue 18: GETs from N threads at once, redipc's sharing one client, hiredis's with a
# connection each, redis-py's with a connection pool (client unpinned: the threads may use
# every CPU but the server's).
THREADS = [1, 2, 4, 8, 16]
MT = [f"mt{n}" for n in THREADS]
for _n in THREADS:
    WORKLOADS[f"mt{_n}"] = dict(workload="threads", size=16, depth=_n, transport="unix", unit="ops/s",
                                title=f"GET 16 B from {_n} thread{'s' if _n > 1 else ''} (one client / a connection each)")

# Counts per mode: (C, Python). Quick and full differ only in counts and repetitions.
COUNTS = {
    "full": {"seq": (20_000, 8_000), "pipe16": (128_000, 48_000), "pipe1000": (800_000, 200_000),
             "multi100": (400_000, 100_000), "hgetall100": (8_000, 3_000), "pubsub64": (600_000, 150_000), "pubsublive64": (800_000, 0),
             "queue": (30_000, 10_000), "rtt_get": (20_000, 10_000), "rpc": (10_000, 5_000), "threads": (48_000, 16_000)},
    "quick": {"seq": (2_000, 1_000), "pipe16": (16_000, 8_000), "pipe1000": (100_000, 30_000),
              "multi100": (50_000, 20_000), "hgetall100": (1_000, 500), "pubsub64": (100_000, 30_000), "pubsublive64": (200_000, 0),
              "queue": (4_000, 2_000), "rtt_get": (3_000, 2_000), "rpc": (2_000, 1_000), "threads": (8_000, 3_200)},
    "smoke": {"seq": (200, 100), "pipe16": (320, 160), "pipe1000": (2_000, 1_000),
              "multi100": (1_000, 500), "hgetall100": (50, 20), "pubsub64": (2_000, 1_000), "pubsublive64": (4_000, 0),
              "queue": (200, 100), "rtt_get": (200, 100), "rpc": (100, 50), "threads": (320, 160)},
}
REPS = {"full": 5, "quick": 3, "smoke": 1}

# Process groups: the workloads one bench process runs in a row (fewer process starts).
GROUPS = [
    ("seq_unix", [l for l in SEQ if l.endswith("_unix")]),
    ("seq_tcp", [l for l in SEQ if l.endswith("_tcp")]),
    ("batch", ["pipe16", "pipe1000", "multi100", "hgetall100"]),
    ("misc", ["queue", "queue1", "rtt_get"]),
    ("threads", MT),
]
UNPINNED_GROUPS = {"threads"}

C_IMPLS = ["redipc-c", "hiredis"]
PY_IMPLS = ["redipc-py", "redis-py", "glide-sync"]
PY_FLAG = {"redipc-py": "redipc", "redis-py": "redispy", "glide-sync": "glide"}
LANG = {"redipc-c": "c", "hiredis": "c", "redis-benchmark": "c", "redipc-py": "py", "redis-py": "py", "glide-sync": "py"}

# Targets of issue 6: (language, workloads, peer, minimum ratio redipc / peer).
TARGETS = [
    ("c", SEQ, "hiredis", 0.95, "C sequential GET/SET >= 0.95x hiredis"),
    ("c", ["multi100", "pipe1000"], "hiredis", 1.0, "C MULTI/EXEC 100 INCR, pipeline 1000 >= 1.0x hiredis"),
    ("c", ["pubsub64"], "hiredis", 0.9, "C pub/sub delivery >= 0.9x hiredis"),
    ("c", ["pubsublive64"], "hiredis", 1.0, "C pub/sub delivery with live publishers >= 1.0x hiredis (issue 18)"),
    ("c", MT, "hiredis", 1.0, "C N threads on one client >= 1.0x N hiredis connections (issue 18)"),
    ("py", SEQ, "redis-py", 1.3, "Python sequential GET/SET >= 1.3x redis-py+hiredis"),
    ("py", SEQ, "glide-sync", 1.0, "Python sequential GET/SET >= 1.0x glide-sync"),
    ("py", MT, "redis-py", 1.0, "Python N threads on one client >= 1.0x redis-py+hiredis with a pool (issue 18)"),
    ("py", ["multi100", "pipe1000"], "redis-py", 2.0, "Python MULTI/EXEC 100, pipeline 1000 >= 2x redis-py+hiredis"),
    ("py", ["pubsub64"], "redis-py", 3.0, "Python pub/sub delivery to a callback >= 3x redis-py+hiredis"),
]
RPC_TARGET = 3.0  # RPC p50 <= 3x GET p50

# ---------------------------------------------------------------------------------------
# Footprint (issue 18). MB are 10^6 bytes (docs/SIZE.md).

MB = 1_000_000
# (cargo profile, with TLS, how it is built, title)
# (key, directory under the target dir, TLS wanted, how it is built, title); "{triple}" is
# the host's target triple (a -Zbuild-std build is cross-built for it).
FOOTPRINT_BUILDS = [
    ("dist", "dist", True, "make", "default (`make`: profile `dist`, TLS)"),
    ("dist-small", "dist-small", False, "make PROFILE=dist-small FEATURES=",
     "minimal (`make PROFILE=dist-small FEATURES=`: opt-level s, without TLS, cluster, sentinel, patterns)"),
    ("dist-small-lean", "{triple}/dist-small", False, "make PROFILE=dist-small FEATURES= BUILD_STD=1",
     "minimal, lean std (`make PROFILE=dist-small FEATURES= BUILD_STD=1`: the same, std rebuilt without its "
     "backtrace printer; nightly Rust with rust-src)"),
]
SIZE_TARGETS = {"dist": 2.0 * MB, "dist-small": 1.2 * MB, "dist-small-lean": 1.2 * MB}
IDLE_RSS_TARGET = 3.0 * MB
IDLE_WINDOW = {"full": 10.0, "quick": 3.0, "smoke": 1.0}
# Seconds between "subscribed" and the start of the window. Full: past the startup's last
# one-off wake-up, the exit of the dispatcher thread that delivered the subscription's
# `activated` event (it leaves 10 s after its last work, src/delivery/pool.rs), so that the
# window sees the steady idle state only.
IDLE_SETTLE = {"full": 11.0, "quick": 0.5, "smoke": 0.5}
# (key, impl, program, extra arguments, title); all over the unix socket, run side by side.
# (key, impl, program, extra arguments, title, transport)
IDLE_RUNS = [
    ("redipc-default", "redipc-c", "idle_redipc", [], "redipc, default options (unix socket: no health check)", "unix"),
    ("redipc-default-tcp", "redipc-c", "idle_redipc", [], "redipc, default options, TCP (health check every 3 s)", "tcp"),
    ("redipc-hc-on", "redipc-c", "idle_redipc", ["--health-check-ms", "3000"], "redipc, health check every 3 s (unix socket)", "unix"),
    ("redipc-hc-off", "redipc-c", "idle_redipc", ["--health-check-ms", "0"], "redipc, health check off (unix socket)", "unix"),
    ("redipc-minimal", "redipc-c-minimal", "idle_redipc", [],
     "redipc, minimal build (`dist-small`, no TLS, cluster, sentinel, patterns), default options (unix socket)", "unix"),
    ("redipc-minimal-lean", "redipc-c-lean", "idle_redipc", [],
     "redipc, minimal build with the lean std (`BUILD_STD=1`), default options (unix socket)", "unix"),
    ("hiredis", "hiredis", "idle_hiredis", [], "hiredis (no health check)", "unix"),
]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


class Harness:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.mode = a.mode
        self.counts = COUNTS[a.mode]
        self.reps = a.reps or REPS[a.mode]
        self.build = Path(a.build)
        self.runs: list[dict] = []
        self.skips: dict[tuple[str, str], str] = {}
        self.errors: list[str] = []
        self.notes: list[str] = list(a.note)
        self.do_throughput = a.only != "footprint"
        self.do_footprint = a.only != "throughput"
        self.footprint: dict | None = None
        self.elapsed = 0.0
        self.checks: list[dict] = []
        self.pin_client: list[str] = []
        self.pin_server: list[str] = []
        if not a.no_pin and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
            self.pin_client = ["taskset", "-c", "1"]
            self.pin_server = ["taskset", "-c", "0"]
        self.impls = self.find_impls()

    # -- what can run -------------------------------------------------------------------

    def find_impls(self) -> list[str]:
        out: list[str] = []
        if not self.do_throughput:
            return out
        for impl, binary in (("redipc-c", "bench_redipc"), ("hiredis", "bench_hiredis")):
            if (self.build / binary).exists():
                out.append(impl)
            else:
                self.notes.append(f"{impl}: {self.build / binary} was not built: skipped")
        notes_file = self.build / "notes.txt"
        if notes_file.exists():
            self.notes += [l.strip() for l in notes_file.read_text().splitlines() if l.strip()]
        probes = {"redipc-py": "import redipc", "redis-py": "import redis, hiredis", "glide-sync": "import glide_sync"}
        for impl in PY_IMPLS:
            r = subprocess.run([self.a.python, "-c", probes[impl]], capture_output=True, text=True)
            if r.returncode == 0:
                out.append(impl)
            else:
                self.notes.append(f"{impl}: not importable in {self.a.python}: skipped ({r.stderr.strip().splitlines()[-1:]})")
        if shutil.which("redis-benchmark"):
            out.append("redis-benchmark")
        else:
            self.notes.append("redis-benchmark: not installed (Debian: redis-tools): no server ceiling")
        if self.a.impls:
            out = [i for i in out if i in self.a.impls.split(",")]
        return out

    # -- running one process -------------------------------------------------------------

    def target_args(self, transport: str) -> list[str]:
        if transport == "unix":
            return ["--sock", self.a.sock]
        return ["--host", "127.0.0.1", "--port", str(self.a.port)]

    def count(self, label: str, impl: str) -> int:
        key = "seq" if label in SEQ else "threads" if label in MT else {"queue1": "queue"}.get(label, label)
        c, py = self.counts[key]
        return c if LANG[impl] == "c" else py

    def spec(self, label: str, impl: str) -> str:
        w = WORKLOADS[label]
        return f"{label}:{w['workload']}:{self.count(label, impl)}:{w['size']}:{w['depth']}"

    def command(self, impl: str, transport: str, specs: list[str]) -> list[str]:
        t = self.target_args(transport) + ["--timeout", str(self.a.timeout)]
        if impl == "redipc-c":
            return [str(self.build / "bench_redipc")] + t + specs
        if impl == "hiredis":
            return [str(self.build / "bench_hiredis")] + t + specs
        return [self.a.python, str(PY_BENCH), "--impl", PY_FLAG[impl]] + t + specs

    def record(self, line: str, rep: int) -> None:
        d = json.loads(line)
        d["rep"] = rep
        if "skipped" in d:
            self.skips[(d["impl"], d["label"])] = d["skipped"]
            return
        self.runs.append(d)

    def run_process(self, impl: str, transport: str, labels: list[str], rep: int, pin: bool = True) -> None:
        cmd = (self.pin_client if pin else []) + self.command(impl, transport, [self.spec(l, impl) for l in labels])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.a.timeout * len(labels) + 60)
        except subprocess.TimeoutExpired:
            self.errors.append(f"{impl} {labels}: the process did not finish in time")
            return
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                self.record(line, rep)
        if p.returncode != 0:
            tail = " | ".join(p.stderr.strip().splitlines()[-3:])
            self.errors.append(f"{impl} {','.join(labels)}: exit {p.returncode}: {tail}")

    def redis_cli(self, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-s", self.a.sock, *args], capture_output=True, text=True, timeout=30)
        return r.stdout

    # -- pub/sub: subscriber paused while the common publisher fills the server's buffer -----

    def run_pubsub(self, impl: str, rep: int, live: bool = False) -> None:
        """The subscriber drains a backlog (paused while one publisher publishes), or with
        ``live`` consumes while 4 publishers run (issue 18: the reader/dispatcher hand-off
        when reads are small, which a backlog's large reads hide)."""
        label = "pubsublive64" if live else "pubsub64"
        n = self.count(label, impl)
        publishers = 4 if live else 1
        n = n // publishers * publishers
        spec = self.spec(label, impl).split(":")
        spec[2] = str(n)
        sub_cmd = self.pin_client + self.command(impl, "unix", [":".join(spec)])
        if (self.build / "bench_hiredis").exists():
            pub_cmd = [str(self.build / "bench_hiredis")]
        elif (self.build / "bench_redipc").exists():
            pub_cmd = [str(self.build / "bench_redipc")]
        elif "redipc-py" in self.impls:
            pub_cmd = [self.a.python, str(PY_BENCH), "--impl", "redipc"]
        else:
            self.errors.append("pubsub: no publisher available")
            return
        pub_cmd = pub_cmd + ["--sock", self.a.sock, "--timeout", str(self.a.timeout), f"pub:pub:{n // publishers}:64:100"]
        sub = subprocess.Popen(sub_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = False
            seen = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = sub.stderr.readline() if sub.stderr else ""
                if not line:
                    break
                if line.strip() == "READY":
                    ready = True
                    break
                seen.append(line)
            if not ready:
                out, err = sub.communicate(timeout=30)
                for l in out.splitlines():
                    if l.startswith("{"):
                        self.record(l, rep)
                if (impl, label) not in self.skips:
                    self.errors.append(f"{impl} {label}: subscriber never got ready: {(''.join(seen) + err).strip()[-300:]}")
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                m = re.findall(r"\d+", self.redis_cli("PUBSUB", "NUMSUB", "bench:ch").split("\n", 1)[-1])
                if m and int(m[-1]) >= 1:
                    break
                time.sleep(0.005)
            time.sleep(0.05)
            if live:
                # The publishers run while the subscriber consumes (on the server's side of
                # the CPUs when pinned: the subscriber keeps its own).
                pubs = [subprocess.Popen(self.pin_server + pub_cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True) for _ in range(publishers)]
                for p in pubs:
                    _, perr = p.communicate(timeout=self.a.timeout + 30)
                    if p.returncode != 0:
                        self.errors.append(f"publisher: exit {p.returncode}: {perr.strip()[-300:]}")
            else:
                # Pause the whole subscriber process: the server buffers every message, so
                # each implementation drains the same backlog at its own pace, whatever the
                # publisher's speed under the noise of the moment.
                os.kill(sub.pid, signal.SIGSTOP)
                try:
                    p = subprocess.run(pub_cmd, capture_output=True, text=True, timeout=self.a.timeout + 30)
                    if p.returncode != 0:
                        self.errors.append(f"publisher: exit {p.returncode}: {p.stderr.strip()[-300:]}")
                finally:
                    os.kill(sub.pid, signal.SIGCONT)
            out, err = sub.communicate(timeout=self.a.timeout + 30)
            for l in out.splitlines():
                if l.startswith("{"):
                    self.record(l, rep)
            if sub.returncode != 0:
                self.errors.append(f"{impl} {label}: exit {sub.returncode}: {err.strip()[-300:]}")
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()

    # -- RPC: a redipc server process next to the redis-server, a caller on the client core --

    def run_rpc(self, impl: str, rep: int) -> None:
        n = self.count("rpc", impl)
        serve_cmd = self.pin_server + self.command(impl, "unix", [f"serve:serve:{n + 100}:16:0"])
        srv = subprocess.Popen(serve_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 5
            first = ""
            while time.monotonic() < deadline:
                # The server says READY once serving; a skipped workload prints JSON and exits.
                first = srv.stderr.readline() if srv.stderr else ""
                if not first or first.strip() == "READY":
                    break
            if first.strip() != "READY":
                out, err = srv.communicate(timeout=30)
                for l in out.splitlines():
                    if l.startswith("{"):
                        self.record(l, rep)
                if (impl, "serve") in self.skips:
                    self.skips[(impl, "rpc")] = self.skips.pop((impl, "serve"))
                else:
                    self.errors.append(f"{impl} rpc server did not start: {(first + err).strip()[-300:]}")
                return
            self.run_process(impl, "unix", ["rpc"], rep)
        finally:
            # Its figures are not needed: kill it rather than wait for a graceful stop (which
            # waits out the server loop's blocking pop).
            if srv.poll() is None:
                srv.kill()
            srv.communicate(timeout=30)

    # -- redis-benchmark: the server's ceiling for one client connection ------------------

    def run_redis_benchmark(self, label: str, rep: int) -> None:
        w = WORKLOADS[label]
        n = self.count(label, "redis-benchmark")
        base = ["redis-benchmark", "-c", "1", "-n", str(n), "--csv"]
        base += ["-s", self.a.sock] if w["transport"] == "unix" else ["-h", "127.0.0.1", "-p", str(self.a.port)]
        if w["workload"] in ("get", "set"):
            if w["workload"] == "get":
                self.redis_cli("SET", "key:__rand_int__", "x" * w["size"])
            args = base + ["-d", str(w["size"]), "-t", w["workload"]]
        elif w["workload"] == "pipe":
            self.redis_cli("SET", "key:__rand_int__", "x" * w["size"])
            args = base + ["-P", str(w["depth"]), "-t", "get"]
        elif w["workload"] == "hgetall":
            key = f"bench:{label}:h"
            self.redis_cli("DEL", key)
            fields = []
            for i in range(w["depth"]):
                fields += [f"f{i}", "x" * w["size"]]
            self.redis_cli("HSET", key, *fields)
            args = base + ["HGETALL", key]
        else:
            return
        args = self.pin_client + args
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(args, capture_output=True, text=True, timeout=600)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        out, err, status = p.stdout, p.stderr, p.returncode
        if status != 0:
            self.errors.append(f"redis-benchmark {label}: exit {status}: {err.strip()[-200:]}")
            return
        rows = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')]
        if not rows:
            self.errors.append(f"redis-benchmark {label}: no result in {out!r}")
            return
        cells = [c.strip('"') for c in rows[-1].split(",")]
        rps = float(cells[1])
        rec = dict(impl="redis-benchmark", label=label, workload=w["workload"], transport=w["transport"], n=n,
                   size=w["size"], depth=w["depth"], ops=n, wall_s=n / rps if rps else 0.0, ops_per_s=rps, rep=rep,
                   cpu_s=cpu, cpu_us_per_op=cpu * 1e6 / n)
        if len(cells) >= 7:
            rec["p50_us"] = float(cells[4]) * 1000
            rec["p99_us"] = float(cells[6]) * 1000
        self.runs.append(rec)

    # -- the schedule ---------------------------------------------------------------------

    def schedule(self) -> None:
        client_impls = [i for i in self.impls if i != "redis-benchmark"]
        t_start = time.monotonic()
        for rep in range(self.reps):
            log(f"== repetition {rep + 1}/{self.reps} ({time.monotonic() - t_start:.0f} s)")
            for gname, labels in GROUPS:
                transport = WORKLOADS[labels[0]]["transport"]
                times = []
                for impl in rotate(client_impls, rep):
                    t = time.monotonic()
                    self.run_process(impl, transport, labels, rep, pin=gname not in UNPINNED_GROUPS)
                    times.append(f"{impl} {time.monotonic() - t:.1f}")
                if "redis-benchmark" in self.impls:
                    t = time.monotonic()
                    for l in labels:
                        self.run_redis_benchmark(l, rep)
                    times.append(f"redis-benchmark {time.monotonic() - t:.1f}")
                log(f"   {gname}: {', '.join(times)} s")
            times = []
            for impl in rotate(client_impls, rep):
                t = time.monotonic()
                self.run_pubsub(impl, rep)
                times.append(f"{impl} {time.monotonic() - t:.1f}")
            log(f"   pubsub64: {', '.join(times)} s")
            times = []
            for impl in rotate([i for i in client_impls if LANG[i] == "c"], rep):
                t = time.monotonic()
                self.run_pubsub(impl, rep, live=True)
                times.append(f"{impl} {time.monotonic() - t:.1f}")
            log(f"   pubsublive64: {', '.join(times)} s")
            times = []
            for impl in rotate([i for i in client_impls if i.startswith("redipc") or i == "hiredis"], rep):
                t = time.monotonic()
                self.run_rpc(impl, rep)
                times.append(f"{impl} {time.monotonic() - t:.1f}")
            log(f"   rpc: {', '.join(times)} s")
        self.elapsed = time.monotonic() - t_start

    # -- footprint (issue 18) ---------------------------------------------------------------

    def run_footprint(self) -> None:
        t = time.monotonic()
        fp: dict = dict(libs=[], hiredis=None, idle=dict(window_s=None, settle_s=IDLE_SETTLE[self.mode], runs=[]), targets=[])
        self.footprint = fp
        fdir = self.build / "footprint"
        shutil.rmtree(fdir, ignore_errors=True)
        fdir.mkdir(parents=True, exist_ok=True)
        strip = shutil.which("strip")
        if not strip:
            self.notes.append("footprint: `strip` (binutils) is not installed: no library sizes")
        target_dir = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
        triple = host_triple()
        for profile, where, tls_wanted, how, title in FOOTPRINT_BUILDS:
            src = target_dir / where.format(triple=triple) / "libredipc.so"
            e: dict = dict(build=profile, title=title, how=how, path=str(src), tls_wanted=tls_wanted,
                           fresh=profile in self.a.footprint_built)
            fp["libs"].append(e)
            if not src.exists():
                e["why"] = f"{src.relative_to(ROOT) if src.is_relative_to(ROOT) else src} is not built (`{how}`)"
                self.notes.append(f"footprint: {e['why']}: its size is not reported")
                continue
            e["bytes"] = src.stat().st_size
            e["layout"] = layout_match(src, profile)
            e["built_at"] = datetime.datetime.fromtimestamp(src.stat().st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
            if not strip:
                continue
            dest = fdir / profile / "libredipc.so"
            dest.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run([strip, "--strip-unneeded", "-o", str(dest), str(src)], capture_output=True, text=True)
            if r.returncode != 0:
                self.errors.append(f"footprint: strip {src}: {r.stderr.strip()[-200:]}")
                continue
            e["stripped_bytes"] = dest.stat().st_size
            e["stripped_path"] = str(dest)
            # rustls leaves its name in the library's strings (panic locations, errors).
            e["tls"] = b"rustls" in dest.read_bytes()
            soname = elf_soname(dest)
            if soname and soname != dest.name:
                (dest.parent / soname).symlink_to(dest.name)
        fp["hiredis"] = self.hiredis_lib(fdir, strip)
        self.run_idle(fp)
        self.footprint_targets(fp)
        log(f"   footprint: {time.monotonic() - t:.1f} s")

    def hiredis_lib(self, fdir: Path, strip: str | None) -> dict | None:
        path = find_hiredis()
        if not path:
            self.notes.append("footprint: no libhiredis.so.* found (ldconfig -p, pkg-config hiredis): no hiredis size")
            return None
        e: dict = dict(path=str(path), bytes=path.stat().st_size)
        if strip:
            dest = fdir / "hiredis" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run([strip, "--strip-unneeded", "-o", str(dest), str(path)], capture_output=True, text=True)
            if r.returncode == 0:
                e["stripped_bytes"] = dest.stat().st_size
        return e

    def run_idle(self, fp: dict) -> None:
        window = self.a.idle_window or IDLE_WINDOW[self.mode]
        fp["idle"]["window_s"] = window
        # redipc runs against the stripped shipped build when this run built it (LD_LIBRARY_PATH
        # wins over the programs' RUNPATH); otherwise against the bench's own (release) copy.
        dist = next((e for e in fp["libs"] if e["build"] == "dist"), None)
        lib_dir = None
        if dist and dist.get("fresh") and dist.get("stripped_path"):
            lib_dir = str(Path(dist["stripped_path"]).parent)
        else:
            fp["idle"]["lib_note"] = ("redipc: the bench's own libredipc.so (target/release), not the shipped `dist` "
                                      "build, which this run did not build")
        small = next((e for e in fp["libs"] if e["build"] == "dist-small"), None)
        small_dir = (str(Path(small["stripped_path"]).parent)
                     if small and small.get("fresh") and small.get("stripped_path") else None)
        lean = next((e for e in fp["libs"] if e["build"] == "dist-small-lean"), None)
        lean_dir = (str(Path(lean["stripped_path"]).parent)
                    if lean and lean.get("fresh") and lean.get("stripped_path") else None)
        # The libraries as a process loads them from storage (at a board's boot, or any first
        # use), not the copy `strip` just wrote: the kernel maps a page cache's blocks whole,
        # and freshly written blocks are larger than those a program's first faults read in.
        evict_page_cache([Path(lib_dir or self.build / "lib") / "libredipc.so", find_hiredis(),
                          Path(small_dir) / "libredipc.so" if small_dir else None,
                          Path(lean_dir) / "libredipc.so" if lean_dir else None])
        fp["idle"]["cold"] = True
        procs: list[tuple[dict, subprocess.Popen]] = []
        try:
            for key, impl, prog, extra, title, transport in IDLE_RUNS:
                exe = self.build / prog
                run: dict = dict(key=key, impl=impl, title=title, transport=transport, args=extra)
                fp["idle"]["runs"].append(run)
                if not exe.exists():
                    run["why"] = f"{exe} was not built"
                    self.notes.append(f"footprint: {run['why']}: idle {title} not measured")
                    continue
                if impl == "redipc-c-minimal" and not small_dir:
                    run["why"] = "this run did not build the minimal library"
                    continue
                if impl == "redipc-c-lean" and not lean_dir:
                    run["why"] = "this run did not build the lean minimal library (BUILD_STD=1)"
                    continue
                env = dict(os.environ)
                first = {"redipc-c": lib_dir, "redipc-c-minimal": small_dir, "redipc-c-lean": lean_dir}.get(impl)
                if first:
                    env["LD_LIBRARY_PATH"] = first + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
                p = subprocess.Popen([str(exe), *self.target_args(transport), *extra], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
                procs.append((run, p))
            live = []
            for run, p in procs:
                line = read_line(p, 30.0)
                if not line.startswith("READY"):
                    err = ""
                    if p.poll() is not None and p.stderr:
                        err = p.stderr.read()
                    run["why"] = f"never got ready: {(line + err).strip()[-300:] or 'no output in 30 s'}"
                    self.errors.append(f"footprint: {run['title']}: {run['why']}")
                    continue
                live.append((run, p))
            if not live:
                return
            deadline = time.monotonic() + 10
            subs = 0
            while time.monotonic() < deadline:
                m = re.findall(r"\d+", self.redis_cli("PUBSUB", "NUMSUB", "bench:idle").split("\n", 1)[-1])
                subs = int(m[-1]) if m else 0
                if subs >= len(live):
                    break
                time.sleep(0.01)
            if subs < len(live):
                self.errors.append(f"footprint: {subs} of {len(live)} idle clients subscribed after 10 s")
            time.sleep(IDLE_SETTLE[self.mode])
            before = {run["key"]: proc_snapshot(p.pid) for run, p in live}
            counters = {k: SwitchCounter(b["tasks"]) for k, b in before.items() if b}
            t0 = time.monotonic()
            while (left := t0 + window - time.monotonic()) > 0:
                time.sleep(min(0.1, left))
                for run, p in live:
                    if run["key"] in counters:
                        counters[run["key"]].sample(task_switches(p.pid))
            after = {run["key"]: proc_snapshot(p.pid) for run, p in live}
            elapsed = time.monotonic() - t0
            for run, p in live:
                b, a = before[run["key"]], after[run["key"]]
                if p.poll() is not None or not a or not b:
                    run["why"] = f"the process ended during the idle window (exit {p.returncode})"
                    self.errors.append(f"footprint: {run['title']}: {run['why']}")
                    continue
                sw = counters[run["key"]].result(a["tasks"])
                run.update(window_s=round(elapsed, 3), rss_kb=a["VmRSS"], rss_kb_start=b["VmRSS"],
                           rss_anon_kb=a.get("RssAnon"), rss_file_kb=a.get("RssFile"), hwm_kb=a.get("VmHWM"),
                           **sw, wakeups_per_s=sw["switches"] / elapsed, lib=a.get("lib"))
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.terminate()
            for _, p in procs:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                for f in (p.stdout, p.stderr):
                    if f:
                        f.close()

    def footprint_targets(self, fp: dict) -> None:
        checks = fp["targets"]

        def check(text: str, want: float, value: float | None, fmt, why: str = "") -> None:
            if value is None:
                checks.append(dict(target=text, want=want, value=None, status="not measured", why=why or "not measured"))
            else:
                checks.append(dict(target=text, want=want, value=value, shown=fmt(value),
                                   status="met" if value <= want else "MISSED"))

        for profile, where, tls_wanted, how, title in FOOTPRINT_BUILDS:
            e = next(x for x in fp["libs"] if x["build"] == profile)
            want = SIZE_TARGETS[profile]
            text = (f"stripped libredipc.so, {title.split(' (', 1)[0]} build ({profile}, "
                    f"{'TLS' if tls_wanted else 'no TLS, cluster, sentinel, patterns'}) <= {want / MB:g} MB")
            value, why = e.get("stripped_bytes"), e.get("why", "")
            if value is not None and e.get("tls") != tls_wanted:
                why = (f"target/{where}/libredipc.so was built {'with' if e['tls'] else 'without'} TLS "
                       f"(`{how}` builds the one meant)")
                value = None
            check(text, want, value, lambda v: f"{v / MB:.2f} MB", why)
        runs = {r["key"]: r for r in fp["idle"]["runs"]}
        d, off = runs.get("redipc-default", {}), runs.get("redipc-hc-off", {})
        tcp = runs.get("redipc-default-tcp", {})
        rss = d.get("rss_kb")
        check(f"idle RSS of a C client with one subscription <= {IDLE_RSS_TARGET / MB:g} MB (default options)",
              IDLE_RSS_TARGET, rss * 1024 if rss is not None else None, lambda v: f"{v / MB:.2f} MB", d.get("why", ""))
        for run, where in ((d, "unix socket"), (tcp, "TCP")):
            check(f"idle wake-ups <= 1/s with default options ({where})", 1.0, run.get("wakeups_per_s"),
                  lambda v: f"{v:.2f}/s", run.get("why", ""))
        check("idle wake-ups 0 with the health check off over a unix socket", 0.0, off.get("wakeups_per_s"),
              lambda v: f"{v:.2f}/s ({off.get('switches')} in {off.get('window_s', 0):.0f} s)", off.get("why", ""))

    def footprint_text(self) -> str:
        fp = self.footprint
        if not fp:
            return ""
        out = ["### Footprint (issue 18)\n",
               "Library size, stripped with `strip --strip-unneeded` (MB: 10^6 bytes):\n",
               "| build | libredipc.so stripped | unstripped | hiredis stripped | ÷ hiredis | built |",
               "|---|---|---|---|---|---|"]
        h = fp.get("hiredis") or {}
        hb = h.get("stripped_bytes", h.get("bytes"))
        for e in fp["libs"]:
            if "stripped_bytes" not in e:
                out.append(f"| {e['title']} | – | {mb(e.get('bytes'))} | {mb(hb)} | – | {e.get('why', 'not stripped')} |")
                continue
            sb = e["stripped_bytes"]
            built = "in this run" if e["fresh"] else f"before this run ({e['built_at'][:16].replace('T', ' ')} UTC)"
            if e.get("tls") != e["tls_wanted"]:
                built += f"; **{'with' if e['tls'] else 'without'} TLS**"
            times = f"{sb / hb:.0f}×" if hb else "–"
            out.append(f"| {e['title']} | {mb(sb)} ({sb:,} B) | {mb(e['bytes'])} | {mb(hb)} | {times} | {built} |")
        if h:
            out.append(f"\nhiredis: `{h['path']}`, {h['bytes']:,} B as installed.")
        for e in fp["libs"]:
            lay = e.get("layout")
            if lay:
                out.append(f"\nCode layout of the {e['build']} build (`ffi/link-order.ld`, docs/SIZE.md \"Idle memory\"): "
                           f"{lay['found']} of the {lay['traced']} functions traced for an idle client found by their exact "
                           f"names{'' if lay['found'] >= 0.9 * lay['traced'] else ' (stale for this build: `scripts/link-order` remakes the file)'}"
                           f"; the laid-out section is {lay['section_bytes'] / MB:.2f} MB.")
        idle = fp["idle"]
        out += ["", f"Idle with one subscription (unix socket unless said; {idle['window_s']:g} s window starting "
                    f"{idle['settle_s']:g} s after the subscription; whole process, every thread):\n",
                "| client | VmRSS | anon / file | threads | voluntary switches | wake-ups/s | library |",
                "|---|---|---|---|---|---|---|"]
        for r in idle["runs"]:
            if "rss_kb" not in r:
                out.append(f"| {r['title']} | – | – | – | – | – | not measured: {r.get('why', '')} |")
                continue
            af = (f"{r['rss_anon_kb'] * 1024 / MB:.2f} / {r['rss_file_kb'] * 1024 / MB:.2f} MB"
                  if r.get("rss_anon_kb") is not None and r.get("rss_file_kb") is not None else "–")
            threads = str(r["threads"])
            if r.get("threads_ended") or r.get("threads_born"):
                threads = f"{r['threads_start']} → {r['threads']}"
                ended = r.get("threads_ended", 0)
                if ended:
                    threads += (f" ({', '.join(r.get('ended_names') or [])} ended in the window: "
                                f"{'a wake-up' if ended == 1 else 'a wake-up each'})")
            out.append(f"| {r['title']} | {r['rss_kb'] * 1024 / MB:.2f} MB | {af} | {threads} | {r['switches']} "
                       f"in {r['window_s']:.1f} s | {r['wakeups_per_s']:.2f} | {shorten(r.get('lib'))} |")
        out.append("\nVmRSS at the end of the window; anon: the process's own memory (heap, stacks), "
                   "file: the pages of its libraries (libc, libredipc or libhiredis) it maps, shared and clean."
                   + (" libredipc and libhiredis were loaded from storage: their page cache was dropped first "
                      "(the kernel maps cached files in whole blocks, larger for a file just written)."
                      if idle.get("cold") else ""))
        if idle.get("lib_note"):
            out.append(f"\n{idle['lib_note']}.")
        if idle["window_s"] and idle["window_s"] < 9:
            out.append(f"\nA {idle['window_s']:g} s window sees at most a couple of the default health checks "
                       "(every 3 s, two wake-ups each): the rate with default options is coarse; `bench/run` "
                       "(full) measures 10 s.")
        out += ["", "### Targets (issue 18)\n", "| target | measured | status |", "|---|---|---|"]
        for c in fp["targets"]:
            status = c["status"] if c["status"] != "not measured" else f"not measured: {c.get('why', '')}"
            out.append(f"| {c['target']} | {c.get('shown', '–')} | {status} |")
        missed = sum(1 for c in fp["targets"] if c["status"] == "MISSED")
        met = sum(1 for c in fp["targets"] if c["status"] == "met")
        out.append(f"\n{met} met, {missed} missed, {len(fp['targets']) - met - missed} not measured.")
        return "\n".join(out)

    # -- summary --------------------------------------------------------------------------

    def summarize(self) -> dict:
        by: dict[tuple[str, str], list[dict]] = {}
        for run in self.runs:
            by.setdefault((run["impl"], run["label"]), []).append(run)
        summary = {}
        for (impl, label), rs in by.items():
            rates = [r["ops_per_s"] for r in rs]
            med = statistics.median(rates)
            s = dict(impl=impl, label=label, runs=len(rs), ops_per_s=med, min=min(rates), max=max(rates),
                     spread_pct=(max(rates) - min(rates)) / med * 100 if med else 0.0)
            cpus = [r["cpu_us_per_op"] for r in rs if "cpu_us_per_op" in r]
            if cpus:
                s["cpu_us_per_op"] = statistics.median(cpus)
            for k in ("p50_us", "p99_us"):
                v = [r[k] for r in rs if k in r]
                if v:
                    s[k] = statistics.median(v)
            notes = sorted({r["note"] for r in rs if r.get("note")})
            if notes:
                s["notes"] = notes
            summary[f"{impl}|{label}"] = s
        self.summary = summary
        # ratios redipc / peer
        ratios: list[dict] = []
        for label in WORKLOADS:
            for me, peers in (("redipc-c", ["hiredis", "redis-benchmark"]), ("redipc-py", ["redis-py", "glide-sync"])):
                m = summary.get(f"{me}|{label}")
                for peer in peers:
                    p = summary.get(f"{peer}|{label}")
                    if m and p and p["ops_per_s"]:
                        ratios.append(dict(label=label, impl=me, peer=peer, ratio=m["ops_per_s"] / p["ops_per_s"],
                                           cpu_ratio=(p["cpu_us_per_op"] / m["cpu_us_per_op"])
                                           if m.get("cpu_us_per_op") and p.get("cpu_us_per_op") else None))
        self.ratios = ratios
        if not self.do_throughput:
            self.checks = []
            return summary
        # targets
        checks: list[dict] = []
        for lang, labels, peer, want, text in TARGETS:
            me = "redipc-c" if lang == "c" else "redipc-py"
            for label in labels:
                r: dict | None = next((x for x in ratios if x["label"] == label and x["impl"] == me and x["peer"] == peer), None)
                if r is None:
                    why = self.skips.get((me, label)) or self.skips.get((peer, label)) or "not measured"
                    if me not in self.impls:
                        why = f"{me} not available"
                    elif peer not in self.impls:
                        why = f"{peer} not available"
                    checks.append(dict(target=text, label=label, peer=peer, want=want, ratio=None, status="not measured", why=why))
                else:
                    checks.append(dict(target=text, label=label, peer=peer, want=want, ratio=r["ratio"],
                                       status="met" if r["ratio"] >= want else "MISSED"))
        for me in ("redipc-c", "redipc-py"):
            rpc, get = summary.get(f"{me}|rpc"), summary.get(f"{me}|rtt_get")
            text = f"RPC round trip p50 <= {RPC_TARGET:g}x GET round trip ({'C' if me == 'redipc-c' else 'Python'})"
            if rpc and get and "p50_us" in rpc and "p50_us" in get:
                ratio = rpc["p50_us"] / get["p50_us"]
                checks.append(dict(target=text, label="rpc", peer="rtt_get", want=RPC_TARGET, ratio=ratio,
                                   status="met" if ratio <= RPC_TARGET else "MISSED", lower_is_better=True))
            else:
                why = self.skips.get((me, "rpc"), "not measured")
                checks.append(dict(target=text, label="rpc", peer="rtt_get", want=RPC_TARGET, ratio=None,
                                   status="not measured", why=why))
        self.checks = checks
        return summary

    # -- output ---------------------------------------------------------------------------

    def fmt_rate(self, impl: str, label: str) -> str:
        s = self.summary.get(f"{impl}|{label}")
        if not s:
            return "skipped" if (impl, label) in self.skips else "–"
        return f"{human(s['ops_per_s'])} ±{s['spread_pct'] / 2:.0f}%"

    def fmt_cpu(self, impl: str, label: str) -> str:
        s = self.summary.get(f"{impl}|{label}")
        return f"{s['cpu_us_per_op']:.2f}" if s and "cpu_us_per_op" in s else "–"

    def ratio(self, me: str, peer: str, label: str) -> str:
        r = next((x for x in self.ratios if x["label"] == label and x["impl"] == me and x["peer"] == peer), None)
        if not r:
            return "–"
        mark = ""
        for lang, labels, tpeer, want, _ in TARGETS:
            if LANG[me] == lang and tpeer == peer and label in labels:
                mark = " ✓" if r["ratio"] >= want else f" ✗(<{want:g})"
        return f"{r['ratio']:.2f}{mark}"

    def tables(self) -> str:
        out = []
        c_labels = [l for l in WORKLOADS if l != "rpc"]
        out.append("### C: redipc (libredipc) vs hiredis\n")
        out.append("| workload | unit | redipc-c | hiredis | redis-benchmark | redipc ÷ hiredis | CPU µs/op redipc | CPU µs/op hiredis |")
        out.append("|---|---|---|---|---|---|---|---|")
        for l in c_labels:
            w = WORKLOADS[l]
            out.append(f"| {w['title']} | {w['unit']} | {self.fmt_rate('redipc-c', l)} | {self.fmt_rate('hiredis', l)} | "
                       f"{self.fmt_rate('redis-benchmark', l)} | {self.ratio('redipc-c', 'hiredis', l)} | "
                       f"{self.fmt_cpu('redipc-c', l)} | {self.fmt_cpu('hiredis', l)} |")
        out.append("\n### Python: redipc vs redis-py (+hiredis parser) vs valkey-glide-sync\n")
        out.append("| workload | unit | redipc-py | redis-py | glide-sync | ÷ redis-py | ÷ glide | CPU µs/op redipc | redis-py | glide |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for l in c_labels:
            w = WORKLOADS[l]
            out.append(f"| {w['title']} | {w['unit']} | {self.fmt_rate('redipc-py', l)} | {self.fmt_rate('redis-py', l)} | "
                       f"{self.fmt_rate('glide-sync', l)} | {self.ratio('redipc-py', 'redis-py', l)} | "
                       f"{self.ratio('redipc-py', 'glide-sync', l)} | {self.fmt_cpu('redipc-py', l)} | "
                       f"{self.fmt_cpu('redis-py', l)} | {self.fmt_cpu('glide-sync', l)} |")
        out.append("\n### Round trips (unix socket; µs; the hiredis RPC is hand-rolled: LPUSH, BRPOP, PUBLISH)\n")
        out.append("| | GET p50 | GET p99 | RPC p50 | RPC p99 | RPC p50 ÷ GET p50 |")
        out.append("|---|---|---|---|---|---|")
        for me in ("redipc-c", "redipc-py", "hiredis", "redis-py", "glide-sync"):
            g, r = self.summary.get(f"{me}|rtt_get"), self.summary.get(f"{me}|rpc")
            if not g and not r:
                continue
            f = lambda s, k: f"{s[k]:.1f}" if s and k in s else ("skipped" if me.startswith("redipc") and k.startswith("p") and s is None else "–")
            ratio = f"{r['p50_us'] / g['p50_us']:.2f}" if g and r and "p50_us" in r and "p50_us" in g else "–"
            if not r and me.startswith("redipc"):
                why = self.skips.get((me, "rpc"))
                rp50 = rp99 = "skipped" if why else "–"
            else:
                rp50, rp99 = f(r, "p50_us"), f(r, "p99_us")
            out.append(f"| {me} | {f(g, 'p50_us')} | {f(g, 'p99_us')} | {rp50} | {rp99} | {ratio} |")
        out.append("\nRates are medians over the repetitions, ± half the spread (max−min) in % of the median; "
                   "CPU µs/op is user+sys time of the client process per operation (median).")
        return "\n".join(out)

    def targets_text(self) -> str:
        out = ["### Targets (issue 6)\n", "| target | workload | ratio | status |", "|---|---|---|---|"]
        for c in self.checks:
            ratio = f"{c['ratio']:.2f}" if c["ratio"] is not None else "–"
            status = c["status"] if c["status"] != "not measured" else f"not measured: {c.get('why', '')}"
            out.append(f"| {c['target']} | {c['label']} | {ratio} | {status} |")
        missed = [c for c in self.checks if c["status"] == "MISSED"]
        out.append("")
        if missed:
            out.append(f"**MISSED: {len(missed)} of {len(self.checks)} target checks** "
                       f"({sum(1 for c in self.checks if c['status'] == 'met')} met, "
                       f"{sum(1 for c in self.checks if c['status'] == 'not measured')} not measured).")
        else:
            out.append("No target missed among those measured.")
        return "\n".join(out)

    def skipped_text(self) -> str:
        out = []
        for (impl, label), why in sorted(self.skips.items()):
            out.append(f"- {impl} {label}: {why}")
        for n in self.notes:
            out.append(f"- {n}")
        for e in self.errors:
            out.append(f"- ERROR {e}")
        return "\n".join(out)

    def write(self, meta: dict | None = None) -> None:
        outdir = Path(self.a.out)
        outdir.mkdir(parents=True, exist_ok=True)
        prefix = self.a.name
        meta = meta or dict(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            mode=self.mode, repetitions=self.reps, elapsed_s=round(self.elapsed, 1),
            host=platform.node(), cpu=cpu_model(), cpus=os.cpu_count(), kernel=platform.release(),
            redis=self.a.redis_version, git=git_rev(), pinned=bool(self.pin_client),
            loadavg=os.getloadavg(), impls=self.impls, versions=versions(self.a.python),
            only=self.a.only or None,
        )
        doc = dict(meta=meta, workloads=WORKLOADS, summary=list(self.summary.values()), ratios=self.ratios,
                   targets=self.checks, skipped=[dict(impl=i, label=l, why=w) for (i, l), w in sorted(self.skips.items())],
                   notes=self.notes, errors=self.errors, runs=self.runs, footprint=self.footprint)
        (outdir / f"{prefix}.json").write_text(json.dumps(doc, indent=1) + "\n")
        cmd = "bench/run" + ("" if self.mode == "full" else " --" + self.mode) + (f" --only {meta['only']}" if meta.get("only") else "")
        md = [f"Run of {meta['date']}: `{cmd}`, "
              f"{f'{self.reps} repetitions, ' if self.do_throughput else ''}{meta['cpus']} CPUs ({meta['cpu']}), Redis {meta['redis']}, "
              f"git {meta['git']}, load average at the end {meta['loadavg'][0]:.2f}.\n"]
        if self.do_throughput:
            md += [self.tables(), "", self.targets_text()]
        if self.footprint:
            md += ([""] if self.do_throughput else []) + [self.footprint_text()]
        sk = self.skipped_text()
        if sk:
            md += ["", "### Skipped, notes and errors\n", sk]
        (outdir / f"{prefix}.md").write_text("\n".join(md) + "\n")
        if self.do_throughput:
            self.chart(outdir / f"{prefix}.png", meta)
            log(f"wrote {outdir / (prefix + '.json')}, .md, .png")
        else:
            log(f"wrote {outdir / (prefix + '.json')}, .md")

    def chart(self, path: Path, meta: dict) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            import matplotlib.ticker
        except Exception as e:  # noqa: BLE001
            self.notes.append(f"matplotlib is not installed: no chart ({e})")
            log("matplotlib is not installed: no chart")
            return
        pairs = [("redipc-c", "hiredis", "C: redipc ÷ hiredis"), ("redipc-py", "redis-py", "Python: redipc ÷ redis-py"),
                 ("redipc-py", "glide-sync", "Python: redipc ÷ glide-sync")]
        labels = [l for l in WORKLOADS if any(r["label"] == l for r in self.ratios if r["peer"] != "redis-benchmark")]
        if not labels:
            return
        fig, ax = plt.subplots(figsize=(12, 0.45 * len(labels) * 3 / 2 + 2))
        height = 0.27
        colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
        ys = list(range(len(labels)))
        for k, (me, peer, name) in enumerate(pairs):
            vals, pos = [], []
            for i, l in enumerate(labels):
                r = next((x for x in self.ratios if x["label"] == l and x["impl"] == me and x["peer"] == peer), None)
                if r:
                    vals.append(r["ratio"])
                    pos.append(i + (k - 1) * height)
            bars = ax.barh(pos, vals, height=height, color=colors[k], label=name)
            for b, v in zip(bars, vals):
                want = next((t[3] for t in TARGETS if t[0] == LANG[me] and t[2] == peer
                             and labels[round(b.get_y() + height / 2 - (k - 1) * height)] in t[1]), 0)
                ax.text(max(v, want) * 1.04, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=7)
        # target marks
        for lang, tl, peer, want, _ in TARGETS:
            k = 0 if lang == "c" else (1 if peer == "redis-py" else 2)
            for l in tl:
                if l in labels:
                    i = labels.index(l)
                    y = i + (k - 1) * height
                    ax.plot([want, want], [y - height / 2, y + height / 2], color="red", lw=2)
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_yticks(ys)
        ax.set_yticklabels([WORKLOADS[l]["title"] for l in labels], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("throughput ratio redipc ÷ peer, log scale (higher is better; red tick: target of issue 6)")
        ax.set_title(f"redipc vs peers — medians of {self.reps} runs, {meta['cpus']} CPUs, "
                     f"Redis {meta['redis']}, {meta['date'][:10]} ({self.mode})", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def mb(n: float | None) -> str:
    return "–" if n is None else f"{n / MB:.2f} MB"


def shorten(path: str | None) -> str:
    if not path:
        return "–"
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def elf_soname(lib: Path) -> str | None:
    r = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True)
    m = re.search(r"Library soname: \[(.*?)\]", r.stdout)
    return m.group(1) if m else None


def host_triple() -> str:
    """The host's target triple (rustc's), where a -Zbuild-std build puts its profile."""
    try:
        out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"^host: (\S+)", out, re.M)
    return m.group(1) if m else "unknown"


def layout_match(lib: Path, build: str) -> dict | None:
    """How much of ffi/link-order.ld's idle phase the (unstripped) library `lib` matches by
    exact name (the names traced on the build `build`, scripts/link-order): the file's names
    go stale when a dependency or the toolchain changes."""
    order = ROOT / "ffi" / "link-order.ld"
    if not order.exists():
        return None
    # the exact names traced on this build for an idle client: the block after its comment
    m = re.search(r"/\* idle: " + re.escape(build) + r" \*/\n(.*?)\n\s*/\*", order.read_text(), re.S)
    if not m:
        return None
    idle = re.findall(r"\*\(\.text\.(\S+) ", m.group(1))
    r = subprocess.run(["nm", "--defined-only", str(lib)], capture_output=True, text=True)
    have = {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}
    rs = subprocess.run(["readelf", "-SW", str(lib)], capture_output=True, text=True)
    m = re.search(r"\.text\.redipc_ordered\s+\S+\s+\S+\s+\S+\s+([0-9a-f]+)", rs.stdout)
    found = sum(1 for n in idle if n in have)
    return dict(traced=len(idle), found=found, section_bytes=int(m.group(1), 16) if m else 0)


def evict_page_cache(paths: list) -> None:
    """Drop the page cache of each file (clean after fsync), so the next process to map it
    reads it in from storage."""
    for path in paths:
        if not path:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def find_hiredis() -> Path | None:
    """The installed libhiredis.so.VERSION (what the linker gives a program: ldconfig's
    cache, else pkg-config's libdir)."""
    try:
        r = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(libhiredis\.so\.\S+) .*=> (\S+)", line)
            if m and (platform.machine() != "x86_64" or "x86-64" in line):
                return Path(os.path.realpath(m.group(2)))
    except OSError:
        pass
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "hiredis"], capture_output=True, text=True)
        libdir = r.stdout.strip()
    except OSError:
        libdir = ""
    if libdir:
        for cand in sorted(Path(libdir).glob("libhiredis.so*")):
            return Path(os.path.realpath(cand))
    return None


def proc_snapshot(pid: int) -> dict | None:
    """VmRSS (kB) and friends of process `pid`, its thread count, the voluntary and
    involuntary context switches summed over all its threads, and the libredipc it maps."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    snap: dict = {}
    for line in status.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            snap[k] = int(v.split()[0])
    if "VmRSS" not in snap:
        return None
    tasks = task_switches(pid)
    if tasks is None:
        return None
    snap["tasks"] = tasks
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and ("libredipc.so" in parts[5] or "libhiredis.so" in parts[5]):
                snap["lib"] = parts[5].strip()
                break
    except OSError:
        pass
    return snap


def task_switches(pid: int) -> dict[str, tuple[int, int, str]] | None:
    """Thread id -> (voluntary, involuntary context switches, name), for every thread of `pid`."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out = {}
    for tid in tids:
        try:
            st = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue  # a thread that just ended
        vol = nonvol = 0
        name = ""
        for line in st.splitlines():
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("voluntary_ctxt_switches:"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                nonvol = int(line.split()[1])
        out[tid] = (vol, nonvol, name)
    return out


class SwitchCounter:
    """Context switches of a process's threads over a window, sampled (every 0.1 s) so that a
    thread ending inside the window keeps what it had: its count up to the last sample, plus
    one for the wake-up that ended it (/proc forgets a thread once it is gone). Threads born in
    the window count from 0."""

    def __init__(self, first: dict[str, tuple[int, int, str]]) -> None:
        self.first = dict(first)
        self.last = dict(first)

    def sample(self, tasks: dict[str, tuple[int, int, str]] | None) -> None:
        if tasks:
            self.last.update(tasks)

    def result(self, final: dict[str, tuple[int, int, str]]) -> dict:
        self.sample(final)
        ended = [t for t in self.last if t not in final]
        born = [t for t in final if t not in self.first]
        zero = (0, 0, "")
        vol = sum(v - self.first.get(t, zero)[0] for t, (v, _, _) in self.last.items()) + len(ended)
        nonvol = sum(n - self.first.get(t, zero)[1] for t, (_, n, _) in self.last.items())
        per_thread = {f"{t} {name}": v - self.first.get(t, zero)[0] + (t in ended)
                      for t, (v, _, name) in self.last.items()}
        return dict(switches=vol, involuntary=nonvol, threads_start=len(self.first), threads=len(final),
                    threads_ended=len(ended), threads_born=len(born),
                    ended_names=[self.last[t][2] for t in ended], born_names=[final[t][2] for t in born],
                    per_thread={k: v for k, v in per_thread.items() if v})


def read_line(p: subprocess.Popen, timeout: float) -> str:
    """One line of `p`'s stdout, or "" at its end or after `timeout` seconds."""
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    return p.stdout.readline() if ready else ""


def rotate(xs: list[str], k: int) -> list[str]:
    if not xs:
        return xs
    k %= len(xs)
    return xs[k:] + xs[:k]


def human(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_rev() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def versions(python: str) -> dict:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        "for p in ('redipc', 'redis', 'hiredis', 'valkey-glide-sync'):\n"
        "    try: out[p] = m.version(p)\n"
        "    except Exception: pass\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run([python, "-c", code], capture_output=True, text=True)
    try:
        v = json.loads(r.stdout)
    except ValueError:
        v = {}
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libhiredis-dev"], capture_output=True, text=True)
    if r.returncode == 0:
        v["libhiredis-dev"] = r.stdout.strip()
    return v


def replot(a: argparse.Namespace) -> int:
    doc = json.loads(Path(a.from_json).read_text())
    meta = doc["meta"]
    h = Harness.__new__(Harness)
    h.a, h.mode, h.reps = a, meta["mode"], meta["repetitions"]
    h.runs, h.notes, h.errors = doc["runs"], doc["notes"], doc["errors"]
    h.skips = {(s["impl"], s["label"]): s["why"] for s in doc["skipped"]}
    h.impls, h.pin_client, h.elapsed = meta["impls"], meta["pinned"], meta["elapsed_s"]
    h.do_throughput = meta.get("only") != "footprint"
    h.footprint = doc.get("footprint")
    h.summarize()
    h.write(meta)
    if h.do_throughput:
        print(h.tables())
        print()
        print(h.targets_text())
    if h.footprint:
        print()
        print(h.footprint_text())
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=sorted(COUNTS), default="full")
    p.add_argument("--reps", type=int, default=0, help="repetitions (default: by mode)")
    p.add_argument("--build", help="directory of the C bench programs")
    p.add_argument("--sock")
    p.add_argument("--port", type=int)
    p.add_argument("--from-json", metavar="FILE",
                   help="run nothing: remake the table, Markdown and chart from the raw runs of FILE")
    p.add_argument("--python", default=sys.executable, help="interpreter with redipc, redis, glide_sync")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--name", default="latest", help="file name of the results, without extension")
    p.add_argument("--impls", default="", help="comma-separated subset of implementations")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--no-pin", action="store_true", help="do not pin server and client to different cores")
    p.add_argument("--redis-version", default="?")
    p.add_argument("--note", action="append", default=[], help="a note for the report (repeatable)")
    p.add_argument("--only", choices=["footprint", "throughput"], default="",
                   help="run only the footprint section (issue 18) or only the throughput workloads")
    p.add_argument("--footprint-built", action="append", default=[], metavar="PROFILE",
                   help="target/PROFILE/libredipc.so was built by this run (repeatable; bench/run says so)")
    p.add_argument("--idle-window", type=float, default=0.0,
                   help="seconds of the idle footprint window (default: full 10, quick 3, smoke 1)")
    a = p.parse_args()
    if a.from_json:
        return replot(a)
    if not (a.build and a.sock and a.port):
        p.error("--build, --sock and --port are needed (or --from-json)")
    h = Harness(a)
    if h.do_throughput:
        log(f"implementations: {', '.join(h.impls)}; mode {a.mode}, {h.reps} repetitions; "
            f"pinning {'server→cpu0, clients→cpu1' if h.pin_client else 'off'}")
    t_start = time.monotonic()
    if h.do_footprint:
        h.run_footprint()
    if h.do_throughput:
        h.schedule()
    h.elapsed = time.monotonic() - t_start
    h.summarize()
    h.write()
    if h.do_throughput:
        print()
        print(h.tables())
        print()
        print(h.targets_text())
    if h.footprint:
        print()
        print(h.footprint_text())
    sk = h.skipped_text()
    if sk:
        print("\n### Skipped, notes and errors\n")
        print(sk)
    return 1 if h.errors else 0


if __name__ == "__main__":
    sys.exit(main())
