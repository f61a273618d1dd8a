"""One lifecycle for every handle that runs Python callbacks: workers, RPC servers, stream
consumers, hash watchers, keyspace watches (the core's stop) and subscriptions (the core's
close). Stopped from inside a callback they return at once and stop after it; stopped from
outside they wait, with a TimeoutError while a callback still runs; their callbacks are
released once they stopped."""

from __future__ import annotations

import gc
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import redipc

_n = itertools.count()


@dataclass
class Kind:
    """How to make a handle of one kind whose callback calls ``f()``, and how to make
    that callback run."""

    make: Callable[[redipc.Client, Callable[[], None]], Any]
    trigger: Callable[[redipc.Client], None]


def _call_in_background(c: redipc.Client) -> None:
    def call() -> None:
        try:
            c.call("h-svc", "x", timeout=10)
        except redipc.RedipcError:
            pass

    threading.Thread(target=call, daemon=True).start()


KINDS: dict[str, Kind] = {
    "worker": Kind(
        lambda c, f: c.handle_requests("h-q", lambda r: f(), block_timeout=0.05),
        lambda c: c.send_request("h-q", "x"),
    ),
    "rpc_server": Kind(
        lambda c, f: c.serve("h-svc", lambda call: (f(), b"ok")[1]),
        _call_in_background,
    ),
    "stream_consumer": Kind(
        lambda c, f: c.stream_consume("h-s", "g", "me", lambda e: f(), block=0.05),
        lambda c: c.stream_publish("h-s", payload="x") and None,
    ),
    "hash_watcher": Kind(
        lambda c, f: c.hash_watch("h-h", on_any=lambda field, v: f(), initial_sync=False),
        lambda c: c.hash_set("h-h", "f", next(_n)),
    ),
    "keyspace_watch": Kind(
        lambda c, f: c.watch_keys("h-k:*", lambda key, event: f(), ["set"]),
        lambda c: c.set("h-k:1", next(_n)) and None,
    ),
}

# The same, for a subscription: close() is its stop.
SUBSCRIPTION = Kind(
    lambda c, f: c.subscribe("h-ch", callback=lambda m: f() if m.kind == "message" else None),
    lambda c: c.publish("h-ch", "x") and None,
)


@pytest.fixture
def c(client: redipc.Client) -> Iterator[redipc.Client]:
    yield client
    client.command("CONFIG", "SET", "notify-keyspace-events", "")


def stop(handle: Any, **kw: Any) -> None:
    if isinstance(handle, redipc.Subscription):
        handle.close()
    else:
        handle.stop(**kw)


def is_stopped(handle: Any) -> bool:
    if isinstance(handle, redipc.Subscription):
        return bool(handle.closed)
    return bool(handle.stopped)


def wait_until(cond: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.005)


@pytest.mark.parametrize("kind", [*KINDS, "subscription"])
def test_stop_from_inside_a_callback_returns_at_once_and_the_handle_stops(
    c: redipc.Client, kind: str
) -> None:
    k = KINDS.get(kind, SUBSCRIPTION)
    holder: list[Any] = []
    took: list[float] = []
    calls: list[int] = []

    def f() -> None:
        calls.append(1)
        while not holder:
            time.sleep(0.001)
        t0 = time.monotonic()
        stop(holder[0])
        took.append(time.monotonic() - t0)
        time.sleep(0.1)  # still inside: the handle stops only after this returns

    holder.append(k.make(c, f))
    k.trigger(c)
    wait_until(lambda: bool(took), "the callback stopped its handle")
    assert took[0] < 0.5, f"stop() from inside took {took[0]:.3f} s"
    wait_until(lambda: is_stopped(holder[0]), "stopped")
    # Stopping again from outside does nothing.
    stop(holder[0])
    assert len(calls) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_stop_times_out_while_a_callback_runs_then_succeeds(c: redipc.Client, kind: str) -> None:
    k = KINDS[kind]
    entered = threading.Event()
    release = threading.Event()

    def f() -> None:
        entered.set()
        release.wait(10)

    handle = k.make(c, f)
    k.trigger(c)
    assert entered.wait(5)
    t0 = time.monotonic()
    with pytest.raises(redipc.TimeoutError) as info:
        handle.stop(timeout=0.1)
    assert 0.09 <= time.monotonic() - t0 < 2
    assert isinstance(info.value, TimeoutError), "also the builtin TimeoutError"
    assert handle.running and not handle.stopped
    threading.Timer(0.1, release.set).start()
    handle.stop(timeout=10)
    assert handle.stopped and not handle.running
    assert "stopped" in repr(handle)


@pytest.mark.parametrize("kind", [*KINDS, "subscription"])
def test_the_callbacks_are_released_once_the_handle_stopped(c: redipc.Client, kind: str) -> None:
    k = KINDS.get(kind, SUBSCRIPTION)
    ran = threading.Event()

    def f() -> None:
        ran.set()

    ref = weakref.ref(f)
    handle = k.make(c, f)
    k.trigger(c)
    assert ran.wait(5)
    del f
    gc.collect()
    assert ref() is not None, "held while the handle runs"
    stop(handle)
    gc.collect()
    assert ref() is None, "released once it stopped (the handle itself still lives)"
    assert is_stopped(handle)


def test_a_group_route_is_released_when_unhandled_or_the_group_closes(c: redipc.Client) -> None:
    def a(m: redipc.Message) -> None:
        pass

    def b(m: redipc.Message) -> None:
        pass

    ra, rb = weakref.ref(a), weakref.ref(b)
    group = c.subscribe_group("g")
    group.handle("h-a", a)
    group.handle("h-b", b)
    del a, b
    gc.collect()
    assert ra() is not None and rb() is not None
    group.unhandle("h-a")
    gc.collect()
    assert ra() is None and rb() is not None
    group.close()
    gc.collect()
    assert rb() is None
    assert group.closed


def test_on_error_and_the_handler_of_a_worker_are_released_together(c: redipc.Client) -> None:
    failed = threading.Event()

    def handler(r: redipc.Request) -> None:
        raise ValueError("no")

    def on_error(e: BaseException) -> None:
        failed.set()

    refs = [weakref.ref(handler), weakref.ref(on_error)]
    w = c.handle_requests("h-e", handler, on_error=on_error, block_timeout=0.05)
    c.send_request("h-e", "x")
    assert failed.wait(5)
    del handler, on_error
    w.stop()
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert w.stats().failed == 1, "the counters outlive the stop"


def test_close_and_with_stop_every_handle(c: redipc.Client) -> None:
    for kind, k in KINDS.items():
        with k.make(c, lambda: None) as handle:
            assert handle.running, kind
        assert handle.stopped, kind
        handle.close()  # again: nothing to do
