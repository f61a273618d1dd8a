"""How replies map to Python types (RESP3 and RESP2), and how arguments are accepted."""

from __future__ import annotations

import enum
import math

import pytest

import redipc
from conftest import names


def lua(c: redipc.Client, body: str) -> object:
    """Run a Lua script that answers in RESP3 (what the server sends depends on the client's
    protocol; the script picks RESP3 types)."""
    return c.command("EVAL", "redis.setresp(3); " + body, 0)


def test_resp3_map_from_hgetall(client: redipc.Client) -> None:
    client.hset("h", mapping={"a": "1", "b": "2"})
    reply = client.command("HGETALL", "h")
    assert reply == {b"a": b"1", b"b": b"2"}
    assert isinstance(reply, dict)


def test_resp3_double_from_zscore(client: redipc.Client) -> None:
    assert client.command("ZADD", "z", 1.5, "m", "2", "n") == 2
    score = client.command("ZSCORE", "z", "m")
    assert type(score) is float and score == 1.5
    assert client.command("ZINCRBY", "z", 0.25, "m") == 1.75
    assert client.command("ZSCORE", "z", "nobody") is None
    assert client.command("ZRANGE", "z", 0, -1, "WITHSCORES") == [[b"m", 1.75], [b"n", 2.0]]


def test_resp3_set_from_smembers(client: redipc.Client) -> None:
    client.command("SADD", "s", "a", "b", "c")
    members = client.command("SMEMBERS", "s")
    assert members == {b"a", b"b", b"c"}
    assert isinstance(members, set)


def test_resp3_types_from_lua(client: redipc.Client) -> None:
    assert lua(client, "return true") is True
    assert lua(client, "return false") is False
    d = lua(client, "return {double=3.5}")
    assert type(d) is float and d == 3.5
    assert math.isinf(lua(client, "return {double=1/0}"))  # type: ignore[arg-type]
    big = lua(client, "return {big_number='123456789012345678901234567890'}")
    assert big == 123456789012345678901234567890 and type(big) is int
    assert lua(client, "return {map={a=1}}") == {b"a": 1}
    assert lua(client, "return {set={a=true, b=true}}") == {b"a", b"b"}
    v = lua(client, "return {verbatim_string={format='txt', string='hi there'}}")
    assert v == "hi there"
    assert lua(client, "return {ok='FINE'}") == "FINE"
    assert lua(client, "return {1, 'two', {3}}") == [1, b"two", [3]]
    assert lua(client, "return {}") == []


def test_resp3_integer_keys_and_elements(client: redipc.Client) -> None:
    assert lua(client, "return {set={1, 2}}") == {1, 2}
    assert lua(client, "local m = {}; m[1] = 'x'; return {map=m}") == {1: b"x"}


def test_nested_error_reply_is_a_value(client: redipc.Client) -> None:
    reply = client.command("EVAL", "return {1, {err='MYERR something odd'}, 3}", 0)
    assert isinstance(reply, list) and len(reply) == 3
    assert reply[0] == 1 and reply[2] == 3
    err = reply[1]
    assert isinstance(err, redipc.ResponseError)
    assert err.code == "MYERR"
    assert err.message == "something odd"
    assert str(err) == "MYERR something odd"


def test_multi_exec_is_refused_on_the_shared_connection(client: redipc.Client) -> None:
    # Other threads' commands would mix into it: tx() is the way (see test_tx.py).
    for name in ("MULTI", "EXEC", "WATCH"):
        with pytest.raises(redipc.InvalidArgument):
            client.command(name)
    with pytest.raises(redipc.InvalidArgument):
        client.command("SUBSCRIBE", "x")
    assert client.ping()


def test_verbatim_is_str(client: redipc.Client) -> None:
    info = client.command("CLIENT", "INFO")
    assert isinstance(info, str) and "resp=3" in info
    assert isinstance(client.command("INFO", "server"), str)


def test_resp2(make_client, transport: str) -> None:
    c = make_client(transport, resp3=False)
    c.command("FLUSHALL")
    assert "resp=2" in c.command("CLIENT", "INFO").decode()
    c.hset("h", mapping={"a": "1"})
    assert c.command("HGETALL", "h") == [b"a", b"1"]
    assert c.hgetall("h") == {b"a": b"1"}
    c.command("ZADD", "z", 1.5, "m")
    assert c.command("ZSCORE", "z", "m") == b"1.5"
    c.command("SADD", "s", "a")
    assert c.command("SMEMBERS", "s") == [b"a"]
    assert c.command("PING") == "PONG"
    assert c.get("missing") is None


class Color(enum.IntEnum):
    RED = 7


def test_argument_conversion(client: redipc.Client) -> None:
    client.set("k", Color.RED)
    assert client.get("k") == b"7"
    client.set("k", -3)
    assert client.get("k") == b"-3"
    client.set("k", 2.0)
    assert client.get("k") == b"2.0"
    client.set("k", "")
    assert client.get("k") == b""
    client.set(1, "int key")
    assert client.get("1") == b"int key"


@pytest.mark.parametrize("bad", [{"a": 1}, ["x"], None, object(), True, ("a",)])
def test_unsupported_arguments_raise_type_error(client: redipc.Client, bad: object) -> None:
    # The message says what was expected; PyO3's note names the argument (an item of
    # *args by its index).
    accepted = "expected bytes, bytearray, memoryview, str, int or float, not "
    with pytest.raises(TypeError, match=accepted + names("value")):
        client.set("k", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=accepted + names("key")):
        client.get(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"item 2: {accepted}" + names("args")):
        client.command("SET", "k", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"item 1: {accepted}" + names("values")):
        client.rpush("l", "ok", bad)  # type: ignore[arg-type]
    assert client.exists("k", "l") == 0


def test_surrogates_raise(client: redipc.Client) -> None:
    with pytest.raises(UnicodeEncodeError):
        client.set("k", "\ud800")
