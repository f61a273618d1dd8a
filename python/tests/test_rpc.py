"""RPC: calls, remote errors, no server, deadlines, concurrency, cleanup, big payloads,
and calls across languages with the C example ``rpc_echo``."""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import redipc
from conftest import RedisServer

REPO = Path(__file__).resolve().parents[2]


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.005)


def call_or_none(c: redipc.Client, service: str, **kw: object) -> bytes | None:
    """The reply to ``service``, or None for NoServerError."""
    try:
        return c.call(service, "a", **kw)  # type: ignore[arg-type]
    except redipc.NoServerError:
        return None


def upper(call: redipc.Call) -> bytes:
    return call.payload.upper()


def test_happy_path(client: redipc.Client) -> None:
    seen: list[redipc.Call] = []

    def handler(call: redipc.Call) -> bytes:
        seen.append(call)
        return call.payload.upper()

    with client.serve("echo", handler) as s:
        assert s.running and s.service == b"echo"
        before = time.time()
        assert client.call("echo", "hello") == b"HELLO"
        assert client.call("echo", b"x", method="m", timeout=2) == b"X"
        # Counted just after the reply is sent.
        wait_until(lambda: s.stats().handled == 2, "2 handled")
    assert not s.running
    assert seen[0].method == "" and seen[0].payload == b"hello"
    assert before < seen[0].deadline <= time.time() + 5
    assert seen[1].method == "m"
    assert "payload=b'x'" in repr(seen[1])


def test_replies_of_every_accepted_type(client: redipc.Client) -> None:
    replies: dict[str, Any] = {
        "bytes": b"b",
        "str": "s\u00e9",
        "bytearray": bytearray(b"ba"),
        "memoryview": memoryview(b"mv"),
        "none": None,
    }
    with client.serve("types", lambda call: replies[call.method]):
        assert client.call("types", "", method="bytes") == b"b"
        assert client.call("types", "", method="str") == "s\u00e9".encode()
        assert client.call("types", "", method="bytearray") == b"ba"
        assert client.call("types", "", method="memoryview") == b"mv"
        assert client.call("types", "", method="none") == b""


def test_handler_errors_reach_the_caller_and_the_server_survives(client: redipc.Client) -> None:
    def handler(call: redipc.Call) -> Any:
        if call.method == "value":
            raise ValueError(f"bad input {call.payload.decode()}")
        if call.method == "remote":
            raise redipc.RemoteError("no such user")
        if call.method == "int":
            return 42
        return call.payload

    with client.serve("svc", handler, concurrency=2) as s:
        with pytest.raises(redipc.RemoteError) as info:
            client.call("svc", "7", method="value")
        assert "ValueError: bad input 7" in str(info.value)
        assert isinstance(info.value, redipc.RedipcError)
        with pytest.raises(redipc.RemoteError) as info:
            client.call("svc", "", method="remote")
        assert str(info.value).endswith(": no such user")
        assert "RemoteError" not in str(info.value)
        with pytest.raises(redipc.RemoteError, match="TypeError: the handler returned int"):
            client.call("svc", "", method="int")
        assert client.call("svc", "still here") == b"still here"
        wait_until(lambda: s.stats().handled == 4, "4 handled")
        assert s.stats().failed == 0


def test_no_server(client: redipc.Client) -> None:
    start = time.monotonic()
    with pytest.raises(redipc.NoServerError):
        client.call("nobody", "x", timeout=0.2)
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    with pytest.raises(redipc.NoServerError) as info:
        client.call("nobody", "x", fail_fast=True)
    assert time.monotonic() - start < 0.5
    assert "nobody" in str(info.value)
    # A stopped server is no server.
    with client.serve("gone", upper) as s:
        assert client.call("gone", "a") == b"A"
        # serve() returns before the server announced itself (see the report).
        wait_until(lambda: call_or_none(client, "gone", fail_fast=True) == b"A", "announced")
    s.stop()
    with pytest.raises(redipc.NoServerError):
        client.call("gone", "x", fail_fast=True)


