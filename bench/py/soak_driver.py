"""The driver of bench/soak: a bounded soak of every pattern at once, with faults.

Started by bench/soak (which builds what it needs), stdlib only; it never imports redipc
(what it checks must not depend on the library under test: it reads Redis with redis-cli).

It starts a private redis-server (a free port outside the ephemeral range and a unix socket
in the run directory, never 6379; AOF with appendfsync always, so everything the server
acknowledged survives a restart or a crash), four client processes (C and Python "mains"
that produce and serve, C and Python "victims" that only serve), injects a fault every
--fault-every seconds in rotation (CLIENT KILL of every client connection; a server restart,
alternately SIGTERM and SIGKILL, same port, socket and data; a SIGKILL of a victim, which is
started again), samples each client's RSS, threads, fds and CPU from /proc, then stops the
producers, lets the consumers drain, stops everything and checks the ledgers the clients
wrote against what Redis holds. See docs/RELIABILITY.md, "Soak".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict

QUEUE_BASE = "ipc:{q:soak-q}"
RPC_PENDING = "ipc:{rpc:soak-rpc}:pending"
STREAM = "soak-s"
GROUP = "soak-g"
ID_RE = re.compile(rb"[A-Za-z0-9-]+:[qx]:[0-9]+")

# Leak judgement (mains only; they live through the whole run).
RSS_SLOPE_KIB_PER_MIN = 128.0  # a slope above this ...
RSS_GROWTH_KIB = 2048.0  # ... that also adds up to this much over the window is a leak
MIN_JUDGED_WINDOW_S = 150.0  # shorter windows are reported, not judged
THREAD_TOLERANCE = 2
FD_TOLERANCE = 4
HANG_SLACK_MS = 10000  # a call this far past its own bound is a hang
LATE_SLACK_MS = 1000  # ... this far past it, late (a warning)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    """A free TCP port below the ephemeral range, so that no client's outgoing connection
    takes it while the server is down between a stop and its restart."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


# --- the server ----------------------------------------------------------------------------------


class Redis:
    def __init__(self, d: str) -> None:
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.sock = os.path.join(d, "redis.sock")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def unix_url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def tcp_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", self.dir,
            "--logfile", "redis.log", "--daemonize", "no", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always",
        ]
        for attempt in range(20):
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if os.path.exists(self.sock) and self.cli("PING") == ["PONG"]:
                    self.starts += 1
                    return
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            time.sleep(0.25 * (attempt + 1))  # the port may still be held for a moment
        raise RuntimeError(f"redis-server does not start (see {self.dir}/redis.log)")

    def stop(self, sig: int) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cli(self, *args: str) -> list[str]:
        try:
            r = subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            return ["(timeout)"]
        return r.stdout.decode(errors="replace").splitlines()

    def cli_raw(self, *args: str) -> bytes:
        r = subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True, timeout=15)
        return r.stdout

    def int(self, *args: str) -> int:
        out = self.cli(*args)
        try:
            return int(out[0])
        except (IndexError, ValueError):
            return -1

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


# --- the clients -------------------------------------------------------------------------------


