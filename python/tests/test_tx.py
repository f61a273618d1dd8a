"""Pipelines, MULTI/EXEC transactions and WATCH-based optimistic transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import redipc


def test_exec_gives_one_result_per_command_with_errors_in_their_slots(client: redipc.Client) -> None:
    client.lpush("list", "x")
    tx = client.tx()
    assert tx.add("SET", "a", 1) is tx
    tx.add("INCR", "a").add("INCR", "list").add("GET", "a")
    assert len(tx) == 4
    assert repr(tx) == "<redipc.Transaction 4 commands>"
    r = tx.exec()
    assert len(r) == 4
    assert r[0] == "OK"
    assert r[1] == 2
    assert isinstance(r[2], redipc.ResponseError)
    assert r[2].code == "WRONGTYPE"
    assert r[3] == b"2"
    # exec() empties it; it can be used again.
    assert len(tx) == 0 and not tx
    assert tx.exec() == []
    assert tx.add("INCR", "a").exec() == [3]
    assert client.tx().exec() == []


def test_a_command_rejected_while_queueing_aborts_everything(client: redipc.Client) -> None:
    tx = client.tx().add("SET", "a", 1).add("NOSUCHCOMMAND", "x").add("SET", "b", 2)
    with pytest.raises(redipc.ResponseError) as info:
        tx.exec()
    assert info.value.code == "EXECABORT"
    assert "command 1 (NOSUCHCOMMAND x) was rejected" in str(info.value)
    assert client.exists("a", "b") == 0, "nothing ran"
    assert len(tx) == 0
    # The shared connection is fine afterwards.
    assert client.ping()
    assert client.tx().add("SET", "a", 1).exec() == ["OK"]


def test_pipeline_of_a_thousand_keeps_errors_in_slots(client: redipc.Client) -> None:
    p = client.pipeline()
    for i in range(1000):
        p.add("INCR", f"k{i % 10}")
    p.add("HGET", "k0", "f")
    assert len(p) == 1001
    r = p.exec()
    assert len(r) == 1001
    assert r[:10] == [1] * 10
    assert r[999] == 100
    assert isinstance(r[1000], redipc.ResponseError) and r[1000].code == "WRONGTYPE"
    assert client.pipeline().exec() == []


def test_pipeline_bad_input_and_context_manager(client: redipc.Client) -> None:
    p = client.pipeline()
    with pytest.raises(redipc.InvalidArgument):
        p.add()
    with pytest.raises(TypeError):
        p.add("SET", "k", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.tx().add("SET", "k", None)  # type: ignore[arg-type]
    assert len(p) == 0
    # Leaving the block discards what was not sent.
    with client.tx() as tx:
        tx.add("SET", "sent", 1)
        assert tx.exec() == ["OK"]
        tx.add("SET", "discarded", 1)
    assert len(tx) == 0
    with pytest.raises(KeyError), client.pipeline() as p2:
        p2.add("SET", "discarded", 1)
        raise KeyError("boom")
    assert len(p2) == 0
    assert client.exists("sent", "discarded") == 1
    p3 = client.pipeline().add("PING")
    p3.clear()
    assert p3.exec() == []
    # What would stall or change the shared connection is refused when queued.
    for args in (("SUBSCRIBE", "x"), ("SELECT", 2), ("BLPOP", "q", 1)):
        with pytest.raises(redipc.InvalidArgument, match=str(args[0])):
            client.pipeline().add(*args)
        with pytest.raises(redipc.InvalidArgument):
            client.pipeline_raw([["PING"], list(args)])
    assert client.tx().add("BLPOP", "q", 0).exec() == [None]


def test_transaction_transfers_between_accounts(client: redipc.Client) -> None:
    client.set("alice", 100)
    client.set("bob", 0)

    def transfer(s: redipc.WatchSession) -> None:
        balance = int(s.command("GET", "alice") or 0)
        if balance < 30:
            raise ValueError("insufficient funds")
        s.queue("DECRBY", "alice", 30)
        s.queue("INCRBY", "bob", 30)

    assert client.transaction(transfer, "alice", "bob") == [70, 30]
    assert client.transaction(transfer, "alice", "bob") == [40, 60]
    assert client.transaction(transfer, "alice", "bob") == [10, 90]
    # An exception raised by the function aborts and propagates unchanged.
    with pytest.raises(ValueError, match="insufficient funds"):
        client.transaction(transfer, "alice", "bob")
    assert client.get("alice") == b"10" and client.get("bob") == b"90"


def test_watch_retry_when_a_watched_key_changes(
    client: redipc.Client, make_client: Callable[..., redipc.Client]
) -> None:
    other = make_client("tcp")
    client.set("counter", 10)
    attempts = 0

    def bump(s: redipc.WatchSession) -> None:
        nonlocal attempts
        attempts += 1
        v = int(s.command("GET", "counter"))
        if attempts == 1:
            other.incr("counter")  # changes the watched key: EXEC must fail, then retry
        s.queue("SET", "counter", v + 1)

    assert client.transaction(bump, "counter") == ["OK"]
    assert attempts == 2
    assert client.get("counter") == b"12"


def test_watch_error_when_retries_are_exhausted(
    client: redipc.Client, make_client: Callable[..., redipc.Client]
) -> None:
    other = make_client("tcp")
    client.set("alice", 1)
    attempts = 0

    def always_changed(s: redipc.WatchSession) -> None:
        nonlocal attempts
        attempts += 1
        s.command("GET", "alice")
        other.incr("alice")
        s.queue("SET", "alice", 0)

    with pytest.raises(redipc.WatchError):
        client.transaction(always_changed, "alice", max_retries=2)
    assert attempts == 3
    assert client.get("alice") == b"4"
    with pytest.raises(redipc.WatchError):
        client.transaction(always_changed, "alice", max_retries=0)
    assert attempts == 4


def test_eight_threads_increment_exactly(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp")
    c.command("FLUSHALL")
    c.set("counter", 0)
    per_thread = 50
    errors: list[BaseException] = []

    def incr(s: redipc.WatchSession) -> None:
        v = int(s.command("GET", "counter"))
        s.queue("SET", "counter", v + 1)

    def run() -> None:
        try:
            for _ in range(per_thread):
                assert c.transaction(incr, "counter", max_retries=10_000) == ["OK"]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert c.get("counter") == str(8 * per_thread).encode()


def test_the_session_is_only_valid_inside_the_function(client: redipc.Client) -> None:
    kept: list[redipc.WatchSession] = []

    def f(s: redipc.WatchSession) -> None:
        kept.append(s)
        s.queue("SET", "k", "v")

    assert client.transaction(f, "k") == ["OK"]
    with pytest.raises(redipc.ClosedError):
        kept[0].command("GET", "k")
    with pytest.raises(redipc.ClosedError):
        kept[0].queue("SET", "k", "w")
    assert "finished" in repr(kept[0])


def test_the_session_works_from_another_thread_while_the_function_waits(client: redipc.Client) -> None:
    client.set("k", 5)
    seen: list[object] = []

    def f(s: redipc.WatchSession) -> None:
        def helper() -> None:
            seen.append(s.command("GET", "k"))
            s.queue("INCR", "k")

        t = threading.Thread(target=helper)
        t.start()
        t.join(timeout=10)
        assert not t.is_alive()

    assert client.transaction(f, "k") == [6]
    assert seen == [b"5"]


def test_transaction_error_replies_and_bad_input(client: redipc.Client) -> None:
    client.lpush("list", "x")

    def read_wrong_type(s: redipc.WatchSession) -> None:
        s.command("GET", "list")

    with pytest.raises(redipc.ResponseError) as info:
        client.transaction(read_wrong_type, "list")
    assert info.value.code == "WRONGTYPE"

    def wrong_type_in_exec(s: redipc.WatchSession) -> None:
        s.queue("INCR", "list")
        s.queue("SET", "x", 1)

    r = client.transaction(wrong_type_in_exec, "list")
    assert isinstance(r[0], redipc.ResponseError) and r[1] == "OK"

    with pytest.raises(redipc.InvalidArgument):
        client.transaction(lambda s: None)
    with pytest.raises(TypeError):
        client.transaction(42, "k")  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument):
        client.transaction(lambda s: None, "k", max_retries=-1)

    def empty(s: redipc.WatchSession) -> None:
        s.command("GET", "k")

    assert client.transaction(empty, "k") == []


def test_many_short_transactions_are_quick(client: redipc.Client) -> None:
    """A sanity bound, not a benchmark: 200 MULTI/EXEC of 100 INCR each."""
    start = time.monotonic()
    for _ in range(200):
        tx = client.tx()
        for _ in range(100):
            tx.add("INCR", "n")
        tx.exec()
    assert client.get("n") == b"20000"
    assert time.monotonic() - start < 20


def test_the_functions_own_exception_is_raised_again_as_itself(client: redipc.Client) -> None:
    """It travels through the core's retry loop as the transaction's abort (nothing queued
    runs) and comes back as the very object the function raised."""
    raised = LookupError("not there")
    calls = 0

    def f(s: redipc.WatchSession) -> None:
        nonlocal calls
        calls += 1
        s.queue("SET", "k", "never")
        raise raised

    with pytest.raises(LookupError) as info:
        client.transaction(f, "k")
    assert info.value is raised and calls == 1, "not retried"
    assert client.exists("k") == 0
    # A redipc error of the function's own is raised as itself too, not re-classified.
    mine = redipc.WatchError("mine")
    with pytest.raises(redipc.WatchError) as info2:
        client.transaction(lambda s: (_ for _ in ()).throw(mine), "k")
    assert info2.value is mine


def test_watch_error_after_the_retries_is_the_cores(
    client: redipc.Client, make_client: Callable[..., redipc.Client]
) -> None:
    other = make_client("tcp")
    attempts = 0

    def conflicting(s: redipc.WatchSession) -> None:
        nonlocal attempts
        attempts += 1
        other.incr("w")
        s.queue("SET", "w", 0)

    with pytest.raises(redipc.WatchError) as info:
        client.transaction(conflicting, "w", max_retries=3)
    assert attempts == 4
    assert not isinstance(info.value, redipc.AbortedError)
    assert int(client.get("w") or 0) == 4, "no EXEC ran"
