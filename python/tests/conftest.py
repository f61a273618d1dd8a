"""Fixtures: a private redis-server for the session, and clients over TCP and a unix socket.

The server listens on a free TCP port of 127.0.0.1 (never 6379) and on a unix socket in a
fresh temporary directory, with persistence off. Tests that kill or restart it leave it
running again through ``ensure_running``. ``no_config_server`` is a second one, started for
the tests that ask for it, as embedded boards run theirs: ``CONFIG`` renamed away.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import pytest

import redipc

# The tests of interruptible waits use _thread.interrupt_main(), which does nothing when
# SIGINT is ignored, as it is for a background job of a non-interactive shell
# (`scripts/test &`): give SIGINT Python's default handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REDIS_SERVER = shutil.which("redis-server")


def names(argument: str) -> str:
    """A regex for ``pytest.raises(match=...)``: how an argument error names its argument.
    PyO3 adds the note "while processing 'ARG'" (pytest matches notes too); Python before
    3.11 has no notes, so there the message alone says what was expected."""
    if sys.version_info >= (3, 11):
        return rf"[\s\S]*while processing '{argument}'"
    return ""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


def _ping_unix(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ping_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on ``port`` and the unix socket ``sock``; ``extra`` are
    more command-line options (``--rename-command CONFIG ""``)."""

    def __init__(self, directory: str, extra: Sequence[str] = ()) -> None:
        self.dir = directory
        self.extra = list(extra)
        self.sock = os.path.join(directory, "redis.sock")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self._log = os.path.join(directory, "redis.log")

    @property
    def tcp_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.sock}"

    def url(self, transport: str) -> str:
        return {"tcp": self.tcp_url, "unix": self.unix_url}[transport]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, retry_ports: bool = False) -> None:
        """Start the server on ``self.port``; with ``retry_ports``, on another free port
        if that one was taken meanwhile."""
        assert not self.running
        for _ in range(5 if retry_ports else 1):
            if os.path.exists(self.sock):
                os.unlink(self.sock)
            self.proc = subprocess.Popen(
                [
                    REDIS_SERVER or "redis-server",
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--unixsocket", self.sock,
                    "--unixsocketperm", "700",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self.dir,
                    "--logfile", self._log,
                    "--daemonize", "no",
                    # DEBUG SLEEP makes a slow reply for the timeout tests.
                    "--enable-debug-command", "local",
                    *self.extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping_unix(self.sock) and _ping_tcp(self.port):
                    return
                time.sleep(0.02)
            self._reap()
            if retry_ports:
                self.port = free_port()
        with open(self._log, errors="replace") as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def _reap(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL the server (no goodbye to clients) and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self._reap()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP the server: its sockets stay open but nothing answers (half-open)."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self.paused and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM)."""
        self.resume()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    def restart(self) -> None:
        """Kill the server and start it again on the same port and socket."""
        self.kill()
        self.start()

    def ensure_running(self) -> None:
        self.resume()
        if not self.running:
            self._reap()
            self.start()


def _private_server(extra: Sequence[str] = ()) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    # A short path: a unix socket path must fit in 108 bytes.
    directory = tempfile.mkdtemp(prefix="redipc-py-")
    server = RedisServer(directory, extra)
    server.start(retry_ports=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _private_server()


@pytest.fixture(scope="module")
def no_config_server() -> Iterator[RedisServer]:
    """A private server whose ``CONFIG`` command is renamed away (keyspace notifications
    off, as the server's default), like many embedded boards' Redis/Valkey."""
    yield from _private_server(["--rename-command", "CONFIG", ""])


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    """The session's server, running (a previous test may have killed it)."""
    redis_server.ensure_running()
    return redis_server


@pytest.fixture
def make_client(server: RedisServer) -> Iterator[Callable[..., redipc.Client]]:
    """A factory of clients (``transport`` "tcp" or "unix", then Client options); each is
    closed after the test."""
    made: list[redipc.Client] = []

    def make(transport: str = "tcp", **options: Any) -> redipc.Client:
        c = redipc.Client(server.url(transport), **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(params=["tcp", "unix"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(make_client: Callable[..., redipc.Client], transport: str) -> redipc.Client:
    """A client over TCP or the unix socket, on an empty server."""
    c = make_client(transport)
    assert c.command("FLUSHALL") == "OK"
    return c


# --- A private Redis Cluster (scripts/lib/cluster.sh, shared with the C tests) -----------

CLUSTER_SH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib", "cluster.sh"
)

# Starts the cluster, prints its variables, then holds it until its stdin closes (the
# fixture's teardown, or pytest dying): then it stops every node itself, as their parent.
_CLUSTER_HOLDER = r"""
. "$1" || exit 1
cluster_start "$2" || exit 1
trap 'cluster_stop' EXIT
trap 'exit 0' TERM INT HUP
printf 'CLUSTER_PORTS=%s\nCLUSTER_PIDS=%s\nCLUSTER_PRIMARIES=%s\nCLUSTER_URL=%s\nREADY\n' \
  "$CLUSTER_PORTS" "$CLUSTER_PIDS" "$CLUSTER_PRIMARIES" "$CLUSTER_URL"
while read -r _; do :; done
"""


class RedisCluster:
    """Six ``redis-server --cluster-enabled yes`` nodes on 127.0.0.1 (three primaries,
    three replicas), started by ``cluster_start`` of scripts/lib/cluster.sh in ``dir``:
    ``ports`` (all six), ``primaries`` (as created), ``replicas``, ``pids`` (the same order
    as ``ports``), ``url`` (every node as a seed list: ``redis://127.0.0.1:P1,.../``)."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.ports: list[int] = []
        self.pids: list[int] = []
        self.primaries: list[int] = []
        self.url = ""
        self._holder: subprocess.Popen[str] | None = None

    @property
    def replicas(self) -> list[int]:
        return [p for p in self.ports if p not in self.primaries]

    def start(self) -> None:
        self._holder = subprocess.Popen(
            ["bash", "-c", _CLUSTER_HOLDER, "cluster-holder", CLUSTER_SH, self.dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        values: dict[str, str] = {}
        for line in self._holder.stdout:
            line = line.strip()
            if line == "READY":
                break
            key, _, value = line.partition("=")
            values[key] = value
        else:
            self._holder.wait(timeout=30)
            raise RuntimeError(f"the redis cluster did not start (see {self.dir}/*/redis.log)")
        self.ports = [int(p) for p in values["CLUSTER_PORTS"].split()]
        self.pids = [int(p) for p in values["CLUSTER_PIDS"].split()]
        self.primaries = [int(p) for p in values["CLUSTER_PRIMARIES"].split()]
        self.url = values["CLUSTER_URL"]

    def stop(self) -> None:
        """Stop every node (the holder's cluster_stop), SIGKILL by PID what is left."""
        if self._holder is not None:
            assert self._holder.stdin is not None
            self._holder.stdin.close()
            if self._holder.stdout is not None:
                self._holder.stdout.close()
            try:
                self._holder.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait(timeout=10)
            self._holder = None
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def cluster() -> Iterator[RedisCluster]:
    """A private Redis Cluster for the session (started on first use, about 3 s)."""
    if REDIS_SERVER is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed (Debian: apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="redipc-cluster-")
    c = RedisCluster(directory)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(directory, ignore_errors=True)
