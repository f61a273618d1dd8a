"""TLS (``rediss://``) against private redis-servers listening with TLS, with certificates
made for this run by ``scripts/lib/tls-certs.sh``: commands, pipelines, pub/sub and its
reconnect, RPC and request queues over TLS; a wrong CA, name mismatches, insecure mode, PEM
given as bytes, mutual TLS; and settings the client refuses, without ever showing PEM."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import redipc
from conftest import REDIS_SERVER, RedisServer, free_port, names

REPO = pathlib.Path(__file__).resolve().parents[2]
# Failures come at once; a short connect timeout keeps a hanging one from stalling the run.
CONNECT = 3.0
SECRET = "S3cr3tKeyMaterialXq7"
BAD_KEY = f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n".encode()


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def certs() -> Iterator[pathlib.Path]:
    """A directory with ca.crt ca.key server.crt server.key client.crt client.key
    other-ca.crt, fresh for this module."""
    directory = tempfile.mkdtemp(prefix="redipc-tls-")
    try:
        done = subprocess.run(
            ["bash", "scripts/lib/tls-certs.sh", directory],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.fail(f"tls-certs.sh failed:\n{done.stderr}")
        yield pathlib.Path(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class TlsServer:
    """A private redis-server (``RedisServer``: plain port and unix socket, by which its
    readiness is checked) that also listens with TLS on ``tls_port``."""

    def __init__(self, server: RedisServer, tls_port: int) -> None:
        self.plain = server
        self.tls_port = tls_port

    def url(self, host: str = "127.0.0.1") -> str:
        return f"rediss://{host}:{self.tls_port}/0"


def _tls_server(certs: pathlib.Path, auth_clients: str) -> Iterator[TlsServer]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="redipc-tls-srv-")
    server = None
    try:
        # The TLS port is free when chosen, but may be taken before the server binds it:
        # then start again on other ports.
        for attempt in range(5):
            tls_port = free_port()
            server = RedisServer(
                directory,
                [
                    "--bind", "127.0.0.1", "127.0.0.2",
                    "--tls-port", str(tls_port),
                    "--tls-cert-file", str(certs / "server.crt"),
                    "--tls-key-file", str(certs / "server.key"),
                    "--tls-ca-cert-file", str(certs / "ca.crt"),
                    "--tls-auth-clients", auth_clients,
                ],
            )
            try:
                server.start(retry_ports=True)
                break
            except RuntimeError:
                server = None
                if attempt == 4:
                    raise
        assert server is not None
        yield TlsServer(server, tls_port)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_server(certs: pathlib.Path) -> Iterator[TlsServer]:
    """TLS without client certificates, on 127.0.0.1 and 127.0.0.2 (the certificate holds
    127.0.0.1 and localhost only)."""
    yield from _tls_server(certs, "no")


@pytest.fixture(scope="module")
def mtls_server(certs: pathlib.Path) -> Iterator[TlsServer]:
    """Mutual TLS: the server requires a client certificate signed by the test CA."""
    yield from _tls_server(certs, "yes")


@pytest.fixture
def connect() -> Iterator[Callable[..., redipc.Client]]:
    """A factory of clients (``url``, then Client options; a 3 s connect timeout unless
    given); each is closed after the test."""
    made: list[redipc.Client] = []

    def make(url: str, **options: Any) -> redipc.Client:
        options.setdefault("connect_timeout", CONNECT)
        c = redipc.Client(url, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# ---------------------------------------------------------------------------------------
# Helpers


def next_event(sub: redipc.Subscription, kind: str, within: float = 5.0) -> redipc.Message:
    """The first event of ``kind`` (taken with get()), within ``within`` s."""
    deadline = time.monotonic() + within
    skipped: list[redipc.Message] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {kind} within {within} s; skipped {len(skipped)}: {skipped[-3:]}")
        msg = sub.get(timeout=left)
        if msg is not None:
            if msg.kind == kind:
                return msg
            skipped.append(msg)


def wait_until(cond: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.01)


def retry(f: Callable[[], Any], within: float = 5.0) -> Any:
    """``f()``, retried on ConnectionError (a connection being re-established)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return f()
        except redipc.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def all_text(e: BaseException) -> str:
    """Everything an exception shows: str, repr, notes, the formatted traceback, and its
    cause and context."""
    return "\n".join(
        [str(e), repr(e), *getattr(e, "__notes__", [])]
        + traceback.format_exception(type(e), e, e.__traceback__)
    )


