"""redipc for asyncio: ``redipc.asyncio.Client``, awaitable twin of ``redipc.Client``.

Single commands (``command``, ``get``, ``set``, the typed helpers, ``publish``) go on a
connection the event loop's own thread writes and reads (plain TCP and unix sockets; on a
Redis Cluster one per primary, for commands whose keys are in one slot; with TLS or
sentinels they take the runtime like the rest): one write and one read per call, no
thread hand-off. Every other call runs on redipc's Rust runtime, and its result comes
back through the same descriptor the loop watches (``loop.add_reader``), so no thread is
used per awaited call and nothing polls. Many concurrent awaits share one auto-pipelined
connection (the commands queued in one iteration of the loop go in one write).

A client belongs to the event loop it was made on (make it inside ``async`` code); a call
from another loop raises ``InvalidArgument``. Cancelling a task that awaits a call cancels
the call (a cancelled command may or may not have run, as after a connection error).
Closing the client fails every call still waiting with ``ClosedError``; so does a call in
the child of an ``os.fork()`` on a client made before it (its connections are the
parent's). The exceptions are the sync client's.

What it has: commands, typed helpers, ``publish``, batches (pipelines and
``MULTI``/``EXEC``), ``WATCH`` transactions with an ``async def`` function
(:meth:`Client.transaction`), subscriptions (``async for``, ``await sub.get()``,
``await sub.add()``, or ``callback=`` an ``async def`` run on the loop), sending requests,
RPC calls, the cache, locks, rate limiters and semaphores, streams (publish, read,
``async for`` over :meth:`Client.stream_follow`, consumer groups with ``async def``
handlers and their helpers), hash state (writes, :meth:`Client.hash_watch` with ``async
def`` callbacks), keyspace watches, and workers and RPC servers with ``async def``
handlers.

Callbacks and handlers: a worker's, RPC server's or stream consumer's handler may be an
``async def``; it runs on this loop while the core's handler thread waits for it (its
exception fails the item and is reported, as with the sync client). The callbacks of
subscriptions, hash watchers and keyspace watches always run on this loop, one at a time
and in order (plain functions or ``async def``); the core's threads never wait for them.
An exception goes to ``on_error(exception)`` if given, else to ``sys.unraisablehook``, as
with the sync client; later events are still delivered. Closing the client ends every
``async for`` over its subscriptions and followers and stops its watchers' callbacks.

Every method of :class:`redipc.Client` has its twin here, except those of poll mode
(``poll``, ``fileno``, ``poll_mode``: the loop itself is the poller here). Not awaitable
yet (use the sync client, e.g. with ``asyncio.to_thread``): ``Semaphore.held`` and
``Lock``/``Permit.extend``.
"""

from __future__ import annotations

import asyncio as _asyncio
import collections
import inspect as _inspect
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar, Union, overload
from typing import cast as _cast

from . import _native

__all__ = [
    "Batch",
    "Client",
    "Consumer",
    "Handle",
    "RateLimiter",
    "Script",
    "Semaphore",
    "StreamFollower",
    "Subscription",
    "SubscriptionGroup",
    "WatchSession",
    "Watcher",
]

_ErrorHook = Callable[[BaseException], object]
"""``on_error``: a plain function or an ``async def``, called with the exception."""


async def _report(exc: BaseException, source: object, on_error: _ErrorHook | None) -> None:
    """An exception of a user callback, where the sync client's go: ``on_error(exc)`` if
    given (awaited if it is a coroutine), else ``sys.unraisablehook``; an exception of
    ``on_error`` itself goes to ``sys.unraisablehook``."""
    if on_error is not None:
        try:
            told = on_error(exc)
            if _inspect.isawaitable(told):
                await told
            return
        except Exception as e:  # noqa: BLE001 - reported below
            exc, source = e, on_error
    _native.AsyncClient._unraisable(exc, source)


