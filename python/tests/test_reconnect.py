"""The connection is re-established after it breaks, without re-creating the client."""

from __future__ import annotations

import time

import pytest

import redipc
from conftest import RedisServer


def test_client_kill(make_client, transport: str) -> None:
    c = make_client(transport, client_name="victim")
    assert c.set("k", "v")
    other = make_client(transport)
    assert other.command("CLIENT", "KILL", "TYPE", "normal") >= 1
    # The server's close reaches the client within milliseconds (RESP3 tells the core at
    # once); from then on a call waits for the reconnect instead of failing.
    time.sleep(0.05)
    assert c.get("k") == b"v"
    assert c.is_connected
    assert c.command("CLIENT", "GETNAME") == b"victim"


def test_client_kill_then_call_at_once(make_client, transport: str) -> None:
    c = make_client(transport)
    other = make_client(transport)
    for _ in range(20):
        assert other.command("CLIENT", "KILL", "TYPE", "normal") >= 1
        try:
            assert c.ping()
        except redipc.ConnectionError:
            # A call made in the instant between the server's close and the client noticing
            # it goes out on the dead connection and fails ("broken pipe"); the core does
            # not retry it yet. The call after it must succeed.
            assert c.ping()


def test_client_kill_resp2(make_client, transport: str) -> None:
    """RESP2 has no close notice: the first call after the kill may fail, the next works."""
    c = make_client(transport, resp3=False)
    other = make_client(transport)
    assert other.command("CLIENT", "KILL", "TYPE", "normal") >= 1
    time.sleep(0.05)
    try:
        c.ping()
    except redipc.ConnectionError:
        pass
    assert c.ping()


def test_server_restart(server: RedisServer, transport: str) -> None:
    """kill -9, then the server comes back on the same port: the same client works again.

    The response timeout (3 s) is longer than the longest reconnect backoff (2 s), so the
    first call after the server is back succeeds.
    """
    c = redipc.Client(server.url(transport), response_timeout=3)
    try:
        c.command("FLUSHALL")
        assert c.set("k", "before")
        server.kill()
        # While the server is down, a call fails within the response timeout.
        start = time.monotonic()
        with pytest.raises(redipc.ConnectionError):
            c.get("k")
        assert time.monotonic() - start < 3.5
        assert not c.is_connected
        server.start()
        assert c.set("k", "after")
        assert c.get("k") == b"after"
        assert c.is_connected
    finally:
        c.close()
        server.ensure_running()


def test_server_restart_with_default_timeout(server: RedisServer, transport: str) -> None:
    """With the default 5 s response timeout, the first call after the restart succeeds."""
    c = redipc.Client(server.url(transport))
    try:
        assert c.ping()
        server.restart()
        assert c.set("k", "v")
        assert c.get("k") == b"v"
    finally:
        c.close()
