"""Observability from Python (the Rust suite's tests/observability.rs and tests/overload.rs):
``Client.stats()`` moves as a scripted workload says it must; connection changes reach
``logging`` on ``redipc.connection`` / ``redipc.pubsub`` with their reason, reports reach it
once; records ``logging`` cannot take in time are counted and told; no credential appears
in a log record or an exception; at ``maxmemory`` writes raise ``OOM`` and reads and
pub/sub go on; ``max_reply_size`` bounds replies."""

from __future__ import annotations

import ctypes
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import redipc
from conftest import RedisServer, _private_server


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.01)


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A server of the test's own, for configuration the session's server must not get
    (``requirepass``, ``maxmemory``)."""
    yield from _private_server()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the ``redipc`` loggers, DEBUG and up (set before any client of the
    test is made: clients read the level when they are made)."""
    caplog.set_level(logging.DEBUG, logger="redipc")
    return caplog


def ours(caplog: pytest.LogCaptureFixture, name: str | None = None) -> list[logging.LogRecord]:
    return [
        r
        for r in list(caplog.records)
        if r.name.startswith("redipc") and (name is None or r.name == name)
    ]


def has(caplog: pytest.LogCaptureFixture, name: str, level: int, *words: str) -> bool:
    return any(
        r.levelno == level and all(w in r.getMessage() for w in words) for r in ours(caplog, name)
    )


def shared_id(c: redipc.Client) -> int:
    """The client's shared command connection (a pipeline always takes it)."""
    (cid,) = c.pipeline().add("CLIENT", "ID").exec()
    assert isinstance(cid, int)
    return cid


def kill_client(admin: redipc.Client, c: redipc.Client) -> int:
    """Kill the client's command connections: the shared one and, when a lone call takes
    another (the blocking caller's direct connection), that one too. How many of the
    shared one were killed (1)."""
    shared = shared_id(c)
    lone = c.command("CLIENT", "ID")
    killed = admin.command("CLIENT", "KILL", "ID", shared)
    if isinstance(lone, int) and lone != shared:
        admin.command("CLIENT", "KILL", "ID", lone)
    assert isinstance(killed, int)
    return killed


# --- stats -------------------------------------------------------------------------------