async def _call(f: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """``f(*args)``, awaited when it returns an awaitable (an ``async def``)."""
    r = f(*args)
    if _inspect.isawaitable(r):
        await r


def _done() -> _asyncio.Future[None]:
    """An awaitable that is done already."""
    fut: _asyncio.Future[None] = _asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class Batch:
    """Commands sent together: a pipeline, or a ``MULTI``/``EXEC`` transaction
    (``atomic``). Queue with :meth:`add`, send with ``await batch.exec()``."""

    __slots__ = ("_batch", "_client")

    def __init__(self, client: Client, batch: _native.Batch) -> None:
        self._client = client
        self._batch = batch

    def add(self, *args: Any) -> Batch:
        """Queue a command; returns this batch, for chaining."""
        self._batch.add(*args)
        return self

    async def exec(self) -> list[Any]:
        """Send the queued commands; one result per command, in order (an error reply in
        its own slot). The batch is empty afterwards."""
        return await self._client._a.exec_batch(self._batch)

    @property
    def atomic(self) -> bool:
        """Whether it runs as one ``MULTI``/``EXEC`` transaction."""
        return self._batch.atomic

    def __len__(self) -> int:
        return len(self._batch)

    def __repr__(self) -> str:
        return repr(self._batch).replace("<redipc.", "<redipc.asyncio.", 1)


class Subscription:
    """A subscription of :class:`Client` (channels, patterns or shard channels)::

        async with c.subscribe("a", "b") as sub:
            async for msg in sub:          # messages and connection events, in order
                print(msg.kind, msg.channel, msg.payload)

    ``await sub.get(timeout)`` takes one event (``None`` when none came in time). Leaving
    ``async with`` (or :meth:`close`) unsubscribes; an ``async for`` then ends."""

    __slots__ = ("_client", "_ready", "_sub", "_task")

    def __init__(self, client: Client, sub: _native.Subscription) -> None:
        self._client = client
        self._sub = sub
        # Events taken in one batch and not handed out yet.
        self._ready: collections.deque[_native.Message] = collections.deque()
        # The task running the callback, if it has one.
        self._task: _asyncio.Task[None] | None = None

    def _start_callback(self, callback: Callable[[_native.Message], Any], on_error: _ErrorHook | None) -> None:
        self._task = self._client._loop.create_task(self._run_callback(callback, on_error))

    async def _run_callback(self, callback: Callable[[_native.Message], Any], on_error: _ErrorHook | None) -> None:
        # Ends when the subscription (or the client) is closed: the iteration ends then.
        async for msg in self:
            try:
                await _call(callback, (msg,))
            except Exception as e:  # noqa: BLE001 - reported, the next event follows
                await _report(e, callback, on_error)

    async def _take(self, timeout: float | None) -> None:
        # Events taken for a wait that is cancelled lose nothing: those the native future
        # had not handed over go back to the subscription's queue (the core's
        # `EventBatch`), and those it had (the task was cancelled after its future
        # completed, before it ran again) stay here for the next wait.
        fut = self._client._a.next_events(self._sub, timeout)
        try:
            events = await fut
        except _asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._ready.extend(fut.result())
            raise
        self._ready.extend(events)

    async def get(self, timeout: float | None = None) -> _native.Message | None:
        """The next event within ``timeout`` seconds (``None``: no limit); ``None`` when
        none came in time. Cancelling the wait loses no event: the next wait gets it."""
        if not self._ready:
            await self._take(timeout)
        return self._ready.popleft() if self._ready else None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> _native.Message:
        while not self._ready:
            try:
                await self._take(None)
            except _native.ClosedError:
                raise StopAsyncIteration from None
        return self._ready.popleft()

    def add(self, *names: Any) -> _asyncio.Future[None]:
        """Subscribe to more names: recorded at once; ``await`` it to wait until the server
        confirmed them (``TimeoutError`` after ``response_timeout``). A cancelled await
        leaves them subscribed (they activate with an ``"activated"`` event)."""
        fut: _asyncio.Future[None] = self._client._a.subscription_add(self._sub, *names)
        return fut

    def remove(self, *names: Any) -> _asyncio.Future[None]:
        """Stop receiving these names, at once (unknown names are ignored); awaitable, for
        symmetry with :meth:`add`."""
        self._sub.remove(*names)
        return _done()

    @property
    def names(self) -> list[bytes]:
        """The names subscribed to now, sorted."""
        return self._sub.names

    @property
    def kind(self) -> str:
        """``"channel"``, ``"pattern"`` or ``"shard"``."""
        return self._sub.kind

    def stats(self) -> _native.SubscriptionStats:
        """The queue's counters."""
        return self._sub.stats()

    def close(self) -> None:
        """Unsubscribe and close; an ``async for`` over it ends, and so does its callback
        (no later event is delivered to it; a running ``async def`` call finishes)."""
        self._sub.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        r = repr(self._sub).replace("<redipc.", "<redipc.asyncio.", 1)
        return r.replace(" pull", " callback", 1) if self._task is not None else r


_F = TypeVar("_F", bound=Callable[..., Any])


class SubscriptionGroup:
    """A channel subscription with a handler per channel (:meth:`Client.subscribe_group`)::

        async with await c.subscribe_group("vehicle") as group:
            await group.handle("battery", on_battery)    # a plain function or async def

    ``"message"``, ``"activated"`` and ``"reactivated"`` events go to the handler of their
    channel; ``"disconnected"`` goes to every handler. The handlers run on the client's
    loop, one event at a time and in order (the core's dispatcher only posts them); an
    exception goes to the group's ``on_error`` (plain or ``async def``), else
    ``sys.unraisablehook``, and later events are still delivered. Closing the group (or
    the client) stops them."""

    __slots__ = ("_g", "_relay")

    def __init__(self, group: _native.SubscriptionGroup, relay: _Relay) -> None:
        self._g = group
        self._relay = relay

    async def handle(self, channel: Any, callback: _F) -> _F:
        """Handle ``channel`` with ``callback`` (replacing an earlier handler of it) and
        subscribe to it; returns ``callback`` once the server confirmed it. (No decorator
        form: registering is awaited.)"""
        await _asyncio.to_thread(self._g.handle, channel, self._relay.wrap(callback))
        return callback

    def unhandle(self, channel: Any) -> None:
        """Stop handling ``channel`` and unsubscribe from it."""
        self._g.unhandle(channel)

    @property
    def name(self) -> str:
        """The name given to :meth:`Client.subscribe_group`."""
        return self._g.name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._g.closed

    @property
    def names(self) -> list[bytes]:
        """The channels handled now, sorted."""
        return self._g.names

    def stats(self) -> _native.SubscriptionStats:
        """The queue's counters."""
        return self._g.stats()

    def close(self) -> None:
        """Unsubscribe every channel and close; no handler call is posted after it (those
        posted already still run)."""
        self._g.close()
        self._relay.finish()

    async def __aenter__(self) -> SubscriptionGroup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._g).replace("<redipc.", "<redipc.asyncio.", 1)


class Script:
    """A Lua script run by SHA (:meth:`Client.script`) whose calls are awaited::

        incr_to = c.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        await incr_to(keys=["counter"], args=[5])          # 5
        incr_to(["counter"], [5], client=pipeline)          # queued in a pipeline
    """

    __slots__ = ("_client", "_s")

    def __init__(self, client: Client, script: _native.Script) -> None:
        self._client = client
        self._s = script

    @overload
    def __call__(
        self, keys: Any = (), args: Any = (), client: Client | None = None
    ) -> _asyncio.Future[Any]: ...
    @overload
    def __call__(self, keys: Any, args: Any, client: Batch) -> Batch: ...
    @overload
    def __call__(self, keys: Any = (), args: Any = (), *, client: Batch) -> Batch: ...
    def __call__(self, keys: Any = (), args: Any = (), client: Client | Batch | None = None) -> Any:
        """Run the script with ``keys`` (``KEYS``) and ``args`` (``ARGV``): an awaitable of
        its reply, converted like :meth:`Client.command` (a Lua error raises
        ``ResponseError``; a server that lost the script is sent its source once more).
        ``client``: run it on another :class:`Client`; or a :class:`Batch`, where it is
        queued, and this returns the batch (its reply is in the batch's results)."""
        if isinstance(client, Batch):
            self._s(list(keys), list(args), client._batch)
            return client
        on = self._client if client is None else client
        return on._a.run_script(self._s, list(keys), list(args))

    @property
    def sha(self) -> str:
        """The script's SHA1, in hex."""
        return self._s.sha

    @property
    def source(self) -> str:
        """The script's Lua source."""
        return self._s.source

    def __repr__(self) -> str:
        return f"<redipc.asyncio.Script {self._s.sha}>"


_Native = Union[
    _native.Worker, _native.RpcServer, _native.StreamConsumer, _native.HashWatcher, _native.KeyspaceWatch
]


class _Stoppable:
    """What every handle of :class:`Client` that runs user code has: ``await
    handle.stop()`` (it does not block the loop: its handlers may need the loop to
    finish), ``stopped``, and ``async with``."""

    __slots__ = ("_h",)

    def __init__(self, inner: _Native) -> None:
        self._h = inner

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking work and wait up to ``timeout`` seconds (default 10) for running
        handlers; ``TimeoutError`` if one still runs then."""
        await _asyncio.to_thread(self._h.stop, timeout)

    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good."""
        return bool(self._h.stopped)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return repr(self._h).replace("<redipc.", "<redipc.asyncio.", 1)


