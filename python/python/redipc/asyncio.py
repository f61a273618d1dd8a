"""redipc for asyncio: ``redipc.asyncio.Client``, awaitable twin of ``redipc.Client``.

Calls run on redipc's Rust runtime; their results come back to the event loop through one
descriptor it watches (``loop.add_reader``), so no thread is used per awaited call and
nothing polls. Many concurrent awaits share the client's one auto-pipelined connection.

A client belongs to the event loop it was made on (make it inside ``async`` code); a call
from another loop raises ``InvalidArgument``. Cancelling a task that awaits a call cancels
the call (a cancelled command may or may not have run, as after a connection error).
Closing the client fails every call still waiting with ``ClosedError``. The exceptions are
the sync client's.

This is the first part of the asyncio client: commands, typed helpers, ``publish`` and
batches (pipelines and ``MULTI``/``EXEC``). Queues, RPC, streams, subscriptions and the
other patterns come next (issue 15); meanwhile use the sync client from a thread for them.
"""

from __future__ import annotations

import asyncio as _asyncio
from typing import Any

from . import _native

__all__ = ["Batch", "Client"]


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

    # -- batches -----------------------------------------------------------------------
    def pipeline(self) -> Batch:
        """A pipeline: commands in one write, answered in order (not atomic)."""
        return Batch(self, self._c.pipeline())

    def tx(self) -> Batch:
        """A ``MULTI``/``EXEC`` transaction."""
        return Batch(self, self._c.tx())
