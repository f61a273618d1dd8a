"""Event streams: bounded publish, read, follow, consumer groups with claiming and dead
letters (against the suite's own redis-server)."""

from __future__ import annotations

import _thread
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable

import pytest

import redipc
from conftest import RedisServer


def wait_until(pred: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.01)


def test_publish_read_last_len_and_entry_api(client: redipc.Client) -> None:
    first = client.stream_publish("s", {"a": 1, b"b": "x"})
    second = client.stream_publish("s", payload=b"hi")
    assert isinstance(first, str) and first != second
    entries = client.stream_read("s")
    assert [e.id for e in entries] == [first, second]
    e = entries[0]
    assert e.fields == {b"a": b"1", b"b": b"x"}
    assert list(e.fields) == [b"a", b"b"], "fields keep their order"
    assert e[b"a"] == b"1" and e["b"] == b"x"
    assert e.get("missing") is None and e.get("missing", b"d") == b"d"
    assert "a" in e and b"zz" not in e and len(e) == 2
    assert e.deliveries == 0
    with pytest.raises(KeyError):
        e["missing"]
    assert entries[1]["payload"] == b"hi"
    assert "StreamEntry(id=" in repr(e)
    assert client.stream_read("s") == entries, "entries compare by value"
    assert client.stream_last("s") == entries[1]
    assert client.stream_last("missing") is None
    assert client.stream_len("s") == 2 and client.stream_len("missing") == 0
    # From an id: what comes after it.
    assert [x.id for x in client.stream_read("s", first)] == [second]
    assert [x.id for x in client.stream_read("s", "0", count=1)] == [first]


def test_bad_arguments(client: redipc.Client) -> None:
    with pytest.raises(TypeError):
        client.stream_publish("s")
    with pytest.raises(TypeError):
        client.stream_publish("s", {"a": 1}, payload="x")
    with pytest.raises(TypeError):
        client.stream_publish("s", ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument):
        client.stream_publish("s", {})
    with pytest.raises(redipc.InvalidArgument):
        client.stream_publish("s", payload="x", maxlen=-1)
    with pytest.raises(redipc.InvalidArgument):
        client.stream_publish("", payload="x")
    with pytest.raises(redipc.InvalidArgument):
        client.stream_read("s", count=0)
    with pytest.raises(TypeError):
        client.stream_consume("s", "g", "c", "not callable")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", "1-x", "", "-5", "1-2-3", "$$"])
def test_invalid_stream_ids_are_invalid_argument(client: redipc.Client, bad: str) -> None:
    for call in (
        lambda: client.stream_read("s", bad),
        lambda: client.stream_read("s", bad, block=0.01),
        lambda: client.stream_follow("s", bad),
        lambda: client.stream_group_create("s", "g", bad),
    ):
        with pytest.raises(redipc.InvalidArgument):
            call()
    assert client.exists("s") == 0, "nothing was created"


def test_an_existing_group_is_not_an_error(client: redipc.Client) -> None:
    assert client.stream_group_create("s", "g") is True
    assert client.stream_group_create("s", "g") is False
    assert client.stream_group_create("s", "g", "0") is False
    assert client.stream_len("s") == 0, "MKSTREAM made an empty stream"
    info = client.stream_pending("s", "g")
    assert info.count == 0 and info.consumers == {}
    client.set("plain", "x")
    with pytest.raises(redipc.ResponseError) as e:
        client.stream_group_create("plain", "g")
    assert e.value.code == "WRONGTYPE"


def test_maxlen_bound_holds(make_client: Callable[..., redipc.Client]) -> None:
    client = make_client()
    client.command("FLUSHALL")
    client.pipeline_raw([["DEL", "bounded"]])
    for i in range(3000):
        client.stream_publish("bounded", {"n": i}, maxlen=100)
    n = client.stream_len("bounded")
    assert 100 <= n < 400, f"MAXLEN ~ 100 kept {n}"
    last = client.stream_last("bounded")
    assert last is not None and last["n"] == b"2999"
    for i in range(300):
        client.stream_publish("unbounded", {"n": i}, maxlen=0)
    assert client.stream_len("unbounded") == 300


