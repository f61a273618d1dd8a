"""The core's reports in Python: each kind as a record of the ``redipc`` logger at the level
chosen from its kind, with its fields on the record; or to ``Client(on_report=...)``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

import redipc


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.01)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="redipc")
    return caplog


def records(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "redipc_kind", None) == kind]


def test_handler_failed_is_a_warning_with_the_exception(
    client: redipc.Client, logs: pytest.LogCaptureFixture
) -> None:
    def handler(req: redipc.Request) -> None:
        raise ValueError("bad request")

    with client.handle_requests("rq", handler, block_timeout=0.05) as w:
        client.send_request("rq", "x")
        wait_until(lambda: bool(records(logs, "handler_failed")), "reported")
    (r,) = records(logs, "handler_failed")
    assert r.name == "redipc" and r.levelno == logging.WARNING
    assert (r.redipc_source, r.redipc_name, r.redipc_attempt) == ("worker", b"rq", 1)  # type: ignore[attr-defined]
    assert isinstance(r.redipc_error, ValueError)  # type: ignore[attr-defined]
    assert r.exc_info is not None and r.exc_info[1] is r.redipc_error  # type: ignore[attr-defined]
    report = r.redipc_report  # type: ignore[attr-defined]
    assert isinstance(report, redipc.Report) and report.kind == "handler_failed"
    assert str(report) == r.getMessage() == report.text
    assert "ValueError: bad request" in report.text
    assert w.stats().failed == 1


def test_handler_failed_that_on_error_saw_is_debug(
    client: redipc.Client, logs: pytest.LogCaptureFixture
) -> None:
    seen: list[BaseException] = []

    def handler(req: redipc.Request) -> None:
        raise KeyError("k")

    with client.handle_requests("rq2", handler, block_timeout=0.05, on_error=seen.append):
        client.send_request("rq2", "x")
        wait_until(lambda: bool(records(logs, "handler_failed")), "reported")
    (r,) = records(logs, "handler_failed")
    assert r.levelno == logging.DEBUG
    assert seen and r.redipc_error is seen[0]  # type: ignore[attr-defined]


def test_dead_lettered_is_an_error(client: redipc.Client, logs: pytest.LogCaptureFixture) -> None:
    def handler(req: redipc.Request) -> None:
        raise RuntimeError("poison")

    w = client.handle_requests("dq", handler, reliable=True, max_attempts=1, block_timeout=0.05)
    with w:
        client.send_request("dq", "x")
        wait_until(lambda: bool(records(logs, "dead_lettered")), "dead-lettered")
    (r,) = records(logs, "dead_lettered")
    assert r.levelno == logging.ERROR
    assert (r.redipc_count, r.redipc_max_attempts) == (1, 1)  # type: ignore[attr-defined]
    assert isinstance(r.redipc_error, RuntimeError)  # type: ignore[attr-defined]
    assert client.dead_letters("dq")[0].error == "RuntimeError: poison"


def test_recovered_is_info(client: redipc.Client, logs: pytest.LogCaptureFixture) -> None:
    # A reliable consumer that died: registered, with a request in flight, no lease.
    client.command("SADD", "ipc:{q:rec}:consumers", "dead-one")
    client.command("RPUSH", "ipc:{q:rec}:inflight:dead-one", "left behind")
    got: list[tuple[bytes, int]] = []
    with client.handle_requests(
        "rec", lambda r: got.append((r.payload, r.attempt)), reliable=True, block_timeout=0.05
    ):
        wait_until(lambda: bool(got), "handled again")
    (r,) = records(logs, "recovered")
    assert r.levelno == logging.INFO and r.redipc_count == 1  # type: ignore[attr-defined]
    assert got == [(b"left behind", 1)], "the death counted as an attempt"


def test_connection_lost_then_restored(
    make_client: Callable[..., redipc.Client], logs: pytest.LogCaptureFixture
) -> None:
    c = make_client("tcp")
    admin = make_client("tcp")
    got: list[bytes] = []
    with c.handle_requests("lost", lambda r: got.append(r.payload), block_timeout=1) as w:
        # The worker's loop waits in BRPOP on a connection of its own: kill every client.
        wait_until(
            lambda: "cmd=brpop" in str(admin.command("CLIENT", "LIST", "TYPE", "normal")),
            "the worker blocked in BRPOP",
        )
        assert admin.command("CLIENT", "KILL", "TYPE", "normal") >= 1
        wait_until(lambda: bool(records(logs, "connection_lost")), "lost")
        c.send_request("lost", "after")
        wait_until(lambda: got == [b"after"], "working again")
        wait_until(lambda: bool(records(logs, "connection_restored")), "restored")
    lost = records(logs, "connection_lost")[0]
    restored = records(logs, "connection_restored")[0]
    assert lost.levelno == logging.WARNING and restored.levelno == logging.INFO
    assert lost.redipc_during and isinstance(lost.redipc_error, redipc.ConnectionError)  # type: ignore[attr-defined]
    assert lost.redipc_source == restored.redipc_source == "worker"  # type: ignore[attr-defined]
    assert w.stats().handled == 1


def test_read_failed_is_a_warning_without_on_error(
    client: redipc.Client, logs: pytest.LogCaptureFixture
) -> None:
    got: list[bytes | None] = []
    client.hash_set("rf", "a", 1)
    with client.hash_watch("rf", on_any=lambda f, v: got.append(v)):
        wait_until(lambda: got == [b"1"], "the initial sync")
        client.command("DEL", "rf")
        client.command("SET", "rf", "not a hash")
        client.command("PUBLISH", "rf", "a")
        wait_until(lambda: bool(records(logs, "read_failed")), "the read error")
        client.command("DEL", "rf")
        client.command("HSET", "rf", "a", "2")
        wait_until(lambda: got[-1:] == [b"2"], "read again, whole")
    r = records(logs, "read_failed")[0]
    assert r.levelno == logging.WARNING and r.redipc_source == "hash_watcher"  # type: ignore[attr-defined]
    assert isinstance(r.redipc_error, redipc.ResponseError)  # type: ignore[attr-defined]
    assert r.redipc_error.code == "WRONGTYPE"  # type: ignore[attr-defined]


def test_on_report_gets_the_reports_instead_of_logging(
    make_client: Callable[..., redipc.Client], logs: pytest.LogCaptureFixture
) -> None:
    reports: list[redipc.Report] = []
    lock = threading.Lock()

    def on_report(r: redipc.Report) -> None:
        with lock:
            reports.append(r)

    c = make_client("tcp", on_report=on_report)
    c.command("DEL", "ipc:{q:or}:pending")

    def handler(req: redipc.Request) -> None:
        raise ValueError("nope")

    with c.handle_requests("or", handler, block_timeout=0.05):
        c.send_request("or", "x")
        wait_until(lambda: bool(reports), "reported")
    r = reports[0]
    assert (r.kind, r.source, r.name, r.attempt) == ("handler_failed", "worker", b"or", 1)
    assert isinstance(r.error, ValueError) and "ValueError: nope" in str(r)
    assert r.group is None and r.item is None and r.during is None
    assert records(logs, "handler_failed") == [], "not logged as well"