class Client:
    """One client program (C or Python, main or victim) and its incarnations."""

    def __init__(self, name: str, lang: str, role: str, url: str, cfg: argparse.Namespace, peers: str):
        self.name, self.lang, self.role, self.url, self.cfg, self.peers = name, lang, role, url, cfg, peers
        self.incarnations: list[dict] = []
        self.proc: subprocess.Popen | None = None
        self.killed_by_us = False

    def start(self) -> None:
        n = len(self.incarnations)
        ledger = os.path.join(self.cfg.run, "ledger", f"{self.name}.{n}.log")
        out = os.path.join(self.cfg.run, "logs", f"{self.name}.{n}.out")
        args = ["--role", self.role, "--name", self.name, "--url", self.url, "--ledger", ledger,
                "--peers", self.peers, "--scale", str(self.cfg.scale)]
        if self.lang == "c":
            cmd = [self.cfg.c_client, *args]
            if self.name == "c-main" and self.cfg.wrap_c_main:
                cmd = [*shlex.split(self.cfg.wrap_c_main), *cmd]
        else:
            cmd = [self.cfg.python, self.cfg.py_client, *args]
        env = dict(os.environ)
        if self.cfg.pythonpath:
            env["PYTHONPATH"] = self.cfg.pythonpath
        with open(out, "ab") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        self.killed_by_us = False
        self.incarnations.append({
            "pid": self.proc.pid, "ledger": ledger, "out": out, "started": time.monotonic(),
            "ended": None, "exit": None, "samples": [], "how": None,
        })

    @property
    def current(self) -> dict:
        return self.incarnations[-1]

    def ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ledger_has(self.current["ledger"], "READY") or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return ledger_has(self.current["ledger"], "READY")

    def ended(self, how: str) -> None:
        self.current["ended"] = time.monotonic()
        self.current["exit"] = self.proc.returncode
        self.current["how"] = how

    def kill9(self) -> None:
        self.killed_by_us = True
        self.proc.kill()
        self.proc.wait()
        self.ended("SIGKILL (fault)")

    def sample(self, t: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        s = proc_sample(self.proc.pid)
        if s:
            s["t"] = t
            self.current["samples"].append(s)


def ledger_has(path: str, word: str) -> bool:
    try:
        with open(path, "rb") as f:
            return any(line.split(b" ", 1)[0].strip() == word.encode() for line in f)
    except OSError:
        return False


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    names: Counter = Counter()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    names[f.read().strip()] += 1
            except OSError:
                pass  # a thread that just ended
    except OSError:
        pass
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    anon = re.search(r"RssAnon:\s+(\d+)", status)
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fields = stat[stat.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return {"rss_kib": rss, "anon_kib": int(anon.group(1)) if anon else rss, "threads": threads, "fds": fds,
            "cpu_s": cpu, "names": dict(names)}


# --- statistics --------------------------------------------------------------------------------


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), in value per minute."""
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx * 60.0


def resource_report(inc: dict, t0: float, warmup: float, judged: bool, load_end: float) -> dict:
    """Judged on the samples of the load phase after the warm-up (the producers' threads end
    with the load phase, so the samples after it are reported apart)."""
    all_samples = inc["samples"]
    if not all_samples:
        return {"samples": 0}
    samples = [s for s in all_samples if s["t"] <= load_end] or all_samples
    after = [s for s in samples if s["t"] - t0 >= warmup] or samples
    window = after[-1]["t"] - after[0]["t"]
    rss_slope = slope_per_min([(s["t"], s["rss_kib"]) for s in after])
    half = len(after) // 2
    first, second = after[: max(half, 1)], after[max(half, 1):] or after[-1:]
    # A leak keeps its pace; the growth of a warming heap (allocator arenas, code pages
    # first used late) slows down: the slope of the second half tells them apart.
    late_slope = slope_per_min([(s["t"], s["rss_kib"]) for s in second])
    names_max: Counter = Counter()
    for s in samples:
        for k, v in s.get("names", {}).items():
            names_max[k] = max(names_max[k], v)
    r = {
        "samples": len(samples),
        "window_s": round(window, 1),
        "rss_kib_first": samples[0]["rss_kib"],
        "rss_kib_at_warmup": after[0]["rss_kib"],
        "rss_kib_last": samples[-1]["rss_kib"],
        "rss_kib_max": max(s["rss_kib"] for s in samples),
        "rss_slope_kib_per_min": round(rss_slope, 1),
        "rss_slope_second_half_kib_per_min": round(late_slope, 1),
        "anon_slope_kib_per_min": round(slope_per_min([(s["t"], s["anon_kib"]) for s in after]), 1),
        "anon_kib_at_warmup": after[0]["anon_kib"],
        "anon_kib_last": samples[-1]["anon_kib"],
        "thread_names_start": samples[0].get("names", {}),
        "thread_names_end": samples[-1].get("names", {}),
        "thread_names_max": dict(names_max),
        "threads_start": samples[0]["threads"],
        "threads_end": samples[-1]["threads"],
        "fds_start": samples[0]["fds"],
        "fds_end": samples[-1]["fds"],
        "threads_after_drain": all_samples[-1]["threads"],
        "fds_after_drain": all_samples[-1]["fds"],
        "rss_kib_after_drain": all_samples[-1]["rss_kib"],
        "threads_first_half_max": max(s["threads"] for s in first),
        "threads_second_half_max": max(s["threads"] for s in second),
        "threads_min": min(s["threads"] for s in after),
        "fds_first_half_max": max(s["fds"] for s in first),
        "fds_second_half_max": max(s["fds"] for s in second),
        "fds_min": min(s["fds"] for s in after),
        "cpu_s": round(samples[-1]["cpu_s"], 1),
        "cpu_pct": round(100 * samples[-1]["cpu_s"] / max(samples[-1]["t"] - inc["started"], 1e-9), 1),
    }
    problems = []
    if judged and window >= MIN_JUDGED_WINDOW_S:
        growth = rss_slope * window / 60.0
        if rss_slope > RSS_SLOPE_KIB_PER_MIN and growth > RSS_GROWTH_KIB and late_slope > RSS_SLOPE_KIB_PER_MIN:
            problems.append(f"RSS grows {rss_slope:.0f} KiB/min after warm-up ({growth:.0f} KiB over {window:.0f} s; "
                            f"{late_slope:.0f} KiB/min over the second half)")
        if r["threads_second_half_max"] > r["threads_first_half_max"] + THREAD_TOLERANCE:
            problems.append(f"threads grow: max {r['threads_first_half_max']} -> {r['threads_second_half_max']}")
        if r["fds_second_half_max"] > r["fds_first_half_max"] + FD_TOLERANCE:
            problems.append(f"fds grow: max {r['fds_first_half_max']} -> {r['fds_second_half_max']}")
        r["judged"] = True
    else:
        r["judged"] = False
    r["problems"] = problems
    return r


# --- the run -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run directory (ledgers, logs, server data)")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load with faults")
    ap.add_argument("--fault-every", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=None, help="seconds excluded from the slopes")
    ap.add_argument("--sample-every", type=float, default=None)
    ap.add_argument("--drain-timeout", type=float, default=45.0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every producer's rate")
    ap.add_argument("--c-client", required=True)
    ap.add_argument("--py-client", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--pythonpath", default="")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--label", default="")
    ap.add_argument("--wrap-c-main", default="",
                    help="run c-main under this command (e.g. valgrind --tool=massif ...); its RSS is not judged")
    cfg = ap.parse_args()
    if cfg.warmup is None:
        cfg.warmup = min(120.0, max(15.0, cfg.duration * 0.2))
    if cfg.sample_every is None:
        cfg.sample_every = 2.0 if cfg.duration <= 120 else 5.0
    for d in ("ledger", "logs"):
        os.makedirs(os.path.join(cfg.run, d), exist_ok=True)

    redis = Redis(os.path.join(cfg.run, "redis"))
    redis.start()
    log(f"redis-server on {redis.sock} and 127.0.0.1:{redis.port} (AOF, appendfsync always)")
    peers = "c-main,py-main"
    clients = [
        Client("c-main", "c", "main", redis.unix_url, cfg, peers),
        Client("py-main", "py", "main", redis.tcp_url, cfg, peers),
        Client("c-victim", "c", "victim", redis.tcp_url, cfg, ""),
        Client("py-victim", "py", "victim", redis.unix_url, cfg, ""),
    ]
    problems: list[str] = []
    warnings: list[str] = []
    faults: list[dict] = []
    unexpected: list[str] = []

    for c in clients:
        c.start()
    for c in clients:
        if not c.ready(30):
            print(tail(c.current["out"]), file=sys.stderr)
            for o in clients:
                if o.proc and o.proc.poll() is None:
                    o.proc.kill()
            redis.stop(signal.SIGKILL)
            log(f"{c.name} did not start; see above")
            return 2
    log("clients ready: " + ", ".join(f"{c.name} (pid {c.proc.pid})" for c in clients))
    load_start = os.getloadavg()

    t0 = time.monotonic()
    cfg.wall0 = time.time()
    kinds = ["client-kill", "server-restart", "worker-kill"]
    restarts = 0
    victim_turn = 0
    next_fault = t0 + cfg.fault_every
    next_sample = t0
    redis_samples = []
    aborted = False
    while time.monotonic() - t0 < cfg.duration:
        now = time.monotonic()
        if now >= next_sample:
            for c in clients:
                c.sample(now)
            rp = redis.pid()
            if rp:
                s = proc_sample(rp)
                if s:
                    redis_samples.append({"t": now - t0, "rss_kib": s["rss_kib"]})
            next_sample += cfg.sample_every
        if now >= next_fault:
            kind = kinds[len(faults) % len(kinds)]
            f = {"t": round(now - t0, 1), "wall": time.time(), "kind": kind}
            if kind == "client-kill":
                f["killed_normal"] = redis.int("CLIENT", "KILL", "TYPE", "normal")
                f["killed_pubsub"] = redis.int("CLIENT", "KILL", "TYPE", "pubsub")
                f["detail"] = f"{f['killed_normal']} normal + {f['killed_pubsub']} pub/sub connections"
            elif kind == "server-restart":
                sig = signal.SIGTERM if restarts % 2 == 0 else signal.SIGKILL
                restarts += 1
                a = time.monotonic()
                redis.stop(sig)
                time.sleep(1.0)
                redis.start()
                f["detail"] = f"{signal.Signals(sig).name}, down {time.monotonic() - a:.1f} s"
            else:
                victims = [c for c in clients if c.role == "victim"]
                v = victims[victim_turn % len(victims)]
                victim_turn += 1
                v.kill9()
                v.start()
                ok = v.ready(30)
                f["detail"] = f"SIGKILL {v.name}, restarted ({'ready' if ok else 'NOT READY'})"
                if not ok:
                    problems.append(f"{v.name} did not come back after its kill (see {v.current['out']})")
            faults.append(f)
            log(f"fault {len(faults)} at {f['t']:.0f} s: {kind}: {f['detail']}")
            next_fault += cfg.fault_every
            if next_fault < time.monotonic():
                next_fault = time.monotonic() + cfg.fault_every
        for c in clients:
            if c.proc.poll() is not None and not c.killed_by_us:
                c.ended(f"died on its own (exit {c.proc.returncode})")
                msg = f"{c.name} died on its own (exit {c.proc.returncode}): {tail(c.current['out'], 5)}"
                unexpected.append(msg)
                problems.append(msg)
                log(msg)
                if c.role == "main":
                    aborted = True
                else:
                    c.start()
                    c.ready(30)
        if aborted:
            break
        time.sleep(0.2)
    load_end = os.getloadavg()
    cfg.load_end = time.monotonic()
    t_load = cfg.load_end - t0
    log(f"load phase over after {t_load:.0f} s ({len(faults)} faults); stopping the producers")

    # --- drain ---------------------------------------------------------------------------------
    mains = [c for c in clients if c.role == "main" and c.proc.poll() is None]
    for c in mains:
        c.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(ledger_has(c.current["ledger"], "PRODUCED") for c in mains):
        time.sleep(0.2)
    for c in mains:
        if not ledger_has(c.current["ledger"], "PRODUCED"):
            problems.append(f"{c.name}: its producers did not stop within 60 s of SIGUSR1")
    # Drained: nothing pending anywhere. Requests left in the in-flight list of a live worker
    # are not drained by anyone (their lease is kept alive): once everything else is empty
    # and they stay unchanged for three leases, waiting longer changes nothing.
    a = time.monotonic()
    drained = False
    state: dict = {}
    inflight_since = (None, -1)
    while time.monotonic() - a < cfg.drain_timeout:
        state = backlog(redis)
        if all(v == 0 for v in state.values()):
            drained = True
            break
        if all(v == 0 for k, v in state.items() if k != "queue_inflight"):
            if inflight_since[1] != state["queue_inflight"]:
                inflight_since = (time.monotonic(), state["queue_inflight"])
            elif time.monotonic() - inflight_since[0] > 3 * 3.0:
                break
        time.sleep(0.5)
    drain_s = time.monotonic() - a
    log(f"drain: {'done' if drained else 'NOT done'} after {drain_s:.1f} s: {state}")
    time.sleep(2.0)  # hash watchers: the final values were written before PRODUCED
    end_state = redis_end_state(redis)

    # --- stop ----------------------------------------------------------------------------------
    for c in clients:
        c.sample(time.monotonic())
    for c in clients:
        if c.proc.poll() is None:
            c.proc.send_signal(signal.SIGTERM)
    for c in clients:
        if c.current["ended"] is not None:
            continue
        try:
            c.proc.wait(timeout=30)
            c.ended("SIGTERM (end)")
            if c.proc.returncode != 0:
                problems.append(f"{c.name} exited with {c.proc.returncode} after SIGTERM: {tail(c.current['out'], 5)}")
        except subprocess.TimeoutExpired:
            problems.append(f"{c.name} did not exit within 30 s of SIGTERM (a hang on stop)")
            c.proc.kill()
            c.proc.wait()
            c.ended("SIGKILL after a hang on stop")
    after_stop = {
        "pending": redis.int("LLEN", f"{QUEUE_BASE}:pending"),
        "pending_ids": sorted(i.decode() for i in ID_RE.findall(redis.cli_raw("LRANGE", f"{QUEUE_BASE}:pending", "0", "-1"))),
    }
    redis.stop(signal.SIGTERM)

    # --- check ---------------------------------------------------------------------------------
    results = analyse(clients, faults, end_state, after_stop, problems, warnings, cfg, t0)
    results.update({
        "label": cfg.label,
        "duration_s": round(t_load, 1),
        "fault_every_s": cfg.fault_every,
        "warmup_s": cfg.warmup,
        "scale": cfg.scale,
        "faults": faults,
        "drain": {"done": drained, "seconds": round(drain_s, 1), "backlog": state},
        "end_state": end_state,
        "after_stop": {"pending": after_stop["pending"], "pending_ids": after_stop["pending_ids"][:50]},
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "cpus": os.cpu_count(),
        "redis_version": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip(),
        "redis_rss_kib": {"first": redis_samples[0]["rss_kib"] if redis_samples else None,
                          "last": redis_samples[-1]["rss_kib"] if redis_samples else None},
        "problems": problems,
        "warnings": warnings,
        "aborted": aborted,
    })
    text = print_summary(results)
    with open(os.path.join(cfg.run, "summary.txt"), "w") as f:
        f.write(text)
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump(results, f, indent=1)
        log(f"results: {cfg.json}")
    return 1 if problems else 0


def tail(path: str, n: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            return " | ".join(f.read().decode(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


def backlog(redis: Redis) -> dict:
    inflight = 0
    for key in redis.cli("--scan", "--pattern", f"{QUEUE_BASE}:inflight:*"):
        inflight += max(redis.int("LLEN", key), 0)
    g = xinfo_group(redis)
    return {
        "queue_pending": redis.int("LLEN", f"{QUEUE_BASE}:pending"),
        "queue_inflight": inflight,
        "stream_pending": g.get("pending", -1),
        "stream_undelivered": g["undelivered"],
        "rpc_pending": redis.int("LLEN", RPC_PENDING),
    }


def xinfo_group(redis: Redis) -> dict:
    lines = redis.cli("XINFO", "GROUPS", STREAM)
    d: dict = {}
    for k, v in zip(lines[0::2], lines[1::2]):
        d[k] = v
    out: dict = {}
    for k in ("consumers", "pending", "entries-read", "lag"):
        try:
            out[k] = int(d[k])
        except (KeyError, ValueError):
            out[k] = None
    out["last-delivered-id"] = last = d.get("last-delivered-id")
    # Entries never delivered to the group: those after its last-delivered-id. (Redis's own
    # "lag" is entries-added minus the group's entries-read counter, which drifts when the
    # server reloads its AOF: after 20 restarts it said 15723 with every entry delivered.)
    out["undelivered"] = -1 if last is None else redis.int(
        "EVAL", "return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')", "1", STREAM, last)
    return out


def redis_end_state(redis: Redis) -> dict:
    inflight = {}
    for key in redis.cli("--scan", "--pattern", f"{QUEUE_BASE}:inflight:*"):
        n = redis.int("LLEN", key)
        if n:
            raw = redis.cli_raw("LRANGE", key, "0", "-1")
            inflight[key] = {"len": n, "ids": sorted(i.decode() for i in ID_RE.findall(raw))}
    counters = {}
    for name in ("c-main", "py-main"):
        for k in ("cnt", "txa", "txb"):
            counters[f"{k}:{name}"] = redis.int("GET", f"soak:{k}:{name}")
    return {
        "queue_pending": redis.int("LLEN", f"{QUEUE_BASE}:pending"),
        "queue_inflight": inflight,
        "queue_dead": redis.int("LLEN", f"{QUEUE_BASE}:dead"),
        "stream_len": redis.int("XLEN", STREAM),
        "stream_dead": redis.int("XLEN", f"{STREAM}:dead"),
        "group": xinfo_group(redis),
        "rpc_pending": redis.int("LLEN", RPC_PENDING),
        "counters": counters,
        "fence": redis.int("GET", "soak:fence"),
        "info_clients": redis.cli("INFO", "clients")[1:3],
    }


# --- the checks --------------------------------------------------------------------------------


def analyse(clients, faults, end_state, after_stop, problems, warnings, cfg, t0) -> dict:
    q_sent: dict[str, str] = {}
    q_unc: set[str] = set()
    q_handled: Counter = Counter()
    q_handled_by: Counter = Counter()
    x_sent: dict[str, str] = {}
    x_unc: set[str] = set()
    x_handled: Counter = Counter()
    x_handled_by: Counter = Counter()
    pub_unc: dict[str, set[int]] = defaultdict(set)
    pub_last: dict[str, int] = {}
    sub: dict[str, dict] = {}
    hash_final: dict[str, int] = {}
    tokens: Counter = Counter()
    rpc_errors: dict[str, Counter] = defaultdict(Counter)
    summaries: dict[str, dict] = {}
    reports: dict[str, Counter] = defaultdict(Counter)
    stop_ms: dict[str, int] = {}
    flagged: list[str] = []  # lines that are a broken promise by themselves
    late_rpc: list[dict] = []
    wall0 = cfg.wall0

    for c in clients:
        for n, inc in enumerate(c.incarnations):
            try:
                with open(inc["ledger"], "rb") as f:
                    lines = f.read().decode(errors="replace").splitlines()
            except OSError:
                lines = []
            sub_state = sub.setdefault(c.name, {"gaps_announced": 0, "gaps_unannounced": [], "out_of_order": 0,
                                                 "disconnected": 0, "reactivated": 0, "open_disconnect": False})
            for line in lines:
                parts = line.split(" ", 2)
                if len(parts) < 2 or not parts[1].isdigit():
                    continue  # a line cut short by a SIGKILL
                tag, ts, rest = parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""
                w = [tag, *rest.split(" ")]
                if tag == "QS":
                    q_sent[w[1]] = c.name
                elif tag == "QU":
                    q_unc.add(w[1])
                elif tag == "QH":
                    q_handled[w[1]] += 1
                    q_handled_by[c.name] += 1
                elif tag == "XS":
                    x_sent[w[1]] = c.name
                elif tag == "XU":
                    x_unc.add(w[1])
                elif tag == "XH":
                    x_handled[w[1]] += 1
                    x_handled_by[c.name] += 1
                elif tag == "PU":
                    pub_unc[w[1]].add(int(w[2]))
                elif tag == "PX":
                    pub_last[w[1]] = int(w[2])
                elif tag == "PG":
                    if w[4] == "1":
                        sub_state["gaps_announced"] += 1
                    else:
                        sub_state["gaps_unannounced"].append((w[1], int(w[2]), int(w[3])))
                elif tag == "PO":
                    sub_state["out_of_order"] += 1
                    flagged.append(f"{c.name}: pub/sub message out of order or repeated: {line}")
                elif tag == "PD":
                    sub_state["disconnected"] += 1
                    sub_state["open_disconnect"] = True
                elif tag == "PR":
                    sub_state["reactivated"] += 1
                    sub_state["open_disconnect"] = False
                elif tag == "HF":
                    if w[3] == "?":
                        flagged.append(f"{c.name}: could not write the final hash value: {line}")
                    else:
                        hash_final[f"{w[1]} {w[2]}"] = int(w[3])
                elif tag == "HB":
                    flagged.append(f"{c.name}: a hash watcher went backwards: {line}")
                elif tag == "LT":
                    tokens[int(w[1])] += 1
                elif tag == "LB":
                    flagged.append(f"{c.name}: a lock token did not grow: {line}")
                elif tag == "CB":
                    flagged.append(f"{c.name}: INCR went backwards (a write was lost): {line}")
                elif tag == "TM":
                    flagged.append(f"{c.name}: a MULTI/EXEC ran half: {line}")
                elif tag == "KM":
                    flagged.append(f"{c.name}: GET after SET read another value: {line}")
                elif tag == "RW":
                    flagged.append(f"{c.name}: an RPC reply that answers another call: {line}")
                elif tag == "RE":
                    rpc_errors[c.name][w[2]] += 1
                    if int(w[3]) > 2000 + LATE_SLACK_MS:
                        late_rpc.append({"who": c.name, "call": w[1], "error": w[2], "ms": int(w[3]),
                                         "t": round(ts / 1000 - wall0, 1), "after": last_fault(faults, ts / 1000)})
                elif tag == "R":
                    reports[c.name][report_kind(rest)] += 1
                elif tag == "E":
                    flagged.append(f"{c.name}: {rest}")
                elif tag == "STOPPED":
                    stop_ms[c.name] = int(w[1])
                elif tag == "J":
                    summaries[f"{c.name}#{n}"] = json.loads(rest)
            if c.role == "main" and c.incarnations[-1] is inc and not any(l.startswith("J ") for l in lines):
                problems.append(f"{c.name}: no summary in its ledger (it did not stop cleanly)")
    problems.extend(flagged[:20])
    if len(flagged) > 20:
        problems.append(f"... and {len(flagged) - 20} more such lines")

    # Queue: every request sent (the call returned OK) was handled at least once.
    res: dict = {}
    stranded_ids = set(after_stop["pending_ids"])
    for v in end_state["queue_inflight"].values():
        stranded_ids.update(v["ids"])
    q_missing = [i for i in q_sent if q_handled[i] == 0]
    q_stranded = [i for i in q_missing if i in stranded_ids]
    q_lost = [i for i in q_missing if i not in stranded_ids]
    q_bogus = [i for i in q_handled if i not in q_sent and i not in q_unc]
    res["queue"] = {
        "sent": len(q_sent), "uncertain": len(q_unc),
        "uncertain_handled": sum(1 for i in q_unc if q_handled[i]),
        "handled_unique": sum(1 for i in q_sent if q_handled[i]),
        "handled_total": sum(q_handled.values()),
        "duplicates": sum(n - 1 for n in q_handled.values() if n > 1),
        "handled_by": dict(q_handled_by),
        "not_handled": len(q_missing), "stranded_in_redis": len(q_stranded), "lost": len(q_lost),
        "bogus": len(q_bogus), "dead_letters": end_state["queue_dead"],
        "examples_stranded": q_stranded[:10], "examples_lost": q_lost[:10],
    }
    if q_lost:
        problems.append(f"queue: {len(q_lost)} request(s) sent and never handled, and gone from Redis: {q_lost[:5]}")
    if q_stranded:
        problems.append(f"queue: {len(q_stranded)} request(s) sent and not handled during the run although "
                        f"workers were idle; they were still in Redis at the end: {q_stranded[:5]}")
    if q_bogus:
        problems.append(f"queue: {len(q_bogus)} handled request(s) nobody sent: {q_bogus[:5]}")
    stuck_handled = sorted({i for v in end_state["queue_inflight"].values() for i in v["ids"] if q_handled[i]})
    res["queue"]["inflight_at_end"] = sum(v["len"] for v in end_state["queue_inflight"].values())
    res["queue"]["inflight_at_end_handled"] = stuck_handled
    if stuck_handled:
        # A reliable worker whose acknowledgement (LREM) fails during an outage does not try
        # it again: the request stays in its own in-flight list, kept alive by its lease, until
        # the worker stops (then it goes back to the queue and is handled again). A failed
        # nack leaves a failed request there the same way, not retried meanwhile.
        problems.append(f"queue: {len(stuck_handled)} request(s) handled but still in a live worker's in-flight "
                        f"list after the drain: the acknowledgement failed during a fault and was not retried "
                        f"(the request waits there until that worker stops, then is handled again): "
                        f"{stuck_handled[:5]}")
    if end_state["queue_dead"] > 0:
        problems.append(f"queue: {end_state['queue_dead']} dead letter(s) (max_attempts is 20; none expected)")

    # Streams: every entry published was handled (and so acknowledged) by the group.
    x_missing = [i for i in x_sent if x_handled[i] == 0]
    x_bogus = [i for i in x_handled if i not in x_sent and i not in x_unc]
    g = end_state["group"]
    res["stream"] = {
        "published": len(x_sent), "uncertain": len(x_unc),
        "uncertain_handled": sum(1 for i in x_unc if x_handled[i]),
        "handled_unique": sum(1 for i in x_sent if x_handled[i]),
        "handled_total": sum(x_handled.values()),
        "duplicates": sum(n - 1 for n in x_handled.values() if n > 1),
        "handled_by": dict(x_handled_by),
        "not_handled": len(x_missing), "bogus": len(x_bogus),
        "group_pending": g.get("pending"), "group_undelivered": g.get("undelivered"),
        "group_lag_redis": g.get("lag"), "dead_letters": end_state["stream_dead"],
        "examples_not_handled": x_missing[:10],
    }
    if x_missing:
        problems.append(f"stream: {len(x_missing)} entr(y/ies) published and never handled: {x_missing[:5]}")
    if x_bogus:
        problems.append(f"stream: {len(x_bogus)} handled entr(y/ies) nobody published: {x_bogus[:5]}")
    if g.get("pending"):
        problems.append(f"stream: {g['pending']} entr(y/ies) still pending (unacknowledged) in the group at the end")
    if g.get("undelivered"):
        problems.append(f"stream: {g['undelivered']} entr(y/ies) after the group's last-delivered-id at the end "
                        f"(never delivered)")
    if end_state["stream_dead"] > 0:
        problems.append(f"stream: {end_state['stream_dead']} dead letter(s) (max_deliveries is 20; none expected)")

    # RPC: every call answered or failed with a typed error, none hung.
    rpc = {}
    for name, s in summaries.items():
        if s.get("role") != "main":
            continue
        op = s["ops"]["call"]
        who = s["name"]
        outcome = {k: v for k, v in op.items() if k not in ("n", "late", "max_ms", "limit_ms")}
        rpc[who] = {"calls": op["n"], "answered": s["counters"].get("rpc_ok", 0),
                    "wrong_reply": s["counters"].get("rpc_wrong_reply", 0),
                    "failed_typed": dict(rpc_errors[who]), "by_group": outcome,
                    "late": op["late"], "max_ms": op["max_ms"], "limit_ms": op["limit_ms"]}
        accounted = s["counters"].get("rpc_ok", 0) + s["counters"].get("rpc_wrong_reply", 0) + sum(rpc_errors[who].values())
        if accounted != op["n"]:
            problems.append(f"rpc ({who}): {op['n']} calls but {accounted} outcomes")
    res["rpc"] = rpc
    res["rpc_served_by"] = {s["name"]: s["counters"].get("rpc_served", 0) for s in summaries.values()}

    # Every call of every kind: within its bound (late: a warning; far past it: a hang).
    slow = {}
    for name, s in summaries.items():
        for opname, op in s["ops"].items():
            if op["n"] == 0:
                continue
            if op["max_ms"] > op["limit_ms"] + HANG_SLACK_MS:
                problems.append(f"{s['name']}: a {opname} call took {op['max_ms']} ms (its bound: {op['limit_ms']} ms): a hang")
            if op["late"]:
                slow[f"{s['name']} {opname}"] = {"late": op["late"], "max_ms": op["max_ms"], "limit_ms": op["limit_ms"]}
    if slow:
        warnings.append("calls that returned more than 1 s after their own bound: "
                        + ", ".join(f"{k}: {v['late']} (max {v['max_ms']} ms, bound {v['limit_ms']})" for k, v in slow.items()))
    res["late_calls"] = slow

    # Every failed call of every kind, by its error group (typed). "internal" is a failure
    # without a type (C: IPC_ERR_PANIC or IPC_ERR_INTERNAL; Python: an exception that is not
    # one of the typed subclasses of RedipcError): a broken promise by itself.
    failures: dict = {}
    for s in summaries.values():
        for opname, op in s["ops"].items():
            for grp, v in op.items():
                if grp in ("n", "late", "max_ms", "limit_ms", "ok") or not v:
                    continue
                d = failures.setdefault(opname, {})
                d[grp] = d.get(grp, 0) + v
                if grp == "internal":
                    problems.append(f"{s['name']}: {v} {opname} call(s) failed without a typed error")
    res["failures"] = failures
    res["calls"] = {opname: sum(s["ops"].get(opname, {}).get("n", 0) for s in summaries.values())
                    for opname in sorted({o for s in summaries.values() for o in s["ops"]})}
    res["late_rpc"] = late_rpc

    # Pub/sub: every message lost was announced by a 'disconnected' event before the next one.
    outages = sum(1 for f in faults if f["kind"] in ("client-kill", "server-restart"))
    ps = {}
    for c in clients:
        if c.role != "main":
            continue
        st = sub[c.name]
        unannounced = 0
        examples = []
        for ch, a, b in st["gaps_unannounced"]:
            confirmed = [s for s in range(a, b + 1) if s not in pub_unc[ch]]
            if confirmed:
                unannounced += len(confirmed)
                examples.append(f"{ch} {a}..{b}")
        s = next((v for k, v in summaries.items() if v["name"] == c.name), {"counters": {}})
        ps[c.name] = {
            "messages": s["counters"].get("sub_messages", 0), "gaps_announced": st["gaps_announced"],
            "gaps_unannounced_with_confirmed_messages": len(examples), "unannounced_lost": unannounced,
            "out_of_order": st["out_of_order"], "disconnected": st["disconnected"],
            "reactivated": st["reactivated"], "outages": outages,
        }
        if unannounced:
            problems.append(f"pub/sub ({c.name}): {unannounced} message(s) lost without a 'disconnected' event: {examples[:5]}")
        if st["disconnected"] < outages:
            problems.append(f"pub/sub ({c.name}): {st['disconnected']} 'disconnected' events for {outages} outages")
        elif st["disconnected"] > outages:
            warnings.append(f"pub/sub ({c.name}): {st['disconnected']} 'disconnected' events for {outages} outages")
        if st["open_disconnect"]:
            problems.append(f"pub/sub ({c.name}): 'disconnected' without 'reactivated' after it (the subscription did not come back)")
    res["pubsub"] = ps
    res["published"] = {ch: {"last_seq": last, "uncertain": len(pub_unc[ch])} for ch, last in pub_last.items()}

    # Hash watch: every watcher ends on the final values, and never went backwards.
    hw = {}
    for s in summaries.values():
        if s.get("role") != "main":
            continue
        seen = s.get("hash_seen", {})
        wrong = {k: (v, hash_final.get(k)) for k, v in seen.items() if hash_final.get(k) != v}
        hw[s["name"]] = {"fields": len(seen), "converged": not wrong, "hash_seen": s["counters"].get("hash_seen", 0),
                         "backwards": s["counters"].get("hash_backwards", 0)}
        if wrong:
            problems.append(f"hash watch ({s['name']}): did not end on the final values (seen, final): {wrong}")
    res["hash_watch"] = hw

    # Locks: every acquisition got its own token.
    dup = [t for t, n in tokens.items() if n > 1]
    lk = {"acquisitions": sum(tokens.values()), "duplicate_tokens": len(dup)}
    for s in summaries.values():
        if s.get("role") == "main":
            cn = s["counters"]
            lk[s["name"]] = {k: cn.get(k, 0) for k in ("lock_acquired", "lock_timeout", "lock_error", "fence_accepted",
                                                       "fence_refused", "lock_release_not_held")}
    if dup:
        problems.append(f"locks: {len(dup)} fencing token(s) given to two acquisitions: {dup[:5]}")
    res["locks"] = lk

    # Commands and transactions: nothing acknowledged was lost, no transaction ran half.
    cmd = {}
    for s in summaries.values():
        if s.get("role") != "main":
            continue
        cn = s["counters"]
        who = s["name"]
        cnt = end_state["counters"].get(f"cnt:{who}", -1)
        txa = end_state["counters"].get(f"txa:{who}", -1)
        txb = end_state["counters"].get(f"txb:{who}", -1)
        lo, hi = cn.get("incr_ok", 0), cn.get("incr_ok", 0) + cn.get("incr_uncertain", 0)
        tlo, thi = cn.get("tx_ok", 0), cn.get("tx_ok", 0) + cn.get("tx_uncertain", 0)
        cmd[who] = {"incr_ok": lo, "incr_uncertain": hi - lo, "counter": cnt, "tx_ok": tlo, "tx_uncertain": thi - tlo,
                    "txa": txa, "txb": txb, "kv_ok": cn.get("kv_ok", 0), "kv_mismatch": cn.get("kv_mismatch", 0)}
        if not lo <= cnt <= hi:
            problems.append(f"commands ({who}): counter {cnt} outside [{lo}, {hi}] (acknowledged INCRs lost or invented)")
        if txa != txb or not tlo <= txa <= thi:
            problems.append(f"transactions ({who}): txa {txa}, txb {txb}, expected equal and in [{tlo}, {thi}]")
    res["commands"] = cmd

    # Reports (every incarnation, from the ledgers' R lines and the summaries' counters).
    res["reports"] = {k: dict(v) for k, v in reports.items()}
    res["summaries"] = summaries
    res["stop_ms"] = stop_ms

    # Resources: mains judged, victims reported (their last incarnation).
    resources = {}
    for c in clients:
        inc = c.incarnations[-1]
        wrapped = c.name == "c-main" and bool(cfg.wrap_c_main)
        r = resource_report(inc, t0, cfg.warmup, judged=c.role == "main" and not wrapped, load_end=cfg.load_end)
        r["pid"] = inc["pid"]
        r["incarnations"] = len(c.incarnations)
        r["series_columns"] = ["t_s", "rss_kib", "anon_kib", "threads", "fds"]
        r["series"] = [[round(s["t"] - t0, 1), s["rss_kib"], s["anon_kib"], s["threads"], s["fds"]]
                       for s in inc["samples"]]
        resources[c.name] = r
        for p in r["problems"]:
            problems.append(f"{c.name}: {p}")
    res["resources"] = resources
    return res


def last_fault(faults: list[dict], wall: float) -> str:
    """The last fault before a moment (wall clock), and how long before."""
    before = [f for f in faults if f["wall"] <= wall]
    if not before:
        return "no fault before"
    f = before[-1]
    return f"{wall - f['wall']:.1f} s after fault {faults.index(f) + 1} ({f['kind']})"


def report_kind(text: str) -> str:
    text = text.lower()
    for k in ("dead-letter", "dead letter", "recovered", "restored", "lost", "read failed", "failed"):
        if k in text:
            return k
    return "other"


# --- output ------------------------------------------------------------------------------------


def print_summary(r: dict) -> str:
    out = []
    p = out.append
    p("")
    p(f"== soak: {r['duration_s']:.0f} s of load, {len(r['faults'])} faults "
      f"({', '.join(f'{k} {v}' for k, v in Counter(f['kind'] for f in r['faults']).items())}), "
      f"{r['cpus']} CPUs, load average {r['loadavg_start'][0]} -> {r['loadavg_end'][0]}")
    q = r["queue"]
    p(f"reliable queue: {q['sent']} sent (+{q['uncertain']} uncertain, {q['uncertain_handled']} of them handled), "
      f"{q['handled_unique']} handled, {q['duplicates']} duplicates, {q['not_handled']} not handled "
      f"({q['stranded_in_redis']} stranded in Redis, {q['lost']} lost), {q['dead_letters']} dead letters; "
      f"by {q['handled_by']}")
    x = r["stream"]
    p(f"stream group:   {x['published']} published (+{x['uncertain']} uncertain), {x['handled_unique']} handled, "
      f"{x['duplicates']} duplicates, {x['not_handled']} not handled; group pending {x['group_pending']}, "
      f"undelivered {x['group_undelivered']} (Redis's lag counter: {x['group_lag_redis']}), "
      f"{x['dead_letters']} dead letters; by {x['handled_by']}")
    for v in r["late_rpc"]:
        p(f"late rpc:       {v['who']} {v['call']}: {v['error']} after {v['ms']} ms (timeout 2000 ms), "
          f"at {v['t']} s, {v['after']}")
    for who, v in r["rpc"].items():
        p(f"rpc {who:8s}:   {v['calls']} calls: {v['answered']} answered, {v['wrong_reply']} wrong replies, "
          f"failed (typed) {v['failed_typed'] or 'none'}; slowest {v['max_ms']} ms (bound {v['limit_ms']} ms)")
    p(f"rpc served by:  {r['rpc_served_by']}")
    p("calls (all processes): " + ", ".join(f"{k} {v}" for k, v in r["calls"].items() if v))
    p("failed calls, typed: " + ("; ".join(f"{op}: " + ", ".join(f"{g} {n}" for g, n in sorted(d.items()))
                                            for op, d in sorted(r["failures"].items())) or "none"))
    for who, v in r["pubsub"].items():
        p(f"pub/sub {who:8s}: {v['messages']} messages, {v['gaps_announced']} gaps after 'disconnected', "
          f"{v['unannounced_lost']} lost unannounced, {v['out_of_order']} out of order; "
          f"{v['disconnected']} disconnected / {v['reactivated']} reactivated (one per name) for {v['outages']} outages")
    for who, v in r["hash_watch"].items():
        p(f"hash watch {who}: {v['hash_seen']} values seen, converged: {v['converged']}, backwards: {v['backwards']}")
    lk = r["locks"]
    p(f"locks: {lk['acquisitions']} acquisitions, {lk['duplicate_tokens']} duplicate tokens; "
      + "; ".join(f"{k}: {v}" for k, v in lk.items() if isinstance(v, dict)))
    for who, v in r["commands"].items():
        p(f"commands {who}: INCR {v['incr_ok']} ok + {v['incr_uncertain']} uncertain -> {v['counter']}; "
          f"MULTI/EXEC {v['tx_ok']} ok + {v['tx_uncertain']} uncertain -> {v['txa']}/{v['txb']}; "
          f"SET+GET {v['kv_ok']} ok, {v['kv_mismatch']} mismatches")
    p("resources (after a warm-up of %.0f s):" % r["warmup_s"])
    for who, v in r["resources"].items():
        if not v.get("samples"):
            continue
        judged = "" if v["judged"] else " (not judged: victim, wrapped or short window)"
        incs = "" if v["incarnations"] == 1 else f"; last of {v['incarnations']} incarnations"
        p(f"  {who:9s} RSS {v['rss_kib_at_warmup'] / 1024:.1f} -> {v['rss_kib_last'] / 1024:.1f} MiB, "
          f"slope {v['rss_slope_kib_per_min']:+.1f} KiB/min over {v['window_s']:.0f} s "
          f"({v['rss_slope_second_half_kib_per_min']:+.1f} over its second half; anonymous memory "
          f"{v['anon_slope_kib_per_min']:+.1f}); "
          f"threads {v['threads_start']} -> {v['threads_end']} (max per half {v['threads_first_half_max']}, "
          f"{v['threads_second_half_max']}); fds {v['fds_start']} -> {v['fds_end']} (max per half "
          f"{v['fds_first_half_max']}, {v['fds_second_half_max']}); CPU {v['cpu_pct']}%{judged}{incs}")
        if v["thread_names_start"] != v["thread_names_end"] or v["thread_names_max"] != v["thread_names_end"]:
            p(f"  {'':9s} threads by name: start {v['thread_names_start']}, end {v['thread_names_end']}, "
              f"max {v['thread_names_max']}")
    p(f"drain: {'done' if r['drain']['done'] else 'NOT done'} in {r['drain']['seconds']} s; backlog {r['drain']['backlog']}")
    for w in r["warnings"]:
        p(f"warning: {w}")
    for pr in r["problems"]:
        p(f"PROBLEM: {pr}")
    p(f"== soak {'FAILED' if r['problems'] else 'passed'}: {len(r['problems'])} problem(s), {len(r['warnings'])} warning(s)")
    print("\n".join(out), flush=True)
    return "\n".join(out).strip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