def test_client_default_maxlen(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client(stream_maxlen=50)
    c.command("DEL", "dflt")
    for i in range(2000):
        c.stream_publish("dflt", payload=i)
    assert 50 <= c.stream_len("dflt") < 300


def test_follower_sees_every_entry_in_order_while_another_thread_publishes(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client()
    c.command("DEL", "events")
    c.stream_publish("events", payload="old")
    follower = c.stream_follow("events")  # from "$": only what comes after this call
    old_position = follower.position
    assert old_position != "$", "the start is pinned to the last id now"
    writer = make_client("unix")

    def publish() -> None:
        for i in range(1000):
            writer.stream_publish("events", {"n": i}, maxlen=0)

    t = threading.Thread(target=publish)
    t.start()
    got = []
    for entry in follower:
        got.append(int(entry["n"]))
        if len(got) == 1000:
            break
    t.join()
    assert got == list(range(1000))
    assert follower.position == c.stream_last("events").id  # type: ignore[union-attr]
    assert follower.next(0.05) is None
    follower.close()
    with pytest.raises(redipc.ClosedError):
        follower.next(0)
    assert list(follower) == []


def test_follower_from_dollar_misses_nothing_published_between_next_calls(
    client: redipc.Client,
) -> None:
    follower = client.stream_follow("late")
    client.stream_publish("late", payload="1")  # before the first next()
    e = follower.next(1)
    assert e is not None and e["payload"] == b"1"
    client.stream_publish("late", payload="2")
    e = follower.next(1)
    assert e is not None and e["payload"] == b"2"


def test_blocking_read_waits_for_new_entries(client: redipc.Client) -> None:
    client.stream_publish("b", payload="old")
    t0 = time.monotonic()
    assert client.stream_read("b", "$", block=0.3) == []
    assert 0.25 <= time.monotonic() - t0 < 2
    timer = threading.Timer(0.5, lambda: client.stream_publish("b", payload="new"))
    timer.start()
    got = client.stream_read("b", "$", block=5)
    timer.join()
    assert [e["payload"] for e in got] == [b"new"], "a slow entry is not missed between slices"


def test_a_blocking_read_is_interruptible(client: redipc.Client) -> None:
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.stream_read("quiet", "$", block=30)
    timer.join()
    assert time.monotonic() - t0 < 2


def _publish_many(client: redipc.Client, stream: str, n: int) -> None:
    batch = []
    for i in range(n):
        batch.append(["XADD", stream, "*", "n", str(i)])
        if len(batch) == 1000:
            client.pipeline_raw(batch)
            batch = []
    if batch:
        client.pipeline_raw(batch)


def test_three_consumers_handle_ten_thousand_entries_exactly_once(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("unix")
    c.command("FLUSHALL")
    assert c.stream_group_create("work", "g", "0")
    seen: list[str] = []
    per_consumer = {"c1": 0, "c2": 0, "c3": 0}

    def handler_for(name: str) -> Callable[[redipc.StreamEntry], None]:
        def handle(e: redipc.StreamEntry) -> None:
            assert e.deliveries == 1
            seen.append(e.id)
            per_consumer[name] += 1

        return handle

    consumers = [
        c.stream_consume("work", "g", name, handler_for(name), count=50, block=0.1)
        for name in per_consumer
    ]
    _publish_many(make_client(), "work", 10_000)
    wait_until(lambda: len(seen) >= 10_000, 60, "all handled")
    time.sleep(0.1)
    for k in consumers:
        k.stop()
    assert len(seen) == 10_000
    assert len(set(seen)) == 10_000
    assert sum(k.stats().acked for k in consumers) == 10_000
    assert all(k.stats().failed == 0 for k in consumers)
    assert c.stream_pending("work", "g").count == 0
    assert sum(1 for n in per_consumer.values() if n > 0) >= 2, per_consumer


CHILD_CONSUMER = textwrap.dedent(
    """
    import sys, time, redipc
    c = redipc.Client(sys.argv[1])
    def handle(entry):
        c.set("child-started", entry.id)
        time.sleep(60)
    consumer = c.stream_consume("crash", "g", "doomed", handle, block=0.1)
    time.sleep(60)
    """
)


def test_an_entry_of_a_killed_consumer_process_is_claimed_by_another_after_min_idle(
    make_client: Callable[..., redipc.Client], server: RedisServer
) -> None:
    client = make_client()
    client.command("FLUSHALL")
    client.stream_group_create("crash", "g", "0")
    eid = client.stream_publish("crash", {"task": "important"})
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_CONSUMER, server.tcp_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: client.get("child-started") is not None, 20, "child handling")
        started = time.monotonic()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert client.get("child-started") == eid.encode()
    info = client.stream_pending("crash", "g")
    assert info.count == 1 and info.consumers == {"doomed": 1}

    got: list[tuple[bytes | None, int, float]] = []
    rescuer = client.stream_consume(
        "crash",
        "g",
        "rescuer",
        lambda e: got.append((e.get("task"), e.deliveries, time.monotonic())),
        min_idle=1.0,
        claim_interval=0.05,
        block=0.05,
    )
    with rescuer:
        wait_until(lambda: bool(got), 10, "claimed")
    assert got[0][:2] == (b"important", 2)
    assert got[0][2] - started >= 0.9, "claimed only after min_idle"
    assert rescuer.stats().claimed == 1 and rescuer.stats().acked == 1
    assert rescuer.stopped
    assert client.stream_pending("crash", "g").count == 0


def test_a_poison_entry_ends_in_the_dead_letter_stream_with_its_error(
    client: redipc.Client,
) -> None:
    client.stream_publish("jobs", {"task": "poison"})
    client.stream_publish("jobs", {"task": "ok"})
    calls: list[tuple[bytes, int]] = []
    errors: list[BaseException] = []

    def handle(e: redipc.StreamEntry) -> None:
        calls.append((e["task"], e.deliveries))
        if e["task"] == b"poison":
            raise ValueError("cannot do it")

    consumer = client.stream_consume(
        "jobs",
        "g",
        "me",
        handle,
        min_idle=0.1,
        claim_interval=0.05,
        block=0.05,
        max_deliveries=3,
        on_error=errors.append,
    )
    with consumer:
        wait_until(lambda: bool(client.stream_dead_letters("jobs")), 10, "dead letter")
    dead = client.stream_dead_letters("jobs")
    assert len(dead) == 1
    assert dead[0]["task"] == b"poison"
    assert dead[0]["_error"] == b"ValueError: cannot do it"
    assert dead[0]["_deliveries"] == b"3"
    assert dead[0]["_group"] == b"g"
    assert [d for t, d in calls if t == b"poison"] == [1, 2, 3], "never acked on failure"
    assert [t for t, _ in calls].count(b"ok") == 1
    assert len(errors) == 3 and all(isinstance(e, ValueError) for e in errors)
    assert client.stream_pending("jobs", "g").count == 0
    stats = consumer.stats()
    assert stats.dead_lettered == 1 and stats.failed == 3 and stats.acked == 1
    assert stats.as_dict()["dead_lettered"] == 1
    assert client.stream_len("jobs:dead") == 1


def test_a_failed_entry_stays_pending_and_the_exception_is_logged(
    client: redipc.Client, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(e: redipc.StreamEntry) -> None:
        raise RuntimeError("boom")

    client.stream_publish("f", payload="x")
    with client.stream_consume("f", "g", "me", fail, block=0.05) as consumer:
        wait_until(lambda: consumer.stats().failed == 1, 5, "failed")
    assert client.stream_pending("f", "g").consumers == {"me": 1}
    # Without on_error: a WARNING of the "redipc" logger carrying the exception.
    (record,) = [r for r in caplog.records if getattr(r, "redipc_kind", None) == "handler_failed"]
    assert record.levelname == "WARNING" and record.redipc_source == "stream_consumer"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_stop_from_inside_the_handler(client: redipc.Client) -> None:
    for i in range(5):
        client.stream_publish("st", {"n": i})
    handled: list[bytes] = []
    holder: list[redipc.StreamConsumer] = []

    def handle(e: redipc.StreamEntry) -> None:
        handled.append(e["n"])
        holder[0].stop()

    t0 = time.monotonic()
    holder.append(client.stream_consume("st", "g", "me", handle, block=0.05))
    wait_until(lambda: holder[0].stopped, 5, "stopped")
    time.sleep(0.2)
    assert handled == [b"0"], "nothing handled after stop()"
    holder[0].stop()
    assert time.monotonic() - t0 < 3
    assert client.stream_pending("st", "g").count == 4, "the rest stays for others"


EXIT_WHILE_HANDLING = textwrap.dedent(
    """
    import sys, time, redipc
    c = redipc.Client(sys.argv[1])
    c.stream_publish("exit", payload="x")
    started = []
    def handle(entry):
        started.append(1)
        time.sleep(0.3)
    consumer = c.stream_consume("exit", "g", "me", handle, block=0.05)
    while not started:
        time.sleep(0.01)
    print("exiting", flush=True)
    """
)


def test_the_interpreter_exits_cleanly_while_a_handler_runs(server: RedisServer) -> None:
    out = subprocess.run(
        [sys.executable, "-c", EXIT_WHILE_HANDLING, server.tcp_url],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == b"exiting\n"


def test_consumer_repr_and_pending_repr(client: redipc.Client) -> None:
    with client.stream_consume("r", "g", "me", lambda e: None, block=0.05) as k:
        assert "StreamConsumer" in repr(k) and "stopped" not in repr(k)
    assert "stopped" in repr(k)
    assert repr(client.stream_pending("r", "g")) == "PendingInfo(count=0, consumers={})"