def test_counters_follow_a_scripted_workload(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")
    base = c.stats()
    for i in range(10):
        c.set(f"k{i}", "v")
    for i in range(5):
        assert c.get(f"k{i}") == b"v"
    assert c.pipeline_raw([["INCR", "n"]] * 3) == [1, 2, 3]
    c.lpush("list", "x")
    with pytest.raises(redipc.ResponseError) as e:
        c.command("INCR", "list")
    assert e.value.code == "WRONGTYPE"
    s = c.stats()

    assert s.commands - base.commands == 10 + 5 + 3 + 1 + 1, s
    assert s.failed.get("server", 0) - base.failed.get("server", 0) == 1, s
    assert set(s.failed) == {"server"}, s
    # Every successful call is timed: 10 + 5 + the pipeline + LPUSH.
    assert s.latency.count - base.latency.count == 17, s
    assert s.in_flight == 0
    # 10 SETs of `*3\r\n$3\r\nSET\r\n$2\r\nkN\r\n$1\r\nv\r\n` alone are 290 bytes out.
    assert s.bytes_out - base.bytes_out >= 290, s
    assert s.bytes_in - base.bytes_in >= 10 * 5, s  # +OK\r\n each
    lat = s.latency
    assert 0 < lat.p50 <= lat.p90 <= lat.p99 <= lat.p999
    assert lat.max > 0 and lat.max < 10
    assert sum(n for _, n in lat.buckets) == lat.count
    assert [b for b, _ in lat.buckets] == sorted(b for b, _ in lat.buckets)
    assert all(isinstance(b, float) and isinstance(n, int) for b, n in lat.buckets)
    assert (s.reconnects, s.pubsub_reconnects, s.pubsub_received, s.pubsub_dropped) == (0, 0, 0, 0)


def test_the_client_sums_its_workers_and_consumers(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")

    def handler(req: redipc.Request) -> None:
        if req.payload == b"fail":
            raise ValueError("told to fail")

    w = c.handle_requests("jobs", handler, block_timeout=0.1, on_error=lambda r: None)
    for _ in range(10):
        c.send_request("jobs", "ok")
    c.send_request("jobs", "fail")
    wait_until(lambda: c.stats().workers.handled == 10 and c.stats().workers.failed == 1, "11 handled")
    assert w.stats().handled == 10
    w.stop()
    assert c.stats().workers.handled == 10
    for i in range(5):
        c.stream_publish("events", {"n": i})
    consumer = c.stream_consume("events", "g", "me", lambda e: None)
    wait_until(lambda: c.stats().consumers.acked == 5, "5 acked")
    consumer.stop()
    s = c.stats()
    assert isinstance(s.workers, redipc.WorkerStats) and isinstance(s.consumers, redipc.ConsumerStats)
    assert s.consumers.acked == 5
    assert s.as_dict()["workers"].handled == 10


def test_stats_are_frozen_records(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("unix")
    c.ping()
    s = c.stats()
    assert isinstance(s, redipc.ClientStats) and isinstance(s.latency, redipc.LatencyStats)
    with pytest.raises(AttributeError):
        s.commands = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.latency.count = 0  # type: ignore[misc]
    d = s.as_dict()
    assert set(d) == {
        "commands", "failed", "reconnects", "redirects", "pubsub_reconnects", "bytes_in", "bytes_out",
        "in_flight", "pubsub_received", "pubsub_dropped", "workers", "consumers", "latency",
    }
    assert d["latency"] == s.latency and d["commands"] == s.commands
    assert set(s.latency.as_dict()) == {"count", "p50", "p90", "p99", "p999", "max", "buckets"}
    assert s == s and s.latency == s.latency
    assert repr(s).startswith("ClientStats(commands=") and "LatencyStats(count=" in repr(s)
    # The record is a snapshot: later calls do not change it.
    before = s.commands
    c.ping()
    assert s.commands == before and c.stats().commands > before


def test_a_timeout_is_counted_and_leaves_nothing_in_flight(
    server: RedisServer, make_client: Callable[..., redipc.Client]
) -> None:
    slow = make_client("tcp", response_timeout=0.1)
    server.pause()
    try:
        with pytest.raises(redipc.TimeoutError):
            slow.get("k0")
    finally:
        server.resume()
    s = slow.stats()
    assert s.failed == {"timeout": 1}, s
    assert s.in_flight == 0


def test_pubsub_received_dropped_and_reconnects(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("tcp")
    admin = make_client("tcp")
    sub = c.subscribe("ticks", capacity=4, overflow="drop_oldest")
    for i in range(20):
        c.publish("ticks", str(i))
    wait_until(lambda: c.stats().pubsub_received == 20, "20 messages received")
    dropped = sub.stats().dropped
    # At most 4 are kept (the "activated" event may take a place too).
    assert 16 <= dropped <= 17, dropped
    assert c.stats().pubsub_dropped == dropped
    sub.close()  # a closed subscription's drops still count
    assert c.stats().pubsub_dropped == dropped

    sub = c.subscribe("ticks")
    assert admin.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    kinds: list[str] = []

    def reactivated() -> bool:
        m = sub.get(timeout=0.05)
        if m is not None:
            kinds.append(m.kind)
        return "reactivated" in kinds

    wait_until(reactivated, "pub/sub back")
    assert c.stats().pubsub_reconnects == 1
    assert c.stats().reconnects == 0


# --- logging -----------------------------------------------------------------------------


def test_the_log_tells_connection_changes_with_their_reason(
    server: RedisServer, make_client: Callable[..., redipc.Client], logs: pytest.LogCaptureFixture
) -> None:
    c = make_client("tcp")
    admin = make_client("tcp")
    port = str(server.port)
    # Records reach logging from a thread of the bridge: soon, not at once.
    wait_until(lambda: has(logs, "redipc.connection", logging.DEBUG, "connected to", port), "up")
    sub = c.subscribe("x")
    wait_until(lambda: has(logs, "redipc.pubsub", logging.DEBUG, "connected", port), "pub/sub up")

    assert kill_client(admin, c) == 1
    wait_until(
        lambda: has(logs, "redipc.connection", logging.WARNING, "lost", "closed", port),
        "down, with the reason",
    )
    wait_until(
        lambda: c.get("k") is None
        and has(logs, "redipc.connection", logging.INFO, "restored", port),
        "up again",
    )
    assert c.stats().reconnects == 1

    assert admin.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    wait_until(
        lambda: has(logs, "redipc.pubsub", logging.WARNING, "lost", port)
        and has(logs, "redipc.pubsub", logging.INFO, "restored", port),
        "pub/sub down and up",
    )
    assert c.stats().pubsub_reconnects == 1
    sub.close()
    # The levels are logging's own; the reason is in the message itself.
    lost = next(r for r in ours(logs, "redipc.connection") if "lost" in r.getMessage())
    assert lost.levelname == "WARNING" and re.search(r"lost: .+; reconnecting", lost.getMessage())
    assert not ours(logs, "redipc.report"), "reports are logged once, on 'redipc'"


def test_every_report_reaches_logging_exactly_once(
    make_client: Callable[..., redipc.Client], logs: pytest.LogCaptureFixture
) -> None:
    c = make_client("tcp")
    admin = make_client("tcp")
    c.command("DEL", "{q:obs-jobs}")

    def handler(req: redipc.Request) -> None:
        raise LookupError("no such job")

    with c.handle_requests("obs-jobs", handler, reliable=True, max_attempts=2, block_timeout=0.05):
        c.send_request("obs-jobs", "j1")
        wait_until(
            lambda: any(getattr(r, "redipc_kind", None) == "dead_lettered" for r in ours(logs)),
            "the request dead-lettered",
        )
    # A later record of the bridge: anything the bridge had queued before it is in.
    assert kill_client(admin, c) == 1
    wait_until(lambda: has(logs, "redipc.connection", logging.WARNING, "lost"), "a later record")

    reports = [r for r in ours(logs) if hasattr(r, "redipc_kind")]
    kinds = sorted(r.redipc_kind for r in reports)
    assert kinds == ["dead_lettered", "handler_failed"], kinds
    assert all(r.name == "redipc" for r in reports)
    # No other record repeats a report's text (the core logs reports too: not twice here).
    texts = [r.getMessage() for r in reports]
    for r in ours(logs):
        if not hasattr(r, "redipc_kind"):
            assert r.getMessage() not in texts, r.getMessage()
            assert "no such job" not in r.getMessage(), r.getMessage()
    failed = [r for r in reports if r.redipc_kind == "handler_failed"]
    assert all(r.levelno == logging.WARNING for r in failed)
    dead = next(r for r in reports if r.redipc_kind == "dead_lettered")
    assert dead.levelno == logging.ERROR


def test_a_child_logger_more_detailed_than_redipc_gets_its_records(
    make_client: Callable[..., redipc.Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="redipc")
    caplog.set_level(logging.DEBUG, logger="redipc.connection")
    make_client("unix")
    wait_until(lambda: has(caplog, "redipc.connection", logging.DEBUG, "connected to"), "DEBUG")


def test_records_below_the_level_are_not_logged(
    make_client: Callable[..., redipc.Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="redipc")
    c = make_client("tcp")
    admin = make_client("tcp")
    assert kill_client(admin, c) == 1
    wait_until(
        lambda: c.get("k") is None and has(caplog, "redipc.connection", logging.INFO, "restored"),
        "restored",
    )
    assert [r for r in ours(caplog) if r.levelno < logging.INFO] == []


# Run by another process while this one holds the GIL: kill every normal client of the
# server, wait until as many are back, then exit.
KILLER = r"""
import re, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
def cmd(c):
    s.sendall(c)
    return s.recv(65536).decode()
cmd(b"CLIENT KILL TYPE normal SKIPME yes\r\n")
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    m = re.search(r"connected_clients:(\d+)", cmd(b"INFO clients\r\n"))
    if m and int(m.group(1)) > n:
        break
    time.sleep(0.01)
time.sleep(0.3)
"""


def test_records_logging_cannot_take_in_time_are_counted_and_told(
    server: RedisServer, logs: pytest.LogCaptureFixture
) -> None:
    n = 800  # 2 records each (lost, restored): more than the queue's 1024
    clients = [redipc.Client(server.unix_url) for _ in range(n)]
    try:
        wait_until(
            lambda: len([r for r in ours(logs) if "connected to" in r.getMessage()]) >= n,
            "every first connect logged",
        )
        logs.clear()
        # While the other process kills the connections and they come back, this thread
        # holds the GIL (a call through ctypes.PyDLL keeps it): the bridge's thread cannot
        # hand records over, and more come than its queue holds.
        killer = subprocess.Popen([sys.executable, "-c", KILLER, server.sock, str(n)])
        status = ctypes.c_int()
        assert ctypes.PyDLL(None).waitpid(killer.pid, ctypes.byref(status), 0) == killer.pid
        killer.wait()
        wait_until(lambda: all(c.stats().reconnects == 1 for c in clients), "all reconnected")
        wait_until(
            lambda: any(r.name == "redipc" and "dropped" in r.getMessage() for r in ours(logs)),
            "the drop told",
        )
        told = [r for r in ours(logs) if r.name == "redipc" and "dropped" in r.getMessage()]
        assert all(r.levelno == logging.WARNING for r in told)
        counts = [re.match(r"(\d+) log records of redipc were dropped", r.getMessage()) for r in told]
        assert all(counts), [r.getMessage() for r in told]
        dropped = sum(int(m.group(1)) for m in counts if m)
        lost = [r for r in ours(logs, "redipc.connection") if " lost: " in r.getMessage()]
        restored = [r for r in ours(logs, "redipc.connection") if "restored" in r.getMessage()]
        # Nothing lost silently: what was logged and what was counted make up every record.
        assert len(lost) <= n and len(restored) <= n
        assert len(lost) + len(restored) + dropped >= 2 * n, (len(lost), len(restored), dropped)
        assert dropped > 0 and len(lost) + len(restored) >= 1024
    finally:
        for c in clients:
            c.close()


def test_a_failing_logging_filter_is_not_swallowed(
    make_client: Callable[..., redipc.Client],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[BaseException | None] = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(u.exc_value))

    def boom(record: logging.LogRecord) -> bool:
        raise RuntimeError("a broken filter")

    logger = logging.getLogger("redipc.connection")
    logger.addFilter(boom)
    try:
        make_client("tcp")
        wait_until(lambda: bool(seen), "the filter's exception reported")
    finally:
        logger.removeFilter(boom)
    assert isinstance(seen[0], RuntimeError) and str(seen[0]) == "a broken filter"


def test_no_credential_in_a_log_record_or_an_exception(
    private_server: RedisServer, logs: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-Pa55word"
    other = "another-Secret"
    port = private_server.port
    with redipc.Client(private_server.tcp_url) as setup:
        assert setup.command("CONFIG", "SET", "requirepass", secret) == "OK"
    url = f"redis://:{secret}@127.0.0.1:{port}/0"
    errors: list[str] = []
    c = redipc.Client(url)
    admin = redipc.Client(url)
    with_option = redipc.Client(f"redis://127.0.0.1:{port}/0", password=secret)
    # The password as a query parameter of a unix URL.
    with_query = redipc.Client(f"{private_server.unix_url}?pass={secret}")
    try:
        sub = c.subscribe("x")
        for x in (c, with_option, with_query):
            assert secret not in repr(x), repr(x)
        assert "pass=***" in repr(with_query)
        assert admin.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 2
        assert admin.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        wait_until(
            lambda: c.get("k") is None and with_option.get("k") is None, "reconnected"
        )
        wait_until(lambda: has(logs, "redipc.pubsub", logging.INFO, "restored"), "pub/sub back")
        # A wrong password, and malformed URLs that carry one.
        for bad in [
            f"redis://:{secret}-wrong@127.0.0.1:{port}/0",
            f"redis://:{secret}@127.0.0.1:notaport/0",
            f"rediss://user:{secret}@[::1/0",
            f"user:{secret}@host",
        ]:
            with pytest.raises(redipc.RedipcError) as e:
                redipc.Client(bad, connect_timeout=2)
            errors += [str(e.value), repr(e.value), *map(str, e.value.args)]
        with pytest.raises(redipc.RedipcError) as e:
            redipc.Client(f"redis://127.0.0.1:{port}/0", password=secret + "-wrong")
        errors += [str(e.value), repr(e.value)]
        # The server refusing a reconnect with a changed password.
        assert admin.command("CONFIG", "SET", "requirepass", other) == "OK"
        admin.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        wait_until(
            lambda: has(logs, "redipc.connection", logging.DEBUG, "reconnect", "failed"),
            "a refused reconnect logged",
        )
        with pytest.raises(redipc.RedipcError) as e:
            c.get("k")
        errors += [str(e.value), repr(e.value)]
        sub.close()
    finally:
        for x in (c, admin, with_option, with_query):
            x.close()
    for text in errors:
        assert secret not in text and other not in text, text
    records = ours(logs)
    assert any(r.name == "redipc.connection" for r in records)
    for r in records:
        everything = f"{r.getMessage()} {vars(r)!r}"
        assert secret not in everything and other not in everything, everything


# --- overload and limits -----------------------------------------------------------------


def assert_oom(what: str, call: Callable[[], Any]) -> None:
    with pytest.raises(redipc.ResponseError) as e:
        call()
    assert e.value.code == "OOM", f"{what}: {e.value}"


def test_at_maxmemory_writes_fail_with_oom_and_reads_and_pubsub_go_on(
    private_server: RedisServer,
) -> None:
    with redipc.Client(private_server.tcp_url) as c:
        c.set("before", "1")
        sub = c.subscribe("news")
        # Any memory in use is over a 1-byte limit: every write that may grow it is refused.
        assert c.command("CONFIG", "SET", "maxmemory-policy", "noeviction") == "OK"
        assert c.command("CONFIG", "SET", "maxmemory", "1") == "OK"

        assert_oom("set", lambda: c.set("k", "v"))
        assert_oom("send_request", lambda: c.send_request("jobs", "payload"))
        assert_oom("stream_publish", lambda: c.stream_publish("events", {"f": "v"}))
        assert_oom("hash_set", lambda: c.hash_set("state", "f", "v"))
        assert_oom("call", lambda: c.call("svc", "ping", timeout=0.5))
        with pytest.raises(redipc.RedipcError):
            c.tx().add("SET", "a", "1").exec()

        # Reads and pub/sub go on.
        assert c.get("before") == b"1"
        assert c.publish("news", "still here") == 1
        deadline = time.monotonic() + 5
        while True:
            m = sub.get(timeout=max(0.01, deadline - time.monotonic()))
            assert m is not None, "no message while at maxmemory"
            if m.kind == "message":
                assert m.payload == b"still here"
                break
        # Nothing was written behind the errors' back; with room, writes work again.
        assert c.command("CONFIG", "SET", "maxmemory", "0") == "OK"
        assert c.command("DBSIZE") == 1
        c.send_request("jobs", "payload")
        assert c.set("k", "v")
        assert c.stats().failed.get("server", 0) >= 5
        sub.close()


def test_max_reply_size_bounds_replies(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp")
    bounded = make_client("tcp", max_reply_size=1 << 20)
    c.set("small", b"x" * 500_000)
    assert bounded.get("small") == b"x" * 500_000
    c.set("big", b"x" * (8 << 20))
    with pytest.raises(redipc.ProtocolError, match="maximum reply size of 1048576 bytes"):
        bounded.get("big")
    # The connection that carried it is dropped and made again: the client goes on.
    assert bounded.get("small") == b"x" * 500_000
    s = bounded.stats()
    assert s.failed == {"protocol": 1}, s
    # On the shared connection (a pipeline always takes it) the same.
    with pytest.raises(redipc.ProtocolError, match="maximum reply size"):
        bounded.pipeline().add("GET", "big").exec()
    wait_until(lambda: bounded.stats().reconnects == 1, "the shared connection's reconnect")
    assert bounded.pipeline().add("GET", "small").exec() == [b"x" * 500_000]
    s = bounded.stats()
    assert s.failed == {"protocol": 2} and s.reconnects == 1, s
    with pytest.raises(redipc.InvalidArgument, match="max_reply_size"):
        make_client("tcp", max_reply_size=1000)
    with pytest.raises(redipc.InvalidArgument):
        make_client("tcp", max_reply_size=-1)
