"""Every helper and command(), over TCP and the unix socket (the ``client`` fixture)."""

from __future__ import annotations

import datetime
import socket
import time

import pytest

import redipc
from conftest import RedisServer, names


def test_ping_and_command(client: redipc.Client) -> None:
    assert client.ping() is True
    assert client.command("PING") == "PONG"
    assert client.command("ECHO", b"hi") == b"hi"
    assert client.command("set", "k", "v") == "OK"
    assert client.command("GET", "k") == b"v"
    assert client.command("GET", "missing") is None
    assert client.command("TYPE", "k") == "string"
    assert client.command("DBSIZE") == 1


def test_get_set(client: redipc.Client) -> None:
    assert client.get("k") is None
    assert client.set("k", "v") is True
    assert client.get("k") == b"v"
    assert client.get(b"k") == b"v"
    assert client.set(b"k", b"\x00\xffbinary\r\n") is True
    assert client.get("k") == b"\x00\xffbinary\r\n"
    assert client.set("k", "h\u00e9llo \u2603") is True
    assert client.get("k") == "h\u00e9llo \u2603".encode()


def test_set_nx_xx(client: redipc.Client) -> None:
    assert client.set("k", "1", xx=True) is False
    assert client.get("k") is None
    assert client.set("k", "1", nx=True) is True
    assert client.set("k", "2", nx=True) is False
    assert client.get("k") == b"1"
    assert client.set("k", "3", xx=True) is True
    assert client.get("k") == b"3"
    with pytest.raises(redipc.InvalidArgument, match="NX and XX"):
        client.set("k", "4", nx=True, xx=True)


def test_set_ttl(client: redipc.Client) -> None:
    assert client.set("a", "v", 10) is True
    assert 9_000 < client.command("PTTL", "a") <= 10_000
    assert client.set("b", "v", ttl=1.5) is True
    assert 1_000 < client.command("PTTL", "b") <= 1_500
    assert client.set("c", "v", datetime.timedelta(minutes=1)) is True
    assert 59_000 < client.command("PTTL", "c") <= 60_000
    assert client.set("d", "v", 0.05) is True
    time.sleep(0.2)
    assert client.get("d") is None
    with pytest.raises(redipc.InvalidArgument):
        client.set("e", "v", ttl=0)
    with pytest.raises(redipc.InvalidArgument):
        client.set("e", "v", ttl=-1)
    with pytest.raises(TypeError, match="(?s)expected a number of seconds" + names("ttl")):
        client.set("e", "v", ttl="10")  # type: ignore[arg-type]


def test_delete_exists(client: redipc.Client) -> None:
    client.set("a", "1")
    client.set("b", "2")
    assert client.exists("a") == 1
    assert client.exists("a", "b", "c") == 2
    assert client.exists("a", "a") == 2
    assert client.delete("a", "c") == 1
    assert client.exists("a", "b") == 1
    assert client.delete("b") == 1
    assert client.delete("b") == 0
    with pytest.raises(redipc.InvalidArgument, match="at least one key"):
        client.delete()
    with pytest.raises(redipc.InvalidArgument, match="at least one key"):
        client.exists()


def test_expire(client: redipc.Client) -> None:
    assert client.expire("missing", 10) is False
    client.set("k", "v")
    assert client.command("TTL", "k") == -1
    assert client.expire("k", 10) is True
    assert 9 <= client.command("TTL", "k") <= 10
    assert client.expire("k", datetime.timedelta(seconds=100)) is True
    assert 99 <= client.command("TTL", "k") <= 100
    assert client.expire("k", 0.05) is True
    time.sleep(0.2)
    assert client.exists("k") == 0
    with pytest.raises(redipc.InvalidArgument):
        client.expire("k", -1)
    with pytest.raises(redipc.InvalidArgument):
        client.expire("k", float("nan"))


def test_incr_decr(client: redipc.Client) -> None:
    assert client.incr("n") == 1
    assert client.incr("n") == 2
    assert client.incr("n", 10) == 12
    assert client.incr("n", -3) == 9
    assert client.decr("n") == 8
    assert client.decr("n", 5) == 3
    assert client.decr("n", -2) == 5
    assert client.get("n") == b"5"
    client.set("s", "abc")
    with pytest.raises(redipc.ResponseError) as e:
        client.incr("s")
    assert e.value.code == "ERR"
    assert "not an integer" in str(e.value)
    with pytest.raises(OverflowError):
        client.incr("n", 2**63)
    with pytest.raises(redipc.InvalidArgument):
        client.decr("n", -(2**63))


def test_hashes(client: redipc.Client) -> None:
    assert client.hget("h", "f") is None
    assert client.hgetall("h") == {}
    assert client.hset("h", "f1", "v1") == 1
    assert client.hset("h", "f1", "v1b") == 0
    assert client.hset("h", mapping={"f2": "v2", b"f3": 3, "f4": 4.5}) == 3
    assert client.hset("h", "f5", b"v5", mapping={"f6": "v6"}) == 2
    assert client.hget("h", "f1") == b"v1b"
    assert client.hget("h", b"f3") == b"3"
    assert client.hgetall("h") == {
        b"f1": b"v1b",
        b"f2": b"v2",
        b"f3": b"3",
        b"f4": b"4.5",
        b"f5": b"v5",
        b"f6": b"v6",
    }
    assert client.hdel("h", "f1", "f2", "nope") == 2
    assert client.hdel("h", "f3") == 1
    assert set(client.hgetall("h")) == {b"f4", b"f5", b"f6"}
    with pytest.raises(TypeError, match="hset"):
        client.hset("h", "only-field")
    # Nothing to set: the core's own check (an InvalidArgument, as in Rust and C).
    with pytest.raises(redipc.InvalidArgument, match="at least one field"):
        client.hset("h")
    with pytest.raises(redipc.InvalidArgument, match="at least one field"):
        client.hset("h", mapping={})
    with pytest.raises(TypeError, match="(?s)expected a mapping" + names("mapping")):
        client.hset("h", mapping=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="(?s)value of 'a': expected bytes" + names("mapping")):
        client.hset("h", mapping={"a": None})  # type: ignore[dict-item]
    with pytest.raises(redipc.InvalidArgument, match="at least one field"):
        client.hdel("h")


