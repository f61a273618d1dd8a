"""Type stubs of ``redipc._native``, the Rust extension behind the ``redipc`` package."""

import builtins
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, final, overload

from typing_extensions import Self, TypeAlias

__version__: str

_Arg: TypeAlias = Union[bytes, bytearray, memoryview, str, int, float]
"""A command argument. ``str`` is sent as UTF-8; ``int`` and ``float`` as their decimal
text (``repr``), like redis-py. ``bool`` and anything else raise ``TypeError``."""

_Seconds: TypeAlias = Union[float, int, datetime.timedelta]
"""A duration: a number of seconds or a ``timedelta``; must be finite and not negative."""

_Overflow: TypeAlias = Literal["block", "drop_oldest", "drop_newest"]
"""What a full subscription queue does with another message: ``"block"`` makes the
client's pub/sub reader wait for room (nothing is lost, but every subscription of the
client waits meanwhile), ``"drop_oldest"`` drops the oldest queued message, and
``"drop_newest"`` drops the arriving one. Drops are counted in ``stats().dropped``;
connection events are never dropped."""

_Callback: TypeAlias = Callable[["Message"], object]
"""A subscription callback: called with each ``Message``, one at a time, in order."""

_ErrorHook: TypeAlias = Callable[[BaseException], object]
"""Called with the exception a callback raised (instead of ``sys.unraisablehook``)."""

_F = TypeVar("_F", bound=_Callback)

_Reply: TypeAlias = Any
"""A reply of :meth:`Client.command`, converted from its RESP2/RESP3 type:

=====================  =====================================================
server reply           Python
=====================  =====================================================
nil                    ``None``
integer                ``int``
bulk string            ``bytes``
status (``OK``)        ``str`` ("OK", "PONG", "QUEUED", "string" for TYPE ...)
error inside an array  a ``ResponseError`` instance (returned, not raised)
array                  ``list``
map (RESP3)            ``dict`` in the server's order; a ``list`` of
                       ``(key, value)`` tuples if a key is unhashable
set (RESP3)            ``set``; a ``list`` if an element is unhashable
double (RESP3)         ``float``
boolean (RESP3)        ``bool``
big number (RESP3)     ``int``
verbatim (RESP3)       ``str``: the text (the format, "txt"/"mkd", is dropped)
push (RESP3)           ``list``: ``[kind: str, *data]``
=====================  =====================================================

A top-level error reply is raised as ``ResponseError``. With ``resp3=False`` the server
sends RESP2, so maps come as flat lists and doubles as ``bytes``; the typed helpers
(``hgetall`` ...) give the same result either way.
"""

class RedipcError(Exception):
    """Base class of every error raised by redipc."""

class ConnectionError(RedipcError, builtins.ConnectionError):
    """The server could not be reached, or the connection broke (it is re-established in
    the background; a later call may succeed). Also a ``builtins.ConnectionError``."""

class TimeoutError(RedipcError, builtins.TimeoutError):
    """No reply came within the response timeout. Also a ``builtins.TimeoutError``."""

class ResponseError(RedipcError):
    """The server answered with an error reply. ``str(e)`` is ``"COMMAND key: CODE message"``, e.g. ``"GET k: WRONGTYPE Operation against ..."``."""

    code: str | None
    """The first word of the server's error: ``"WRONGTYPE"``, ``"ERR"``, ``"NOSCRIPT"`` ..."""
    message: str
    """The rest of the error text, with what was being done in front (``"GET k: ..."``)
    for a raised error; the server's text alone for an error inside an array."""

class ProtocolError(RedipcError):
    """The server's reply could not be understood, or did not have the expected shape."""

class InvalidArgument(RedipcError, builtins.ValueError):
    """An unusable argument: an invalid URL or option, an empty command, a value over the
    size limit (``max_value_size`` or the server's ``proto-max-bulk-len``). Also a
    ``builtins.ValueError``. (A value of the wrong Python type raises ``TypeError``.)"""

class ClosedError(RedipcError):
    """The client was closed."""

class UnsupportedError(RedipcError):
    """A feature that is not built into redipc yet, for example TLS (``rediss://``)."""

