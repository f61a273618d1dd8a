"""Coordination: Lua scripts run by SHA (also in batches), rate limiters shared by
processes, semaphores with leases (fair, a SIGKILLed holder's permit comes back), delayed
requests (on time, none lost when a worker process is SIGKILLed) and the service registry
(a SIGKILLed server leaves it within its TTL)."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import redipc
from conftest import RedisServer


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.005)


def server_time(c: redipc.Client) -> float:
    """The server's clock (``TIME``), in seconds."""
    secs, micros = c.command("TIME")
    return int(secs) + int(micros) / 1e6


# ---------------------------------------------------------------------------------------
# Child processes: one script, one mode per role.

CHILD = textwrap.dedent(
    """
    import json, os, random, sys, threading, time
    import redipc

    mode, url = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    c = redipc.Client(url)

    def server_time():
        secs, micros = c.command("TIME")
        return int(secs) + int(micros) / 1e6

    if mode == "rate":
        # Hammer the limiter until the server's clock says END; print the allowed
        # acquisitions as (server time before, server time after).
        name, rate, burst, end = args[0], float(args[1]), int(args[2]), float(args[3])
        rl = c.rate_limiter(name, rate, burst=burst)
        allowed = []
        print("ready", flush=True)
        while True:
            before = server_time()
            if before >= end:
                break
            ok, _ = rl.acquire()
            if ok:
                allowed.append((before, server_time()))
            else:
                time.sleep(random.random() * 0.002)
        print(json.dumps(allowed), flush=True)

    elif mode == "sem":
        # THREADS threads take a permit, count themselves in a Redis counter, hold it
        # briefly, leave; print the most holders seen and each thread's count.
        name, permits, threads, seconds = args[0], int(args[1]), int(args[2]), float(args[3])
        sem = c.semaphore(name, permits)
        most = [0] * threads
        counts = [0] * threads
        print("ready", flush=True)
        end = time.monotonic() + seconds

        def run(i):
            while time.monotonic() < end:
                with sem.acquire(timeout=10):
                    n = c.incr(name + ":holders")
                    most[i] = max(most[i], n)
                    time.sleep(0.005)
                    c.decr(name + ":holders")
                counts[i] += 1

        ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print(json.dumps({"most": max(most), "counts": counts}), flush=True)

    elif mode == "hold":
        # Take the only permit and keep it until killed.
        sem = c.semaphore(args[0], 1, lease=float(args[1]))
        permit = sem.acquire(timeout=5)
        print("held", flush=True)
        while True:
            time.sleep(1)

    elif mode == "worker":
        # A reliable worker: a request is in flight for 30 ms, then marked done.
        queue = args[0]

        def handler(req):
            time.sleep(0.03)
            c.command("SADD", queue + ":done", req.payload)

        w = c.handle_requests(queue, handler, reliable=True, lease=0.5, block_timeout=0.1)
        print("ready", flush=True)
        while True:
            time.sleep(1)

    elif mode == "serve":
        server = c.serve(args[0], lambda call: b"pong", version="9.9", metadata={"k": "v"})
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """
)


@pytest.fixture
def spawn(server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``child.py MODE URL ARGS...``; each is killed (if still running) after the
    test."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    started: list[subprocess.Popen[str]] = []

    def start(mode: str, *args: object) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, str(script), mode, server.tcp_url, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)


def ready(p: subprocess.Popen[str], word: str = "ready") -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    if line != word + "\n":
        p.kill()
        _, err = p.communicate(timeout=10)
        pytest.fail(f"the child said {line!r}, not {word!r}:\n{err}")


