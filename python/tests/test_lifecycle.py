"""Opening, closing, the context manager and repr."""

from __future__ import annotations

import gc

import pytest

import redipc
from conftest import RedisServer


def test_context_manager_closes(server: RedisServer, transport: str) -> None:
    with redipc.Client(server.url(transport)) as c:
        assert isinstance(c, redipc.Client)
        assert c.ping()
        assert c.is_connected
        assert "connected" in repr(c)
    with pytest.raises(redipc.ClosedError):
        c.get("k")
    with pytest.raises(redipc.ClosedError):
        c.command("PING")
    assert not c.is_connected
    assert repr(c).endswith(" closed>")
    c.close()  # closing again is harmless


def test_context_manager_does_not_swallow(server: RedisServer) -> None:
    with pytest.raises(KeyError):
        with redipc.Client(server.tcp_url) as c:
            raise KeyError("boom")
    with pytest.raises(redipc.ClosedError):
        c.ping()


def test_close(server: RedisServer) -> None:
    c = redipc.Client(server.tcp_url)
    c.close()
    with pytest.raises(redipc.ClosedError, match="closed"):
        c.set("k", "v")


def test_repr_hides_password(server: RedisServer) -> None:
    url = f"redis://:nopass@127.0.0.1:{server.port}/0"
    c = redipc.Client(url)
    try:
        assert repr(c) == f"<redipc.Client redis://:***@127.0.0.1:{server.port}/0 connected>"
    finally:
        c.close()


def test_dropped_client_is_released(server: RedisServer) -> None:
    for _ in range(50):
        c = redipc.Client(server.tcp_url)
        assert c.ping()
        del c
    gc.collect()
    admin = redipc.Client(server.tcp_url)
    try:
        clients = admin.command("CLIENT", "LIST", "TYPE", "normal")
        assert isinstance(clients, str)  # a RESP3 verbatim string
        assert clients.count("\n") < 10
    finally:
        admin.close()


def test_close_ends_a_call_in_flight_on_another_thread(server: RedisServer) -> None:
    import threading
    import time

    c = redipc.Client(server.unix_url)
    outcome: list[BaseException | object] = []

    def wait_forever() -> None:
        try:
            outcome.append(c.command("BLPOP", "never-pushed", 0))
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            outcome.append(e)

    t = threading.Thread(target=wait_forever)
    t.start()
    time.sleep(0.2)
    assert not outcome, "BLPOP returned early"
    c.close()
    t.join(timeout=2)
    assert not t.is_alive(), "close did not end the BLPOP"
    assert isinstance(outcome[0], redipc.ClosedError), outcome
