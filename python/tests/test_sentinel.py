"""Redis Sentinel (``redis-sentinel://host:port,host2:port/db#mymaster``).

A primary and a replica watched by three sentinels, all on free ports of 127.0.0.1 in
temporary directories, started once for the module. The tests walk through discovery,
``SENTINEL FAILOVER`` (commands, a subscription and a reliable worker follow the new
master), the errors of discovery, and ``kill -9`` of the master (last: it leaves one data
server). The servers and sentinels are driven over raw RESP on fresh sockets, so nothing
of redipc is needed to see where the master is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

import redipc
from conftest import REDIS_SERVER, RedisServer, free_port, names

MASTER = "mymaster"
# Short enough for the failovers to be noticed at once; also the sentinel poll interval.
HEALTH = 0.3


class RespError(Exception):
    """An error reply."""


def _read(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError(f"unexpected reply {line!r}")


def resp(port: int, *args: str | int, timeout: float = 3.0) -> Any:
    """One command on a fresh RESP2 connection to 127.0.0.1:``port``; ``None`` if it cannot
    be run (nothing listens, no answer), a ``RespError`` for an error reply."""
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(out)
            with s.makefile("rb") as f:
                return _read(f)
    except OSError:
        return None


def wait_until(cond: Callable[[], bool], what: str, within: float) -> float:
    """Wait until ``cond()``; how long it took."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > within:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(0.05)
    return time.monotonic() - start