def test_hset_accepts_any_mapping(client: redipc.Client) -> None:
    import types

    assert client.hset("h", mapping=types.MappingProxyType({"a": "1"})) == 1
    assert client.hgetall("h") == {b"a": b"1"}


def test_lists(client: redipc.Client) -> None:
    assert client.llen("l") == 0
    assert client.lpop("l") is None
    assert client.rpop("l") is None
    assert client.rpush("l", "a", "b") == 2
    assert client.lpush("l", "z") == 3
    assert client.rpush("l", 1, 2.5, b"c") == 6
    assert client.command("LRANGE", "l", 0, -1) == [b"z", b"a", b"b", b"1", b"2.5", b"c"]
    assert client.lpop("l") == b"z"
    assert client.rpop("l") == b"c"
    assert client.llen("l") == 4
    with pytest.raises(redipc.InvalidArgument, match="at least one value"):
        client.rpush("l")
    with pytest.raises(redipc.InvalidArgument, match="at least one value"):
        client.lpush("l")


def _read_until(s: socket.socket, end: bytes) -> bytes:
    got = b""
    while not got.endswith(end):
        chunk = s.recv(4096)
        assert chunk, f"connection closed, got {got!r}"
        got += chunk
    return got


def test_publish(client: redipc.Client, server: RedisServer) -> None:
    assert client.publish("chan", "hello") == 0
    # SUBSCRIBE would take over the client's shared connection: subscribe on a plain socket.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"SUBSCRIBE chan\r\n")
        _read_until(s, b":1\r\n")
        assert client.publish("chan", "hello") == 1
        assert b"message" in _read_until(s, b"hello\r\n")


def test_command_arguments(client: redipc.Client) -> None:
    assert client.command("SET", "k", 42) == "OK"
    assert client.command("INCRBY", "k", 8) == 50
    assert client.command("SET", "f", 0.1) == "OK"
    assert client.get("f") == b"0.1"
    assert client.command("SET", "f", 1e16) == "OK"
    assert client.get("f") == b"1e+16"
    assert client.command("SET", "big", 2**100) == "OK"
    assert client.get("big") == str(2**100).encode()
    assert client.command("SET", "ba", bytearray(b"xyz")) == "OK"
    assert client.get("ba") == b"xyz"
    assert client.command("SET", "mv", memoryview(b"abcdef")[1:4]) == "OK"
    assert client.get("mv") == b"bcd"
    assert client.command(b"GET", memoryview(b"mv")) == b"bcd"


def test_pipeline_raw(client: redipc.Client) -> None:
    client.set("s", "x")
    replies = client.pipeline_raw(
        [
            ["SET", "a", "1"],
            ("INCR", "a"),
            ["LPUSH", "s", "v"],
            ["GET", "a"],
            ["GET", "missing"],
        ]
    )
    assert replies[0] == "OK"
    assert replies[1] == 2
    assert isinstance(replies[2], redipc.ResponseError)
    assert replies[2].code == "WRONGTYPE"
    assert replies[3] == b"2"
    assert replies[4] is None
    assert client.pipeline_raw([]) == []
    # A failed item is named by its index; the argument by PyO3's note.
    with pytest.raises(TypeError, match="item 0: expected a list or tuple" + names("commands")):
        client.pipeline_raw(["GET a"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="item 1: item 1: expected bytes"):
        client.pipeline_raw([["GET", "a"], ["GET", {}]])  # type: ignore[list-item]
    with pytest.raises(redipc.InvalidArgument, match="empty command"):
        client.pipeline_raw([["GET", "a"], []])


def test_database_option(make_client, transport: str) -> None:
    c0 = make_client(transport)
    c3 = make_client(transport, database=3)
    c0.command("FLUSHALL")
    c3.set("k", "in-3")
    assert c0.get("k") is None
    assert c3.get("k") == b"in-3"
    assert c3.command("CLIENT", "INFO").split("db=")[1].startswith("3 ")


def test_client_name_option(make_client, transport: str) -> None:
    c = make_client(transport, client_name="redipc-test")
    assert c.command("CLIENT", "GETNAME") == b"redipc-test"
    with pytest.raises(redipc.InvalidArgument, match="client name"):
        make_client(transport, client_name="has space")


def test_username_password(make_client, transport: str) -> None:
    admin = make_client(transport)
    admin.command("ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "+@all")
    try:
        alice = make_client(transport, username="alice", password="s3cret")
        assert alice.command("ACL", "WHOAMI") == b"alice"
        with pytest.raises(redipc.ResponseError) as e:
            make_client(transport, username="alice", password="wrong")
        assert e.value.code == "WRONGPASS"
    finally:
        admin.command("ACL", "DELUSER", "alice")


def test_a_blocking_command_is_interruptible_and_loses_nothing(client: redipc.Client) -> None:
    import _thread
    import threading

    key = f"test:ctrl-c:{time.monotonic_ns()}"
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.command("BLPOP", key, 0)
    timer.join()
    assert time.monotonic() - t0 < 2
    # The server stopped waiting (or what its pop took is put back): nothing is lost.
    client.rpush(key, "a")
    time.sleep(0.2)
    assert client.command("LRANGE", key, 0, -1) == [b"a"]
    assert client.command("BLPOP", key, 1) == [key.encode(), b"a"]