class Handle(_Stoppable):
    """A worker or RPC server made by :class:`Client` (its handlers may be ``async def``,
    run on the client's event loop). ``await handle.stop()`` stops it without blocking the
    loop (its handlers may need the loop to finish)."""

    __slots__ = ()

    def __init__(self, inner: _native.Worker | _native.RpcServer) -> None:
        super().__init__(inner)

    def stats(self) -> _native.WorkerStats:
        """Its counters."""
        return _cast(_native.WorkerStats, self._h.stats())  # type: ignore[union-attr]

    async def __aenter__(self) -> Handle:
        return self


class Consumer(_Stoppable):
    """A consumer of a stream's consumer group (:meth:`Client.stream_consume`), with the
    lifecycle of :class:`Handle`."""

    __slots__ = ()

    def __init__(self, inner: _native.StreamConsumer) -> None:
        super().__init__(inner)

    def stats(self) -> _native.ConsumerStats:
        """Its counters."""
        return _cast(_native.ConsumerStats, self._h.stats())  # type: ignore[union-attr]

    async def __aenter__(self) -> Consumer:
        return self


class _Relay:
    """Runs the callbacks of a core watcher on the loop: the core's thread only posts each
    call (``loop.call_soon_threadsafe``, never waiting for the loop), one task of the loop
    runs them one at a time, in order. Ends when told (:meth:`finish`) or when the client
    is closed."""

    __slots__ = ("_closing", "_loop", "_on_error", "_queue", "task")

    def __init__(self, client: Client, on_error: _ErrorHook | None) -> None:
        self._loop = client._loop
        self._on_error = on_error
        self._queue: _asyncio.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = _asyncio.Queue()
        self.task = self._loop.create_task(self._run())
        # The client's closing ends it too.
        self._closing: _asyncio.Future[None] = client._a.closed()
        self._closing.add_done_callback(lambda _: self._queue.put_nowait(None))

    def wrap(self, f: Callable[..., Any]) -> Callable[..., None]:
        """``f`` for the core's thread: each call is posted to the loop."""
        loop, put = self._loop, self._queue.put_nowait

        def post(*args: Any) -> None:
            loop.call_soon_threadsafe(put, (f, args))

        return post

    async def _run(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                f, args = item
                try:
                    await _call(f, args)
                except Exception as e:  # noqa: BLE001 - reported, the next call follows
                    await _report(e, f, self._on_error)
        finally:
            self._closing.cancel()

    def finish(self) -> None:
        """Run the calls posted so far, then end."""
        self._queue.put_nowait(None)


class Watcher(_Stoppable):
    """A hash watcher (:meth:`Client.hash_watch`) or keyspace watch
    (:meth:`Client.watch_keys`) whose callbacks run on the client's loop. ``await
    watcher.stop()`` stops the core's watcher, then waits for the callbacks already
    posted; closing the client stops them too."""

    __slots__ = ("_relay",)

    def __init__(self, inner: _native.HashWatcher | _native.KeyspaceWatch, relay: _Relay) -> None:
        super().__init__(inner)
        self._relay = relay

    async def stop(self, timeout: float | None = None) -> None:
        """Stop watching, then wait up to ``timeout`` seconds (default 10) for the
        callbacks posted already; ``TimeoutError`` if one still runs then (it is
        cancelled)."""
        await _asyncio.to_thread(self._h.stop, timeout)
        self._relay.finish()
        done, _ = await _asyncio.wait({self._relay.task}, timeout=10 if timeout is None else timeout)
        if not done:
            self._relay.task.cancel()
            raise _native.TimeoutError("a watcher callback still runs")

    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good (and its callbacks ran)."""
        return bool(self._h.stopped) and self._relay.task.done()

    async def __aenter__(self) -> Watcher:
        return self


def _on_loop(loop: _asyncio.AbstractEventLoop, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` for the core's handler threads: an ``async def`` runs on ``loop`` and
    the thread waits for it (its exception is the handler's failure); a plain function
    runs on the thread, as with the sync client."""
    if not _inspect.iscoroutinefunction(handler):
        return handler

    def run(*args: Any) -> Any:
        return _asyncio.run_coroutine_threadsafe(handler(*args), loop).result()

    return run


class StreamFollower:
    """Follows a stream (:meth:`Client.stream_follow`) from a position::

        async for entry in c.stream_follow("events", "$"):
            print(entry.id, entry.fields)

    ``await follower.next(timeout)`` takes one entry (``None`` when none came in time).
    Its position is kept here and moves only when an entry is handed out, so cancelling a
    wait loses nothing (the cancelled read is abandoned with its connection). :meth:`close`
    (or leaving ``async with``, or closing the client) ends an ``async for``. Reads are
    ``XREAD BLOCK`` on a connection of the client's pool; while waiting without limit they
    are renewed every few seconds (a dead connection is found that way). Use it from one
    task at a time."""

    __slots__ = ("_client", "_closed", "_count", "_pin", "_position", "_ready", "_stream")

    # How long one blocking read waits when the wait has no limit.
    _SLICE = 5.0

    def __init__(self, client: Client, stream: Any, from_id: str, count: int) -> None:
        self._client = client
        self._stream = stream
        self._count = count
        self._ready: collections.deque[_native.StreamEntry] = collections.deque()
        self._closed: _asyncio.Future[None] = client._loop.create_future()
        # "$" is pinned to the stream's last id, asked for now.
        self._position = from_id
        self._pin: _asyncio.Future[_native.StreamEntry | None] | None = None
        if from_id == "$":
            self._pin = client._a.stream_last(stream)

    async def _pinned(self) -> StreamFollower:
        if self._pin is not None:
            last = await self._pin
            self._pin = None
            self._position = "0-0" if last is None else last.id
        return self

    def __await__(self) -> Generator[Any, None, StreamFollower]:
        """``await`` it to be sure ``"$"`` was pinned (before publishing what it must
        see)."""
        return self._pinned().__await__()

    @property
    def position(self) -> str:
        """The id of the last entry handed out (at first the starting position, ``"$"``
        pinned to the stream's last id when the follower was made, ``"0-0"`` for an empty
        stream)."""
        return self._position

    async def _read(self, block: float | None) -> None:
        # The read, or the follower's close, whichever comes first.
        read = self._client._a.stream_read(self._stream, self._position, self._count, block)
        try:
            waits: set[_asyncio.Future[Any]] = {read, self._closed}
            await _asyncio.wait(waits, return_when=_asyncio.FIRST_COMPLETED)
        finally:
            if not read.done():
                read.cancel()
        if self._closed.done():
            raise _native.ClosedError("the stream follower is closed")
        self._ready.extend(read.result())

    async def next(self, timeout: float | None = None) -> _native.StreamEntry | None:
        """The next entry, waiting up to ``timeout`` seconds (``None``: without limit);
        ``None`` when the time passed. ``ClosedError`` once closed (or its client)."""
        if self._closed.done():
            raise _native.ClosedError("the stream follower is closed")
        await self._pinned()
        if not self._ready:
            if timeout is not None and timeout <= 0:
                await self._read(None)
            else:
                loop = self._client._loop
                deadline = None if timeout is None else loop.time() + timeout
                while not self._ready:
                    left = self._SLICE if deadline is None else deadline - loop.time()
                    if left <= 0:
                        return None
                    await self._read(max(min(left, self._SLICE), 0.001))
        if not self._ready:
            return None
        entry = self._ready.popleft()
        self._position = entry.id
        return entry

    def __aiter__(self) -> StreamFollower:
        return self

    async def __anext__(self) -> _native.StreamEntry:
        try:
            entry = await self.next()
        except _native.ClosedError:
            raise StopAsyncIteration from None
        assert entry is not None
        return entry

    def close(self) -> None:
        """Close the follower: a waiting :meth:`next` raises ``ClosedError`` (an ``async
        for`` ends)."""
        if not self._closed.done():
            self._closed.set_result(None)
        self._ready.clear()

    async def __aenter__(self) -> StreamFollower:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed.done() else ""
        return f"<redipc.asyncio.StreamFollower at {self._position}{state}>"


class WatchSession:
    """What the function of :meth:`Client.transaction` is called with: ``await
    s.command(...)`` reads on the watching connection, ``s.queue(...)`` queues a write
    for the ``MULTI``/``EXEC`` at the end. Valid only while that function runs."""

    __slots__ = ("_client", "_s")

    def __init__(self, client: Client, session: _native.AsyncWatchSession) -> None:
        self._client = client
        self._s = session

    async def command(self, *args: Any) -> Any:
        """Run a command now on the watching connection and return its reply (an error
        reply raises ``ResponseError``). Cancelling the await gives the session up."""
        return await self._client._a.watch_command(self._s, *args)

    def queue(self, *args: Any) -> None:
        """Queue a command for the atomic ``MULTI``/``EXEC`` at the end."""
        self._s.queue(*args)

    def __repr__(self) -> str:
        return repr(self._s)


class RateLimiter:
    """A rate limiter (:meth:`Client.rate_limiter`) whose acquisitions are awaited."""

    __slots__ = ("_client", "_rl")

    def __init__(self, client: Client, limiter: _native.RateLimiter) -> None:
        self._client = client
        self._rl = limiter

    async def acquire(self, n: int = 1) -> tuple[bool, float]:
        """Take ``n`` units if the rate allows it now: ``(True, 0.0)``; else nothing is
        taken and it returns ``(False, retry_after)`` in seconds."""
        got: tuple[bool, float] = await self._client._a.rate_acquire(self._rl, n)
        return got

    async def acquire_wait(self, n: int = 1, timeout: float | None = None) -> bool:
        """Take ``n`` units, waiting as long as the rate says (one timer of the wait the
        server named, no polling); ``False`` as soon as the wait would end after
        ``timeout`` seconds (``None``: as long as it takes). Cancelling takes nothing."""
        taken: bool = await self._client._a.rate_acquire_wait(self._rl, n, timeout)
        return taken

    @property
    def name(self) -> bytes:
        """The limiter's name."""
        return self._rl.name

    @property
    def burst(self) -> int:
        """How many units may be taken at once."""
        return self._rl.burst

    def __repr__(self) -> str:
        return repr(self._rl).replace("<redipc.", "<redipc.asyncio.", 1)


class _Acquiring:
    """A permit being acquired: ``await`` it for the held :class:`redipc.Permit` (give it
    back with ``await sem.release(permit)``), or ``async with`` it (released on exit)."""

    __slots__ = ("_permit", "_sem", "_timeout")

    def __init__(self, sem: Semaphore, timeout: float | None) -> None:
        self._sem = sem
        self._timeout = timeout
        self._permit: _native.Permit | None = None

    async def _make(self) -> _native.Permit:
        permit: _native.Permit = await self._sem._client._a.semaphore_acquire(self._sem._s, self._timeout)
        return permit

    def __await__(self) -> Generator[Any, None, _native.Permit]:
        return self._make().__await__()

    async def __aenter__(self) -> _native.Permit:
        self._permit = await self._make()
        return self._permit

    async def __aexit__(self, *exc: object) -> None:
        if self._permit is not None:
            await self._sem.release(self._permit)


class Semaphore:
    """A counting semaphore with leases (:meth:`Client.semaphore`)::

        async with sem.acquire(timeout=10) as permit:   # TimeoutError if none came
            await run_job()
    """

    __slots__ = ("_client", "_s")

    def __init__(self, client: Client, sem: _native.Semaphore) -> None:
        self._client = client
        self._s = sem

    def acquire(self, timeout: float | None = None) -> _Acquiring:
        """Take a permit, waiting up to ``timeout`` seconds (``None``: as long as it
        takes; ``0``: try once); ``TimeoutError`` if none came. Waiters are served in
        arrival order, woken by a release; cancelling the wait leaves the queue."""
        return _Acquiring(self, timeout)

    async def release(self, permit: _native.Permit) -> bool:
        """Give ``permit`` back; ``False`` if it was no longer held or released already."""
        released: bool = await self._client._a.permit_release(permit)
        return released

    @property
    def name(self) -> bytes:
        """The semaphore's name."""
        return self._s.name

    @property
    def permits(self) -> int:
        """Its number of permits."""
        return self._s.permits

    def __repr__(self) -> str:
        return repr(self._s).replace("<redipc.", "<redipc.asyncio.", 1)


class _Locking:
    """A lock being acquired: ``await`` it for the held :class:`redipc.Lock` (release it
    with ``await client.release(lock)``), or ``async with`` it (released on exit)."""

    __slots__ = ("_args", "_client", "_lock")

    def __init__(self, client: Client, *args: Any) -> None:
        self._client = client
        self._args = args
        self._lock: _native.Lock | None = None

    async def _make(self) -> _native.Lock:
        lock: _native.Lock = await self._client._a.lock(*self._args)
        return lock

    def __await__(self) -> Generator[Any, None, _native.Lock]:
        return self._make().__await__()

    async def __aenter__(self) -> _native.Lock:
        self._lock = await self._make()
        return self._lock

    async def __aexit__(self, *exc: object) -> None:
        if self._lock is not None:
            await self._client.release(self._lock)


class _Subscribing:
    """A subscription being made: ``await`` it, or ``async with`` it."""

    __slots__ = ("_args", "_callback", "_client", "_on_error", "_sub")

    def __init__(
        self,
        client: Client,
        kind: str,
        names: tuple[Any, ...],
        capacity: int | None,
        overflow: str | None,
        callback: Callable[[_native.Message], Any] | None = None,
        on_error: _ErrorHook | None = None,
    ) -> None:
        if callback is None and on_error is not None:
            raise _native.InvalidArgument("on_error needs a callback")
        if callback is not None and not callable(callback):
            raise TypeError("callback: expected a callable")
        self._client = client
        self._args: tuple[Any, ...] = (kind, names, capacity, overflow)
        self._callback = callback
        self._on_error = on_error
        self._sub: Subscription | None = None

    async def _make(self) -> Subscription:
        sub = Subscription(self._client, await self._client._a.subscribe(*self._args))
        if self._callback is not None:
            sub._start_callback(self._callback, self._on_error)
        return sub

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._make().__await__()

    async def __aenter__(self) -> Subscription:
        self._sub = await self._make()
        return self._sub

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            self._sub.close()


def _running_loop() -> _asyncio.AbstractEventLoop:
    try:
        return _asyncio.get_running_loop()
    except RuntimeError:
        raise _native.InvalidArgument(
            "redipc.asyncio.Client must be made inside a running event loop "
            "(in async code): it belongs to that loop"
        ) from None


class Client:
    """A redipc client for asyncio, with the options of :class:`redipc.Client`::

        async with redipc.asyncio.Client("redis://127.0.0.1:6379/0") as c:
            await c.set("k", "v")
            print(await c.get("k"))

    Connecting happens in the constructor (a blocking connect, bounded by
    ``connect_timeout``), so that a wrong URL fails where the client is made; ``client =
    await Client.connect(url, ...)`` connects without blocking the loop (on the loop's
    default executor, once).
    """

    __slots__ = ("_a", "_c", "_closed", "_loop", "_reading")

    def __init__(self, url: str, **options: Any) -> None:
        loop = _running_loop()
        c = _native.Client(url, **options)
        self._attach(loop, c, _native.AsyncClient(c, loop))

    @classmethod
    async def connect(cls, url: str, **options: Any) -> Client:
        """The client, connected without blocking the event loop (the connects run on the
        loop's default executor); the options and errors of the constructor."""
        loop = _running_loop()

        def make() -> tuple[_native.Client, _native.AsyncClient]:
            c = _native.Client(url, **options)
            return c, _native.AsyncClient(c, loop)

        c, a = await loop.run_in_executor(None, make)
        client = cls.__new__(cls)
        client._attach(loop, c, a)
        return client

    def _attach(self, loop: _asyncio.AbstractEventLoop, c: _native.Client, a: _native.AsyncClient) -> None:
        self._c = c
        self._a = a
        self._loop = loop
        self._closed: _asyncio.Future[None] | None = None
        self._reading = True
        # The futures of finished calls are completed by the native reader callback; once
        # closed and all done, it calls _stop_reading.
        loop.add_reader(self._a.fd, self._a._readable, self._stop_reading)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._a.fd)
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)

    # -- lifecycle ---------------------------------------------------------------------
    async def close(self) -> None:
        """Close the client: calls still waiting fail with ``ClosedError``; later calls
        raise it. Closing twice is harmless."""
        self._a.close()
        if not self._reading:
            return
        if self._closed is None:
            self._closed = self._loop.create_future()
        # The waiting calls fail with ClosedError; returns once every one was told.
        self._a._readable(self._stop_reading)
        await _asyncio.shield(self._closed)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now (it is re-established in the background)."""
        return self._c.is_connected

    def stats(self) -> _native.ClientStats:
        """The client's counters and latency histogram since it was made."""
        return self._c.stats()

    def node_stats(self) -> list[_native.NodeStats]:
        """Each server's share of the client's traffic (see the sync client's)."""
        return self._c.node_stats()

    def hash_tag_for_node(self, addr: str) -> str:
        """A hash tag whose keys land on the cluster's primary at ``addr`` (see the sync
        client's)."""
        return self._c.hash_tag_for_node(addr)

    def __repr__(self) -> str:
        return repr(self._c).replace("<redipc.Client", "<redipc.asyncio.Client", 1)

    # -- commands ----------------------------------------------------------------------
    async def command(self, *args: Any) -> Any:
        """Send any command; await its reply (the types of :meth:`redipc.Client.command`)."""
        return await self._a.command(*args)

    async def get(self, key: Any) -> bytes | None:
        """``GET key``."""
        return await self._a.get(key)

    async def set(
        self, key: Any, value: Any, ttl: float | None = None, *, nx: bool = False, xx: bool = False
    ) -> bool:
        """``SET key value [PX ttl] [NX|XX]``: whether the value was set."""
        return await self._a.set(key, value, ttl, nx=nx, xx=xx)

    async def delete(self, *keys: Any) -> int:
        """``DEL key...``: how many keys were removed."""
        return await self._a.delete(*keys)

    async def exists(self, *keys: Any) -> int:
        """``EXISTS key...``: how many of the keys exist."""
        return await self._a.exists(*keys)

    async def incr(self, key: Any, amount: int = 1) -> int:
        """``INCRBY key amount``: the new value."""
        return await self._a.incr(key, amount)

    async def publish(self, channel: Any, message: Any) -> int:
        """``PUBLISH channel message``: how many subscribers got it."""
        return await self._a.publish(channel, message)

    async def expire(self, key: Any, seconds: float) -> bool:
        """``PEXPIRE key ms``: ``True`` if the key exists and the timeout was set."""
        set_: bool = await self._a.expire(key, seconds)
        return set_

    async def decr(self, key: Any, amount: int = 1) -> int:
        """``DECRBY key amount``: the new value."""
        n: int = await self._a.decr(key, amount)
        return n

    async def hget(self, key: Any, field: Any) -> bytes | None:
        """``HGET key field``: the value, or ``None``."""
        value: bytes | None = await self._a.hget(key, field)
        return value

    async def hset(
        self, key: Any, field: Any = None, value: Any = None, *, mapping: Mapping[Any, Any] | None = None
    ) -> int:
        """``HSET key field value [field value ...]``: how many fields were added (not
        updated). Give ``field`` and ``value``, or ``mapping=``, or both."""
        n: int = await self._a.hset(key, field, value, mapping=mapping)
        return n

    async def hgetall(self, key: Any) -> dict[bytes, bytes]:
        """``HGETALL key``: every field and value (empty if the key does not exist)."""
        pairs: dict[bytes, bytes] = await self._a.hgetall(key)
        return pairs

    async def hdel(self, key: Any, *fields: Any) -> int:
        """``HDEL key field...``: how many fields were removed."""
        n: int = await self._a.hdel(key, *fields)
        return n

    async def lpush(self, key: Any, *values: Any) -> int:
        """``LPUSH key value...``: the length of the list after the push."""
        n: int = await self._a.lpush(key, *values)
        return n

    async def rpush(self, key: Any, *values: Any) -> int:
        """``RPUSH key value...``: the length of the list after the push."""
        n: int = await self._a.rpush(key, *values)
        return n

    async def lpop(self, key: Any) -> bytes | None:
        """``LPOP key``: the first element, or ``None`` if the list is empty."""
        value: bytes | None = await self._a.lpop(key)
        return value

    async def rpop(self, key: Any) -> bytes | None:
        """``RPOP key``: the last element, or ``None`` if the list is empty."""
        value: bytes | None = await self._a.rpop(key)
        return value

    async def llen(self, key: Any) -> int:
        """``LLEN key``."""
        n: int = await self._a.llen(key)
        return n

    async def ping(self) -> bool:
        """``PING``: ``True`` (an error is raised if the server does not answer)."""
        pong: bool = await self._a.ping()
        return pong

    async def spublish(self, channel: Any, message: Any) -> int:
        """``SPUBLISH channel message``: how many shard-channel subscribers received it."""
        n: int = await self._a.spublish(channel, message)
        return n

    async def pipeline_raw(self, commands: Any) -> list[Any]:
        """Send several commands in one write (not atomic); one reply per command, in
        order (a command's error reply is a ``ResponseError`` in its slot)."""
        replies: list[Any] = await self._a.pipeline_raw(commands)
        return replies

    def script(self, source: str) -> Script:
        """A :class:`Script` with this Lua source, run by its SHA (``EVALSHA``; a server
        that lost it is sent the source once more); its calls are awaited. Nothing is
        sent until the first call."""
        return Script(self, self._c.script(source))

    # -- queues, RPC, cache --------------------------------------------------------------
    async def queue_stats(self, queue: Any) -> _native.QueueCounts:
        """How many requests of ``queue`` are pending, in flight (reliable workers), dead
        letters and delayed (not due yet)."""
        counts: _native.QueueCounts = await self._a.queue_stats(queue)
        return counts

    async def dead_letters(self, queue: Any) -> list[_native.DeadLetter]:
        """The dead letters of ``queue``, oldest first (they stay where they are)."""
        letters: list[_native.DeadLetter] = await self._a.dead_letters(queue)
        return letters

    async def requeue_dead_letters(self, queue: Any) -> int:
        """Put every dead letter of ``queue`` back into the queue (their attempts start
        over); how many."""
        n: int = await self._a.requeue_dead_letters(queue)
        return n

    async def services(self) -> list[bytes]:
        """The services (``"redipc"`` wire) with at least one live server, sorted."""
        names: list[bytes] = await self._a.services()
        return names

    async def instances(self, service: Any) -> list[_native.Instance]:
        """The live servers of ``service``, with what each announced."""
        found: list[_native.Instance] = await self._a.instances(service)
        return found

    async def cache_delete(self, key: Any) -> bool:
        """Delete the cache entry; ``True`` if it existed."""
        existed: bool = await self._a.cache_delete(key)
        return existed

    async def cache_exists(self, key: Any) -> bool:
        """Whether the cache entry exists."""
        exists: bool = await self._a.cache_exists(key)
        return exists

    async def send_request(self, queue: Any, payload: Any, delay: float | None = None) -> None:
        """``LPUSH`` a request into ``queue``; with ``delay`` (seconds) no worker takes it
        before then."""
        await self._a.send_request(queue, payload, delay)

    async def call(
        self,
        service: Any,
        payload: Any,
        *,
        method: Any = None,
        timeout: float | None = None,
        fail_fast: bool | None = None,
    ) -> bytes:
        """Call an RPC ``service`` (a server made with :meth:`redipc.Client.serve`); its
        reply. ``RemoteError``, ``TimeoutError``, ``NoServerError`` as the sync client."""
        return await self._a.call(service, payload, method=method, timeout=timeout, fail_fast=fail_fast)

    async def cache_set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        """Set a cache entry (its waiters wake at once); ``ttl`` in seconds."""
        await self._a.cache_set(key, value, ttl)

    async def cache_get(self, key: Any) -> bytes | None:
        """A cache entry's value, or ``None``."""
        return await self._a.cache_get(key)

    async def cache_wait(self, key: Any, timeout: float) -> bytes | None:
        """Wait until a cache entry exists (woken by its writer, no polling) and return its
        value; ``None`` when ``timeout`` seconds passed."""
        return await self._a.cache_wait(key, timeout)

    # -- streams and hash state ---------------------------------------------------------
    async def stream_publish(
        self, stream: Any, fields: Any = None, *, payload: Any = None, maxlen: int | None = None
    ) -> str:
        """Append an entry (``fields``, or one ``payload`` field); its id."""
        entry_id: str = await self._a.stream_publish(stream, fields, payload=payload, maxlen=maxlen)
        return entry_id

    async def stream_read(
        self, stream: Any, from_id: str = "0", count: int = 100, block: float | None = None
    ) -> list[_native.StreamEntry]:
        """Up to ``count`` entries after ``from_id``; with ``block`` (seconds) wait that
        long for the first when there is none."""
        entries: list[_native.StreamEntry] = await self._a.stream_read(stream, from_id, count, block)
        return entries

    def stream_follow(self, stream: Any, from_id: str = "$", *, count: int = 100) -> StreamFollower:
        """A :class:`StreamFollower` of the entries after ``from_id`` (``"$"``, the
        default: those added after this call; ``"0"``: every entry; or an entry id):
        ``async for entry in c.stream_follow("events"):``. ``count``: entries read at
        most per ``XREAD``. ``InvalidArgument`` for an invalid id (from the first
        read)."""
        return StreamFollower(self, stream, from_id, count)

    async def stream_last(self, stream: Any) -> _native.StreamEntry | None:
        """The stream's last entry, or ``None`` for an empty or missing stream."""
        entry: _native.StreamEntry | None = await self._a.stream_last(stream)
        return entry

    async def stream_len(self, stream: Any) -> int:
        """``XLEN``: how many entries the stream holds (0 when it does not exist)."""
        n: int = await self._a.stream_len(stream)
        return n

    async def stream_group_create(self, stream: Any, group: Any, from_id: str = "$") -> bool:
        """Create the consumer group ``group`` (and the stream, if missing) delivering the
        entries after ``from_id``; ``False`` if it existed already."""
        created: bool = await self._a.stream_group_create(stream, group, from_id)
        return created

    async def stream_pending(self, stream: Any, group: Any) -> _native.PendingInfo:
        """The group's pending entries: how many in all, and per consumer."""
        info: _native.PendingInfo = await self._a.stream_pending(stream, group)
        return info

    async def stream_dead_letters(self, stream: Any, count: int = 100) -> list[_native.StreamEntry]:
        """The first ``count`` dead letters of ``stream`` (``<stream>:dead``), oldest
        first."""
        entries: list[_native.StreamEntry] = await self._a.stream_dead_letters(stream, count)
        return entries

    def stream_consume(
        self, stream: Any, group: Any, consumer: Any, handler: Callable[..., Any], **options: Any
    ) -> Consumer:
        """Consume ``stream`` in the consumer group ``group`` as ``consumer`` (options of
        :meth:`redipc.Client.stream_consume`; the group is created from ``"0"`` if
        missing). ``handler(entry)`` may be an ``async def``: it runs on this loop, one
        entry at a time. Returning acknowledges the entry; raising leaves it pending (it
        is claimed again, then dead-lettered after ``max_deliveries``) and is reported
        (``on_error``, else the ``redipc`` logger); the consumer goes on."""
        if "on_error" in options and options["on_error"] is not None:
            options["on_error"] = _on_loop(self._loop, options["on_error"])
        return Consumer(
            self._c.stream_consume(stream, group, consumer, _on_loop(self._loop, handler), **options)
        )

    async def hash_set(
        self, hash: Any, field: Any, value: Any, *, timestamp: Any = None, channel: Any = None
    ) -> None:
        """``HSET`` and publish the field name on the hash's channel, atomically (what
        :meth:`redipc.Client.hash_watch` watchers follow); ``timestamp`` and ``channel`` as
        :meth:`redipc.Client.hash_set`."""
        await self._a.hash_set(hash, field, value, timestamp=timestamp, channel=channel)

    async def hash_set_if_changed(self, hash: Any, field: Any, value: Any) -> bool:
        """Like :meth:`hash_set`, only when the value differs; whether it changed."""
        changed: bool = await self._a.hash_set_if_changed(hash, field, value)
        return changed

    async def hash_set_many(
        self,
        hash: Any,
        mapping: Mapping[Any, Any],
        summary: bool = False,
        *,
        announce: Any = None,
        channel: Any = None,
        timestamp: Any = None,
    ) -> None:
        """Set several fields atomically; publish each field name, or with ``summary`` one
        ``"*"``, or with ``announce`` that word once (``summary`` and ``announce``
        together raise ``TypeError``). ``channel`` and ``timestamp`` as for
        :meth:`redipc.Client.hash_set`. ``InvalidArgument`` for an empty mapping."""
        await self._a.hash_set_many(
            hash, mapping, summary, announce=announce, channel=channel, timestamp=timestamp
        )

    async def hash_delete(self, hash: Any, field: Any, *, channel: Any = None) -> bool:
        """``HDEL`` the field and publish its name (on ``channel`` if given); ``True`` if
        it existed (nothing is published otherwise)."""
        existed: bool = await self._a.hash_delete(hash, field, channel=channel)
        return existed

    async def hash_replace_all(
        self, hash: Any, mapping: Mapping[Any, Any], *, announce: Any = None, channel: Any = None, timestamp: Any = None
    ) -> None:
        """Replace the whole hash with ``mapping`` (an empty mapping deletes it) and
        publish ``"*"`` (or ``announce``), atomically."""
        await self._a.hash_replace_all(hash, mapping, announce=announce, channel=channel, timestamp=timestamp)

    async def hash_clear(self, hash: Any, *, channel: Any = None, announce: Any = None) -> None:
        """Delete the whole hash and publish ``"cleared"`` (or ``announce``) on its channel
        (``channel`` if given), atomically."""
        await self._a.hash_clear(hash, channel=channel, announce=announce)

    async def fault_set(self, group: Any, code: int, description: Any) -> bool:
        """Raise fault ``code`` of ``group`` (the redis-ipc fleet's layout, as
        :meth:`redipc.Client.fault_set`); ``True`` when the fault is new."""
        new: bool = await self._a.fault_set(group, code, description)
        return new

    async def fault_clear(self, group: Any, code: int) -> bool:
        """Clear fault ``code`` of ``group``; ``True`` when it was set."""
        was: bool = await self._a.fault_clear(group, code)
        return was

    async def hash_watch(
        self,
        hash: Any,
        on_field: Mapping[Any, Callable[[bytes, bytes | None], Any]] | None = None,
        on_any: Callable[[bytes, bytes | None], Any] | None = None,
        *,
        on_event: Callable[[bytes], Any] | None = None,
        on_error: _ErrorHook | None = None,
        **options: Any,
    ) -> Watcher:
        """Watch a hash (as :meth:`redipc.Client.hash_watch`, with its options
        ``initial_sync``, ``debounce``, ``every_notification``, ``channel``): returns
        once subscribed and read. The callbacks (``callback(field, value)``, ``value``
        ``None`` for a deleted field; ``on_event(payload)``) may be ``async def``; they
        run on this loop, one at a time and in order (with ``initial_sync`` the current
        fields first). An exception goes to ``on_error`` (which may be an ``async def``)
        or ``sys.unraisablehook``; the watcher goes on. A failed read of the hash is
        retried by the core and reported to ``on_error`` too. Stop it with ``await
        watcher.stop()`` or ``async with``."""
        relay = _Relay(self, on_error)
        post = relay.wrap
        fields = None if on_field is None else {k: post(f) for k, f in on_field.items()}
        try:
            watcher = await _asyncio.to_thread(
                self._c.hash_watch,
                hash,
                fields,
                None if on_any is None else post(on_any),
                on_event=None if on_event is None else post(on_event),
                # A failed read goes to on_error through the loop (without one: to the
                # logger, as with the sync client).
                on_error=None if on_error is None else post(lambda e: _report(e, self._c, on_error)),
                **options,
            )
        except BaseException:
            relay.finish()
            raise
        return Watcher(watcher, relay)

    async def watch_keys(
        self,
        pattern: Any,
        callback: Callable[[bytes, str], Any],
        events: Any = (),
        *,
        configure_server: bool = True,
        on_error: _ErrorHook | None = None,
    ) -> Watcher:
        """Call ``callback(key, event)`` for the keyspace events of keys matching
        ``pattern`` (as :meth:`redipc.Client.watch_keys`: ``events`` filters by name,
        ``configure_server`` adds the flags the events need); returns once subscribed.
        ``callback`` may be an ``async def``; it runs on this loop, one event at a time
        and in order; an exception goes to ``on_error`` or ``sys.unraisablehook``."""
        relay = _Relay(self, on_error)
        try:
            watch = await _asyncio.to_thread(
                self._c.watch_keys, pattern, relay.wrap(callback), list(events), configure_server=configure_server
            )
        except BaseException:
            relay.finish()
            raise
        return Watcher(watch, relay)

    # -- locks -------------------------------------------------------------------------
    def lock(
        self,
        name: Any,
        ttl: float | None = None,
        wait: float | None = None,
        auto_renew: bool | None = None,
    ) -> _Locking:
        """A fencing-token lock (as :meth:`redipc.Client.lock`): ``async with
        c.lock("name", ttl=10, wait=5) as lock:`` (``lock.token`` fences writes), or
        ``lock = await c.lock(...)`` then ``await c.release(lock)``. ``TimeoutError`` when
        it stayed taken for ``wait`` seconds; waiters are woken by the release."""
        return _Locking(self, name, ttl, wait, auto_renew)

    async def release(self, lock: _native.Lock) -> bool:
        """Release a lock taken with :meth:`lock`; ``False`` if it was no longer ours."""
        released: bool = await self._a.release_lock(lock)
        return released

    # -- coordination ------------------------------------------------------------------
    def rate_limiter(self, name: Any, rate: float, per: float = 1.0, burst: int | None = None) -> RateLimiter:
        """A :class:`RateLimiter` (as :meth:`redipc.Client.rate_limiter`) whose
        acquisitions are awaited."""
        return RateLimiter(self, self._c.rate_limiter(name, rate, per, burst))

    def semaphore(self, name: Any, permits: int, lease: float = 30.0) -> Semaphore:
        """A :class:`Semaphore` (as :meth:`redipc.Client.semaphore`) whose acquisitions
        are awaited."""
        return Semaphore(self, self._c.semaphore(name, permits, lease))

    # -- workers and servers ----------------------------------------------------------
    def handle_requests(self, queues: Any, handler: Callable[..., Any], **options: Any) -> Handle:
        """Start a worker on ``queues`` (options of :meth:`redipc.Client.handle_requests`);
        ``handler(request)`` may be an ``async def``: it runs on this loop, one request per
        worker loop at a time (``concurrency`` loops). A handler that raises fails its
        request (retried in reliable mode) and is reported; the worker goes on."""
        return Handle(self._c.handle_requests(queues, _on_loop(self._loop, handler), **options))

    def serve(self, service: Any, handler: Callable[..., Any], **options: Any) -> Handle:
        """Answer calls to ``service`` (options of :meth:`redipc.Client.serve`);
        ``handler(call)`` may be an ``async def`` returning the reply payload."""
        return Handle(self._c.serve(service, _on_loop(self._loop, handler), **options))

    def serve_methods(self, service: Any, methods: Mapping[str, Callable[..., Any]], **options: Any) -> Handle:
        """Answer calls to ``service``, routed by method name to the handlers of
        ``methods`` (options of :meth:`redipc.Client.serve_methods`); each handler may be
        an ``async def`` returning the reply payload."""
        table = {name: _on_loop(self._loop, f) for name, f in methods.items()}
        return Handle(self._c.serve_methods(service, table, **options))

    # -- pub/sub ----------------------------------------------------------------------
    async def subscribe_group(
        self,
        name: str = "",
        *,
        capacity: int | None = None,
        overflow: str | None = None,
        on_error: _ErrorHook | None = None,
    ) -> SubscriptionGroup:
        """A :class:`SubscriptionGroup`: one channel subscription whose channels each have
        their own handler (``await group.handle(channel, handler)``), run on this loop.
        ``name`` is a label; the options are those of :meth:`subscribe`."""
        group = await self._a.subscribe_group(name, capacity, _cast(Any, overflow))
        return SubscriptionGroup(group, _Relay(self, on_error))

    def subscribe(
        self,
        *channels: Any,
        capacity: int | None = None,
        overflow: str | None = None,
        callback: Callable[[_native.Message], Any] | None = None,
        on_error: _ErrorHook | None = None,
    ) -> _Subscribing:
        """``SUBSCRIBE channel...``: ``await`` it for the :class:`Subscription` (once the
        server confirmed it), or use it with ``async with`` (closed on exit).

        With ``callback`` (a plain function or an ``async def``), each event (messages
        and connection events, in order) is passed to ``callback(message)`` on this loop,
        one at a time, by a task of the subscription, until it is closed; an exception
        goes to ``on_error`` (plain or ``async def``), else ``sys.unraisablehook``, and
        later events are still delivered. Do not also pull from it then."""
        return _Subscribing(self, "channel", channels, capacity, overflow, callback, on_error)

    def psubscribe(
        self,
        *patterns: Any,
        capacity: int | None = None,
        overflow: str | None = None,
        callback: Callable[[_native.Message], Any] | None = None,
        on_error: _ErrorHook | None = None,
    ) -> _Subscribing:
        """``PSUBSCRIBE pattern...``: messages carry the matching pattern."""
        return _Subscribing(self, "pattern", patterns, capacity, overflow, callback, on_error)

    def ssubscribe(
        self,
        *channels: Any,
        capacity: int | None = None,
        overflow: str | None = None,
        callback: Callable[[_native.Message], Any] | None = None,
        on_error: _ErrorHook | None = None,
    ) -> _Subscribing:
        """``SSUBSCRIBE channel...``: shard channels."""
        return _Subscribing(self, "shard", channels, capacity, overflow, callback, on_error)

    # -- batches -----------------------------------------------------------------------
    def pipeline(self) -> Batch:
        """A pipeline: commands in one write, answered in order (not atomic)."""
        return Batch(self, self._c.pipeline())

    def tx(self) -> Batch:
        """A ``MULTI``/``EXEC`` transaction."""
        return Batch(self, self._c.tx())

    def batch(self, atomic: bool) -> Batch:
        """A new, empty :class:`Batch`: a transaction when ``atomic``, else a pipeline."""
        return Batch(self, self._c.batch(atomic))

    async def transaction(
        self, func: Callable[[WatchSession], Any], *watch_keys: Any, max_retries: int = 100
    ) -> list[Any]:
        """An optimistic transaction (as :meth:`redipc.Client.transaction`): ``WATCH
        watch_keys`` on a connection of its own, ``await func(session)`` (read with
        ``await session.command(...)``, queue writes with ``session.queue(...)``; ``func``
        may also be a plain function), then ``MULTI``, the queued commands, ``EXEC``; one
        result per queued command. When a watched key changed before ``EXEC`` nothing
        ran, and all of it runs again, up to ``max_retries`` more times; then
        ``WatchError``. An exception raised by ``func`` gives the transaction up (nothing
        queued runs) and is raised as itself. Cancelling gives it up too.

        The retry rule is the core's (``Client::transaction``: the first attempt, then up
        to ``max_retries`` more while a watched key changed); the attempts are counted
        here because ``func`` is a coroutine of this loop, which the core's own loop cannot
        await. Each attempt's steps are the core's (``watch``, ``WatchSession::exec``)."""
        if max_retries < 0:
            raise _native.InvalidArgument("max_retries must not be negative")
        for _ in range(max_retries + 1):
            session = await self._a.watch(*watch_keys)
            try:
                await _call(func, (WatchSession(self, session),))
                replies: list[Any] | None = await self._a.watch_exec(session)
            finally:
                session.close()
            if replies is not None:
                return replies
        raise _native.WatchError(f"a watched key kept changing: gave up after {max_retries + 1} attempts")