class SentinelProc:
    """A sentinel (``redis-server CONF --sentinel``) on a free port; its config file, which
    it rewrites, in a temporary directory."""

    def __init__(self, masters: dict[str, int], extra: str = "") -> None:
        self.dir = tempfile.mkdtemp(prefix="redipc-sentinel-")
        self.masters = masters
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(
                    f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"logfile {os.path.join(self.dir, 'sentinel.log')}\n{self.extra}"
                )
                for name, port in self.masters.items():
                    f.write(
                        f"sentinel monitor {name} 127.0.0.1 {port} 2\n"
                        f"sentinel down-after-milliseconds {name} 1000\n"
                        f"sentinel failover-timeout {name} 4000\n"
                        f"sentinel parallel-syncs {name} 1\n"
                    )
            self.proc = subprocess.Popen(
                [REDIS_SERVER or "redis-server", conf, "--sentinel"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if resp(self.port, "PING", timeout=0.5) == "PONG":
                    return
                time.sleep(0.02)
            self.kill()  # the port was taken meanwhile: another one
        raise RuntimeError(f"a sentinel did not start (see {self.dir})")

    def cmd(self, *args: str | int) -> Any:
        return resp(self.port, *args)

    def master_port(self, name: str = MASTER) -> int | None:
        """The port of the master ``name`` as this sentinel sees it."""
        r = self.cmd("SENTINEL", "get-master-addr-by-name", name)
        return int(r[1]) if isinstance(r, list) else None

    def knows(self, name: str = MASTER) -> tuple[int, int]:
        """How many replicas and other sentinels of ``name`` this sentinel knows."""
        replicas = self.cmd("SENTINEL", "replicas", name)
        sentinels = self.cmd("SENTINEL", "sentinels", name)
        return (
            len(replicas) if isinstance(replicas, list) else 0,
            len(sentinels) if isinstance(sentinels, list) else 0,
        )

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Topology:
    servers: dict[int, RedisServer]
    sentinels: list[SentinelProc]

    def url(self, userinfo: str = "", name: str = MASTER) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis-sentinel://{userinfo}{hosts}/0#{name}"

    def client(self, **options: Any) -> redipc.Client:
        return redipc.Client(self.url(), health_check_interval=HEALTH, response_timeout=5, **options)

    def master_port(self) -> int | None:
        """The port every sentinel names as the master (``None`` while they disagree)."""
        ports = {s.master_port() for s in self.sentinels}
        return ports.pop() if len(ports) == 1 else None

    def replicated(self, port: int, within: float = 20) -> None:
        """Wait until the master on ``port`` has a replica that has everything written so
        far (``WAIT 1``): replication is asynchronous, and a failover needs a replica."""
        wait_until(
            lambda: isinstance(r := resp(port, "WAIT", 1, 1000), int) and r >= 1,
            f"a replica of {port} in sync",
            within,
        )

    def await_new_master(self, old: int, within: float = 20) -> int:
        """Wait until every sentinel names a master other than ``old``; its port."""
        ports: list[int | None] = []

        def moved() -> bool:
            ports.append(self.master_port())
            return ports[-1] not in (None, old)

        wait_until(moved, "the sentinels agree on a new master", within)
        new = ports[-1]
        assert new is not None
        return new


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    dirs: list[str] = []
    servers: list[RedisServer] = []
    sentinels: list[SentinelProc] = []

    def server(extra: list[str]) -> RedisServer:
        dirs.append(tempfile.mkdtemp(prefix="redipc-py-"))
        s = RedisServer(dirs[-1], extra)
        s.start(retry_ports=True)
        servers.append(s)
        return s

    try:
        master = server([])
        server(["--replicaof", "127.0.0.1", str(master.port)])
        for _ in range(3):
            sentinels.append(SentinelProc({MASTER: master.port}))
            sentinels[-1].start()
        # A failover needs every sentinel to know the replica and the other sentinels.
        for sp in sentinels:
            wait_until(lambda: (k := sp.knows())[0] >= 1 and k[1] >= 2, "the sentinels meet", 20)  # noqa: B023
        yield Topology({s.port: s for s in servers}, sentinels)
    finally:
        for sp in sentinels:
            sp.remove()
        for s in servers:
            s.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def send(c: redipc.Client, payload: str) -> None:
    """Send a request until a send succeeds (one that raised may have run: the queue holds
    it at least once)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            c.send_request("jobs", payload)
            return
        except redipc.RedipcError:
            assert time.monotonic() < deadline, f"send {payload}"
            time.sleep(0.05)


def lands_on(c: redipc.Client, port: int, key: str, value: str) -> Callable[[], bool]:
    """A condition: ``SET key value`` through the client succeeds and is on the server of
    ``port``."""

    def cond() -> bool:
        try:
            c.set(key, value)
        except redipc.RedipcError:
            return False
        return bool(resp(port, "GET", key) == value.encode())

    return cond


def test_discovery(topology: Topology) -> None:
    with topology.client() as c:
        port = topology.master_port()
        assert port is not None
        assert c.set("discovered", "yes")
        assert c.get("discovered") == b"yes"
        assert resp(port, "GET", "discovered") == b"yes"
        assert repr(c).startswith("<redipc.Client redis-sentinel://")
        assert c.is_connected


@dataclass
class Failover:
    client: redipc.Client
    sub: redipc.Subscription
    old: int
    new: int
    # Seconds from SENTINEL FAILOVER until a write through the client landed on `new`.
    recovered_after: float
    sent: set[bytes] = field(default_factory=set)
    handled: set[bytes] = field(default_factory=set)
    handled_lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="class")
def failover(topology: Topology) -> Iterator[Failover]:
    """One ``SENTINEL FAILOVER`` with a client that has a subscription and a reliable
    worker busy on a queue (stopped when the class's tests are done)."""
    c = topology.client()
    sub = c.subscribe("news")
    handled: set[bytes] = set()
    lock = threading.Lock()

    def handle(r: redipc.Request) -> None:
        time.sleep(0.05)  # still busy when the failover comes
        with lock:
            handled.add(r.payload)

    worker = c.handle_requests("jobs", handle, reliable=True, lease=2)
    try:
        before = [f"before-{i}" for i in range(40)]
        for p in before:
            send(c, p)
        old = topology.master_port()
        assert old is not None
        topology.replicated(old)
        r = topology.sentinels[1].cmd("SENTINEL", "FAILOVER", MASTER)
        assert r == "OK", r
        started = time.monotonic()
        new = topology.await_new_master(old)
        wait_until(lands_on(c, new, "k", "after-failover"), "writes on the new master", 15)
        f = Failover(c, sub, old, new, time.monotonic() - started, handled=handled, handled_lock=lock)
        f.sent.update(p.encode() for p in before)
        yield f
    finally:
        worker.stop(5)
        sub.close()
        c.close()


class TestFailover:
    """What clients see of one ``SENTINEL FAILOVER`` (the ``failover`` fixture)."""

    def test_commands_recover_on_the_new_master(self, failover: Failover, topology: Topology) -> None:
        assert failover.new != failover.old
        assert failover.recovered_after < 10, failover.recovered_after
        c = failover.client
        assert c.incr("counter") >= 1
        assert resp(failover.new, "GET", "counter") is not None
        role = resp(failover.new, "ROLE")
        assert role[0] == b"master", role
        assert c.stats().reconnects >= 1

    def test_subscription_is_restored(self, failover: Failover) -> None:
        kinds: list[str] = []
        payloads: list[bytes] = []

        def drain() -> None:
            while (m := failover.sub.get(0.01)) is not None:
                kinds.append(m.kind)
                if m.kind == "message":
                    payloads.append(m.payload)

        def reactivated() -> bool:
            drain()
            return "reactivated" in kinds

        wait_until(reactivated, "a reactivated event", 10)
        assert "disconnected" in kinds, kinds
        # Published until one arrives: the pub/sub connection may still be on its way to
        # the new master when the first goes out.
        n = 0

        def message() -> bool:
            nonlocal n
            n += 1
            failover.client.publish("news", f"after-{n}")
            drain()
            return any(p.startswith(b"after-") for p in payloads)

        wait_until(message, "a message published after the failover", 5)

    def test_reliable_worker_loses_nothing(self, failover: Failover) -> None:
        after = [f"after-{i}" for i in range(40)]
        for p in after:
            send(failover.client, p)
        failover.sent.update(p.encode() for p in after)

        def all_handled() -> bool:
            with failover.handled_lock:
                return failover.sent <= failover.handled

        wait_until(all_handled, "every request handled", 15)
        with failover.handled_lock:
            assert failover.handled == failover.sent


def test_no_sentinel_reachable() -> None:
    secret = "Zq7-S3nt1nel-pw"
    url = f"redis-sentinel://app:{secret}@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0#{MASTER}"
    start = time.monotonic()
    with pytest.raises(redipc.ConnectionError) as e:
        redipc.Client(url, sentinel_password=secret, connect_timeout=0.5)
    assert time.monotonic() - start < 3
    text = f"{e.value} {e.value!r} {e.value.args!r} {getattr(e.value, '__notes__', '')}"
    assert "sentinel" in text, text
    assert secret not in text, text


def test_password_never_shown(topology: Topology) -> None:
    secret = "Zq7-S3nt1nel-pw"
    # The master and the sentinels have no password: HELLO's AUTH is accepted.
    c = redipc.Client(topology.url(f":{secret}@"), sentinel_username="default", sentinel_password=secret)
    try:
        assert c.ping()
        assert secret not in repr(c) and secret not in str(c)
        assert "***" in repr(c)
    finally:
        c.close()
    # Credentials the master refuses (no user "app"): an error that does not show them.
    with pytest.raises(redipc.RedipcError) as e:
        redipc.Client(topology.url(f"app:{secret}@"), sentinel_password=secret, connect_timeout=1)
    text = f"{e.value} {e.value!r} {e.value.args!r}"
    assert "WRONGPASS" in text, text
    assert secret not in text, text


def test_sentinel_credentials() -> None:
    """``sentinel_username``/``sentinel_password`` reach the sentinels (an ACL user of a
    sentinel of its own, watching a master of its own), never the master."""
    secret = "Zq7-S3nt1nel-pw"
    directory = tempfile.mkdtemp(prefix="redipc-py-")
    server = RedisServer(directory)
    sentinel = SentinelProc({}, extra=f"user watcher on >{secret} +@all\n")
    try:
        server.start(retry_ports=True)
        sentinel.masters = {"guarded": server.port}
        sentinel.start()
        url = f"redis-sentinel://127.0.0.1:{sentinel.port}/0#guarded"
        with redipc.Client(url, sentinel_username="watcher", sentinel_password=secret) as c:
            assert c.set("k", "v")
            assert resp(server.port, "GET", "k") == b"v"
            assert secret not in repr(c)
        # The default user of the sentinel takes any password: only the user "watcher"
        # with the wrong one is refused, and only if both options are passed on.
        with pytest.raises(redipc.ConnectionError) as e:
            redipc.Client(url, sentinel_username="watcher", sentinel_password=f"{secret}-wrong", connect_timeout=0.5)
        text = f"{e.value} {e.value!r}"
        assert "WRONGPASS" in text and "sentinel" in text, text
        assert secret not in text, text
        with pytest.raises(TypeError, match=names("sentinel_password")):
            redipc.Client(url, sentinel_password=b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=names("sentinel_username")):
            redipc.Client(url, sentinel_username=1)  # type: ignore[arg-type]
        # With a URL that names no sentinels they would be ignored: refused instead.
        with pytest.raises(redipc.InvalidArgument, match="redis-sentinel://"):
            redipc.Client(f"redis://127.0.0.1:{server.port}", sentinel_password=secret)
    finally:
        sentinel.remove()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_unknown_master_name(topology: Topology) -> None:
    with pytest.raises(redipc.ConnectionError, match="does not know the master") as e:
        redipc.Client(topology.url(name="nosuchmaster"), connect_timeout=1)
    assert "nosuchmaster" in str(e.value)


def test_kill_9_of_the_master(topology: Topology) -> None:
    old = topology.master_port()
    assert old is not None
    # After a failover the old master becomes a replica of the new one; wait for it.
    topology.replicated(old, within=30)
    with topology.client() as c:
        assert c.set("k", "before-kill")
        killed = time.monotonic()
        topology.servers[old].kill()
        survivor = next(p for p in topology.servers if p != old)
        took = wait_until(lands_on(c, survivor, "k", "after-kill"), "commands after kill -9", 10)
        assert took < 10
        assert time.monotonic() - killed < 10
        assert topology.await_new_master(old) == survivor
        # A new client finds the new master too.
        with topology.client() as fresh:
            assert fresh.get("k") == b"after-kill"
