"""ACL users: a user limited to some keys and channels (``~app:* &app:*``) gets
``ResponseError`` with code ``NOPERM`` for the rest and the client stays usable; the
library's own keys under a permitted prefix work; a forbidden subscription fails clearly;
the password never shows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import redipc
from conftest import RedisServer

PASSWORD = "app-Pa55-acl"


@pytest.fixture
def app(server: RedisServer) -> Iterator[redipc.Client]:
    with redipc.Client(server.tcp_url) as admin:
        admin.command("ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~app:*", "&app:*", "+@all")
    c = redipc.Client(
        f"redis://app:{PASSWORD}@127.0.0.1:{server.port}/0", key_prefix="app:ipc:"
    )
    try:
        yield c
    finally:
        c.close()
        with redipc.Client(server.tcp_url) as admin:
            admin.command("ACL", "DELUSER", "app")


def test_commands_outside_the_users_rights(app: redipc.Client) -> None:
    assert app.command("ACL", "WHOAMI") == b"app"
    app.set("app:k", "v")
    for call in (lambda: app.set("other:k", "v"), lambda: app.command("GET", "other:k")):
        with pytest.raises(redipc.ResponseError) as e:
            call()
        assert e.value.code == "NOPERM"
        assert PASSWORD not in str(e.value) and PASSWORD not in repr(e.value)
    assert app.get("app:k") == b"v"
    assert app.stats().reconnects == 0
    assert PASSWORD not in repr(app)


def test_the_librarys_own_keys_under_a_permitted_prefix(app: redipc.Client) -> None:
    got: list[bytes] = []
    w = app.handle_requests("jobs", lambda r: got.append(bytes(r.payload)))
    try:
        app.send_request("jobs", "j1")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == [b"j1"]
    finally:
        w.stop()
    s = app.serve("echo", lambda call: call.payload)
    try:
        assert app.call("echo", "hi") == b"hi"
    finally:
        s.stop()


def test_a_forbidden_channel_fails_clearly(app: redipc.Client) -> None:
    ok = app.subscribe("app:news")
    with pytest.raises(redipc.ResponseError, match="secret:news") as e:
        app.subscribe("secret:news")
    assert e.value.code == "NOPERM"
    app.publish("app:news", "still here")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = ok.get(timeout=0.1)
        if m is not None and getattr(m, "payload", None) == b"still here":
            break
    else:
        pytest.fail("no message on the permitted channel")
    with pytest.raises(redipc.ResponseError) as e:
        app.publish("secret:news", "x")
    assert e.value.code == "NOPERM"
    ok.close()
