"""Request queues: plain and reliable workers, fairness, stopping, dead letters, and a
consumer process killed with SIGKILL in the middle of a request."""

from __future__ import annotations

import collections
import gc
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import redipc
from conftest import RedisServer


# How long an idle worker's blocking pop waits: also how quickly it notices stop().
FAST = 0.05


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.005)


def send_many(c: redipc.Client, queue: str, payloads: list[str]) -> None:
    for p in payloads:
        c.send_request(queue, p)


def test_ten_thousand_requests_over_four_consumers_each_handled_once(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")
    n = 10_000
    seen: collections.Counter[bytes] = collections.Counter()
    threads: set[int] = set()
    lock = threading.Lock()

    def handler(req: redipc.Request) -> None:
        with lock:
            seen[req.payload] += 1
            threads.add(threading.get_ident())

    with c.handle_requests("jobs", handler, concurrency=4, block_timeout=FAST) as w:
        assert w.queues == [b"jobs"]
        send_many(c, "jobs", [str(i) for i in range(n)])
        wait_until(lambda: w.stats().handled >= n, "all handled", 60)
    assert not w.running
    assert len(seen) == n
    assert set(seen.values()) == {1}, "each exactly once"
    assert w.stats().handled == n and w.stats().failed == 0
    assert c.queue_stats("jobs") == c.queue_stats("jobs")
    assert c.queue_stats("jobs").as_dict() == {"pending": 0, "inflight": 0, "dead": 0, "delayed": 0}
    assert c.command("KEYS", "*") == []


@pytest.mark.parametrize("prefetch", [1, 16])
def test_one_worker_serves_two_queues_fairly(client: redipc.Client, prefetch: int) -> None:
    send_many(client, "a", [f"a{i}" for i in range(200)])
    send_many(client, "b", [f"b{i}" for i in range(200)])
    order: list[bytes] = []
    with client.handle_requests(
        ["a", "b"], lambda r: order.append(r.queue), prefetch=prefetch, block_timeout=FAST
    ) as w:
        wait_until(lambda: w.stats().handled >= 400, "all handled")
    first = collections.Counter(order[:100])
    assert first[b"a"] >= 30 and first[b"b"] >= 30, first
    assert collections.Counter(order) == {b"a": 200, b"b": 200}


def test_stop_waits_for_a_running_handler(client: redipc.Client) -> None:
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def handler(req: redipc.Request) -> None:
        started.set()
        release.wait(10)
        finished.set()

    w = client.handle_requests("slow", handler, block_timeout=FAST)
    client.send_request("slow", "x")
    assert started.wait(10)
    # The handler still runs at the deadline: TimeoutError (also a builtins one).
    with pytest.raises(redipc.TimeoutError):
        w.stop(timeout=0.1)
    with pytest.raises(TimeoutError):
        w.stop(0.05)
    assert w.running
    threading.Timer(0.2, release.set).start()
    w.stop(timeout=10)
    assert finished.is_set(), "stop() returned before the handler did"
    assert not w.running
    assert w.stats().handled == 1
    w.stop()  # again: nothing to do
    assert "stopped" in repr(w)


def test_stop_from_inside_a_handler_returns_at_once(client: redipc.Client) -> None:
    holder: list[redipc.Worker] = []
    stopped = threading.Event()

    def handler(req: redipc.Request) -> None:
        holder[0].stop()
        stopped.set()

    holder.append(client.handle_requests("q", handler, block_timeout=FAST))
    client.send_request("q", "x")
    assert stopped.wait(10)
    wait_until(lambda: not holder[0].running, "stopped")
    holder[0].stop()


def test_a_raising_handler_is_a_failure_and_the_worker_survives(
    client: redipc.Client, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[bytes] = []

    def handler(req: redipc.Request) -> None:
        if req.payload == b"bad":
            raise ValueError("cannot handle it")
        done.append(req.payload)

    with client.handle_requests("q", handler, block_timeout=FAST) as w:
        send_many(client, "q", ["1", "bad", "2"])
        wait_until(lambda: w.stats().handled == 2 and w.stats().failed == 1, "handled")
    assert done == [b"1", b"2"]
    # Without on_error the failure is a WARNING of the "redipc" logger, with the
    # exception's type in the message and the exception itself as exc_info.
    failures = [r for r in caplog.records if getattr(r, "redipc_kind", None) == "handler_failed"]
    assert len(failures) == 1
    assert failures[0].levelname == "WARNING"
    assert "ValueError: cannot handle it" in failures[0].getMessage()
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is ValueError
    stats = w.stats()
    assert (stats.handled, stats.failed, stats.dead_lettered) == (2, 1, 0)
    # With on_error, the hook is told, and the record is only a DEBUG one.
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="redipc")
    reported: list[BaseException] = []
    with client.handle_requests("q", handler, block_timeout=FAST, on_error=reported.append) as w:
        send_many(client, "q", ["bad", "3"])
        wait_until(lambda: w.stats().handled == 1 and w.stats().failed == 1, "handled")
    assert [str(e) for e in reported] == ["cannot handle it"]
    assert [r.levelname for r in caplog.records if r.name == "redipc"] == ["DEBUG"]


def test_reliable_failures_retry_then_dead_letter_with_the_message(client: redipc.Client) -> None:
    attempts: list[int] = []
    reported: list[BaseException] = []

    def always_fails(req: redipc.Request) -> None:
        attempts.append(req.attempt)
        raise ValueError(f"boom on {req.payload.decode()}")

    with client.handle_requests(
        "r",
        always_fails,
        reliable=True,
        max_attempts=3,
        lease=2.0,
        on_error=reported.append,
        block_timeout=FAST,
    ) as w:
        client.send_request("r", "poison")
        wait_until(lambda: client.queue_stats("r").dead == 1, "dead-lettered")
        stats = w.stats()
    assert attempts == [0, 1, 2]
    assert (stats.failed, stats.dead_lettered, stats.handled) == (3, 1, 0)
    assert [type(e) for e in reported] == [ValueError] * 3
    letters = client.dead_letters("r")
    assert len(letters) == 1
    d = letters[0]
    assert (d.payload, d.attempts, d.error) == (b"poison", 3, "ValueError: boom on poison")
    assert "poison" in repr(d)
    assert client.queue_stats("r").as_dict() == {"pending": 0, "inflight": 0, "dead": 1, "delayed": 0}

    # Requeued, they start over; a handler that succeeds acks them.
    assert client.requeue_dead_letters("r") == 1
    assert client.queue_stats("r").as_dict() == {"pending": 1, "inflight": 0, "dead": 0, "delayed": 0}
    got: list[tuple[bytes, int]] = []
    with client.handle_requests(
        "r", lambda r: got.append((r.payload, r.attempt)), reliable=True, block_timeout=FAST
    ) as w:
        wait_until(lambda: w.stats().handled == 1, "handled")
    assert got == [(b"poison", 0)]
    assert client.dead_letters("r") == []
    # A clean stop leaves no consumer keys behind.
    assert client.command("KEYS", "ipc:{q:r}:*") == []


def test_on_error_that_raises_goes_to_unraisablehook(
    client: redipc.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys as _sys

    caught: list[object] = []
    monkeypatch.setattr(_sys, "unraisablehook", caught.append)

    def hook(e: BaseException) -> None:
        raise RuntimeError("the hook is broken too")

    def handler(req: redipc.Request) -> None:
        raise KeyError("x")

    with client.handle_requests("q", handler, on_error=hook, block_timeout=FAST) as w:
        client.send_request("q", "1")
        wait_until(lambda: w.stats().failed == 1 and len(caught) == 1, "reported")
    assert isinstance(caught[0].exc_value, RuntimeError)  # type: ignore[attr-defined]


def test_a_dropped_worker_is_stopped_in_the_background(client: redipc.Client) -> None:
    got: list[bytes] = []
    w = client.handle_requests("d", lambda r: got.append(r.payload), reliable=True, block_timeout=FAST)
    client.send_request("d", "1")
    wait_until(lambda: got == [b"1"], "handled")
    assert client.command("KEYS", "ipc:{q:d}:*") != []
    del w
    gc.collect()
    # Its clean stop removes its lease and leaves the consumer set.
    wait_until(lambda: client.command("KEYS", "ipc:{q:d}:*") == [], "released")
    client.send_request("d", "2")
    assert client.queue_stats("d").pending == 1


def test_zero_and_sixteen_mib_payloads(client: redipc.Client) -> None:
    big = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    got: list[bytes] = []
    with client.handle_requests("big", lambda r: got.append(r.payload), block_timeout=FAST) as w:
        client.send_request("big", b"")
        client.send_request("big", big)
        wait_until(lambda: w.stats().handled == 2, "handled", 30)
    assert got[0] == b""
    assert got[1] == big


def test_bad_input(client: redipc.Client) -> None:
    def f(req: redipc.Request) -> None:
        pass

    with pytest.raises(redipc.InvalidArgument):
        client.send_request("", "x")
    with pytest.raises(redipc.InvalidArgument):
        client.send_request("a{b}", "x")
    with pytest.raises(redipc.InvalidArgument):
        client.handle_requests("", f)
    with pytest.raises(redipc.InvalidArgument):
        client.handle_requests(["ok", ""], f)
    with pytest.raises(redipc.InvalidArgument):
        client.handle_requests([], f)
    with pytest.raises(TypeError):
        client.handle_requests("q", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.handle_requests("q", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.handle_requests(object(), f)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.handle_requests(["q", None], f)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        client.handle_requests("q", f, on_error=1)  # type: ignore[arg-type]
    bad: dict[str, Any]
    for bad in (
        {"concurrency": 0},
        {"concurrency": 5000},
        {"prefetch": 0},
        {"max_attempts": 0},
        {"block_timeout": 0.001},
        {"lease": 0.01, "reliable": True},
        {"lease": -1},
    ):
        with pytest.raises(redipc.InvalidArgument):
            client.handle_requests("q", f, **bad)
    with pytest.raises(redipc.InvalidArgument):
        client.queue_stats("")


# ---------------------------------------------------------------------------------------
# A consumer process killed with SIGKILL in the middle of a request

CHILD = textwrap.dedent(
    """
    import os, sys, time
    import redipc

    c = redipc.Client(sys.argv[1])
    pid = str(os.getpid()).encode()

    def handler(req):
        c.incr("starts")
        c.set(b"busy:" + pid, req.payload)   # inside a request from here ...
        time.sleep(0.02)
        c.command("SADD", "done", req.payload)
        c.delete(b"busy:" + pid)             # ... to here
        c.incr("handled")

    w = c.handle_requests("kill", handler, reliable=True, lease=0.5, concurrency=2)
    print("ready", flush=True)
    while True:
        time.sleep(1)
    """
)


def test_a_killed_consumer_process_loses_nothing(
    make_client: Callable[..., redipc.Client], server: RedisServer, tmp_path: Path
) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")
    n = 300
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    for i in range(n):
        c.send_request("kill", str(i))

    def spawn() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, str(script), server.tcp_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        return p

    def reap(p: subprocess.Popen[bytes]) -> None:
        p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()

    def done() -> int:
        return int(c.command("SCARD", "done"))

    children = [spawn(), spawn()]
    kills = 0
    try:
        while kills < 5 and done() < n - 20:
            index = kills % 2
            victim = children[index]
            busy = f"busy:{victim.pid}"
            # Kill it while it is inside a request.
            deadline = time.monotonic() + 10
            while not c.exists(busy):
                assert time.monotonic() < deadline, "the child never started a request"
                time.sleep(0.001)
            os.kill(victim.pid, signal.SIGKILL)
            reap(victim)
            kills += 1
            children[index] = spawn()
        # Every request reaches "done" (nothing lost), and every one that a killed process
        # took is handled to the end by another (its "handled" count may lag "done").
        wait_until(
            lambda: done() == n and int(c.get("handled") or 0) >= n,
            f"all {n} requests handled",
            60,
        )
    finally:
        for ch in children:
            ch.kill()
            reap(ch)
    assert kills >= 3
    starts = int(c.get("starts") or 0)
    handled = int(c.get("handled") or 0)
    assert handled >= n
    # A request the killed process had started was handled again by another one.
    assert starts > n, (kills, starts, handled)
    print(f"{kills} kills, {n} requests, {starts - n} restarted, {handled - n} duplicates")


EXIT_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import redipc

    c = redipc.Client(sys.argv[1])
    started = threading.Event()

    def handler(req):
        started.set()
        time.sleep(0.01)
        c.incr("handled")

    for i in range(500):
        c.send_request("exit", str(i))
    w = c.handle_requests("exit", handler, reliable=True, concurrency=3, block_timeout=0.05)
    s = c.serve("exit-svc", lambda call: call.payload, concurrency=2)
    assert c.call("exit-svc", "x") == b"x"
    assert started.wait(10)
    print("exiting", flush=True)
    # No stop(): the worker and the server are still busy when the interpreter exits.
    """
)


def test_the_interpreter_exits_cleanly_with_busy_workers(
    make_client: Callable[..., redipc.Client], server: RedisServer, tmp_path: Path
) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")
    script = tmp_path / "exit.py"
    script.write_text(EXIT_CHILD)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script), server.tcp_url], capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"exiting\n"
    assert time.monotonic() - start < 15
    # Requests taken while the interpreter exited were not failed: nothing was retried
    # into the dead letters, and every request is pending, handled or still in flight.
    counts = c.queue_stats("exit")
    handled = int(c.get("handled") or 0)
    assert counts.dead == 0
    assert counts.inflight <= 3
    assert counts.pending + counts.inflight + handled >= 500, (counts, handled)