def test_a_dropped_server_is_stopped_in_the_background(client: redipc.Client) -> None:
    s = client.serve("dropped", upper)
    wait_until(lambda: call_or_none(client, "dropped", fail_fast=True) == b"A", "announced")
    del s
    gc.collect()
    wait_until(lambda: call_or_none(client, "dropped", fail_fast=True) is None, "gone")


def test_a_slow_server_times_out_and_expired_requests_are_not_run(
    client: redipc.Client, make_client: Callable[..., redipc.Client]
) -> None:
    ran: list[bytes] = []
    started = threading.Event()
    release = threading.Event()

    def handler(call: redipc.Call) -> bytes:
        ran.append(call.payload)
        if call.payload == b"block":
            started.set()
            release.wait(10)
        return b"ok"

    other = make_client("tcp")
    with client.serve("slow", handler, concurrency=1) as s:
        results: list[object] = []
        blocker = threading.Thread(target=lambda: results.append(other.call("slow", "block", timeout=10)))
        blocker.start()
        assert started.wait(10)
        start = time.monotonic()
        with pytest.raises(redipc.TimeoutError):
            client.call("slow", "late", timeout=0.2)
        assert 0.15 < time.monotonic() - start < 1.5
        release.set()
        blocker.join(10)
        assert results == [b"ok"]
        # "late" is gone without running: the caller took its expired request back (had
        # the server popped it first, it would have dropped it unrun).
        wait_until(lambda: client.command("LLEN", "ipc:{rpc:slow}:pending") == 0, "the expired request is gone")
    assert ran == [b"block"]