def kill9(p: subprocess.Popen[str]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


# ---------------------------------------------------------------------------------------
# Scripts

SOURCE = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"


def test_a_script_runs_by_sha_and_survives_script_flush(
    client: redipc.Client, make_client: Callable[..., redipc.Client]
) -> None:
    s = client.script(SOURCE)
    assert s.sha == hashlib.sha1(SOURCE.encode()).hexdigest()
    assert s.source == SOURCE
    assert s(keys=["k"], args=["a"]) == [b"k", b"a", 1]
    assert client.command("SCRIPT", "EXISTS", s.sha) == [1]
    # The server forgets it: the next call loads it again, invisibly.
    assert client.command("SCRIPT", "FLUSH") == "OK"
    assert client.command("SCRIPT", "EXISTS", s.sha) == [0]
    assert s(["k"], [b"b"]) == [b"k", b"b", 2]
    assert client.command("SCRIPT", "EXISTS", s.sha) == [1]
    # Replies convert like command()'s; a Lua error raises ResponseError.
    assert client.script("return 'x'")() == b"x"
    assert client.script("return redis.status_reply('FINE')")() == "FINE"
    with pytest.raises(redipc.ResponseError) as e:
        client.script("return redis.error_reply('MYERR boom')")()
    assert e.value.code == "MYERR"
    with pytest.raises(redipc.ResponseError):
        client.script("this is not lua")()
    # On another client (of the same server here).
    other = make_client()
    assert s(["k"], [3], client=other) == [b"k", b"3", 3]
    with pytest.raises(TypeError):
        s(client=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        s(keys=[None])  # type: ignore[list-item]


def test_a_script_in_a_pipeline_and_a_transaction(client: redipc.Client) -> None:
    s = client.script(SOURCE)
    p = client.pipeline()
    assert s(["k"], [1], client=p) is p
    p.add("GET", "k")
    assert p.exec() == [[b"k", b"1", 1], b"1"]
    # Known by SHA now; after SCRIPT FLUSH the pipeline's NOSCRIPT is answered again.
    assert client.command("SCRIPT", "FLUSH") == "OK"
    p.add("SET", "other", "x")
    s(keys=["k"], args=[2], client=p)
    assert p.exec() == ["OK", [b"k", b"2", 2]]
    # In a transaction (the source goes with it).
    assert client.command("SCRIPT", "FLUSH") == "OK"
    t = client.tx()
    s(["k"], [3], t).add("GET", "k")
    assert len(t) == 2
    assert t.exec() == [[b"k", b"3", 3], b"3"]


# ---------------------------------------------------------------------------------------
# Rate limiters


def test_a_rate_limiter_holds_across_three_processes(
    make_client: Callable[..., redipc.Client], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    rate, burst = 20.0, 5
    end = server_time(c) + 3.0
    children = [spawn("rate", "rl-procs", rate, burst, end) for _ in range(3)]
    for p in children:
        ready(p)
    runs: list[list[tuple[float, float]]] = []
    for p in children:
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        runs.append([tuple(x) for x in json.loads(out)])
    allowed = sorted(x for run in runs for x in run)
    # Every window of 2 s (server time) holds at most burst + rate * 2 acquisitions: those
    # known to lie inside it (between the TIME before and the TIME after) are counted.
    bound = burst + rate * 2
    worst = max(
        sum(1 for b, a in allowed if b >= start and a <= start + 2.0) for start, _ in allowed
    )
    assert worst <= bound, (worst, bound)
    # ... and the limiter gave what the rate allows (nobody was refused for nothing).
    span = allowed[-1][1] - allowed[0][0]
    assert len(allowed) <= burst + rate * span + 1
    assert len(allowed) >= 0.8 * rate * span, (len(allowed), span)
    assert all(len(run) >= 3 for run in runs), [len(r) for r in runs]
    print(f"{len(allowed)} allowed in {span:.2f} s, busiest 2 s window {worst} (bound {bound:g})")


def test_acquire_wait_waits_the_retry_after(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client()
    c.command("FLUSHALL")
    rl = c.rate_limiter("rl-wait", 2, burst=1)  # one unit every 0.5 s
    assert (rl.name, rl.burst) == (b"rl-wait", 1)
    assert rl.acquire() == (True, 0.0)
    ok, retry_after = rl.acquire()
    refused = time.monotonic()
    assert not ok and 0.4 < retry_after <= 0.5, retry_after
    # A timeout shorter than the wait: False at once, without sleeping in vain.
    t = time.monotonic()
    assert rl.acquire_wait(timeout=0.1) is False
    assert time.monotonic() - t < 0.05
    # Other threads run while it waits (the GIL is released).
    ticks = [0]
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        assert rl.acquire_wait(timeout=5) is True
        waited = time.monotonic() - refused
    finally:
        stop.set()
        ticker.join()
    assert retry_after - 0.005 <= waited <= retry_after + 0.06, (waited, retry_after)
    print(f"retry_after {retry_after * 1000:.1f} ms, waited {waited * 1000:.1f} ms")
    assert ticks[0] > 50
    # Two units of a burst-2 limiter.
    rl2 = c.rate_limiter("rl-wait2", 10, per=datetime.timedelta(seconds=1), burst=2)
    assert rl2.acquire(2) == (True, 0.0)
    t = time.monotonic()
    assert rl2.acquire_wait(2)
    assert 0.19 <= time.monotonic() - t <= 0.28


def test_rate_limiter_arguments(client: redipc.Client) -> None:
    rl = client.rate_limiter("rl-args", 5, burst=2)
    for bad in (0, 3, -1):
        with pytest.raises(redipc.InvalidArgument):
            rl.acquire(bad)
    for name, rate, kw in (
        ("", 1.0, {}),
        ("a{b}", 1.0, {}),
        ("a", 0.0, {}),
        ("a", -1.0, {}),
        ("a", float("inf"), {}),
        ("a", 1.0, {"per": 0}),
        ("a", 1.0, {"burst": 0}),
    ):
        with pytest.raises(redipc.InvalidArgument):
            client.rate_limiter(name, rate, **kw)


# ---------------------------------------------------------------------------------------
# Semaphores


def test_a_semaphore_never_exceeds_its_permits_across_processes(
    make_client: Callable[..., redipc.Client], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    children = [spawn("sem", "sem-procs", 3, 4, 1.5) for _ in range(2)]
    for p in children:
        ready(p)
    results = []
    for p in children:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    most = max(r["most"] for r in results)
    assert most == 3, results  # never more than 3, and 3 were reached
    assert all(n > 0 for r in results for n in r["counts"]), results
    assert c.get("sem-procs:holders") == b"0"
    assert c.semaphore("sem-procs", 3).held() == 0


def test_a_killed_holders_permit_comes_back_after_its_lease(
    make_client: Callable[..., redipc.Client], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    sem = c.semaphore("sem-kill", 1, lease=1.0)
    child = spawn("hold", "sem-kill", 1.0)
    ready(child, "held")
    held_at = time.monotonic()
    assert sem.held() == 1
    with pytest.raises(redipc.TimeoutError):
        sem.acquire(timeout=0)
    kill9(child)
    # Nobody releases it: it comes back when its lease runs out, and the waiter takes it
    # then (woken by the lease's end, not by polling).
    with sem.acquire(timeout=5):
        got = time.monotonic() - held_at
    assert 0.8 <= got <= 1.4, got
    print(f"permit back {got:.3f} s after the holder took it (lease 1 s)")


def test_no_waiter_starves(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client()
    c.command("FLUSHALL")
    sem = c.semaphore("sem-fair", 2)
    n, seconds = 6, 2.5
    counts = [0] * n
    worst = [0.0] * n
    errors: list[BaseException] = []
    end = time.monotonic() + seconds

    def run(i: int) -> None:
        try:
            while time.monotonic() < end:
                t = time.monotonic()
                with sem.acquire(timeout=10):
                    worst[i] = max(worst[i], time.monotonic() - t)
                    time.sleep(0.01)
                counts[i] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    mean = sum(counts) / n
    # First come, first served: every thread gets its share, none waits long.
    assert min(counts) >= mean / 2, counts
    assert max(worst) < 1.0, worst
    print(f"acquisitions per thread {counts}, longest wait {max(worst) * 1000:.0f} ms")
    assert sem.held() == 0


def test_semaphore_timeout_context_manager_and_release(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    sem = c.semaphore("sem-one", 1, lease=5)
    assert (sem.name, sem.permits) == (b"sem-one", 1)
    with sem.acquire() as p:
        assert isinstance(p.id, str) and p.id
        assert not p.released
        assert sem.held() == 1
        assert p.extend(10) is True
        # The same exception as a lock's: redipc.TimeoutError, a builtins.TimeoutError.
        with pytest.raises(redipc.TimeoutError):
            sem.acquire(timeout=0)
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            sem.acquire(timeout=0.3)
        assert 0.29 <= time.monotonic() - t < 0.8
    assert p.released
    assert sem.held() == 0
    assert p.release() is False
    assert p.extend(1) is False
    # The block's own exception goes through; the permit is released.
    with pytest.raises(ValueError):
        with sem.acquire():
            raise ValueError("boom")
    assert sem.held() == 0
    # Released by hand, or by dropping it.
    p = sem.acquire(timeout=1)
    assert p.release() is True
    assert sem.held() == 0
    p = sem.acquire(timeout=1)
    del p
    assert sem.held() == 0
    # A release wakes a waiter at once.
    p = sem.acquire()
    threading.Timer(0.2, p.release).start()
    t = time.monotonic()
    with sem.acquire(timeout=3):
        assert 0.15 <= time.monotonic() - t < 0.5
    with pytest.raises(redipc.InvalidArgument):
        sem.acquire(timeout=1).extend(0)
    for name, permits, kw in (("", 1, {}), ("a}", 1, {}), ("a", 0, {}), ("a", -1, {}), ("a", 1, {"lease": 0})):
        with pytest.raises(redipc.InvalidArgument):
            c.semaphore(name, permits, **kw)


# ---------------------------------------------------------------------------------------
# Delayed requests


def test_delayed_requests_arrive_when_due(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client()
    c.command("FLUSHALL")
    queue = "delayed-on-time"
    arrived: dict[bytes, float] = {}
    lock = threading.Lock()

    def handler(req: redipc.Request) -> None:
        with lock:
            arrived[req.payload] = time.time()

    due: dict[bytes, tuple[float, float]] = {}  # payload: (earliest, latest) due time
    with c.handle_requests(queue, handler):
        time.sleep(0.1)  # the worker is idle, blocked in its pop
        now = time.time()
        c.send_request(queue, "d300", delay=0.3)
        due[b"d300"] = (now + 0.3, time.time() + 0.3)
        now = time.time()
        c.send_request(queue, "d600", datetime.timedelta(seconds=0.6))
        due[b"d600"] = (now + 0.6, time.time() + 0.6)
        at = time.time() + 0.45
        c.send_request(queue, "a450", at=at)
        due[b"a450"] = (at, at)
        aware = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.5)
        c.send_request(queue, "a500", at=aware)
        due[b"a500"] = (aware.timestamp(), aware.timestamp())
        naive = datetime.datetime.now() + datetime.timedelta(seconds=0.7)  # local time
        c.send_request(queue, "a700", at=naive)
        due[b"a700"] = (naive.timestamp(), naive.timestamp())
        stats = c.queue_stats(queue)
        assert (stats.delayed, stats.pending) == (5, 0), stats
        past = time.time() - 10
        c.send_request(queue, "past", at=past)  # due already
        due[b"past"] = (past, time.time())
        wait_until(lambda: len(arrived) == len(due), "every delayed request handled", 5)
    for payload, (earliest, latest) in due.items():
        # Never before it is due (ms resolution), at most 150 ms late.
        assert earliest - 0.003 <= arrived[payload] <= latest + 0.15, (
            payload,
            arrived[payload] - earliest,
        )
    late = {p.decode(): round((arrived[p] - e) * 1000, 1) for p, (e, _) in due.items()}
    print(f"ms after due: {late}")
    assert c.queue_stats(queue).as_dict() == {"pending": 0, "inflight": 0, "dead": 0, "delayed": 0}


def test_delayed_request_arguments(client: redipc.Client) -> None:
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("q", "x", delay=1, at=time.time())
    with pytest.raises(ValueError):
        client.send_request("q", "x", 1, time.time())
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("q", "x", delay=1, bare=True)
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("q", "x", delay=-1)
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("q", "x", at=float("nan"))
    with pytest.raises(TypeError):
        client.send_request("q", "x", at="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.send_request("q", "x", at=True)
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("", "x", delay=1)
    assert client.queue_stats("q").delayed == 0


def test_no_delayed_request_is_lost_when_a_worker_process_is_killed(
    make_client: Callable[..., redipc.Client], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    queue = "delayed-kill"
    child = spawn("worker", queue)
    ready(child)
    n = 40
    for i in range(n):
        c.send_request(queue, f"r{i}", delay=0.1 + i * 0.025)  # due over 0.1 .. 1.1 s

    def done() -> int:
        return int(c.command("SCARD", queue + ":done"))

    # Kill the worker while requests keep coming due (one in flight, most not due yet).
    wait_until(lambda: done() >= 8, "the child handled some", 5)
    kill9(child)
    at_kill = done()
    assert 0 < at_kill < n - 10, at_kill

    def handler(req: redipc.Request) -> None:
        c.command("SADD", queue + ":done", req.payload)

    with c.handle_requests(queue, handler, reliable=True, lease=0.5) as w:
        wait_until(lambda: done() == n, f"all {n} delayed requests handled", 10)
    assert w.stats().handled >= n - at_kill
    assert c.queue_stats(queue).as_dict() == {"pending": 0, "inflight": 0, "dead": 0, "delayed": 0}


# ---------------------------------------------------------------------------------------
# The service registry


def test_servers_are_listed_with_what_they_announce(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    service = "reg-listed"
    before = time.time()
    a = c.serve(service, lambda call: b"a", version="2.1.0", metadata={"zone": "eu", "role": "primary"})
    b = c.serve_methods(service, {"m": lambda call: b"b"}, version="2.2.0")
    try:
        assert service.encode() in c.services()
        assert c.services() == sorted(c.services())
        found = sorted(c.instances(service), key=lambda i: i.version)
        assert [i.version for i in found] == ["2.1.0", "2.2.0"]
        first = found[0]
        assert first.service == service.encode()
        assert first.metadata == {"zone": "eu", "role": "primary"}
        assert found[1].metadata == {}
        assert first.host == socket.gethostname()
        assert first.pid == os.getpid()
        assert before - 1 <= first.started <= time.time() + 0.01
        assert 0 < first.expires_in <= 3.0
        assert isinstance(first.id, str) and first.id != found[1].id
        assert first.as_dict()["version"] == "2.1.0"
        a.stop()
        assert [i.version for i in c.instances(service)] == ["2.2.0"]
    finally:
        a.stop()
        b.stop()
    assert c.instances(service) == []
    assert service.encode() not in c.services()
    with pytest.raises(redipc.InvalidArgument):
        c.instances("")


def test_a_killed_server_leaves_the_registry_within_its_ttl(
    make_client: Callable[..., redipc.Client], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    service = "reg-killed"
    child = spawn("serve", service)
    ready(child)
    found: list[redipc.Instance] = []

    def listed() -> bool:
        found[:] = c.instances(service)
        return bool(found)

    wait_until(listed, "the server is listed", 5)
    assert [(i.pid, i.version, i.metadata) for i in found] == [(child.pid, "9.9", {"k": "v"})]
    assert c.call(service, b"ping", timeout=5) == b"pong"
    kill9(child)
    killed = time.monotonic()
    wait_until(lambda: c.instances(service) == [], "the killed server is gone", 5)
    gone = time.monotonic() - killed
    assert gone <= 3.5, gone
    print(f"gone from the registry {gone:.2f} s after SIGKILL")
    assert service.encode() not in c.services()
    with pytest.raises(redipc.NoServerError):
        c.call(service, b"ping", fail_fast=True)


def test_semaphore_and_rate_limiter_waits_are_interruptible(client: redipc.Client) -> None:
    import _thread

    sem = client.semaphore("ctrl-c", 1, lease=30)
    held = sem.acquire(timeout=0)
    for wait in (
        lambda: sem.acquire(timeout=30),
        lambda: client.rate_limiter("ctrl-c", 1, per=60.0, burst=1).acquire_wait(1, None),
    ):
        client.rate_limiter("ctrl-c", 1, per=60.0, burst=1).acquire()
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            wait()
        timer.join()
        assert time.monotonic() - t0 < 2
    # The interrupted waiter left the queue: once the permit is back, it is free at once.
    assert held.release() is True
    with sem.acquire(timeout=0):
        pass
