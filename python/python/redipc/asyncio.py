"""redipc for asyncio: ``redipc.asyncio.Client``, awaitable twin of ``redipc.Client``.

Calls run on redipc's Rust runtime; their results come back to the event loop through one
descriptor it watches (``loop.add_reader``), so no thread is used per awaited call and
nothing polls. Many concurrent awaits share the client's one auto-pipelined connection.

A client belongs to the event loop it was made on (make it inside ``async`` code); a call
from another loop raises ``InvalidArgument``. Cancelling a task that awaits a call cancels
the call (a cancelled command may or may not have run, as after a connection error).
Closing the client fails every call still waiting with ``ClosedError``. The exceptions are
the sync client's.

This is the first part of the asyncio client: commands, typed helpers, ``publish``,
batches (pipelines and ``MULTI``/``EXEC``), subscriptions (``async for``), sending
requests, RPC calls, the cache, locks, stream publish/read, hash-state writes, and workers
and RPC servers with ``async def`` handlers. Stream followers and consumer groups, hash
watchers and keyspace watches come next (issue 15); meanwhile use the sync client (e.g.
with ``asyncio.to_thread``) for them.
"""

from __future__ import annotations

import asyncio as _asyncio
import collections
import inspect as _inspect
from collections.abc import Callable, Generator
from typing import Any

from . import _native

__all__ = ["Batch", "Client", "Handle", "Subscription"]


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

    __slots__ = ("_client", "_ready", "_sub")

    def __init__(self, client: Client, sub: _native.Subscription) -> None:
        self._client = client
        self._sub = sub
        # Events taken in one batch and not handed out yet.
        self._ready: collections.deque[_native.Message] = collections.deque()

    async def get(self, timeout: float | None = None) -> _native.Message | None:
        """The next event within ``timeout`` seconds (``None``: no limit); ``None`` when
        none came in time. Cancelling the wait may lose the events it was receiving."""
        if not self._ready:
            self._ready.extend(await self._client._a.next_events(self._sub, timeout))
        return self._ready.popleft() if self._ready else None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> _native.Message:
        while not self._ready:
            try:
                self._ready.extend(await self._client._a.next_events(self._sub, None))
            except _native.ClosedError:
                raise StopAsyncIteration from None
        return self._ready.popleft()

    def add(self, *names: Any) -> None:
        """Subscribe to more names (waits on this thread until the server confirmed
        them; an awaitable ``add`` comes with the rest of the asyncio patterns)."""
        self._sub.add(*names)

    def remove(self, *names: Any) -> None:
        """Stop receiving these names (unknown names are ignored)."""
        self._sub.remove(*names)

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
        """Unsubscribe and close; an ``async for`` over it ends."""
        self._sub.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._sub).replace("<redipc.", "<redipc.asyncio.", 1)


class Handle:
    """A worker or RPC server made by :class:`Client` (its handlers may be ``async def``,
    run on the client's event loop). ``await handle.stop()`` stops it without blocking the
    loop (its handlers may need the loop to finish)."""

    __slots__ = ("_h",)

    def __init__(self, inner: _native.Worker | _native.RpcServer) -> None:
        self._h = inner

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking work and wait up to ``timeout`` seconds (default 10) for running
        handlers; ``TimeoutError`` if one still runs then."""
        await _asyncio.to_thread(self._h.stop, timeout)

    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good."""
        return bool(self._h.stopped)

    def stats(self) -> _native.WorkerStats:
        """Its counters."""
        stats: _native.WorkerStats = self._h.stats()
        return stats

    async def __aenter__(self) -> Handle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return repr(self._h).replace("<redipc.", "<redipc.asyncio.", 1)


def _on_loop(loop: _asyncio.AbstractEventLoop, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` for the core's handler threads: an ``async def`` runs on ``loop`` and
    the thread waits for it (its exception is the handler's failure); a plain function
    runs on the thread, as with the sync client."""
    if not _inspect.iscoroutinefunction(handler):
        return handler

    def run(arg: Any) -> Any:
        return _asyncio.run_coroutine_threadsafe(handler(arg), loop).result()

    return run


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

    __slots__ = ("_args", "_client", "_sub")

    def __init__(self, client: Client, kind: str, names: tuple[Any, ...], *options: Any) -> None:
        self._client = client
        self._args = (kind, names, *options)
        self._sub: Subscription | None = None

    async def _make(self) -> Subscription:
        return Subscription(self._client, await self._client._a.subscribe(*self._args))

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._make().__await__()

    async def __aenter__(self) -> Subscription:
        self._sub = await self._make()
        return self._sub

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            self._sub.close()


class Client:
    """A redipc client for asyncio, with the options of :class:`redipc.Client`::

        async with redipc.asyncio.Client("redis://127.0.0.1:6379/0") as c:
            await c.set("k", "v")
            print(await c.get("k"))

    Connecting happens in the constructor (a blocking connect, bounded by
    ``connect_timeout``), so that a wrong URL fails where the client is made.
    """

    __slots__ = ("_a", "_c", "_closed", "_loop", "_reading")

    def __init__(self, url: str, **options: Any) -> None:
        try:
            loop = _asyncio.get_running_loop()
        except RuntimeError:
            raise _native.InvalidArgument(
                "redipc.asyncio.Client must be made inside a running event loop "
                "(in async code): it belongs to that loop"
            ) from None
        self._c = _native.Client(url, **options)
        self._a = _native.AsyncClient(self._c, loop)
        self._loop = loop
        self._closed: _asyncio.Future[None] | None = None
        self._reading = True
        loop.add_reader(self._a.fd, self._on_readable)

    def _on_readable(self) -> None:
        # Complete the futures of finished calls; once closed and all done, stop reading.
        if self._a._drain() and self._reading:
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
        self._on_readable()
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

    # -- queues, RPC, cache --------------------------------------------------------------
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

    async def hash_set(self, hash: Any, field: Any, value: Any) -> None:
        """``HSET`` and publish the field name on the hash's channel, atomically (what
        :meth:`redipc.Client.hash_watch` watchers follow)."""
        await self._a.hash_set(hash, field, value)

    async def hash_set_if_changed(self, hash: Any, field: Any, value: Any) -> bool:
        """Like :meth:`hash_set`, only when the value differs; whether it changed."""
        changed: bool = await self._a.hash_set_if_changed(hash, field, value)
        return changed

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

    # -- pub/sub ----------------------------------------------------------------------
    def subscribe(
        self, *channels: Any, capacity: int | None = None, overflow: str | None = None
    ) -> _Subscribing:
        """``SUBSCRIBE channel...``: ``await`` it for the :class:`Subscription` (once the
        server confirmed it), or use it with ``async with`` (closed on exit)."""
        return _Subscribing(self, "channel", channels, capacity, overflow)

    def psubscribe(
        self, *patterns: Any, capacity: int | None = None, overflow: str | None = None
    ) -> _Subscribing:
        """``PSUBSCRIBE pattern...``: messages carry the matching pattern."""
        return _Subscribing(self, "pattern", patterns, capacity, overflow)

    def ssubscribe(
        self, *channels: Any, capacity: int | None = None, overflow: str | None = None
    ) -> _Subscribing:
        """``SSUBSCRIBE channel...``: shard channels."""
        return _Subscribing(self, "shard", channels, capacity, overflow)

    # -- batches -----------------------------------------------------------------------
    def pipeline(self) -> Batch:
        """A pipeline: commands in one write, answered in order (not atomic)."""
        return Batch(self, self._c.pipeline())

    def tx(self) -> Batch:
        """A ``MULTI``/``EXEC`` transaction."""
        return Batch(self, self._c.tx())