class WatchError(RedipcError):
    """A WATCHed key changed and the optimistic transaction gave up after its retries."""

@final
class Client:
    """A connection to one Redis server.

    ``url`` is ``redis://[user:password@]host[:port][/db]`` or ``unix:///path/to.sock[?db=N]``.
    The constructor connects once (``ConnectionError`` within ``connect_timeout`` if the
    server cannot be reached); afterwards a broken connection is re-established in the
    background, and a call made meanwhile waits for it up to ``response_timeout``.

    One client may be shared by any number of threads: their calls share one
    auto-pipelined connection, and the GIL is released while a call waits. A blocking
    command (``BLPOP`` ...) holds that connection until it returns, delaying the calls of
    the other threads: use a separate client for it.

    Keyword options (``None``: the default of the core):

    - ``connect_timeout``, ``response_timeout``: seconds or timedelta (default 5 s each);
      ``response_timeout`` bounds every call, including waiting for a reconnect.
    - ``client_name``: set with ``CLIENT SETNAME`` on every connection.
    - ``database``, ``username``, ``password``: override the URL's.
    - ``key_prefix``: prefix of the keys redipc itself creates (default ``"ipc:"``).
    - ``io_threads``: threads of the process-wide I/O runtime (default 1); only the first
      client of a process decides it, a different value later raises ``InvalidArgument``.
    - ``resp3``: speak RESP3 (default) or RESP2.
    - ``max_value_size``: largest argument in bytes (the smaller of this and the server's
      ``proto-max-bulk-len`` applies); a larger one raises ``InvalidArgument`` before
      anything is sent.
    - ``poll_mode``: subscription callbacks run only inside :meth:`poll`, on the thread
      that calls it, never in the background (see :meth:`poll` and :meth:`fileno`).
    - ``health_check_interval``: how often the idle pub/sub connection is checked with a
      PING (default 3 s, at least 10 ms); a connection that does not answer (a half-open
      socket, a stopped server) is declared dead within about 1.5 times this, and the
      subscriptions see ``"disconnected"``.

    Pub/sub: all subscriptions of a client share one pub/sub connection (separate from the
    command connection). Redis is subscribed to a name once however many subscriptions
    share it, and unsubscribed when the last one leaves. After the connection breaks it is
    re-established with capped exponential backoff, and every subscription is restored
    without user action; each subscription is told with ``"disconnected"`` and
    ``"reactivated"`` messages (messages published in between are lost: at-most-once).

    Used as a context manager, the client is closed on exit.
    """

    def __new__(
        cls,
        url: str,
        *,
        connect_timeout: _Seconds | None = None,
        response_timeout: _Seconds | None = None,
        client_name: str | None = None,
        database: int | None = None,
        username: str | None = None,
        password: str | None = None,
        key_prefix: str | None = None,
        io_threads: int | None = None,
        resp3: bool = True,
        max_value_size: int | None = None,
        poll_mode: bool = False,
        health_check_interval: _Seconds | None = None,
    ) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...
    def close(self) -> None:
        """Close the client: later calls raise ``ClosedError``. Closing again does nothing."""
    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
    @property
    def poll_mode(self) -> bool:
        """Whether the client was made with ``poll_mode=True``."""
    def command(self, *args: _Arg) -> _Reply:
        """Send any command, ``command("SET", "k", "v")``, and return its reply (see
        ``_Reply`` for the types). An error reply raises ``ResponseError``."""
    def pipeline_raw(self, commands: Iterable[Sequence[_Arg]]) -> list[_Reply]:
        """Send several commands in one write (not atomic) and return one reply per
        command, in order; a command's error reply is a ``ResponseError`` in its slot."""
    def get(self, key: _Arg) -> bytes | None:
        """``GET key``: the value, or ``None`` if the key does not exist."""
    def set(
        self,
        key: _Arg,
        value: _Arg,
        ttl: _Seconds | None = None,
        *,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        """``SET key value [PX ttl] [NX|XX]``: ``True`` if the value was set, ``False`` if
        ``nx``/``xx`` kept it from being set. ``ttl`` is rounded down to milliseconds and
        must be at least 1 ms."""
    def delete(self, *keys: _Arg) -> int:
        """``DEL key...``: how many keys were removed."""
    def exists(self, *keys: _Arg) -> int:
        """``EXISTS key...``: how many of the keys exist (a key given twice counts twice)."""
    def expire(self, key: _Arg, seconds: _Seconds) -> bool:
        """``PEXPIRE key ms``: ``True`` if the key exists and the timeout was set."""
    def incr(self, key: _Arg, amount: int = 1) -> int:
        """``INCRBY key amount``: the new value."""
    def decr(self, key: _Arg, amount: int = 1) -> int:
        """``DECRBY key amount``: the new value."""
    def hget(self, key: _Arg, field: _Arg) -> bytes | None:
        """``HGET key field``: the value, or ``None``."""
    def hset(
        self,
        key: _Arg,
        field: _Arg | None = None,
        value: _Arg | None = None,
        *,
        mapping: Mapping[_Arg, _Arg] | None = None,
    ) -> int:
        """``HSET key field value [field value ...]``: how many fields were added (not
        updated). Give ``field`` and ``value``, or ``mapping=``, or both:
        ``hset("h", "f", "v")``, ``hset("h", mapping={"f": "v", "g": 1})``."""
    def hgetall(self, key: _Arg) -> dict[bytes, bytes]:
        """``HGETALL key``: every field and value (empty if the key does not exist)."""
    def hdel(self, key: _Arg, *fields: _Arg) -> int:
        """``HDEL key field...``: how many fields were removed."""
    def lpush(self, key: _Arg, *values: _Arg) -> int:
        """``LPUSH key value...``: the length of the list after the push."""
    def rpush(self, key: _Arg, *values: _Arg) -> int:
        """``RPUSH key value...``: the length of the list after the push."""
    def lpop(self, key: _Arg) -> bytes | None:
        """``LPOP key``: the first element, or ``None`` if the list is empty."""
    def rpop(self, key: _Arg) -> bytes | None:
        """``RPOP key``: the last element, or ``None`` if the list is empty."""
    def llen(self, key: _Arg) -> int:
        """``LLEN key``."""
    def publish(self, channel: _Arg, message: _Arg) -> int:
        """``PUBLISH channel message``: how many subscribers received it."""
    def ping(self) -> bool:
        """``PING``: ``True`` (an error is raised if the server does not answer)."""
    def spublish(self, channel: _Arg, message: _Arg) -> int:
        """``SPUBLISH channel message``: how many shard-channel subscribers received it."""
    def subscribe(
        self,
        *channels: _Arg,
        callback: _Callback | None = None,
        capacity: int = 10000,
        overflow: _Overflow = "block",
        on_error: _ErrorHook | None = None,
    ) -> Subscription:
        """``SUBSCRIBE channel...``: a new subscription, returned once the server confirmed
        every channel (``TimeoutError`` after ``response_timeout``; while the pub/sub
        connection is down it returns at once and the channels activate when it is back).

        Without ``callback``, take its messages with iteration or :meth:`Subscription.get`.
        With ``callback``, each message is passed to ``callback(message)`` on a dispatcher
        thread of the client (in poll mode: inside :meth:`poll`), one at a time and in
        order; the GIL is taken once per batch of messages. An exception raised by the
        callback goes to ``on_error(exception)`` if given, else to
        ``sys.unraisablehook``; later messages are still delivered.

        ``capacity`` (>= 1) bounds the subscription's queue; ``overflow`` says what happens
        when it is full (see ``_Overflow``). Channel names are ``bytes`` or ``str``.
        Several subscriptions may share channels; each gets every message.
        """
    def psubscribe(
        self,
        *patterns: _Arg,
        callback: _Callback | None = None,
        capacity: int = 10000,
        overflow: _Overflow = "block",
        on_error: _ErrorHook | None = None,
    ) -> Subscription:
        """``PSUBSCRIBE pattern...``: like :meth:`subscribe` for glob patterns
        (``"news.*"``); a message's ``pattern`` is the pattern that matched and its
        ``channel`` the channel it was published on."""
    def ssubscribe(
        self,
        *channels: _Arg,
        callback: _Callback | None = None,
        capacity: int = 10000,
        overflow: _Overflow = "block",
        on_error: _ErrorHook | None = None,
    ) -> Subscription:
        """``SSUBSCRIBE channel...``: like :meth:`subscribe` for shard channels (published
        with :meth:`spublish`; Redis 7 or later)."""
    def subscribe_group(
        self,
        name: str = "",
        *,
        capacity: int = 10000,
        overflow: _Overflow = "block",
        on_error: _ErrorHook | None = None,
    ) -> SubscriptionGroup:
        """A subscription group: one channel subscription whose channels each have their
        own handler, added with :meth:`SubscriptionGroup.handle`. ``name`` is a label
        (shown in ``repr``); the options are those of :meth:`subscribe`."""
    def poll(self, timeout: _Seconds | None = 0) -> int:
        """Poll mode: run the callbacks of waiting messages on this thread and return how
        many messages were handled. With nothing waiting, wait up to ``timeout`` seconds
        (default 0: do not wait; ``None``: until something arrives) for work; the GIL is
        released while waiting and signals are checked every 50 ms, so Ctrl-C works. One
        call handles at most one batch (256 messages) per subscription; call it again
        while :meth:`fileno` is readable. A ``KeyboardInterrupt`` or ``SystemExit`` raised
        by a callback is raised again by ``poll()`` (other exceptions go to the
        subscription's ``on_error``/``sys.unraisablehook``). ``InvalidArgument`` if the
        client was not made with ``poll_mode=True``; ``ClosedError`` once the client is
        closed (also for a ``poll()`` waiting in another thread)."""
    def fileno(self) -> int:
        """Poll mode: a file descriptor that is readable whenever :meth:`poll` has work, so
        the client can be passed to ``select``/``selectors``/``poll`` directly. Owned by
        the client: do not close it or read from it. ``InvalidArgument`` if the client was
        not made with ``poll_mode=True``."""

@final
class Message:
    """One event of a subscription, in order with its messages.

    ``kind`` is one of:

    - ``"message"``: ``payload`` was published on ``channel`` (``pattern``: the pattern
      that matched, for a pattern subscription);
    - ``"activated"``: the server confirmed the subscription to ``channel`` (a channel or
      pattern name; for a pattern, ``pattern`` is the same name): messages published from
      now on arrive;
    - ``"disconnected"``: the pub/sub connection broke (``error`` says why); messages
      published until ``"reactivated"`` are lost. ``channel`` is ``b""``;
    - ``"reactivated"``: after a reconnect, the server confirmed ``channel`` again.

    Messages compare equal when all their fields are equal, and are hashable.
    """

    @property
    def kind(self) -> Literal["message", "activated", "disconnected", "reactivated"]:
        """What happened."""
    @property
    def sub_kind(self) -> Literal["channel", "pattern", "shard"]:
        """The kind of the subscription: ``SUBSCRIBE``, ``PSUBSCRIBE`` or ``SSUBSCRIBE``."""
    @property
    def channel(self) -> bytes:
        """The channel the message was published on; for ``"activated"`` and
        ``"reactivated"`` the channel or pattern name; ``b""`` for ``"disconnected"``."""
    @property
    def pattern(self) -> bytes | None:
        """The pattern (pattern subscriptions), else ``None``."""
    @property
    def payload(self) -> bytes:
        """The payload; ``b""`` for the connection events."""
    @property
    def error(self) -> str | None:
        """Why the connection broke (``"disconnected"``), else ``None``."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SubscriptionStats:
    """Counters of a subscription's queue."""

    @property
    def delivered(self) -> int:
        """Events handed to the callback, or taken with ``get()``/iteration."""
    @property
    def dropped(self) -> int:
        """Messages dropped by the overflow policy."""
    @property
    def queued(self) -> int:
        """Events waiting in the queue now."""
    @property
    def capacity(self) -> int:
        """The queue's capacity."""
    def as_dict(self) -> dict[str, int]:
        """The four counters as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class Subscription:
    """A subscription to channels, patterns (``psubscribe``) or shard channels
    (``ssubscribe``); made by :meth:`Client.subscribe` and its siblings.

    Without a callback it is an iterator of :class:`Message`: ``for msg in sub:`` waits
    for each message with the GIL released (Ctrl-C still works) and ends when the
    subscription or its client is closed; :meth:`get` waits with a timeout. The first
    events are the ``"activated"`` ones of its names.

    Close it with :meth:`close` or a ``with`` block: it unsubscribes, and after ``close()``
    returns its callback is not called again (called from inside the callback: not after
    that call returns). A subscription whose last reference is dropped without
    ``close()`` is closed in the background. A subscription keeps its client's connection
    alive; closing the client closes its subscriptions. A callback that refers to its own
    subscription (directly or through an object holding both) keeps it alive until it is
    closed, like a running thread: close it explicitly.
    """

    @property
    def kind(self) -> Literal["channel", "pattern", "shard"]:
        """The kind: ``SUBSCRIBE``, ``PSUBSCRIBE`` or ``SSUBSCRIBE``."""
    @property
    def has_callback(self) -> bool:
        """Whether a callback receives the messages."""
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called. (After the client is closed, :meth:`get`
        raises ``ClosedError`` and iteration ends, though this stays ``False``.)"""
    @property
    def names(self) -> list[bytes]:
        """The channels or patterns subscribed to now, sorted (empty once closed)."""
    def add(self, *names: _Arg) -> None:
        """Subscribe to more names; returns once the server confirmed them (at once while
        the connection is down: they activate when it is back). Each new name gets an
        ``"activated"`` event; names already subscribed are ignored."""
    def remove(self, *names: _Arg) -> None:
        """Stop receiving these names (Redis is unsubscribed from a name when no other
        subscription of the client has it). Names not subscribed are ignored."""
    def clear(self) -> None:
        """Remove every name; the subscription stays open for :meth:`add`."""
    def stats(self) -> SubscriptionStats:
        """The queue's counters (after :meth:`close`: as they were when it closed)."""
    def get(self, timeout: _Seconds | None = None) -> Message | None:
        """The next event, waiting up to ``timeout`` seconds (``None``: without limit, in
        50 ms slices with signals checked between them); ``None`` when the time passed.
        ``ClosedError`` once the subscription or its client is closed; ``InvalidArgument``
        for a subscription with a callback."""
    def __iter__(self) -> Self: ...
    def __next__(self) -> Message: ...
    def close(self) -> None:
        """Unsubscribe and close; queued events are discarded. Waits (with the GIL
        released) for a callback running on another thread to return. Closing again does
        nothing."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class SubscriptionGroup:
    """A channel subscription with a handler per channel (:meth:`Client.subscribe_group`).

    ``"message"``, ``"activated"`` and ``"reactivated"`` events go to the handler of their
    channel; ``"disconnected"`` goes to every handler. Handlers run like subscription
    callbacks (on the dispatcher, or inside :meth:`Client.poll`), one event at a time::

        group = client.subscribe_group("vehicle")

        @group.handle("battery")
        def on_battery(msg: redipc.Message) -> None:
            print(msg.payload)

        group.handle("speed", lambda msg: print(msg.payload))
    """

    @property
    def name(self) -> str:
        """The name given to :meth:`Client.subscribe_group`."""
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
    @property
    def names(self) -> list[bytes]:
        """The channels handled now, sorted."""
    @overload
    def handle(self, channel: _Arg, callback: None = None) -> Callable[[_F], _F]:
        """Handle ``channel`` with ``callback`` (replacing an earlier handler of it) and
        subscribe to it; returns once the server confirmed it, and returns ``callback``.
        Without ``callback``, returns a decorator that does the same."""
    @overload
    def handle(self, channel: _Arg, callback: _F) -> _F: ...
    def unhandle(self, channel: _Arg) -> None:
        """Stop handling ``channel`` and unsubscribe from it."""
    def stats(self) -> SubscriptionStats:
        """The queue's counters."""
    def close(self) -> None:
        """Unsubscribe every channel and close; after it returns no handler runs (from
        inside a handler: none after it returns)."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...