# ---------------------------------------------------------------------------------------
# Every kind of connection over TLS


def test_commands_and_pipeline_over_tls(
    tls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    c = connect(tls_server.url(), tls_ca=str(certs / "ca.crt"))
    assert c.is_connected
    assert c.set("k", "v") is True
    assert c.get("k") == b"v"
    assert c.command("DEL", "n") in (0, 1)

    # 1,000 commands in one pipeline, then a big value both ways (many TLS records).
    replies = c.pipeline_raw([("INCR", "n")] * 1000)
    assert replies == list(range(1, 1001))
    big = os.urandom(4 << 20)
    assert c.set("big", big) is True
    assert c.get("big") == big

    # Really over TLS: the server sees the connection on its TLS port.
    assert f"laddr=127.0.0.1:{tls_server.tls_port}" in str(c.command("CLIENT", "LIST"))
    assert repr(c).startswith(f"<redipc.Client rediss://127.0.0.1:{tls_server.tls_port}/0 ")

    # The command connection is re-established over TLS after CLIENT KILL (by another
    # client: CLIENT KILL skips the caller's own connection).
    admin = connect(tls_server.url(), tls_ca=certs / "ca.crt")
    assert admin.command("CLIENT", "KILL", "TYPE", "normal") >= 1
    assert retry(lambda: c.get("k")) == b"v"
    assert c.stats().reconnects >= 1


def test_pubsub_over_tls_and_its_reconnect(
    tls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    c = connect(tls_server.url(), tls_ca=certs / "ca.crt")
    admin = connect(tls_server.url(), tls_ca=certs / "ca.crt")
    with c.subscribe("news") as sub:
        next_event(sub, "activated")
        assert admin.publish("news", "one") == 1
        assert next_event(sub, "message").payload == b"one"

        assert admin.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        d = next_event(sub, "disconnected")
        assert d.error and d.channel == b"" and d.payload == b""
        next_event(sub, "reactivated")
        assert retry(lambda: admin.publish("news", "two")) == 1
        assert next_event(sub, "message").payload == b"two"
    assert c.stats().pubsub_reconnects >= 1


def test_rpc_and_request_queue_over_tls(
    tls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    ca = certs / "ca.crt"
    caller = connect(tls_server.url(), tls_ca=ca)
    server = connect(tls_server.url(), tls_ca=ca)
    with server.serve("upper", lambda call: call.payload.upper()):
        assert caller.call("upper", "over tls", timeout=5) == b"OVER TLS"

    got: list[bytes] = []
    done = threading.Event()

    def handler(req: redipc.Request) -> None:
        got.append(req.payload)
        if len(got) == 3:
            done.set()

    with server.handle_requests("tls-jobs", handler, block_timeout=0.2):
        for p in (b"a", b"b", b"c"):
            caller.send_request("tls-jobs", p)
        assert done.wait(5), got
    assert sorted(got) == [b"a", b"b", b"c"]


# ---------------------------------------------------------------------------------------
# Certificates are checked


def test_a_wrong_ca_is_an_unknown_issuer(tls_server: TlsServer, certs: pathlib.Path) -> None:
    with pytest.raises(redipc.ConnectionError, match="unknown issuer"):
        redipc.Client(tls_server.url(), tls_ca=certs / "other-ca.crt", connect_timeout=CONNECT)


def test_name_mismatch_and_server_name(
    tls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    # The certificate holds 127.0.0.1 and localhost, not 127.0.0.2.
    other = tls_server.url("127.0.0.2")
    with pytest.raises(redipc.ConnectionError, match="name mismatch"):
        redipc.Client(other, tls_ca=certs / "ca.crt", connect_timeout=CONNECT)
    c = connect(other, tls_ca=certs / "ca.crt", tls_server_name="localhost")
    assert c.ping() is True
    with pytest.raises(redipc.ConnectionError, match="redis.example"):
        redipc.Client(
            tls_server.url(),
            tls_ca=certs / "ca.crt",
            tls_server_name="redis.example",
            connect_timeout=CONNECT,
        )
    assert connect(tls_server.url("localhost"), tls_ca=certs / "ca.crt").ping() is True


def test_insecure_needs_no_ca(tls_server: TlsServer, connect: Callable[..., redipc.Client]) -> None:
    c = connect(tls_server.url(), tls_insecure=True)
    assert c.set("insecure", 1) is True
    assert c.get("insecure") == b"1"
    # Any name too.
    assert connect(tls_server.url("127.0.0.2"), tls_insecure=True).ping() is True


def test_pem_as_bytes_and_paths_of_every_kind(
    tls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    pem = (certs / "ca.crt").read_bytes()

    class FsPath:
        def __fspath__(self) -> str:
            return str(certs / "ca.crt")

    for ca in (pem, bytearray(pem), str(certs / "ca.crt"), certs / "ca.crt", FsPath()):
        c = connect(tls_server.url(), tls_ca=ca)
        assert c.ping() is True, type(ca)


def test_a_plain_port_does_not_speak_tls(tls_server: TlsServer, certs: pathlib.Path) -> None:
    # The server waits for the end of an inline command: the handshake times out.
    url = f"rediss://127.0.0.1:{tls_server.plain.port}"
    with pytest.raises(redipc.ConnectionError, match="TLS"):
        redipc.Client(url, tls_ca=certs / "ca.crt", connect_timeout=1)


# ---------------------------------------------------------------------------------------
# Mutual TLS


def test_mutual_tls_needs_the_client_certificate(
    mtls_server: TlsServer, certs: pathlib.Path, connect: Callable[..., redipc.Client]
) -> None:
    url = mtls_server.url()
    with pytest.raises(redipc.ConnectionError, match="client certificate"):
        redipc.Client(url, tls_ca=certs / "ca.crt", connect_timeout=CONNECT)

    c = connect(url, tls_ca=certs / "ca.crt", tls_cert=certs / "client.crt", tls_key=str(certs / "client.key"))
    assert c.set("m", "1") is True
    with c.subscribe("m-news") as sub:
        next_event(sub, "activated")
        assert c.publish("m-news", "x") == 1
        assert next_event(sub, "message").payload == b"x"

    # Certificate and key given as PEM bytes; the client's repr shows none of the key.
    key = (certs / "client.key").read_bytes()
    c = connect(url, tls_ca=certs / "ca.crt", tls_cert=(certs / "client.crt").read_bytes(), tls_key=key)
    assert c.get("m") == b"1"
    body = [line for line in key.decode().splitlines() if line and not line.startswith("-----")]
    assert body and not any(line in repr(c) for line in body), repr(c)
    assert repr(c) == f"<redipc.Client {url} connected>"


def test_a_certificate_that_is_not_the_keys(mtls_server: TlsServer, certs: pathlib.Path) -> None:
    with pytest.raises(redipc.InvalidArgument):
        redipc.Client(
            mtls_server.url(),
            tls_ca=certs / "ca.crt",
            tls_cert=certs / "server.crt",
            tls_key=certs / "client.key",
            connect_timeout=CONNECT,
        )


# ---------------------------------------------------------------------------------------
# Settings the client refuses


@pytest.mark.parametrize(
    "options",
    [
        {"tls_ca": "ca.crt"},
        {"tls_cert": "client.crt", "tls_key": "client.key"},
        {"tls_key": b"key"},
        {"tls_server_name": "localhost"},
        {"tls_insecure": True},
    ],
    ids=lambda o: "+".join(o),
)
def test_tls_options_with_a_plain_url_are_refused(
    tls_server: TlsServer, certs: pathlib.Path, options: dict[str, Any]
) -> None:
    options = {k: certs / v if isinstance(v, str) and k != "tls_server_name" else v for k, v in options.items()}
    for url in (tls_server.plain.tcp_url, tls_server.plain.unix_url):
        with pytest.raises(redipc.InvalidArgument, match="not rediss://"):
            redipc.Client(url, connect_timeout=CONNECT, **options)


def test_a_missing_file_is_named(tls_server: TlsServer, certs: pathlib.Path) -> None:
    missing = certs / "no-such-ca.crt"
    with pytest.raises(redipc.InvalidArgument) as e:
        redipc.Client(tls_server.url(), tls_ca=missing, connect_timeout=CONNECT)
    assert str(missing) in str(e.value)
    with pytest.raises(redipc.InvalidArgument, match="no-such-client.key"):
        redipc.Client(
            tls_server.url(),
            tls_ca=certs / "ca.crt",
            tls_cert=certs / "client.crt",
            tls_key=str(certs / "no-such-client.key"),
            connect_timeout=CONNECT,
        )


def test_half_a_client_certificate_is_refused(tls_server: TlsServer, certs: pathlib.Path) -> None:
    halves: list[dict[str, Any]] = [{"tls_cert": certs / "client.crt"}, {"tls_key": certs / "client.key"}]
    for half in halves:
        with pytest.raises(redipc.InvalidArgument, match="needs its"):
            redipc.Client(tls_server.url(), tls_ca=certs / "ca.crt", connect_timeout=CONNECT, **half)


@pytest.mark.parametrize(
    "options",
    [
        {"tls_key": BAD_KEY, "tls_cert": "client.crt"},
        {"tls_key": bytearray(BAD_KEY), "tls_cert": "client.crt"},
        {"tls_cert": BAD_KEY, "tls_key": "client.key"},
        {"tls_ca": BAD_KEY},
    ],
    ids=["key", "key-bytearray", "cert", "ca"],
)
def test_bad_pem_is_never_shown(
    tls_server: TlsServer,
    certs: pathlib.Path,
    options: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = {k: certs / v if isinstance(v, str) else v for k, v in options.items()}
    options.setdefault("tls_ca", certs / "ca.crt")
    with pytest.raises(redipc.InvalidArgument) as e:
        redipc.Client(tls_server.url(), connect_timeout=CONNECT, **options)
    text = all_text(e.value)
    assert "PEM data" in str(e.value) or "TLS" in str(e.value), text
    assert SECRET not in text, text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("argument", ["tls_ca", "tls_cert", "tls_key"])
@pytest.mark.parametrize(
    "value", [1, 1.5, ["ca.crt"], memoryview(b"x"), object()], ids=["int", "float", "list", "memoryview", "object"]
)
def test_a_wrong_type_is_a_type_error_naming_the_argument(
    tls_server: TlsServer, argument: str, value: object
) -> None:
    options: dict[str, Any] = {argument: value}
    with pytest.raises(TypeError, match=names(argument)) as e:
        redipc.Client(tls_server.url(), connect_timeout=CONNECT, **options)
    assert "expected a path (str or os.PathLike) or PEM bytes" in str(e.value)


def test_other_wrong_types(tls_server: TlsServer) -> None:
    with pytest.raises(TypeError, match=names("tls_server_name")):
        redipc.Client(tls_server.url(), tls_server_name=b"localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=names("tls_insecure")):
        redipc.Client(tls_server.url(), tls_insecure="yes")  # type: ignore[arg-type]
