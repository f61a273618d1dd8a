"""Pub/sub: subscriptions with an iterator or a callback, events across disconnects,
overflow policies, closing guarantees, poll mode and subscription groups."""

from __future__ import annotations

import gc
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import redipc
from conftest import RedisServer, names

BURST = 100_000
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------
# Helpers


def burst(
    c: redipc.Client,
    channel: str,
    n: int,
    *,
    prefix: str = "",
    command: str = "PUBLISH",
) -> None:
    """Publish ``prefix0`` .. ``prefix{n-1}`` on ``channel``, 1,000 per pipeline."""
    for start in range(0, n, 1000):
        stop = min(start + 1000, n)
        c.pipeline_raw([(command, channel, f"{prefix}{i}") for i in range(start, stop)])


def next_event(
    sub: redipc.Subscription,
    what: str,
    pred: Callable[[redipc.Message], bool],
    within: float = 3.0,
) -> redipc.Message:
    """The first event (taken with get()) for which ``pred`` holds, within ``within`` s."""
    deadline = time.monotonic() + within
    skipped: list[redipc.Message] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {what} within {within} s; skipped {len(skipped)}: {skipped[-3:]}")
        msg = sub.get(timeout=left)
        if msg is not None:
            if pred(msg):
                return msg
            skipped.append(msg)


def kind_is(kind: str) -> Callable[[redipc.Message], bool]:
    return lambda m: m.kind == kind


def wait_until(cond: Callable[[], bool], what: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(0.005)


def numsub(c: redipc.Client, channel: str) -> int:
    reply = c.command("PUBSUB", "NUMSUB", channel)
    return int(reply[1])


def shardnumsub(c: redipc.Client, channel: str) -> int:
    reply = c.command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])


class Collector:
    """A callback that keeps what it is given; ``wait`` for a condition on it."""

    def __init__(self) -> None:
        self.events: list[redipc.Message] = []
        self.threads: set[int] = set()
        self.cond = threading.Condition()

    def __call__(self, msg: redipc.Message) -> None:
        with self.cond:
            self.events.append(msg)
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def messages(self) -> list[redipc.Message]:
        with self.cond:
            return [m for m in self.events if m.kind == "message"]

    def kinds(self) -> list[str]:
        with self.cond:
            return [m.kind for m in self.events]

    def wait(self, what: str, pred: Callable[[list[redipc.Message]], bool], within: float = 3.0) -> None:
        deadline = time.monotonic() + within
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{what}: not within {within} s; got {len(self.events)}: {self.events[-3:]}")
                self.cond.wait(left)


def has_kinds(*kinds: str) -> Callable[[list[redipc.Message]], bool]:
    """True once the events contain ``kinds`` in this order (not necessarily adjacent)."""

    def pred(events: list[redipc.Message]) -> bool:
        it: Iterator[str] = iter(e.kind for e in events)
        return all(k in it for k in kinds)

    return pred


@pytest.fixture
def publisher(make_client: Callable[..., redipc.Client]) -> redipc.Client:
    return make_client("tcp")


# ---------------------------------------------------------------------------------------
# Delivery


def test_burst_in_order_through_the_iterator(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client, transport: str
) -> None:
    c = make_client(transport)
    with c.subscribe("burst") as sub:
        assert sub.kind == "channel" and not sub.has_callback
        first = sub.get(timeout=1)
        assert first is not None and first.kind == "activated" and first.channel == b"burst"
        t = threading.Thread(target=burst, args=(publisher, "burst", BURST))
        t.start()
        expected = 0
        for msg in sub:
            assert msg.kind == "message", msg
            assert msg.payload == str(expected).encode(), f"lost or out of order at {expected}"
            expected += 1
            if expected == BURST:
                break
        t.join()
        stats = sub.stats()
        assert (stats.delivered, stats.dropped, stats.queued) == (BURST + 1, 0, 0)