def test_sixteen_concurrent_callers_get_their_own_replies(client: redipc.Client) -> None:
    errors: list[BaseException] = []
    calls = 50

    def caller(t: int) -> None:
        try:
            for i in range(calls):
                payload = f"t{t}-{i}"
                assert client.call("echo", payload, timeout=10) == payload.upper().encode()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    with client.serve("echo", upper, concurrency=4) as s:
        threads = [threading.Thread(target=caller, args=(t,)) for t in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        wait_until(lambda: s.stats().handled == 16 * calls, "all handled")


def test_a_thousand_calls_leave_no_keys_or_subscriptions_behind(
    make_client: Callable[..., redipc.Client],
) -> None:
    admin = make_client("tcp")
    admin.command("FLUSHALL")
    c = make_client("tcp")
    s = c.serve("echo", lambda call: call.payload, concurrency=2)
    for i in range(1000):
        assert c.call("echo", str(i)) == str(i).encode()
    s.stop()
    assert admin.command("KEYS", "*") == []
    # One reply channel for the whole client, not one per call.
    assert len(admin.command("PUBSUB", "CHANNELS")) <= 1
    c.close()
    wait_until(lambda: admin.command("PUBSUB", "CHANNELS") == [], "no channel left", 5)


def test_methods_and_unknown_methods(client: redipc.Client) -> None:
    def add(call: redipc.Call) -> str:
        a, b = call.payload.split(b"+")
        return str(int(a) + int(b))

    with client.serve_methods("calc", {"add": add, "echo": lambda call: call.payload}, concurrency=2):
        assert client.call("calc", "2+3", method="add") == b"5"
        assert client.call("calc", "x", method="echo") == b"x"
        with pytest.raises(redipc.RemoteError, match='unknown method "mul"'):
            client.call("calc", "2*3", method="mul")
        with pytest.raises(redipc.RemoteError, match='unknown method ""'):
            client.call("calc", "x")
        with pytest.raises(redipc.RemoteError, match="ValueError"):
            client.call("calc", "nonsense", method="add")


def test_zero_and_sixteen_mib_payloads(client: redipc.Client) -> None:
    big = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    with client.serve("echo", lambda call: call.payload):
        assert client.call("echo", b"") == b""
        assert client.call("echo", big, timeout=30) == big


def test_stop_from_inside_a_handler_and_calls_from_a_handler(client: redipc.Client) -> None:
    holder: list[redipc.RpcServer] = []

    def stopper(call: redipc.Call) -> bytes:
        holder[0].stop()
        return b"bye"

    inner = client.serve("inner", upper)
    outer = client.serve("outer", lambda call: client.call("inner", call.payload) + b"!")
    try:
        assert client.call("outer", "hi") == b"HI!"
    finally:
        outer.stop()
        inner.stop()
    holder.append(client.serve("stopper", stopper))
    assert client.call("stopper", "x") == b"bye"
    wait_until(lambda: not holder[0].running, "stopped")


def test_bad_input(client: redipc.Client) -> None:
    with pytest.raises(redipc.InvalidArgument):
        client.call("", "x")
    with pytest.raises(redipc.InvalidArgument):
        client.call("a{b}", "x")
    with pytest.raises(redipc.InvalidArgument):
        client.call("svc", "x", timeout=0)
    with pytest.raises(TypeError):
        client.call("svc", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.serve("svc", 42)  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument):
        client.serve("", upper)
    with pytest.raises(redipc.InvalidArgument):
        client.serve("svc", upper, concurrency=0)
    # No methods is the core's business: a server that answers every call "unknown method".
    with client.serve_methods("none", {}):
        with pytest.raises(redipc.RemoteError, match="unknown method"):
            client.call("none", "x", method="m")
    with pytest.raises(TypeError):
        client.serve_methods("svc", {"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        client.serve_methods("svc", {1: upper})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        client.serve_methods("svc", [upper])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Across languages


def c_example(name: str) -> Path:
    path = REPO / "c-examples" / "build" / name
    if not path.exists():
        if os.environ.get("REDIPC_SKIP_C") == "1":
            pytest.skip(f"{path} is not built (REDIPC_SKIP_C=1)")
        pytest.fail(f"{path} is missing: build it: make -C c-examples")
    return path


@pytest.fixture
def c_server(server: RedisServer) -> Iterator[str]:
    """``rpc_echo serve`` on the service ``c-echo``, running until the test ends."""
    program = c_example("rpc_echo")
    proc = subprocess.Popen(
        [str(program), "serve", server.tcp_url, "c-echo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode(errors="replace")
        yield "c-echo"
        # A line "quit" stops it: it waits for running calls, says "stopped", exits 0.
        proc.stdin.write(b"quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == b"stopped\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()


def test_a_c_server_answers_a_python_caller(
    make_client: Callable[..., redipc.Client], c_server: str
) -> None:
    c = make_client("tcp")
    # The server announces itself once it runs: until then, NoServerError at once.
    deadline = time.monotonic() + 10
    while True:
        try:
            reply = c.call(c_server, "hello from python", fail_fast=True)
            break
        except redipc.NoServerError:
            assert time.monotonic() < deadline, "the C server did not start"
            time.sleep(0.02)
    assert reply == b"HELLO FROM PYTHON"
    assert c.call(c_server, b"") == b""
    with pytest.raises(redipc.RemoteError, match="failed on purpose"):
        c.call(c_server, "x", method="fail")
    assert c.call(c_server, "again") == b"AGAIN"


def test_a_python_server_answers_a_c_caller(
    make_client: Callable[..., redipc.Client], server: RedisServer
) -> None:
    program = c_example("rpc_echo")
    c = make_client("tcp")

    def handler(call: redipc.Call) -> bytes:
        if call.method == "fail":
            raise redipc.RemoteError("failed on purpose")
        return call.payload.upper()

    with c.serve("py-echo", handler, concurrency=2):
        ok = subprocess.run(
            [str(program), "call", server.tcp_url, "py-echo", "hello from c"],
            capture_output=True,
            timeout=30,
        )
        assert ok.returncode == 0, ok.stderr.decode(errors="replace")
        assert ok.stdout.strip() == b"HELLO FROM C"
        failed = subprocess.run(
            [str(program), "call", server.tcp_url, "py-echo", "x", "fail"],
            capture_output=True,
            timeout=30,
        )
        assert failed.returncode == 1
        assert failed.stdout.startswith(b"ERROR IPC_ERR_REMOTE "), failed.stdout
        assert failed.stdout.rstrip().endswith(b"failed on purpose"), failed.stdout
        # A 0-byte payload, both ways.
        empty = subprocess.run(
            [str(program), "call", server.tcp_url, "py-echo", ""],
            capture_output=True,
            timeout=30,
        )
        assert (empty.returncode, empty.stdout) == (0, b"\n")
