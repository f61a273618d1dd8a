"""Large values, and the size limit checked before anything is sent."""

from __future__ import annotations

import os

import pytest

import redipc

MiB = 1024 * 1024


def test_16_mib_round_trip(client: redipc.Client) -> None:
    value = os.urandom(16 * MiB)
    assert client.set("big", value) is True
    assert client.get("big") == value
    assert client.command("STRLEN", "big") == 16 * MiB
    assert client.rpush("l", memoryview(value), bytearray(value[:MiB])) == 2
    assert client.rpop("l") == value[:MiB]
    assert client.lpop("l") == value


def test_value_over_the_limit(make_client, transport: str) -> None:
    c = make_client(transport, max_value_size=MiB)
    c.command("FLUSHALL")
    c.set("small", b"x" * MiB)
    assert len(c.get("small") or b"") == MiB
    with pytest.raises(redipc.InvalidArgument, match="over the limit") as e:
        c.set("big", b"x" * (2 * MiB))
    assert isinstance(e.value, ValueError)
    with pytest.raises(redipc.InvalidArgument, match="over the limit"):
        c.command("SET", "big", "y" * (2 * MiB))
    with pytest.raises(redipc.InvalidArgument, match="over the limit"):
        c.pipeline_raw([["SET", "a", "1"], ["SET", "big", b"z" * (2 * MiB)]])
    # Nothing was sent, and the client still works.
    assert c.exists("big", "a") == 0
    assert c.ping()
    assert c.get("small") == b"x" * MiB