def test_burst_in_order_through_a_callback(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    payloads: list[bytes] = []
    done = threading.Event()

    def on_message(msg: redipc.Message) -> None:
        if msg.kind == "message":
            payloads.append(msg.payload)
            if len(payloads) == BURST:
                done.set()

    with c.subscribe("burst2", callback=on_message) as sub:
        assert sub.has_callback
        burst(publisher, "burst2", BURST)
        assert done.wait(30), f"only {len(payloads)} of {BURST} arrived"
        assert payloads == [str(i).encode() for i in range(BURST)]
        assert sub.stats().dropped == 0


def test_add_and_remove_while_messages_flow(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    stop = threading.Event()

    def publish() -> None:
        i = 0
        while not stop.is_set():
            publisher.pipeline_raw(
                [("PUBLISH", ch, str(k)) for k in range(i, i + 50) for ch in ("a", "b")]
            )
            i += 50

    sub = c.subscribe("a")
    t = threading.Thread(target=publish)
    t.start()
    try:
        next_event(sub, "a message on a", lambda m: m.kind == "message" and m.channel == b"a")
        sub.add("b")
        assert sub.names == [b"a", b"b"]
        next_event(sub, "a message on b", lambda m: m.kind == "message" and m.channel == b"b")
        sub.remove("a")
        assert sub.names == [b"b"]
        seen: dict[bytes, list[int]] = {b"a": [], b"b": []}
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            m = sub.get(timeout=0.1)
            if m is not None and m.kind == "message":
                seen[m.channel].append(int(m.payload))
    finally:
        stop.set()
        t.join()
    # In order and without gaps on each channel; "a" stopped soon after remove().
    for ch, numbers in seen.items():
        if numbers:
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), ch
    assert len(seen[b"b"]) > 100
    assert not seen[b"a"] or seen[b"a"][-1] < seen[b"b"][-1] - 50
    sub.close()
    wait_until(lambda: numsub(publisher, "b") == 0, "unsubscribed from b")


def test_two_subscriptions_share_a_channel(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    pull = c.subscribe("shared", "only-pull")
    got = Collector()
    cb = c.subscribe("shared", callback=got)
    assert numsub(publisher, "shared") == 1, "Redis is subscribed once for both"
    # Both are already subscribed: the second one's "activated" comes at once.
    got.wait("activated", has_kinds("activated"))
    burst(publisher, "shared", 1000)
    received: list[bytes] = []
    while len(received) < 1000:
        m = next_event(pull, "message", kind_is("message"))
        received.append(m.payload)
    assert received == [str(i).encode() for i in range(1000)]
    got.wait("1000 messages", lambda ev: sum(e.kind == "message" for e in ev) == 1000)
    assert [m.payload for m in got.messages()] == received

    pull.close()
    assert pull.closed
    time.sleep(0.05)
    assert numsub(publisher, "shared") == 1, "the callback subscription still has it"
    wait_until(lambda: numsub(publisher, "only-pull") == 0, "only-pull unsubscribed")
    cb.close()
    wait_until(lambda: numsub(publisher, "shared") == 0, "the last one leaving unsubscribes")


def test_pattern_subscription_reports_the_pattern(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    with c.psubscribe("news.*") as sub:
        assert sub.kind == "pattern"
        act = next_event(sub, "activated", kind_is("activated"))
        assert (act.channel, act.pattern, act.sub_kind) == (b"news.*", b"news.*", "pattern")
        assert publisher.publish("news.sport", "goal") == 1
        m = next_event(sub, "message", kind_is("message"))
        assert (m.channel, m.pattern, m.payload, m.sub_kind) == (
            b"news.sport",
            b"news.*",
            b"goal",
            "pattern",
        )
        assert "pattern=b'news.*'" in repr(m)


def test_sharded_channels(make_client: Callable[..., redipc.Client], publisher: redipc.Client) -> None:
    c = make_client("tcp")
    with c.ssubscribe("shard1", b"shard2") as sub:
        assert sub.kind == "shard"
        assert sub.names == [b"shard1", b"shard2"]
        next_event(sub, "activated", kind_is("activated"))
        assert shardnumsub(publisher, "shard1") == 1
        assert publisher.spublish("shard2", b"\x00binary\xff") == 1
        m = next_event(sub, "message", kind_is("message"))
        assert (m.channel, m.payload, m.sub_kind, m.pattern) == (
            b"shard2",
            b"\x00binary\xff",
            "shard",
            None,
        )
    wait_until(lambda: shardnumsub(publisher, "shard1") == 0, "sunsubscribed")


# ---------------------------------------------------------------------------------------
# Connection events


def check_recovery(
    publisher: redipc.Client,
    subs: list[redipc.Subscription],
    channel: str,
    within: float,
    *,
    disconnected_seen: bool = False,
) -> None:
    """Each subscription sees "disconnected" then "reactivated" within ``within`` s, and a
    message published after that."""
    for sub in subs:
        if not disconnected_seen:
            d = next_event(sub, "disconnected", kind_is("disconnected"), within)
            assert d.error and d.channel == b"" and d.payload == b""
    for sub in subs:
        next_event(sub, "reactivated", kind_is("reactivated"), within)
    deadline = time.monotonic() + 5
    while True:
        try:
            publisher.publish(channel, "after")
            break
        except redipc.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    for sub in subs:
        m = next_event(sub, "message after recovery", kind_is("message"), 2)
        assert m.payload == b"after"


def test_client_kill_gives_disconnected_then_reactivated(
    make_client: Callable[..., redipc.Client], transport: str
) -> None:
    c = make_client(transport)
    admin = make_client(transport)
    a = c.subscribe("killed")
    b = c.psubscribe("kill*")
    got = Collector()
    cb = c.subscribe("killed", callback=got)
    got.wait("activated", has_kinds("activated"))
    start = time.monotonic()
    assert admin.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    check_recovery(admin, [a, b], "killed", within=3)
    assert time.monotonic() - start < 3
    got.wait("events", has_kinds("activated", "disconnected", "reactivated", "message"))
    assert got.messages()[-1].payload == b"after"
    for s in (a, b, cb):
        s.close()


def test_server_restart_restores_subscriptions(server: RedisServer, transport: str) -> None:
    c = redipc.Client(server.url(transport), connect_timeout=0.5)
    try:
        a = c.subscribe("restart")
        b = c.ssubscribe("restart-shard")
        for s in (a, b):
            next_event(s, "activated", kind_is("activated"))
        server.kill()
        server.start()
        check_recovery(c, [a], "restart", within=5)
        next_event(b, "reactivated", kind_is("reactivated"), 5)
        assert c.spublish("restart-shard", "s") == 1
        assert next_event(b, "message", kind_is("message")).payload == b"s"
    finally:
        c.close()
        server.ensure_running()


def test_half_open_connection_found_by_the_health_check(server: RedisServer) -> None:
    c = redipc.Client(server.tcp_url, health_check_interval=0.4, connect_timeout=0.3)
    try:
        sub = c.subscribe("half-open")
        next_event(sub, "activated", kind_is("activated"))
        server.pause()
        start = time.monotonic()
        d = next_event(sub, "disconnected", kind_is("disconnected"), 3)
        assert time.monotonic() - start < 2
        assert d.error
        time.sleep(0.3)
        server.resume()
        check_recovery(c, [sub], "half-open", within=5, disconnected_seen=True)
    finally:
        server.resume()
        c.close()


# ---------------------------------------------------------------------------------------
# Overflow


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest"])
def test_overflow_policies_with_a_slow_callback(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client, overflow: str
) -> None:
    c = make_client("tcp")
    seen: list[int] = []

    def slow(msg: redipc.Message) -> None:
        if msg.kind == "message":
            time.sleep(0.002)
            seen.append(int(msg.payload))

    channel = f"slow-{overflow}"
    with c.subscribe(channel, callback=slow, capacity=10, overflow=overflow) as sub:  # type: ignore[arg-type]
        burst(publisher, channel, 300)

        def settled() -> bool:
            st = sub.stats()
            return len(seen) + st.dropped >= 300 and st.queued == 0

        wait_until(settled, f"{overflow}: all handled or dropped", within=10)
        st = sub.stats()
        assert st.capacity == 10
        assert len(seen) + st.dropped == 300, st
        assert seen == sorted(seen), "order is kept"
        if overflow == "block":
            assert st.dropped == 0 and seen == list(range(300))
        else:
            assert st.dropped > 0
            if overflow == "drop_newest":
                assert seen[0] == 0, "the first ones are kept"
            else:
                assert seen[-1] == 299, "the newest is kept"


def test_overflow_of_a_pull_subscription_counts_drops(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    with c.subscribe("unread", capacity=10, overflow="drop_newest") as sub:
        burst(publisher, "unread", 100)
        wait_until(lambda: sub.stats().dropped + sub.stats().queued >= 100, "queued or dropped")
        got = []
        while (m := sub.get(timeout=0.2)) is not None:
            if m.kind == "message":
                got.append(int(m.payload))
        st = sub.stats()
        assert st.dropped > 0 and len(got) + st.dropped == 100
        assert got == list(range(len(got)))


# ---------------------------------------------------------------------------------------
# Callbacks that fail, closing, dropping


def test_raising_callback_goes_to_on_error_and_later_messages_arrive(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    ok: list[bytes] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def callback(msg: redipc.Message) -> None:
        if msg.payload == b"bad":
            raise ValueError("bad payload")
        if msg.kind == "message":
            ok.append(msg.payload)
            if len(ok) == 2:
                done.set()

    with c.subscribe("fails", callback=callback, on_error=errors.append):
        for p in ("bad", "ok1", "bad", "ok2"):
            publisher.publish("fails", p)
        assert done.wait(3)
    assert ok == [b"ok1", b"ok2"]
    assert len(errors) == 2
    assert all(isinstance(e, ValueError) and str(e) == "bad payload" for e in errors)
    assert errors[0].__traceback__ is not None


def test_raising_callback_goes_to_unraisablehook(
    make_client: Callable[..., redipc.Client],
    publisher: redipc.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = make_client("tcp")
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    ok = threading.Event()

    def callback(msg: redipc.Message) -> None:
        if msg.payload == b"bad":
            raise KeyError("boom")
        if msg.payload == b"ok":
            ok.set()

    def failing_hook(exc: BaseException) -> None:
        raise RuntimeError("the hook failed too")

    with c.subscribe("fails2", callback=callback):
        publisher.publish("fails2", "bad")
        publisher.publish("fails2", "ok")
        assert ok.wait(3)
    assert len(reported) == 1
    assert reported[0].exc_type is KeyError
    assert reported[0].object is callback

    # An on_error that raises itself: its exception is the one reported.
    ok.clear()
    with c.subscribe("fails3", callback=callback, on_error=failing_hook):
        publisher.publish("fails3", "bad")
        publisher.publish("fails3", "ok")
        assert ok.wait(3)
    assert len(reported) == 2
    assert reported[1].exc_type is RuntimeError
    assert reported[1].object is failing_hook


@pytest.mark.parametrize("poll_mode", [False, True])
def test_commands_from_inside_a_callback(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client, poll_mode: bool
) -> None:
    """A callback may use the client (reply to a request): no deadlock in either mode."""
    c = make_client("tcp", poll_mode=poll_mode)

    def echo(msg: redipc.Message) -> None:
        if msg.kind == "message":
            c.set("last", msg.payload)
            c.publish("pong", msg.payload)

    replies = publisher.subscribe("pong")
    next_event(replies, "activated", kind_is("activated"))
    with c.subscribe("ping", callback=echo):
        for i in range(20):
            publisher.publish("ping", str(i))
        if poll_mode:
            deadline = time.monotonic() + 3
            handled = 0
            while handled < 21 and time.monotonic() < deadline:
                handled += c.poll(0.2)
        got = [next_event(replies, "reply", kind_is("message")).payload for _ in range(20)]
    assert got == [str(i).encode() for i in range(20)]
    assert c.get("last") == b"19"
    replies.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("closer", ["main", "thread"])
def test_no_callback_after_close_returns(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client, closer: str
) -> None:
    c = make_client("tcp")
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.pipeline_raw([("PUBLISH", "race", "m")] * 50)

    t = threading.Thread(target=publish)
    t.start()
    try:
        for i in range(40):
            closed = False
            violations = []
            running = threading.Event()

            def callback(msg: redipc.Message, i: int = i) -> None:
                running.set()
                if closed:
                    violations.append(i)
                # Sometimes sleep (GIL released), sometimes spin (GIL held).
                if i % 2:
                    time.sleep(0.002)
                else:
                    end = time.perf_counter() + 0.002
                    while time.perf_counter() < end:
                        pass
                if closed:
                    violations.append(i)

            sub = c.subscribe("race", callback=callback)
            assert running.wait(3), "no callback"
            if closer == "main":
                sub.close()
            else:
                th = threading.Thread(target=sub.close)
                th.start()
                th.join(10)
                assert not th.is_alive(), "close() deadlocked"
            closed = True
            time.sleep(0.005)
            assert not violations, f"a callback ran after close() returned (iteration {i})"
    finally:
        stop.set()
        t.join()


@pytest.mark.timeout(60)
def test_callback_uses_its_subscription_while_another_thread_closes_it(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    """The callback reads stats/names of its own subscription, or closes it too, while the
    main thread is in close(): nothing deadlocks."""
    c = make_client("tcp")
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.pipeline_raw([("PUBLISH", "busy", "m")] * 50)

    t = threading.Thread(target=publish)
    t.start()
    try:
        for i in range(30):
            holder: dict[str, redipc.Subscription] = {}
            running = threading.Event()

            def callback(msg: redipc.Message, i: int = i) -> None:
                sub = holder.get("sub")
                if sub is None:  # subscribe() has not returned yet
                    return
                running.set()
                sub.stats()
                assert sub.names in ([b"busy"], [])
                time.sleep(0.001)
                if i % 3 == 0:
                    sub.close()

            holder["sub"] = c.subscribe("busy", callback=callback)
            assert running.wait(3)
            closer = threading.Thread(target=holder["sub"].close)
            closer.start()
            closer.join(10)
            assert not closer.is_alive(), f"close() deadlocked (iteration {i})"
            assert holder["sub"].closed
    finally:
        stop.set()
        t.join()


def test_close_from_inside_the_callback(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    calls: list[bytes] = []
    holder: dict[str, redipc.Subscription] = {}
    returned = threading.Event()

    def callback(msg: redipc.Message) -> None:
        if msg.kind == "message":
            calls.append(msg.payload)
            holder["sub"].close()
            returned.set()

    holder["sub"] = c.subscribe("selfclose", callback=callback)
    burst(publisher, "selfclose", 20)
    assert returned.wait(3)
    time.sleep(0.2)
    assert calls == [b"0"], "no call after the one that closed it"
    assert holder["sub"].closed
    wait_until(lambda: numsub(publisher, "selfclose") == 0, "unsubscribed")


def test_dropping_a_subscription_while_its_callback_waits_for_the_gil(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    """The last reference dies on a thread holding the GIL while the dispatcher waits for
    the GIL to run the callback: no deadlock, and it unsubscribes."""
    c = make_client("tcp")
    entered = threading.Event()

    def callback(msg: redipc.Message) -> None:
        entered.set()
        time.sleep(0.001)

    for _ in range(20):
        entered.clear()
        sub = c.subscribe("dropped", callback=callback)
        burst(publisher, "dropped", 200)
        assert entered.wait(3)
        # Keep the GIL busy so that the dispatcher is likely waiting for it, then drop.
        end = time.perf_counter() + 0.003
        while time.perf_counter() < end:
            pass
        del sub
    gc.collect()
    wait_until(lambda: numsub(publisher, "dropped") == 0, "unsubscribed after the drop")


def test_a_subscription_keeps_its_client_alive(server: RedisServer, publisher: redipc.Client) -> None:
    sub = redipc.Client(server.tcp_url).subscribe("orphan")
    gc.collect()
    next_event(sub, "activated", kind_is("activated"))
    publisher.publish("orphan", "still here")
    assert next_event(sub, "message", kind_is("message")).payload == b"still here"
    sub.close()


EXIT_SCRIPT = """
import sys, threading, time, redipc
url = sys.argv[1]
c = redipc.Client(url)
pc = redipc.Client(url, poll_mode=True)
pub = redipc.Client(url)
calls = [0]
def slow(msg):
    calls[0] += 1
    time.sleep(0.0005)
subs = [c.subscribe("exit", callback=slow) for _ in range(2)]
group = c.subscribe_group("g")
group.handle("exit", slow)
polled = pc.subscribe("exit", callback=slow)
pull = c.subscribe("exit")
def drain():
    for msg in pull:
        time.sleep(0.0001)
def poller():
    while True:
        pc.poll(None)
def flood():
    while True:
        pub.pipeline_raw([("PUBLISH", "exit", "m")] * 100)
for f in (flood, drain, poller):
    threading.Thread(target=f, daemon=True).start()
deadline = time.monotonic() + 5
while calls[0] < 100 and time.monotonic() < deadline:
    time.sleep(0.01)
print("callbacks ran:", calls[0] >= 100, flush=True)
"""


def test_interpreter_exit_while_callbacks_run(server: RedisServer) -> None:
    """Exiting with subscriptions open and callbacks, pulls and polls running (daemon
    threads) ends the process cleanly: no callback takes the GIL during finalization."""
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, server.tcp_url],
            capture_output=True,
            timeout=30,
        )
        assert proc.stdout == b"callbacks ran: True\n", proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------------------
# Pull API


def test_get_times_out_and_iteration_ends_on_close(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("tcp")
    sub = c.subscribe("quiet")
    assert next_event(sub, "activated", kind_is("activated")).channel == b"quiet"
    start = time.monotonic()
    assert sub.get(timeout=0.1) is None
    assert 0.09 < time.monotonic() - start < 1
    assert sub.get(timeout=0) is None

    seen: list[redipc.Message] = []
    ended = threading.Event()

    def iterate() -> None:
        seen.extend(sub)
        ended.set()

    t = threading.Thread(target=iterate)
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    sub.close()
    assert ended.wait(2), "iteration did not end on close()"
    assert time.monotonic() - start < 1
    t.join()
    assert seen == []
    with pytest.raises(redipc.ClosedError):
        sub.get()
    with pytest.raises(redipc.ClosedError):
        sub.add("x")
    assert sub.names == []
    sub.close()  # again: nothing happens


def test_closing_the_client_ends_its_subscriptions(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client("tcp")
    sub = c.subscribe("bye")
    t0 = time.monotonic()
    ended = threading.Event()
    def iterate() -> None:
        list(sub)
        ended.set()

    t = threading.Thread(target=iterate)
    t.start()
    time.sleep(0.05)
    c.close()
    assert ended.wait(2)
    assert time.monotonic() - t0 < 2
    t.join()
    with pytest.raises(redipc.ClosedError):
        sub.get(timeout=0.1)
    with pytest.raises(redipc.ClosedError):
        c.subscribe("again")


def test_get_is_interruptible(make_client: Callable[..., redipc.Client]) -> None:
    """A signal handler's exception reaches the thread waiting in get(timeout=None)."""
    c = make_client("tcp")
    sub = c.subscribe("interrupt")
    next_event(sub, "activated", kind_is("activated"))

    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Alarm()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = time.monotonic()
        with pytest.raises(Alarm):
            sub.get()
        assert time.monotonic() - start < 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    sub.close()


def test_get_and_iteration_refused_with_a_callback(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp")
    with c.subscribe("cb-only", callback=lambda m: None) as sub:
        # The core's answer: its events go to the handler.
        with pytest.raises(redipc.InvalidArgument, match="handler"):
            sub.get(timeout=0)
        with pytest.raises(redipc.InvalidArgument, match="handler"):
            next(iter(sub))


def test_bad_arguments(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp")
    with pytest.raises(redipc.InvalidArgument, match="'drop_oldest'" + names("overflow")):
        c.subscribe("x", overflow="sometimes")  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument, match="count >= 1" + names("capacity")):
        c.subscribe("x", capacity=0)
    with pytest.raises(TypeError, match="expected a callable" + names("callback")):
        c.subscribe("x", callback=42)  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument, match="on_error needs a callback"):
        c.subscribe("x", on_error=print)
    with pytest.raises(redipc.InvalidArgument, match="empty"):
        c.subscribe("")
    with pytest.raises(TypeError, match="item 1: expected bytes" + names("patterns")):
        c.psubscribe("a", True)  # type: ignore[arg-type]
    with pytest.raises(redipc.InvalidArgument):
        redipc.Client("redis://127.0.0.1:1/0", health_check_interval=0.001)
    # Nothing was left subscribed by the failed calls.
    sub = c.subscribe()
    assert sub.names == []
    sub.add("late")
    assert sub.names == [b"late"]
    sub.clear()
    assert sub.names == []
    sub.close()


def test_message_and_stats_objects(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    with c.subscribe("obj") as sub:
        act = next_event(sub, "activated", kind_is("activated"))
        assert (act.kind, act.sub_kind, act.channel, act.pattern, act.payload, act.error) == (
            "activated",
            "channel",
            b"obj",
            None,
            b"",
            None,
        )
        assert repr(act) == "Message(kind='activated', channel=b'obj')"
        publisher.publish("obj", "x" * 1000)
        publisher.publish("obj", "x" * 1000)
        m1 = next_event(sub, "message", kind_is("message"))
        m2 = next_event(sub, "message", kind_is("message"))
        assert m1 == m2 and m1 is not m2 and hash(m1) == hash(m2)
        assert m1 != act and len({m1, m2, act}) == 2
        assert m1 != "not a message"
        assert repr(m1).startswith("Message(kind='message', channel=b'obj', payload=b'xxx")
        assert repr(m1).endswith("...(1000 bytes))")
        st = sub.stats()
        assert isinstance(st, redipc.SubscriptionStats)
        assert st.as_dict() == {"delivered": 3, "dropped": 0, "queued": 0, "capacity": 10000}
        assert repr(st) == "SubscriptionStats(delivered=3, dropped=0, queued=0, capacity=10000)"
        assert "channel pull, 1 name>" in repr(sub)
    assert sub.stats().delivered == 3, "stats survive close()"
    assert repr(sub).endswith("closed>")


# ---------------------------------------------------------------------------------------
# Poll mode


def test_poll_mode_runs_callbacks_only_inside_poll(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp", poll_mode=True)
    assert c.poll_mode
    got = Collector()
    sub = c.subscribe("polled", callback=got)
    # The "activated" event waits: the client's descriptor is readable.
    assert select.select([c], [], [], 2)[0] == [c]
    assert got.events == []
    assert c.poll() >= 1
    assert got.kinds() == ["activated"]
    assert select.select([c], [], [], 0)[0] == []

    for i in range(5):
        publisher.publish("polled", str(i))
    assert select.select([c], [], [], 2)[0] == [c]
    time.sleep(0.05)
    assert got.messages() == [], "nothing runs outside poll()"
    handled = 0
    deadline = time.monotonic() + 3
    while handled < 5 and time.monotonic() < deadline:
        handled += c.poll(timeout=0.5)
    assert [m.payload for m in got.messages()] == [b"0", b"1", b"2", b"3", b"4"]
    assert got.threads == {threading.get_ident()}, "callbacks ran on the polling thread"
    assert select.select([c], [], [], 0)[0] == []
    start = time.monotonic()
    assert c.poll(0.05) == 0
    assert time.monotonic() - start >= 0.04

    # With selectors, and poll(None) waiting until something arrives.
    with selectors.DefaultSelector() as sel:
        sel.register(c, selectors.EVENT_READ)
        threading.Timer(0.1, publisher.publish, ("polled", "late")).start()
        assert sel.select(timeout=3)
        assert c.poll(None) == 1
    assert got.messages()[-1].payload == b"late"
    sub.close()


def test_poll_mode_reraises_keyboard_interrupt_and_reports_others(
    make_client: Callable[..., redipc.Client],
    publisher: redipc.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = make_client("tcp", poll_mode=True)
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    after: list[bytes] = []

    def callback(msg: redipc.Message) -> None:
        if msg.payload == b"stop":
            raise KeyboardInterrupt
        if msg.payload == b"bad":
            raise ValueError("bad")
        if msg.kind == "message":
            after.append(msg.payload)

    with c.subscribe("interrupting", callback=callback):
        c.poll(1)  # "activated"
        for p in ("bad", "stop", "next"):
            publisher.publish("interrupting", p)
        wait_until(lambda: select.select([c], [], [], 0)[0] == [c], "readable")
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            while True:
                c.poll(1)
        # The rest of the batch was still delivered; the ValueError went to the hook.
        deadline = time.monotonic() + 2
        while not after and time.monotonic() < deadline:
            c.poll(0.1)
        assert after == [b"next"]
        assert [r.exc_type for r in reported] == [ValueError]


def test_poll_is_interruptible_and_refused_without_poll_mode(
    make_client: Callable[..., redipc.Client],
) -> None:
    plain = make_client("tcp")
    assert not plain.poll_mode
    with pytest.raises(redipc.InvalidArgument, match="poll_mode"):
        plain.poll()
    with pytest.raises(redipc.InvalidArgument, match="poll_mode"):
        plain.fileno()

    c = make_client("tcp", poll_mode=True)

    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Alarm()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = time.monotonic()
        with pytest.raises(Alarm):
            c.poll(None)
        assert time.monotonic() - start < 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_poll_ends_when_the_client_is_closed(make_client: Callable[..., redipc.Client]) -> None:
    c = make_client("tcp", poll_mode=True)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            c.poll(None)
        except BaseException as e:  # checked below
            errors.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    c.close()
    t.join(2)
    assert not t.is_alive(), "poll(None) still waits after close()"
    assert len(errors) == 1 and isinstance(errors[0], redipc.ClosedError), errors
    with pytest.raises(redipc.ClosedError):
        c.poll()


def test_poll_mode_close_from_another_thread_while_polling(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    """The poller runs a callback (holding the GIL per batch) while another thread closes
    the subscription: close() waits for it, then no further call happens."""
    c = make_client("tcp", poll_mode=True)
    closed = threading.Event()
    violations: list[bytes] = []
    entered = threading.Event()

    def callback(msg: redipc.Message) -> None:
        entered.set()
        time.sleep(0.001)
        if closed.is_set():
            violations.append(msg.payload)

    sub = c.subscribe("poll-race", callback=callback)
    stop = threading.Event()

    def poller() -> None:
        while not stop.is_set():
            c.poll(0.05)

    t = threading.Thread(target=poller)
    t.start()
    try:
        burst(publisher, "poll-race", 2000)
        assert entered.wait(3)
        sub.close()
        closed.set()
        time.sleep(0.1)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert violations == []


# ---------------------------------------------------------------------------------------
# Subscription groups


def test_subscription_group_routes_by_channel(
    make_client: Callable[..., redipc.Client], publisher: redipc.Client
) -> None:
    c = make_client("tcp")
    log: list[tuple[str, str, bytes]] = []
    cond = threading.Condition()

    def record(name: str, msg: redipc.Message) -> None:
        with cond:
            log.append((name, msg.kind, msg.payload))
            cond.notify_all()

    def wait_log(pred: Callable[[], bool]) -> None:
        with cond:
            assert cond.wait_for(pred, 3), log

    with c.subscribe_group("vehicle") as group:
        assert group.name == "vehicle"

        @group.handle("battery")
        def on_battery(msg: redipc.Message) -> None:
            record("battery", msg)

        def on_speed(msg: redipc.Message) -> None:
            record("speed", msg)

        assert group.handle(b"speed", on_speed) is on_speed
        assert callable(on_battery) and on_battery.__name__ == "on_battery"
        assert group.names == [b"battery", b"speed"]
        publisher.publish("battery", "80")
        publisher.publish("speed", "25")
        publisher.publish("other", "x")
        wait_log(lambda: sum(k == "message" for _, k, _ in log) == 2)
        assert [e for e in log if e[1] == "message"] == [
            ("battery", "message", b"80"),
            ("speed", "message", b"25"),
        ]
        assert ("battery", "activated", b"") in log and ("speed", "activated", b"") in log

        # A disconnect is told to every handler.
        publisher.command("CLIENT", "KILL", "TYPE", "pubsub")
        wait_log(lambda: sum(k == "reactivated" for _, k, _ in log) == 2)
        assert {n for n, k, _ in log if k == "disconnected"} == {"battery", "speed"}

        group.unhandle("speed")
        assert group.names == [b"battery"]
        wait_until(lambda: numsub(publisher, "speed") == 0, "speed unsubscribed")
        assert "1 handler" in repr(group)
        with pytest.raises(TypeError):
            group.handle("x", 42)  # type: ignore[call-overload]
    assert group.closed
    wait_until(lambda: numsub(publisher, "battery") == 0, "battery unsubscribed")
    with pytest.raises(redipc.ClosedError):
        group.handle("again", on_speed)


# ---------------------------------------------------------------------------------------
# Across languages


def c_example(name: str) -> Path:
    path = REPO / "c-examples" / "build" / name
    if not path.exists():
        if os.environ.get("REDIPC_SKIP_C") == "1":
            pytest.skip(f"{path} is not built (REDIPC_SKIP_C=1)")
        pytest.fail(f"{path} is missing: build it: make -C c-examples")
    return path


def test_python_receives_what_a_c_program_publishes(
    make_client: Callable[..., redipc.Client], server: RedisServer
) -> None:
    program = c_example("pubsub")
    c = make_client("tcp")
    count = 5000
    with c.subscribe("from-c") as sub:
        next_event(sub, "activated", kind_is("activated"))
        proc = subprocess.run(
            [str(program), "pub", server.tcp_url, "from-c", str(count), "c-"],
            capture_output=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        payloads = [next_event(sub, "message", kind_is("message"), 5).payload for _ in range(count)]
    assert payloads == [f"c-{i}".encode() for i in range(count)]
