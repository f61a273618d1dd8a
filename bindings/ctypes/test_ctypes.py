"""Tests of redipc_ctypes against the built library and a private redis-server.

Run: .venv/bin/python -m pytest bindings/ctypes   (after cargo build --release -p redipc-ffi)

The server is started here on a free TCP port of 127.0.0.1 (never 6379) and a unix socket
in a temporary directory, with persistence off. REDIPC_LIB selects the library (default:
target/release/libredipc.so of this checkout).
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import redipc_ctypes as r  # noqa: E402

LIB = os.environ.get("REDIPC_LIB") or str(REPO / "target" / "release" / "libredipc.so")


# ---------------------------------------------------------------------------------------
# Fixtures


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


def _pong(family: int, addr: Any) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(addr)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Server:
    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.sock = os.path.join(directory, "redis.sock")
        self.port = 0
        self.proc: "subprocess.Popen[bytes] | None" = None

    def start(self) -> None:
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port", str(self.port), "--bind", "127.0.0.1",
                    "--unixsocket", self.sock, "--unixsocketperm", "700",
                    "--save", "", "--appendonly", "no", "--dir", self.dir,
                    "--logfile", os.path.join(self.dir, "redis.log"),
                ],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _pong(socket.AF_UNIX, self.sock) and _pong(socket.AF_INET, ("127.0.0.1", self.port)):
                    return
                time.sleep(0.02)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def url(self, transport: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if transport == "tcp" else f"unix://{self.sock}"


@pytest.fixture(scope="session")
def lib() -> Any:
    if not os.path.exists(LIB):
        pytest.fail(f"{LIB} is missing: run cargo build --release -p redipc-ffi")
    return r.load(LIB)


@pytest.fixture(scope="session")
def server(lib: Any) -> Iterator[Server]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="redipc-ctypes-")
    s = Server(directory)
    s.start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def make_client(server: Server) -> Iterator[Callable[..., r.Client]]:
    made: List[r.Client] = []

    def make(transport: str = "tcp", **options: Any) -> r.Client:
        c = r.Client(server.url(transport), **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(params=["tcp", "unix"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(make_client: Callable[..., r.Client], transport: str) -> r.Client:
    c = make_client(transport)
    assert c.command("FLUSHALL") == "OK"
    return c


def kill_client(admin: r.Client, c: r.Client) -> None:
    """Kill the client's command connections: the shared one (a pipeline always takes it)
    and, when a lone call takes another (the blocking caller's direct connection), that one
    too."""
    with c.pipeline() as p:
        (shared,) = p.add("CLIENT", "ID").exec()
    lone = c.command("CLIENT", "ID")
    admin.command("CLIENT", "KILL", "ID", shared)
    if lone != shared:
        admin.command("CLIENT", "KILL", "ID", lone)


def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.005)


def table_size() -> int:
    return len(r._table)


# ---------------------------------------------------------------------------------------
# The generated declarations


def test_generated_declarations_are_fresh() -> None:
    """gen.py --check passes: the module matches include/redipc.h."""
    p = subprocess.run([sys.executable, str(HERE / "gen.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_check_fails_on_a_changed_header(tmp_path: Path) -> None:
    header = (REPO / "include" / "redipc.h").read_text()
    changed = header.replace("IPC_ERR_TIMEOUT = 200,", "IPC_ERR_TIMEOUT = 200,\n    IPC_ERR_NEW = 201,")
    assert changed != header
    (tmp_path / "redipc.h").write_text(changed)
    p = subprocess.run(
        [sys.executable, str(HERE / "gen.py"), "--check", "--header", str(tmp_path / "redipc.h")],
        capture_output=True, text=True,
    )
    assert p.returncode == 1
    assert "IPC_ERR_NEW = 201" in p.stderr and "stale" in p.stderr


def test_every_header_function_is_declared_and_exported(lib: Any) -> None:
    header = (REPO / "include" / "redipc.h").read_text()
    import re

    names = set(re.findall(r"^\s*(?:IPC_MUST_USE\s+)?[\w\s\*]*?\b(ipc_\w+)\(", header, re.M))
    assert names and names <= set(r._FUNCTIONS)
    assert lib.redipc_missing == []
    assert r.ipc_result.IPC_ERR_SERVER == 300
    assert r.ipc_reply_kind.IPC_REPLY_PUSH == 12
    assert r.IPC_STREAM_ID_MAX >= 42
    assert r.version() == lib.ipc_version().decode()
    assert lib.ipc_result_name(r.ipc_result.IPC_ERR_TIMEOUT) == b"IPC_ERR_TIMEOUT"


def test_struct_layouts_match_the_c_sizes() -> None:
    """The layouts follow the C ABI of x86-64/aarch64 (pointers 8, size_t 8)."""
    import ctypes

    assert ctypes.sizeof(r.ipc_message) == 4 + 4 + 6 * 8
    assert ctypes.sizeof(r.ipc_request) == 5 * 8
    assert ctypes.sizeof(r.ipc_report) == 96
    assert ctypes.sizeof(r.ipc_field) == 4 * 8
    assert ctypes.sizeof(r.ipc_client_counts) == 304  # 296 in the first version; then `redirects`


def test_loading_by_environment_variable_and_a_bad_path(tmp_path: Path) -> None:
    code = "import redipc_ctypes as r; print(r.version(), r.load().redipc_path)"
    env = dict(os.environ, REDIPC_LIB=LIB, PYTHONPATH=str(HERE))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [r.version(), LIB]
    env["REDIPC_LIB"] = str(tmp_path / "nothing.so")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode != 0 and "libredipc not found" in p.stderr and "nothing.so" in p.stderr


# ---------------------------------------------------------------------------------------
# Commands and errors


def test_commands_and_typed_helpers(client: r.Client) -> None:
    assert client.ping() is True
    assert client.is_connected()
    assert client.command("PING") == "PONG"
    assert client.command("ECHO", b"hi") == b"hi"
    assert client.command("SET", "k", 42) == "OK"
    assert client.command("INCRBY", "k", 8) == 50
    assert client.command("GET", "missing") is None
    assert client.command("RPUSH", "l", "a", "b") == 2
    assert client.command("LRANGE", "l", 0, -1) == [b"a", b"b"]
    assert client.command("HSET", "h", "f", "v") == 1
    assert client.command("HGETALL", "h") == {b"f": b"v"}  # RESP3 map
    assert client.command("SADD", "s", "x") == 1
    assert client.command("SMEMBERS", "s") == {b"x"}
    assert client.command("ZADD", "z", 1.5, "m") == 1
    assert client.command("ZSCORE", "z", "m") == 1.5
    assert client.get("k") == b"50"
    assert client.set("bin", b"\x00\xff\r\n") is True
    assert client.get("bin") == b"\x00\xff\r\n"
    assert client.set("k", "h\u00e9llo") and client.get(b"k") == "h\u00e9llo".encode()
    assert client.set("nx", 1, nx=True) is True
    assert client.set("nx", 2, nx=True) is False
    assert client.set("ttl", "v", ttl_ms=10_000) and 9_000 < client.command("PTTL", "ttl") <= 10_000
    assert client.incr("n") == 1
    assert client.incr("n", 10) == 11
    assert client.incr("n", -12) == -1
    assert client.hset("h", "f2", bytearray(b"v2")) == 1
    assert client.hset("h", "f2", "v3") == 0
    assert client.hget("h", "f2") == b"v3"
    assert client.hget("h", "nope") is None
    assert client.delete("k") == 1
    assert client.delete("k") == 0
    assert client.publish("nobody-listens", "x") == 0


def test_resp2_replies(make_client: Callable[..., r.Client]) -> None:
    c = make_client("tcp", resp3=False)
    c.command("HSET", "resp2", "f", "v")
    assert c.command("HGETALL", "resp2") == [b"f", b"v"]
    c.command("DEL", "resp2")


@pytest.mark.parametrize("url", ["", "localhost:6379", "http://example.invalid", "redis://h:notaport"])
def test_invalid_url(lib: Any, url: str) -> None:
    with pytest.raises(r.InvalidArgument) as e:
        r.Client(url)
    assert e.value.result == r.ipc_result.IPC_ERR_INVALID_ARGUMENT
    assert e.value.name == "IPC_ERR_INVALID_ARGUMENT"
    assert e.value.message and str(e.value).startswith("IPC_ERR_INVALID_ARGUMENT: ")
    assert isinstance(e.value, ValueError)


def test_unreachable_and_unsupported(lib: Any, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(r.ConnectionError) as e:
        r.Client("redis://127.0.0.1:1", connect_timeout_ms=1000)
    assert time.monotonic() - start < 2
    assert isinstance(e.value, ConnectionError) and e.value.name == "IPC_ERR_CONNECTION"
    with pytest.raises(r.ConnectionError):
        r.Client(f"unix://{tmp_path}/nothing.sock", connect_timeout_ms=1000)
    with pytest.raises(r.ConnectionError):
        r.Client("rediss://127.0.0.1:1", connect_timeout_ms=1000)
    # TLS settings are read when the client is made (c-examples/tls_test.c connects over TLS).
    with pytest.raises(r.InvalidArgument, match="rediss://"):
        r.Client("redis://127.0.0.1:1", tls_insecure=True)
    with pytest.raises(r.InvalidArgument, match="CA"):
        r.Client("rediss://127.0.0.1:1", tls_ca_pem=b"not PEM", tls_server_name="localhost")
    with pytest.raises(r.InvalidArgument, match="ca.crt"):
        r.Client("rediss://127.0.0.1:1", tls_ca_file="/nonexistent/ca.crt")


def test_options(server: Server) -> None:
    with pytest.raises(r.InvalidArgument):
        r.Client(server.url("tcp"), connect_timeout_ms=0)
    with pytest.raises(TypeError, match="unknown option"):
        r.Client(server.url("tcp"), no_such_option=1)
    with pytest.raises(TypeError, match="response_timeout_ms"):
        r.Client(server.url("tcp"), response_timeout_ms="soon")
    with pytest.raises(TypeError, match="url"):
        r.Client(b"redis://127.0.0.1")  # type: ignore[arg-type]
    with r.Client(server.url("unix"), client_name="ctypes-test", database=3, response_timeout_ms=2000) as c:
        assert c.command("CLIENT", "GETNAME") == b"ctypes-test"
        c.set("in-db-3", "x")
        assert c.command("EXISTS", "in-db-3") == 1
        c.delete("in-db-3")


def test_wrongtype_and_unknown_command(client: r.Client) -> None:
    client.command("RPUSH", "list", "a")
    with pytest.raises(r.ResponseError) as e:
        client.get("list")
    err = e.value
    assert err.code == "WRONGTYPE"
    assert err.result == 300 and err.name == "IPC_ERR_SERVER"
    assert "Operation against a key holding the wrong kind of value" in err.message
    assert "GET list" in err.message
    with pytest.raises(r.ResponseError) as e:
        client.incr("list")
    assert e.value.code == "WRONGTYPE"
    with pytest.raises(r.ResponseError) as e:
        client.command("NOSUCHCOMMAND", "x")
    assert e.value.code == "ERR" and "unknown command" in e.value.message
    # The client goes on working.
    assert client.command("LPOP", "list") == b"a"


def test_misuse_is_caught_in_python(client: r.Client, lib: Any, server: Server) -> None:
    import ctypes

    # The raw layer: a NULL handle is refused by the library, and errcheck raises.
    n = ctypes.c_int64()
    with pytest.raises(r.InvalidArgument) as e:
        lib.ipc_incr(None, b"k", 1, ctypes.byref(n))
    assert e.value.name == "IPC_ERR_NULL_ARG" and e.value.result == 601
    # A handle of the wrong type never reaches C.
    with pytest.raises(ctypes.ArgumentError):
        lib.ipc_ping(ctypes.POINTER(r.ipc_reply)())
    # NULL-ish values in the Pythonic layer.
    with pytest.raises(TypeError, match="key"):
        client.get(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.command("SET", "k", None)
    with pytest.raises(TypeError):
        client.command("SET", "k", True)
    with pytest.raises(r.InvalidArgument):
        client.command()
    with pytest.raises(r.InvalidArgument, match="NUL"):
        client.watch_keys("*", lambda k, e: None, events=["a\0b"])
    with pytest.raises(TypeError, match="callable"):
        client.subscribe("c", callback=None)  # type: ignore[arg-type]
    # Use after close, and closing twice.
    c2 = r.Client(server.url("unix"))
    c2.close()
    c2.close()
    assert c2.closed
    with pytest.raises(r.ClosedError) as e:
        c2.get("k")
    assert e.value.name == "IPC_ERR_CLOSED"
    with pytest.raises(r.ClosedError):
        c2.subscribe("x", callback=print)


def test_big_value_round_trip_and_the_size_limit(make_client: Callable[..., r.Client], transport: str) -> None:
    c = make_client(transport)
    big = os.urandom(1024) * (16 * 1024)  # 16 MiB
    assert c.set("big", big)
    assert c.get("big") == big
    assert c.command("STRLEN", "big") == len(big)
    c.delete("big")
    small = make_client(transport, max_value_size=1000)
    with pytest.raises(r.InvalidArgument):
        small.set("x", b"a" * 1001)
    assert small.set("x", b"a" * 1000)
    assert small.ping()
    small.delete("x")


def test_a_client_shared_by_threads(client: r.Client) -> None:
    errors: List[BaseException] = []

    def run(i: int) -> None:
        try:
            for _ in range(200):
                client.incr("shared")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert client.get("shared") == b"1600"


def test_close_ends_calls_of_other_threads_then_frees(make_client: Callable[..., r.Client]) -> None:
    """close() ends a call running in another thread (ipc_client_close() cuts calls in
    flight: a BLPOP gets ClosedError at once), frees the handle only after that call
    returned, and later calls raise ClosedError."""
    c = make_client("tcp")
    results: List[Any] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        try:
            results.append(c.command("BLPOP", "nothing-comes", 5))
        except r.RedipcError as e:
            results.append(e)

    t = threading.Thread(target=slow)
    t.start()
    started.wait()
    time.sleep(0.2)
    start = time.monotonic()
    c.close()
    assert time.monotonic() - start < 2, "close() did not end the running BLPOP"
    t.join(5)
    assert not t.is_alive()
    assert len(results) == 1 and isinstance(results[0], r.ClosedError), results
    with pytest.raises(r.ClosedError):
        c.ping()


# ---------------------------------------------------------------------------------------
# Pub/sub


@pytest.fixture
def publisher(make_client: Callable[..., r.Client]) -> r.Client:
    return make_client("unix")


def test_subscribe_callback_gets_messages_in_order(
    make_client: Callable[..., r.Client], publisher: r.Client, transport: str
) -> None:
    c = make_client(transport)
    got: List[r.Message] = []
    done = threading.Event()
    threads = set()

    def cb(m: r.Message) -> None:
        threads.add(threading.get_ident())
        got.append(m)
        if m.kind == "message" and m.payload == b"999":
            done.set()

    before = table_size()
    with c.subscribe("ordered", callback=cb) as sub:
        assert table_size() == before + 1
        wait_until(lambda: len(got) > 0, "activated")
        assert got[0].kind == "activated" and got[0].channel == b"ordered"
        for i in range(1000):
            publisher.publish("ordered", str(i))
        assert done.wait(10)
        wait_until(lambda: sub.stats()["delivered"] == 1001, "1001 counted")
    messages = [m.payload for m in got if m.kind == "message"]
    assert messages == [str(i).encode() for i in range(1000)]
    assert all(m.channel == b"ordered" and m.sub_kind == "channel" and m.pattern is None for m in got[1:])
    assert threading.get_ident() not in threads
    assert table_size() == before, "userdata_free released the table entry"


def test_pattern_and_binary_names(make_client: Callable[..., r.Client], publisher: r.Client) -> None:
    c = make_client("tcp")
    got: List[r.Message] = []
    ev = threading.Event()

    def cb(m: r.Message) -> None:
        got.append(m)
        if m.kind == "message":
            ev.set()

    with c.psubscribe("news.*", callback=cb):
        publisher.publish("news.x", b"\x00payload")
        assert ev.wait(5)
    msg = [m for m in got if m.kind == "message"][0]
    assert msg.pattern == b"news.*" and msg.channel == b"news.x" and msg.payload == b"\x00payload"
    assert msg.sub_kind == "pattern"
    ev.clear()
    got.clear()
    with c.subscribe(b"bin\x00chan", callback=cb) as sub:
        sub.add("second")
        publisher.publish("second", "2")
        assert ev.wait(5)
        sub.remove("second")
    assert [m.channel for m in got if m.kind == "activated"] == [b"bin\x00chan", b"second"]


def test_no_callback_after_close_returns(make_client: Callable[..., r.Client], publisher: r.Client) -> None:
    c = make_client("tcp")
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.publish("flood", "x")

    t = threading.Thread(target=publish)
    t.start()
    try:
        for _ in range(5):
            count = [0]
            closed = [False]
            after: List[int] = []
            first = threading.Event()

            def cb(m: r.Message) -> None:
                if closed[0]:
                    after.append(1)
                count[0] += 1
                if m.kind == "message":
                    first.set()
                time.sleep(0.001)

            sub = c.subscribe("flood", callback=cb)
            assert first.wait(5)
            sub.close()
            closed[0] = True
            n = count[0]
            time.sleep(0.05)
            assert count[0] == n and not after
    finally:
        stop.set()
        t.join()


def test_a_raising_callback_does_not_crash_and_later_messages_arrive(
    make_client: Callable[..., r.Client], publisher: r.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = make_client("tcp")
    ok: List[bytes] = []
    done = threading.Event()

    def cb(m: r.Message) -> None:
        if m.payload == b"bad":
            raise ValueError("bad payload")
        if m.kind == "message":
            ok.append(m.payload)
            if len(ok) == 2:
                done.set()

    # With on_error.
    errors: List[BaseException] = []
    with c.subscribe("fails", callback=cb, on_error=errors.append):
        for p in ("bad", "ok1", "bad", "ok2"):
            publisher.publish("fails", p)
        assert done.wait(5)
    assert ok == [b"ok1", b"ok2"]
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors)
    assert errors[0].__traceback__ is not None

    # Without: sys.unraisablehook, with the callback as the object.
    reported: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    ok.clear()
    done.clear()
    with c.subscribe("fails2", callback=cb):
        for p in ("bad", "ok1", "ok2"):
            publisher.publish("fails2", p)
        assert done.wait(5)
    assert len(reported) == 1
    assert reported[0].exc_type is ValueError and reported[0].object is cb
    assert "bad payload" in str(reported[0].exc_value)

    # An on_error that raises: its exception is reported; KeyboardInterrupt is caught too.
    def kb(m: r.Message) -> None:
        if m.kind == "message":
            done.set()
            raise KeyboardInterrupt

    def failing_hook(e: BaseException) -> None:
        raise RuntimeError("the hook failed too")

    done.clear()
    with c.subscribe("fails3", callback=kb, on_error=failing_hook):
        publisher.publish("fails3", "x")
        assert done.wait(5)
        wait_until(lambda: len(reported) == 2, "reported")
    assert reported[1].exc_type is RuntimeError and reported[1].object is failing_hook
    assert c.ping()


def test_default_unraisable_report_goes_to_stderr(server: Server) -> None:
    code = f"""
import sys, threading, redipc_ctypes as r
r.load({LIB!r})
r.set_log_callback(lambda *line: None, "trace")
c = r.Client({server.url("tcp")!r})
ev = threading.Event()
def cb(m):
    if m.kind == "message":
        ev.set()
        raise ValueError("boom")
s = c.subscribe("stderr-test", callback=cb)
c.publish("stderr-test", "x")
ev.wait(5)
s.close()
print("alive", c.ping())
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(HERE)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "alive True"
    assert "Exception ignored in redipc callback" in p.stderr and "ValueError: boom" in p.stderr


def test_close_from_inside_the_callback(make_client: Callable[..., r.Client], publisher: r.Client) -> None:
    c = make_client("tcp")
    calls: List[bytes] = []
    holder: List[r.Subscription] = []
    closed = threading.Event()

    def cb(m: r.Message) -> None:
        if m.kind == "message":
            calls.append(m.payload)
            holder[0].close()
            closed.set()

    holder.append(c.subscribe("selfclose", callback=cb))
    publisher.publish("selfclose", "1")
    publisher.publish("selfclose", "2")
    assert closed.wait(5)
    time.sleep(0.1)
    assert calls == [b"1"]
    assert holder[0].closed


def test_closing_the_client_from_its_own_callback(server: Server, publisher: r.Client) -> None:
    """ipc_client_free must not run inside a callback of the client: close() there closes
    the client at once and frees it on another thread after the callback returned."""
    c = r.Client(server.url("tcp"))
    done = threading.Event()
    before = table_size()

    def cb(m: r.Message) -> None:
        if m.kind == "message":
            c.close()
            done.set()

    sub = c.subscribe("client-self-close", callback=cb)
    publisher.publish("client-self-close", "x")
    assert done.wait(5)
    assert c.closed and sub.closed
    wait_until(lambda: table_size() == before, "entry released")
    with pytest.raises(r.ClosedError):
        c.ping()
    assert publisher.ping()


def test_a_dropped_subscription_is_freed(make_client: Callable[..., r.Client], publisher: r.Client) -> None:
    c = make_client("tcp")
    before = table_size()
    sub = c.subscribe("dropped", callback=lambda m: None)
    assert table_size() == before + 1
    del sub
    gc.collect()
    wait_until(lambda: table_size() == before, "entry released")
    assert publisher.publish("dropped", "x") == 0


def test_closing_the_client_closes_its_handles(server: Server) -> None:
    c = r.Client(server.url("tcp"))
    before = table_size()
    sub = c.subscribe("c1", callback=lambda m: None)
    w = c.worker("closing-q", lambda req: None, block_timeout_ms=50)
    s = c.serve("closing-svc", lambda call: b"")
    tx = c.tx()
    c.close()
    assert sub.closed and w.closed and s.closed and tx.closed
    assert table_size() == before


def test_poll_mode_runs_callbacks_only_inside_poll(make_client: Callable[..., r.Client], publisher: r.Client) -> None:
    import select

    c = make_client("tcp", poll_mode=True)
    got: List[Any] = []
    sub = c.subscribe("polled", callback=lambda m: got.append((m.kind, threading.get_ident())))
    publisher.publish("polled", "x")
    time.sleep(0.2)
    assert got == []
    fd = c.fileno()
    assert select.select([fd], [], [], 5)[0] == [fd]
    n = 0
    deadline = time.monotonic() + 5
    while n < 2 and time.monotonic() < deadline:
        n += c.poll(200)
    assert [k for k, _ in got] == ["activated", "message"]
    assert all(t == threading.get_ident() for _, t in got)

    def interrupt(m: r.Message) -> None:
        if m.kind == "message":
            raise KeyboardInterrupt

    sub2 = c.subscribe("polled2", callback=interrupt)
    publisher.publish("polled2", "x")
    with pytest.raises(KeyboardInterrupt):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c.poll(200)
    sub.close()
    sub2.close()
    with pytest.raises(r.InvalidArgument):
        publisher.poll(0)


# ---------------------------------------------------------------------------------------
# Transactions


def test_tx_exec_results_with_an_error_slot(client: r.Client) -> None:
    client.command("LPUSH", "list", "x")
    with client.tx() as tx:
        assert tx.add("SET", "a", 1) is tx
        tx.add("INCR", "a").add("INCR", "list").add("GET", "a")
        assert len(tx) == 4
        res = tx.exec()
        assert res[0] == "OK" and res[1] == 2 and res[3] == b"2"
        assert isinstance(res[2], r.ResponseError) and res[2].code == "WRONGTYPE"
        # The commands stay queued (as in C): exec again, or clear.
        assert tx.exec()[1] == 2  # SET a 1 again, then INCR
        tx.clear()
        assert len(tx) == 0 and tx.exec() == []
    with pytest.raises(r.ClosedError):
        tx.add("GET", "a")


def test_a_command_rejected_while_queueing_aborts_everything(client: r.Client) -> None:
    tx = client.tx().add("SET", "a", 1).add("NOSUCHCOMMAND", "x").add("SET", "b", 2)
    with pytest.raises(r.ResponseError) as e:
        tx.exec()
    assert e.value.code == "EXECABORT"
    assert "NOSUCHCOMMAND" in e.value.message
    assert client.command("EXISTS", "a", "b") == 0
    tx.close()


def test_batch_atomic_or_not(client: r.Client) -> None:
    with client.batch(True) as b:
        b.add("SET", "ba", 1).add("INCR", "ba")
        assert b.exec() == ["OK", 2]
    with client.batch(False) as b:
        b.add("INCR", "ba").add("GET", "ba")
        assert b.exec() == [3, b"3"]
    assert isinstance(client.tx(), r.Batch) and isinstance(client.pipeline(), r.Batch)


def test_pipeline(client: r.Client) -> None:
    with client.pipeline() as p:
        for i in range(1000):
            p.add("INCR", f"k{i % 10}")
        p.add("HGET", "k0", "f")
        res = p.exec()
    assert res[:10] == [1] * 10 and res[999] == 100
    assert isinstance(res[1000], r.ResponseError) and res[1000].code == "WRONGTYPE"


def test_optimistic_transaction(client: r.Client, make_client: Callable[..., r.Client]) -> None:
    client.set("balance", 100)
    other = make_client("unix")
    attempts = [0]

    def debit(w: r.Watch) -> None:
        attempts[0] += 1
        balance = int(w.command("GET", "balance"))
        if attempts[0] == 1:
            other.incr("balance", 5)  # a change between WATCH and EXEC: one more attempt
        w.queue("SET", "balance", balance - 30).queue("INCR", "debits")

    assert client.transaction(["balance"], debit) == ["OK", 1]
    assert attempts[0] == 2
    assert client.get("balance") == b"75"

    def fails(w: r.Watch) -> None:
        w.queue("SET", "never", 1)
        raise LookupError("no such account")

    with pytest.raises(LookupError, match="no such account"):
        client.transaction("balance", fails)
    with pytest.raises(r.TxAbortedError):
        client.transaction("balance", lambda w: False)
    assert client.command("EXISTS", "never") == 0

    kept: List[r.Watch] = []
    client.transaction("balance", kept.append)
    with pytest.raises(r.ClosedError):
        kept[0].command("GET", "balance")

    def always_changes(w: r.Watch) -> None:
        other.incr("balance")
        w.queue("GET", "balance")

    with pytest.raises(r.WatchError):
        client.transaction("balance", always_changes, max_retries=2)


# ---------------------------------------------------------------------------------------
# Request queues


def test_a_worker_handles_requests(client: r.Client) -> None:
    seen: List[bytes] = []
    lock = threading.Lock()

    def handler(req: r.Request) -> None:
        assert req.queue == b"jobs" and req.attempt == 0
        with lock:
            seen.append(req.payload)

    before = table_size()
    with client.worker("jobs", handler, concurrency=4, block_timeout_ms=100) as w:
        for i in range(200):
            client.send_request("jobs", str(i))
        wait_until(lambda: len(seen) == 200, "200 handled")
        wait_until(lambda: w.stats()["handled"] == 200, "200 counted")
        assert w.stats()["failed"] == 0
    assert sorted(seen, key=int) == [str(i).encode() for i in range(200)]
    assert client.queue_stats("jobs")["pending"] == 0
    assert table_size() == before


def test_a_raising_handler_is_a_failure_and_reliable_mode_dead_letters(client: r.Client) -> None:
    attempts: List[int] = []

    def handler(req: r.Request) -> None:
        attempts.append(req.attempt)
        raise ValueError(f"cannot handle {req.payload.decode()}")

    reports: List[r.Report] = []
    with client.worker("flaky", handler, reliable=True, max_attempts=2, block_timeout_ms=100, report=reports.append) as w:
        client.send_request("flaky", "job-1")
        wait_until(lambda: client.queue_stats("flaky")["dead"] == 1, "dead-lettered")
        assert w.stats()["failed"] == 2 and w.stats()["dead_lettered"] == 1
        wait_until(lambda: len(reports) == 2, "2 reports")
    assert attempts == [0, 1]
    # The failures reached the worker's report callable, typed (and not stderr).
    failed, dead = reports
    assert (failed.kind, failed.source, failed.name) == ("handler_failed", "worker", b"flaky")
    assert (failed.attempt, failed.max_attempts) == (1, 2)
    assert isinstance(failed.error, r.HandlerError) and "cannot handle job-1" in failed.error.message
    assert dead.kind == "dead_lettered" and dead.count == 1 and "dead letters" in dead.text
    dead = client.command("LRANGE", "ipc:{q:flaky}:dead", 0, -1)
    assert b"ValueError: cannot handle job-1" in dead[0] and dead[0].endswith(b"job-1")
    assert client.queue_requeue_dead("flaky") == 1


def test_worker_bad_input(client: r.Client) -> None:
    with pytest.raises(r.InvalidArgument):
        client.worker("a{b}", lambda req: None)
    with pytest.raises(TypeError, match="unknown worker option"):
        client.worker("q", lambda req: None, nope=1)
    with pytest.raises(r.InvalidArgument):
        client.worker("q", lambda req: None, concurrency=0)
    with pytest.raises(r.InvalidArgument):
        client.send_request("", "x")


# ---------------------------------------------------------------------------------------
# RPC


def test_call_and_serve_round_trip(client: r.Client) -> None:
    seen: List[r.Call] = []

    def handler(call: r.Call) -> Any:
        seen.append(call)
        if call.method == "str":
            return "s\u00e9"
        if call.method == "none":
            return None
        return call.payload.upper()

    before = table_size()
    with client.serve("echo", handler, concurrency=2) as s:
        t0 = time.time()
        assert client.call("echo", "hello") == b"HELLO"
        assert client.call("echo", b"x", method="m", timeout_ms=2000) == b"X"
        assert client.call("echo", "", method="str") == "s\u00e9".encode()
        assert client.call("echo", "", method="none") == b""
        big = b"z" * (4 * 1024 * 1024)
        assert client.call("echo", big) == big.upper()
        wait_until(lambda: s.stats()["handled"] == 5, "5 handled")
    assert seen[0].method == "" and seen[0].payload == b"hello"
    assert t0 < seen[0].deadline <= time.time() + 6
    assert seen[1].method == "m"
    assert table_size() == before


def test_remote_errors_and_no_server(client: r.Client) -> None:
    def handler(call: r.Call) -> Any:
        if call.method == "value":
            raise ValueError(f"bad input {call.payload.decode()}")
        if call.method == "remote":
            raise r.RemoteError("no such user")
        if call.method == "int":
            return 42
        return call.payload

    with client.serve("svc", handler):
        with pytest.raises(r.RemoteError) as e:
            client.call("svc", "7", method="value")
        assert e.value.message.endswith("ValueError: bad input 7")
        assert e.value.name == "IPC_ERR_REMOTE"
        with pytest.raises(r.RemoteError) as e:
            client.call("svc", "", method="remote")
        assert e.value.message.endswith(": no such user")
        with pytest.raises(r.RemoteError, match="TypeError: the handler returned int"):
            client.call("svc", "", method="int")
        assert client.call("svc", "still here") == b"still here"
    with pytest.raises(r.NoServerError):
        client.call("nobody", "x", fail_fast=True)
    start = time.monotonic()
    with pytest.raises(r.NoServerError):
        client.call("nobody", "x", timeout_ms=200)
    assert time.monotonic() - start < 1.5


# ---------------------------------------------------------------------------------------
# Streams, cache, hash state, locks, keyspace events


def test_streams(client: r.Client) -> None:
    ids = [client.stream_publish("events", {"n": i, "kind": "tick"}) for i in range(3)]
    assert client.stream_len("events") == 3
    entries = client.stream_read("events", "0", count=10)
    assert [e.id for e in entries] == ids
    assert entries[1]["n"] == b"1" and entries[1].fields == [(b"n", b"1"), (b"kind", b"tick")]
    assert client.stream_last("events") == entries[2]
    with client.stream_follow("events", "0") as f:
        assert f.next(100) == entries[0]
        assert f.position == ids[0]
    assert client.stream_group_create("events", "g", "0") is True
    got: List[bytes] = []

    def handle(e: r.Entry) -> None:
        if e["n"] == b"1":
            raise RuntimeError("entry 1 fails")
        got.append(e["n"])

    with client.stream_consume("events", "g", "c1", handle, block_ms=50, min_idle_ms=100, max_deliveries=1) as c:
        wait_until(lambda: c.stats()["acked"] == 2, "2 acked")
    assert sorted(got) == [b"0", b"2"]


def test_cache_hash_state_and_lock(client: r.Client, make_client: Callable[..., r.Client]) -> None:
    other = make_client("unix")
    assert client.cache_get("c") is None
    t = threading.Timer(0.2, lambda: other.cache_set("c", "value", 10_000))
    t.start()
    start = time.monotonic()
    assert client.cache_wait("c", 5000) == b"value"
    assert time.monotonic() - start < 2
    assert client.cache_exists("c") and client.cache_delete("c") and not client.cache_exists("c")

    changes: List[Any] = []
    client.hash_set("dev", "battery", 90)
    with client.hash_watch("dev", lambda f, v: changes.append((f, v))):
        wait_until(lambda: (b"battery", b"90") in changes, "initial sync")
        other.hash_set("dev", "speed", 10)
        assert other.hash_set("dev", "speed", 10, if_changed=True) is False
        other.hash_delete("dev", "battery")
        wait_until(lambda: (b"battery", None) in changes, "deletion")
    assert changes == [(b"battery", b"90"), (b"speed", b"10"), (b"battery", None)]

    with client.lock("res", 5000) as lk:
        t1 = lk.token
        with pytest.raises(r.TimeoutError):
            other.lock("res", 5000, wait_ms=50)
        assert lk.extend(5000)
    with other.lock("res", 5000, wait_ms=1000) as lk2:
        assert lk2.token > t1
        assert lk2.release() is True
        assert lk2.release() is False


def test_watch_keys(client: r.Client) -> None:
    events: List[Any] = []
    with client.watch_keys("wk:*", lambda k, e: events.append((k, e)), events=["set", "del"], configure_server=True):
        client.set("wk:a", 1)
        client.delete("wk:a")
        wait_until(lambda: len(events) == 2, "2 events")
    assert events == [(b"wk:a", "set"), (b"wk:a", "del")]


# ---------------------------------------------------------------------------------------
# Joining a redis-ipc fleet: its side played with raw commands


def test_fleet_bare_queues_and_json_rpc(client: r.Client, make_client: Callable[..., r.Client]) -> None:
    raw = make_client("unix")
    got: List[Any] = []
    with client.worker(["scooter:state", "scooter:seatbox"], lambda q: got.append((q.queue, q.payload)), bare=True, block_timeout_ms=100):
        raw.command("LPUSH", "scooter:state", "lock")
        raw.command("LPUSH", "scooter:seatbox", "open")
        wait_until(lambda: len(got) == 2, "both requests")
    assert sorted(got) == [(b"scooter:seatbox", b"open"), (b"scooter:state", b"lock")]
    client.send_request("scooter:out", "unlock", bare=True)
    assert raw.command("BRPOP", "scooter:out", 1) == [b"scooter:out", b"unlock"]
    with pytest.raises(r.InvalidArgument):
        client.worker("x", lambda q: None, bare=True, reliable=True)

    methods = {"ping": lambda c: '"pong"', "echo": lambda c: c.payload, "none": lambda c: None}
    with client.serve_methods("motion:rpc", methods, protocol="redis-ipc", block_timeout_ms=100):
        # The fleet's caller: SUBSCRIBE the reply channel, then LPUSH the envelope.
        replies: List[Any] = []
        ch = "motion:rpc:reply:" + "ab" * 16
        with raw.subscribe(ch, callback=lambda m: replies.append(m.payload) if m.kind == "message" else None):
            deadline = int(time.time() * 1000) + 5000
            env = '{"id":"%s","method":"ping","reply_channel":"%s","deadline":%d,"payload":null}' % ("ab" * 16, ch, deadline)
            raw.command("LPUSH", "motion:rpc", env)
            wait_until(lambda: replies, "the reply")
            env = env.replace('"method":"ping"', '"method":"jump"')
            raw.command("LPUSH", "motion:rpc", env)
            wait_until(lambda: len(replies) == 2, "the second reply")
        assert replies == [b'{"ok":true,"payload":"pong"}', b'{"ok":false,"error":"unknown method: jump"}']
        assert client.call("motion:rpc", '{"a":1}', method="echo", protocol="redis-ipc") == b'{"a":1}'
        assert client.call("motion:rpc", "1", method="none", protocol="redis-ipc") == b"null"
        with pytest.raises(r.RemoteError, match="unknown method: fly"):
            client.call("motion:rpc", "null", method="fly", protocol="redis-ipc")
        with pytest.raises(r.InvalidArgument, match="not JSON"):
            client.call("motion:rpc", "not json", method="ping", protocol="redis-ipc")
    with pytest.raises(ValueError):
        client.call("motion:rpc", "1", protocol="grpc")


def test_fleet_hash_state_and_faults(client: r.Client, make_client: Callable[..., r.Client]) -> None:
    raw = make_client("unix")
    seen: List[Any] = []
    raw.command("HSET", "keycard", "uid", "04ab")
    with client.hash_watch(
        "keycard", lambda f, v: seen.append((f, v)), every_notification=True, on_event=lambda e: seen.append(e)
    ):
        wait_until(lambda: len(seen) == 1, "initial sync")
        raw.command("PUBLISH", "keycard", "uid")
        wait_until(lambda: len(seen) == 2, "the repeated value")  # read before the DEL below
        raw.command("PUBLISH", "keycard", "seatbox:opened")
        raw.command("DEL", "keycard")
        raw.command("PUBLISH", "keycard", "cleared")
        wait_until(lambda: len(seen) == 4, "four deliveries")
    assert seen == [(b"uid", b"04ab"), (b"uid", b"04ab"), b"seatbox:opened", (b"uid", None)]
    custom: List[Any] = []
    with client.hash_watch("battery:0", lambda f, v: custom.append((f, v)), initial_sync=False, channel="battery"):
        raw.command("HSET", "battery:0", "charge", "80")
        raw.command("PUBLISH", "battery", "charge")
        wait_until(lambda: custom, "the change on the custom channel")
    assert custom == [(b"charge", b"80")]

    msgs: List[Any] = []
    with raw.subscribe("vehicle", "blinker", callback=lambda m: msgs.append((m.channel, m.payload)) if m.kind == "message" else None):
        client.hash_set("vehicle", "state", "ready", timestamp="unix_ms")
        client.hash_set_many("vehicle", {"l": "on", "r": "off"}, announce="blinker:state", channel="blinker")
        client.hash_replace_all("vehicle", {"state": "off"}, announce="replaced", timestamp=True)
        client.hash_clear("vehicle")
        client.hash_set_many("vehicle", {"a": "1"}, summary=True)
        client.fault_set("vehicle", 23, "seatbox open")
        wait_until(lambda: len(msgs) == 6, "six announcements")
    assert msgs == [
        (b"vehicle", b"state"),
        (b"blinker", b"blinker:state"),
        (b"vehicle", b"replaced"),
        (b"vehicle", b"cleared"),
        (b"vehicle", b"*"),
        (b"vehicle", b"fault"),
    ]
    assert raw.command("SMEMBERS", "vehicle:fault") == [b"23"] or raw.command("SMEMBERS", "vehicle:fault") == {b"23"}
    assert client.fault_set("vehicle", 23, "seatbox open") is False
    assert client.fault_clear("vehicle", 23) is True
    assert client.fault_clear("vehicle", 23) is False
    entries = raw.command("XRANGE", "events:faults", "-", "+")
    assert [e[1] for e in entries] == [
        [b"group", b"vehicle", b"code", b"23", b"description", b"seatbox open"],
        [b"group", b"vehicle", b"code", b"-23"],
    ]
    with pytest.raises(ValueError):
        client.hash_set("vehicle", "x", "1", timestamp="iso")


# ---------------------------------------------------------------------------------------
# Lifecycles, groups and reports


def test_stop_from_inside_a_callback_and_with_a_deadline(client: r.Client, publisher: r.Client) -> None:
    """``stop()`` from inside a handle's own callback only asks (returns at once); from
    elsewhere, TimeoutError while a callback runs, then done once it returned."""
    took: List[float] = []
    holder: List[Any] = []

    def self_stop(req: r.Request) -> None:
        t0 = time.monotonic()
        holder[0].stop(5000)
        took.append(time.monotonic() - t0)

    before = table_size()
    w = client.worker("selfstop", self_stop, block_timeout_ms=100)
    holder.append(w)
    client.send_request("selfstop", "x")
    wait_until(lambda: took, "the handler ran")
    assert took[0] < 1.0
    wait_until(lambda: table_size() == before, "userdata released when the worker stopped")
    client.send_request("selfstop", "y")
    time.sleep(0.2)
    assert len(took) == 1  # no handler after the stop
    w.close()

    release = threading.Event()
    running = threading.Event()

    def slow(m: r.Message) -> None:
        if m.kind == "message":
            running.set()
            release.wait(10)

    with client.subscribe("slow", callback=slow) as sub:
        publisher.publish("slow", "x")
        assert running.wait(10)
        with pytest.raises(r.TimeoutError):
            sub.stop(100)
        release.set()
        sub.stop(5000)
        sub.stop(0)  # stopped: at once
    assert table_size() == before


def test_a_subscription_group(client: r.Client, publisher: r.Client) -> None:
    a: List[bytes] = []
    b: List[bytes] = []
    before = table_size()
    with client.subscribe_group(capacity=100) as g:
        g.handle("ga", lambda m: a.append(m.payload) if m.kind == "message" else None)
        g.handle("gb", lambda m: b.append(m.payload) if m.kind == "message" else None)
        assert publisher.publish("ga", "1") == 1 and publisher.publish("gb", "2") == 1
        wait_until(lambda: a == [b"1"] and b == [b"2"], "one message each")
        g.handle("ga", lambda m: b.append(b"ga:" + m.payload) if m.kind == "message" else None)
        publisher.publish("ga", "3")
        wait_until(lambda: b"ga:3" in b, "the replaced route")
        assert a == [b"1"]
        g.unhandle("gb")
        wait_until(lambda: publisher.command("PUBSUB", "NUMSUB", "gb")[1] == 0, "unsubscribed")
        assert table_size() == before + 1  # the replaced and the unhandled routes are released
        with pytest.raises(r.InvalidArgument):
            g.handle("", print)
    assert table_size() == before


def test_reports_reach_the_client_wide_callable(make_client: Callable[..., r.Client]) -> None:
    reports: List[r.Report] = []
    before = table_size()
    c = make_client("unix", report=reports.append)

    def fail(req: r.Request) -> None:
        raise KeyError("nope")

    with c.worker("rq", fail, block_timeout_ms=100):
        c.send_request("rq", "x")
        wait_until(lambda: reports, "a report")
    rep = reports[0]
    assert rep.kind == "handler_failed" and rep.source == "worker" and rep.name == b"rq"
    assert rep.max_attempts == 0 and "not retried" in rep.text and rep.group is None
    assert isinstance(rep.error, r.HandlerError) and rep.error.result == r.ipc_result.IPC_ERR_HANDLER
    c.close()
    wait_until(lambda: table_size() == before, "the report callable released")


# ---------------------------------------------------------------------------------------
# Statistics and the log


@pytest.fixture
def private_server() -> Iterator[Server]:
    """A server of its own, for tests that change its configuration (maxmemory, passwords)."""
    directory = tempfile.mkdtemp(prefix="redipc-ctypes-own-")
    s = Server(directory)
    s.start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_client_stats_follow_a_scripted_workload(make_client: Callable[..., r.Client], transport: str) -> None:
    c = make_client(transport)
    admin = make_client(transport)
    base = c.stats()
    assert isinstance(base, r.ClientStats) and base.commands > 0 and base.in_flight == 0
    for i in range(10):
        c.set(f"st:k{i}", "v")
    for i in range(5):
        assert c.get(f"st:k{i}") == b"v"
    c.delete("st:list")
    c.command("LPUSH", "st:list", "x")
    with pytest.raises(r.ResponseError):
        c.command("INCR", "st:list")
    s = c.stats()
    assert s.commands - base.commands == 10 + 5 + 1 + 1 + 1
    assert s.failed_server - base.failed_server == 1 and s.failed - base.failed == 1
    assert s.latency_count - base.latency_count == 17
    assert s.in_flight == 0
    assert s.bytes_out - base.bytes_out >= 290 and s.bytes_in - base.bytes_in >= 50
    assert 0 < s.latency_p50_us <= s.latency_p90_us <= s.latency_p99_us <= s.latency_p999_us
    hist = c.latency_histogram()
    assert len(hist) == s.latency_buckets > 0
    assert sum(n for _, n in hist) == s.latency_count
    assert all(a[0] < b[0] for a, b in zip(hist, hist[1:])) and all(n > 0 for _, n in hist)
    # A killed connection is re-established and counted.
    kill_client(admin, c)

    def back() -> bool:
        try:
            c.get("st:k0")
        except r.RedipcError:
            return False
        return c.stats().reconnects == 1

    wait_until(back, "reconnected")
    with pytest.raises(r.InvalidArgument, match="max_reply_size"):
        make_client(transport, max_reply_size=1000)
    small = make_client(transport, max_reply_size=1 << 20)
    c.set("st:big", b"x" * (2 << 20))
    with pytest.raises(r.ProtocolError):
        small.get("st:big")
    assert small.stats().failed_protocol == 1


def test_the_log_callback_sees_a_reconnect_with_its_reason_and_a_report(
    make_client: Callable[..., r.Client], transport: str
) -> None:
    lines: List[Tuple[str, str, str]] = []
    before = table_size()
    with pytest.raises(ValueError):
        r.set_log_callback(print, "loud")
    with pytest.raises(r.InvalidArgument):
        r.set_log_callback(print, 9)
    assert table_size() == before
    r.set_log_callback(lambda *line: lines.append(line), "debug")
    try:
        c = make_client(transport)
        admin = make_client(transport)

        def has(level: str, target: str, *words: str) -> bool:
            return any(lv == level and t == target and all(w in m for w in words) for lv, t, m in list(lines))

        wait_until(lambda: has("debug", "redipc::connection", "connected"), "connected, at debug")
        kill_client(admin, c)
        wait_until(lambda: has("warn", "redipc::connection", "lost", "closed"), "lost, with the reason")

        def restored() -> bool:
            try:
                c.get("k")
            except r.RedipcError:
                return False
            return has("info", "redipc::connection", "restored")

        wait_until(restored, "restored")

        def fail(req: r.Request) -> None:
            raise KeyError("no such job")

        with c.worker("log-q", fail, block_timeout_ms=100):
            c.send_request("log-q", "j1")
            wait_until(lambda: has("warn", "redipc::report", "no such job"), "the report logged")
        # Replacing releases the previous callable (userdata_free ran before the return);
        # at "warn" nothing below reaches the new one.
        warned: List[Tuple[str, str, str]] = []
        r.set_log_callback(lambda *line: warned.append(line), "warn")
        assert table_size() == before + 1
        n = len(lines)
        kill_client(admin, c)
        wait_until(lambda: any(t == "redipc::connection" and "lost" in m for _, t, m in list(warned)), "lost")
        wait_until(lambda: c.stats().reconnects == 2, "reconnected")
        assert {lv for lv, _, _ in warned} <= {"warn", "error"}
        assert len(lines) == n
    finally:
        r.set_log_callback(None)
    assert table_size() == before


def test_no_password_in_a_log_line_or_an_error(private_server: Server) -> None:
    secret = "s3cret-Pa55word"
    lines: List[str] = []
    r.set_log_callback(lambda lv, t, m: lines.append(m), "trace")
    admin = r.Client(private_server.url("unix"))
    admin.command("CONFIG", "SET", "requirepass", secret)
    url = f"redis://:{secret}@127.0.0.1:{private_server.port}/0"
    errors: List[str] = []
    try:
        with r.Client(url) as c:
            with c.subscribe("x", callback=lambda m: None):
                kill_client(admin, c)
                admin.command("CLIENT", "KILL", "TYPE", "pubsub")

                def back() -> bool:
                    try:
                        c.get("k")
                    except r.RedipcError:
                        return False
                    return c.stats().pubsub_reconnects == 1

                wait_until(back, "reconnected with the password")
                for bad in [
                    f"redis://:{secret}-wrong@127.0.0.1:{private_server.port}/0",
                    f"redis://:{secret}@127.0.0.1:notaport/0",
                    f"rediss://user:{secret}@[::1/0",
                    f"user:{secret}@host",
                ]:
                    with pytest.raises(r.RedipcError) as e:
                        r.Client(bad)
                    errors.append(str(e.value))
                with pytest.raises(r.ResponseError) as e:
                    r.Client(private_server.url("tcp"), password=secret + "-wrong")
                errors.append(str(e.value))
                admin.command("CONFIG", "SET", "requirepass", "another-Secret")
                kill_client(admin, c)
                time.sleep(0.3)
                with pytest.raises(r.RedipcError) as e:
                    c.get("k")
                errors.append(str(e.value))
    finally:
        admin.command("CONFIG", "SET", "requirepass", "")
        admin.close()
        r.set_log_callback(None)
    assert any("redipc::connection" in m or "connection" in m for m in lines)
    for text in errors + lines:
        assert secret not in text and "another-Secret" not in text, text


def test_at_maxmemory_writes_fail_with_oom_and_reads_and_publish_go_on(private_server: Server) -> None:
    c = r.Client(private_server.url("unix"))
    got: List[bytes] = []
    try:
        c.set("before", "1")
        sub = c.subscribe("news", callback=lambda m: got.append(m.payload) if m.kind == "message" else None)
        c.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        c.command("CONFIG", "SET", "maxmemory", "1")
        base = c.stats()
        for what, call in [
            ("set", lambda: c.set("k", "v")),
            ("send_request", lambda: c.send_request("jobs", "payload")),
            ("stream_publish", lambda: c.stream_publish("events", {"f": "v"})),
            ("hash_set", lambda: c.hash_set("state", "f", "v")),
        ]:
            with pytest.raises(r.ResponseError) as e:
                call()
            assert e.value.code == "OOM", what
            assert e.value.result == r.ipc_result.IPC_ERR_SERVER
        assert c.stats().failed_server - base.failed_server == 4
        assert c.get("before") == b"1"
        assert c.publish("news", "still here") == 1
        wait_until(lambda: got == [b"still here"], "the message at maxmemory")
        sub.close()
    finally:
        c.command("CONFIG", "SET", "maxmemory", "0")
    assert c.command("EXISTS", "k", "jobs", "events", "state") == 0
    c.send_request("jobs", "payload")
    c.close()


# ---------------------------------------------------------------------------------------
# Interpreter exit


def test_the_interpreter_exits_cleanly_with_live_handles(server: Server) -> None:
    code = f"""
import threading, redipc_ctypes as r
r.load({LIB!r})
r.set_log_callback(lambda *line: None, "trace")
c = r.Client({server.url("tcp")!r})
pub = r.Client({server.url("unix")!r})
n = [0]
sub = c.subscribe("exit-test", callback=lambda m: n.__setitem__(0, n[0] + 1))
w = c.worker("exit-q", lambda req: None, block_timeout_ms=50)
s = c.serve("exit-svc", lambda call: b"")
def flood():
    while True:
        try:
            pub.publish("exit-test", "x")
        except r.RedipcError:
            return
threading.Thread(target=flood, daemon=True).start()
import time; time.sleep(0.3)
print("exiting", n[0] > 0)
"""
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(HERE)),
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "exiting True"
