"""Shared state: the cache with a blocking get, hash state publishing and watching, locks
with fencing tokens, keyspace notifications, and the C device-state daemon watched from
Python (against the suite's own redis-server)."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Callable

import pytest

import redipc
from conftest import RedisServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICE_STATE = os.path.join(ROOT, "c-examples", "build", "device_state")
DASHBOARD = os.path.join(ROOT, "python", "examples", "dashboard.py")


def wait_until(pred: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.01)


@pytest.fixture
def tcp_client(make_client: Callable[..., redipc.Client]) -> redipc.Client:
    """One client over TCP on an empty server, for the slow tests that need not run over
    both transports."""
    c = make_client("tcp")
    c.command("FLUSHALL")
    return c


# ---------------------------------------------------------------------------------------
# Cache


def test_cache_set_get_exists_delete(client: redipc.Client) -> None:
    assert client.cache_get("k") is None
    assert client.cache_exists("k") is False
    client.cache_set("k", "v")
    assert client.cache_get("k") == b"v"
    assert client.cache_exists("k") is True
    assert client.get("ipc:cache:k") == b"v", "under the key prefix"
    assert client.cache_delete("k") is True
    assert client.cache_delete("k") is False
    with pytest.raises(redipc.InvalidArgument):
        client.cache_set("", "x")
    with pytest.raises(redipc.InvalidArgument):
        client.cache_set("k", "x", ttl=0)
    with pytest.raises(TypeError):
        client.cache_set("k", None)  # type: ignore[arg-type]


def test_cache_ttl_expires(client: redipc.Client) -> None:
    client.cache_set("short", "x", ttl=0.1)
    assert client.cache_exists("short")
    wait_until(lambda: client.cache_get("short") is None, 2, "expired")
    assert not client.cache_exists("short")


def test_cache_wait_returns_within_50_ms_of_another_clients_write(
    make_client: Callable[..., redipc.Client],
) -> None:
    waiter = make_client()
    writer = make_client("unix")
    waiter.command("FLUSHALL")
    # Present already: at once.
    writer.cache_set("ready", "1")
    assert waiter.cache_wait("ready", 1) == b"1"
    written_at: list[float] = []

    def write() -> None:
        time.sleep(0.3)
        written_at.append(time.monotonic())
        writer.cache_set("later", "v", ttl=10)

    for attempt in range(3):
        waiter.cache_delete("later")
        written_at.clear()
        t = threading.Thread(target=write)
        t.start()
        got = waiter.cache_wait("later", 5)
        woke = time.monotonic()
        t.join()
        assert got == b"v"
        if woke - written_at[0] < 0.05:
            break
    else:
        pytest.fail(f"cache_wait woke {woke - written_at[0]:.3f} s after the write")


def test_cache_wait_times_out_cleanly_and_again_on_the_same_key(client: redipc.Client) -> None:
    for timeout in (0.2, 0.05, 0.3, 0):
        t0 = time.monotonic()
        assert client.cache_wait("never", timeout) is None
        elapsed = time.monotonic() - t0
        assert timeout <= elapsed < timeout + 0.5
    # Nothing left subscribed once the waits are over.
    wait_until(
        lambda: client.command("PUBSUB", "NUMSUB", "ipc:cache-set:never")[1] == 0,
        2,
        "unsubscribed",
    )


def test_cache_wait_is_interruptible(client: redipc.Client) -> None:
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.cache_wait("never", None)
    timer.join()
    assert time.monotonic() - t0 < 2


# ---------------------------------------------------------------------------------------
# Hash state


def test_hash_publisher_writes_and_announces(client: redipc.Client) -> None:
    sub = client.subscribe("vehicle")
    assert sub.get(2).kind == "activated"  # type: ignore[union-attr]
    client.hash_set("vehicle", "speed", 30)
    assert client.hash_set_if_changed("vehicle", "battery", "87") is True
    assert client.hash_set_if_changed("vehicle", "battery", "87") is False
    assert client.hash_set_if_changed("vehicle", "battery", b"87") is False
    client.hash_set_many("vehicle", {"a": 1, "b": 2})
    client.hash_set_many("vehicle", {"c": 3, "d": 4}, summary=True)
    assert client.hash_delete("vehicle", "a") is True
    assert client.hash_delete("vehicle", "a") is False
    payloads = []
    while (m := sub.get(0.2)) is not None:
        payloads.append(m.payload)
    assert payloads == [b"speed", b"battery", b"a", b"b", b"*", b"a"]
    assert client.hgetall("vehicle") == {
        b"speed": b"30",
        b"battery": b"87",
        b"b": b"2",
        b"c": b"3",
        b"d": b"4",
    }
    client.hash_replace_all("vehicle", {"only": 1})
    assert client.hgetall("vehicle") == {b"only": b"1"}
    m = sub.get(1)
    assert m is not None and m.payload == b"*"
    sub.close()
    with pytest.raises(redipc.InvalidArgument):
        client.hash_set("", "f", "v")


def test_set_if_changed_publishes_once_for_repeated_values(client: redipc.Client) -> None:
    sub = client.subscribe("dev")
    sub.get(2)
    results = [client.hash_set_if_changed("dev", "speed", "30") for _ in range(5)]
    assert results == [True, False, False, False, False]
    msgs = []
    while (m := sub.get(0.2)) is not None:
        msgs.append(m.payload)
    assert msgs == [b"speed"]
    sub.close()


def test_wrongtype_changes_nothing(client: redipc.Client) -> None:
    client.set("plain", "x")
    sub = client.subscribe("plain")
    sub.get(2)
    for call in (
        lambda: client.hash_set("plain", "f", "v"),
        lambda: client.hash_set_if_changed("plain", "f", "v"),
        lambda: client.hash_set_many("plain", {"f": "v", "g": "w"}),
        lambda: client.hash_delete("plain", "f"),
    ):
        with pytest.raises(redipc.ResponseError) as e:
            call()
        assert e.value.code == "WRONGTYPE"
    assert client.get("plain") == b"x"
    assert sub.get(0.2) is None, "nothing was announced"
    sub.close()


def test_watcher_initial_sync_then_changes_without_gap_under_a_concurrent_writer(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client()
    c.command("FLUSHALL")
    c.hash_set_many("vehicle", {"speed": 0, "battery": 100})
    writer = make_client("unix")
    view: dict[bytes, bytes] = {}
    speed_calls: list[bytes | None] = []

    def on_any(field: bytes, value: bytes | None) -> None:
        if value is None:
            view.pop(field, None)
        else:
            view[field] = value

    def write() -> None:
        for i in range(10_000):
            writer.hash_set("vehicle", f"f{i % 50}", i)
        writer.hash_delete("vehicle", "battery")

    t = threading.Thread(target=write)
    t.start()
    with c.hash_watch(
        "vehicle", on_field={"speed": lambda f, v: speed_calls.append(v)}, on_any=on_any
    ) as watcher:
        t.join()
        expected = c.hgetall("vehicle")
        assert b"battery" not in expected
        wait_until(lambda: view == expected, 20, "the watcher's view equals HGETALL")
    assert watcher.stopped
    assert speed_calls == [b"0"], "the initial sync delivered speed once"


def test_watcher_options_and_stop(client: redipc.Client) -> None:
    client.hash_set_many("h", {"a": 1, "b": 2})
    got: list[tuple[bytes, bytes | None]] = []
    w = client.hash_watch("h", on_any=lambda f, v: got.append((f, v)), initial_sync=False)
    client.hash_set("h", "a", 5)
    client.hash_delete("h", "b")
    wait_until(lambda: len(got) == 2, 5, "changes")
    assert got == [(b"a", b"5"), (b"b", None)], "no initial sync, then the changes"
    w.stop()
    client.hash_set("h", "a", 6)
    time.sleep(0.2)
    assert len(got) == 2, "nothing after stop()"
    w.stop()  # again: nothing happens
    assert "stopped" in repr(w)
    # A watcher with no callback is the core's business: it watches (and stops).
    with client.hash_watch("h") as idle:
        assert not idle.stopped
    assert idle.stopped
    with pytest.raises(TypeError):
        client.hash_watch("h", on_any=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.hash_watch("h", on_field={"a": 42})  # type: ignore[dict-item]


def test_watcher_debounce_coalesces_a_burst(client: redipc.Client) -> None:
    got: list[bytes | None] = []
    with client.hash_watch(
        "burst", on_field={"x": lambda f, v: got.append(v)}, debounce=0.2
    ):
        for i in range(20):
            client.hash_set("burst", "x", i)
        wait_until(lambda: got[-1:] == [b"19"], 5, "the last value")
        time.sleep(0.3)
    assert len(got) <= 3, got


def test_watcher_callback_errors_go_to_on_error_or_unraisablehook(
    client: redipc.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def boom(field: bytes, value: bytes | None) -> None:
        raise ValueError(field)

    client.hash_set("e", "a", 1)
    with client.hash_watch("e", on_any=boom):
        wait_until(lambda: len(reported) == 1, 5, "reported")
        client.hash_set("e", "b", 1)
        wait_until(lambda: len(reported) == 2, 5, "later changes still delivered")
    errors: list[BaseException] = []
    with client.hash_watch("e", on_any=boom, on_error=errors.append):
        wait_until(lambda: len(errors) == 2, 5, "on_error")
    assert all(isinstance(e, ValueError) for e in errors)
    assert len(reported) == 2


def test_watcher_read_errors_are_reported_and_retried_whole(client: redipc.Client) -> None:
    errors: list[BaseException] = []
    got: list[bytes | None] = []
    client.hash_set("re", "a", 1)
    with client.hash_watch(
        "re", on_field={"a": lambda f, v: got.append(v)}, on_error=errors.append
    ):
        wait_until(lambda: got == [b"1"], 5, "the initial sync")
        client.command("DEL", "re")
        client.command("SET", "re", "not a hash")
        client.command("PUBLISH", "re", "a")
        wait_until(lambda: len(errors) >= 1, 5, "the read error")
        # Repaired with no announcement: the retry reads the whole hash.
        client.command("DEL", "re")
        client.command("HSET", "re", "a", "2")
        wait_until(lambda: got[-1:] == [b"2"], 5, "the value after the retry")
    assert isinstance(errors[0], redipc.RedipcError)
    assert "WRONGTYPE" in str(errors[0])


def test_watcher_stop_from_inside_its_callback(client: redipc.Client) -> None:
    client.hash_set_many("in", {"a": 1, "b": 2, "c": 3})
    got: list[bytes] = []
    holder: list[redipc.HashWatcher] = []

    def cb(field: bytes, value: bytes | None) -> None:
        got.append(field)
        while not holder:
            time.sleep(0.001)
        holder[0].stop()

    holder.append(client.hash_watch("in", on_any=cb))
    wait_until(lambda: holder[0].stopped, 5, "stopped")
    time.sleep(0.2)
    assert len(got) == 1


# ---------------------------------------------------------------------------------------
# Locks

LOCKER = textwrap.dedent(
    """
    import sys, redipc
    url, n = sys.argv[1], int(sys.argv[2])
    c = redipc.Client(url)
    last = 0
    for _ in range(n):
        with c.lock("counter", ttl=5, wait=60) as lk:
            assert lk.token > last, (lk.token, last)
            last = lk.token
            v = int(c.get("count") or 0)
            c.set("count", v + 1)
            c.rpush("tokens", lk.token)
        assert not lk.held
    """
)

LOCKERS = 8
PER_LOCKER = 1000


def test_eight_processes_increment_a_counter_under_the_lock(
    tcp_client: redipc.Client, server: RedisServer
) -> None:
    t0 = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", LOCKER, server.unix_url, str(PER_LOCKER)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(LOCKERS)
    ]
    for ch in children:
        out, err = ch.communicate(timeout=60)
        assert ch.returncode == 0, (out + err).decode()
    assert tcp_client.get("count") == str(LOCKERS * PER_LOCKER).encode()
    tokens = [int(t) for t in tcp_client.command("LRANGE", "tokens", "0", "-1")]
    assert len(tokens) == LOCKERS * PER_LOCKER
    assert all(a < b for a, b in zip(tokens, tokens[1:])), "tokens strictly increase"
    assert time.monotonic() - t0 < 20


HOLDER = textwrap.dedent(
    """
    import sys, time, redipc
    c = redipc.Client(sys.argv[1])
    lk = c.lock("res", ttl=0.5)
    print(lk.token, flush=True)
    time.sleep(60)
    """
)


def test_a_holder_process_that_dies_loses_the_lock_after_its_ttl(
    tcp_client: redipc.Client, server: RedisServer
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, server.tcp_url], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        token = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    killed = time.monotonic()
    with pytest.raises(redipc.TimeoutError):
        tcp_client.lock("res", wait=0)
    lk = tcp_client.lock("res", wait=5)
    assert time.monotonic() - killed < 1.0, "taken over once the TTL ran out"
    assert lk.token > token
    assert lk.release() is True


def test_a_lock_object_never_released_loses_the_lock_after_its_ttl(
    client: redipc.Client,
) -> None:
    lost = client.lock("res", ttl=0.3)
    with pytest.raises(redipc.TimeoutError) as e:
        client.lock("res", wait=0.05)
    assert isinstance(e.value, TimeoutError), "also the builtin TimeoutError"
    t0 = time.monotonic()
    with client.lock("res", wait=2) as lk:
        assert time.monotonic() - t0 < 1.0
        assert lk.token > lost.token
        assert lost.held, "it does not know it lost the lock"
        assert lost.extend(5) is False
        assert lost.release() is False
    assert not lk.held
    assert lk.release() is False, "released already"


def test_release_wakes_a_waiter_at_once_and_tokens_increase(
    make_client: Callable[..., redipc.Client],
) -> None:
    c = make_client()
    other = make_client("unix")
    delays = []
    for attempt in range(3):
        first = c.lock("w", ttl=30)
        result: list[tuple[float, int]] = []

        def wait() -> None:
            with other.lock("w", wait=10) as lk:
                result.append((time.monotonic(), lk.token))

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.5)  # the waiter waits (in 200 ms slices) meanwhile
        released = time.monotonic()
        assert first.release() is True
        t.join()
        assert result[0][1] > first.token
        delays.append(result[0][0] - released)
        if delays[-1] < 0.1:
            break
    else:
        pytest.fail(f"the waiter took the lock {delays} s after the release")


def test_extend_and_auto_renew_keep_the_lock(client: redipc.Client) -> None:
    lk = client.lock("renewed", ttl=0.6, auto_renew=True)
    time.sleep(1.5)  # renewed every 0.2 s: held well past its TTL
    with pytest.raises(redipc.TimeoutError):
        client.lock("renewed", wait=0)
    assert lk.extend(5) is True
    assert lk.release() is True
    client.lock("renewed", wait=0).release()
    manual = client.lock("manual", ttl=0.3)
    assert manual.extend(2) is True
    time.sleep(0.5)
    with pytest.raises(redipc.TimeoutError):
        client.lock("manual", wait=0)
    assert manual.release() is True


def test_lock_arguments_and_context_manager(client: redipc.Client) -> None:
    with pytest.raises(redipc.InvalidArgument):
        client.lock("")
    with pytest.raises(redipc.InvalidArgument):
        client.lock("a{b}")
    with pytest.raises(redipc.InvalidArgument):
        client.lock("x", ttl=0)
    with client.lock("ctx") as lk:
        assert lk.held and lk.name == b"ctx" and lk.token >= 1
        assert "token=" in repr(lk)
    assert not lk.held and "released" in repr(lk)
    # The exception of the block is not replaced.
    with pytest.raises(ZeroDivisionError):
        with client.lock("ctx"):
            1 / 0
    client.lock("ctx", wait=0).release()
    # Dropped without release: released in the background.
    client.lock("dropped")
    wait_until(lambda: client.exists("ipc:{lock:dropped}") == 0, 2, "released on drop")


def test_a_lock_wait_is_interruptible(client: redipc.Client) -> None:
    held = client.lock("busy", ttl=30)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.lock("busy", wait=30)
    timer.join()
    assert time.monotonic() - t0 < 2
    assert held.release() is True


# ---------------------------------------------------------------------------------------
# Keyspace notifications


@pytest.fixture
def keyspace_client(client: redipc.Client) -> Iterator[redipc.Client]:
    """A client; the server's notify-keyspace-events is reset afterwards (other tests
    would see keyspace messages on pattern subscriptions otherwise)."""
    yield client
    client.command("CONFIG", "SET", "notify-keyspace-events", "")


def test_keyspace_events_are_delivered_with_key_and_event(
    keyspace_client: redipc.Client,
) -> None:
    c = keyspace_client
    got: list[tuple[bytes, str]] = []
    with c.watch_keys("sensor:*", lambda k, e: got.append((k, e)), ["set", "del", "expired"]):
        flags = c.command("CONFIG", "GET", "notify-keyspace-events")
        assert "K" in str(flags)
        c.set("sensor:1", "a")
        c.set("other", "b")
        c.lpush("sensor:list", "x")  # not a wanted event
        c.delete("sensor:1")
        c.set("sensor:2", "t", ttl=0.05)
        want = [
            (b"sensor:1", "set"),
            (b"sensor:1", "del"),
            (b"sensor:2", "set"),
            (b"sensor:2", "expired"),
        ]
        deadline = time.monotonic() + 5
        while len(got) < 4 and time.monotonic() < deadline:
            c.get("sensor:2")  # touching an expired key expires it now
            time.sleep(0.02)
        assert got == want
    c.set("sensor:3", "after")
    time.sleep(0.1)
    assert len(got) == 4, "nothing after close"


def test_keyspace_all_events_and_no_server_config(keyspace_client: redipc.Client) -> None:
    c = keyspace_client
    c.command("CONFIG", "SET", "notify-keyspace-events", "")
    got: list[tuple[bytes, str]] = []
    w = c.watch_keys("k:*", lambda k, e: got.append((k, e)), configure_server=False)
    c.set("k:1", "a")
    time.sleep(0.2)
    assert got == [], "the server was not configured"
    assert c.command("CONFIG", "GET", "notify-keyspace-events") in (
        {"notify-keyspace-events": b""},
        {b"notify-keyspace-events": b""},
        [b"notify-keyspace-events", b""],
    )
    w.close()
    with c.watch_keys("k:*", lambda k, e: got.append((k, e))) as w2:
        c.set("k:1", "b")
        c.hset("k:h", "f", "v")
        wait_until(lambda: len(got) == 2, 5, "events")
        assert got == [(b"k:1", "set"), (b"k:h", "hset")]
    assert w2.stopped and "stopped" in repr(w2)


# ---------------------------------------------------------------------------------------
# Cross-language: the C device-state daemon, watched from Python


def _device_state_binary() -> str:
    if not os.path.exists(DEVICE_STATE):
        if os.environ.get("REDIPC_SKIP_C") == "1":
            pytest.skip("c-examples/build/device_state is not built (REDIPC_SKIP_C=1)")
        pytest.fail(f"{DEVICE_STATE} is missing: build it: make -C c-examples")
    return DEVICE_STATE


def test_the_c_device_state_daemon_is_watched_from_python(
    tcp_client: redipc.Client, server: RedisServer
) -> None:
    binary = _device_state_binary()
    seen: dict[bytes, list[bytes]] = {b"battery": [], b"speed": []}

    def on_any(field: bytes, value: bytes | None) -> None:
        if field in seen and value is not None:
            seen[field].append(value)

    with tcp_client.hash_watch("device", on_any=on_any):
        out = subprocess.run(
            [binary, server.tcp_url, "device", "1"], capture_output=True, timeout=30
        )
        assert out.returncode == 0, out.stderr.decode()
        # The daemon prints "FIELD VALUE" for every value it published.
        published: dict[bytes, list[bytes]] = {b"battery": [], b"speed": []}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in published:
                published[parts[0]].append(parts[1])
        final = tcp_client.hgetall("device")
        wait_until(
            lambda: all(seen[f][-1:] == [final[f]] for f in seen),
            5,
            "battery and speed seen, up to their final values",
        )
    for field, values in seen.items():
        assert values, field
        sent = iter(published[field])
        assert all(v in sent for v in values), (
            f"{field!r}: seen {values} is not in the order published {published[field]}"
        )


def test_the_dashboard_example_prints_the_daemons_changes(
    tcp_client: redipc.Client, server: RedisServer
) -> None:
    binary = _device_state_binary()
    dash = subprocess.Popen(
        [sys.executable, DASHBOARD, server.tcp_url, "dash", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert dash.stdout is not None
        first = dash.stdout.readline()
        assert first == b"dashboard: watching dash\n"
        daemon = subprocess.run(
            [binary, server.tcp_url, "dash", "1"], capture_output=True, timeout=30
        )
        assert daemon.returncode == 0, daemon.stderr.decode()
        rest, err = dash.communicate(timeout=30)
    finally:
        if dash.poll() is None:
            dash.kill()
            dash.wait()
    assert dash.returncode == 0, err.decode()
    lines = rest.decode().splitlines()
    assert any(line.startswith("dashboard: battery=") for line in lines), lines
    assert any(line.startswith("dashboard: speed=") for line in lines), lines


def test_the_dashboard_example_without_the_daemon(
    tcp_client: redipc.Client, server: RedisServer
) -> None:
    tcp_client.hash_set_many("dash2", {"battery": 55, "speed": 12})
    t = threading.Timer(0.8, lambda: tcp_client.hash_set("dash2", "speed", 13))
    t.start()
    out = subprocess.run(
        [sys.executable, DASHBOARD, server.tcp_url, "dash2", "1.5"],
        capture_output=True,
        timeout=30,
    )
    t.join()
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "dashboard: watching dash2"
    assert sorted(lines[1:3]) == ["dashboard: battery=55", "dashboard: speed=12"]
    assert lines[3] == "dashboard: speed=13"
    assert lines[-1].startswith("dashboard: done")


EXIT_WHILE_WAITING = textwrap.dedent(
    """
    import sys, threading, time, redipc
    c = redipc.Client(sys.argv[1])
    held = c.lock("exit-lock", ttl=30)
    c.hash_set("exit-hash", "f", 1)
    started = threading.Event()
    def slow(field, value):
        started.set()
        time.sleep(0.3)
    watcher = c.hash_watch("exit-hash", on_any=slow)
    threading.Thread(target=lambda: c.cache_wait("never", None), daemon=True).start()
    threading.Thread(target=lambda: c.lock("exit-lock", wait=60), daemon=True).start()
    follower = c.stream_follow("exit-stream")
    threading.Thread(target=lambda: follower.next(None), daemon=True).start()
    keys = c.watch_keys("exit:*", lambda k, e: time.sleep(0.3), configure_server=False)
    started.wait(5)
    time.sleep(0.1)
    print("exiting", flush=True)
    """
)


def test_the_interpreter_exits_cleanly_while_waits_and_callbacks_run(
    server: RedisServer,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", EXIT_WHILE_WAITING, server.tcp_url],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == b"exiting\n"
