"""Type stubs of ``redipc._native``, the Rust extension behind the ``redipc`` package."""

import asyncio
import builtins
import datetime
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, final, overload

from typing_extensions import Self, TypeAlias

__version__: str

_Arg: TypeAlias = Union[bytes, bytearray, memoryview, str, int, float]
"""A command argument. ``str`` is sent as UTF-8; ``int`` and ``float`` as their decimal
text (``repr``), like redis-py. ``bool`` and anything else raise ``TypeError``."""

_Seconds: TypeAlias = Union[float, int, datetime.timedelta]
"""A duration: a number of seconds or a ``timedelta``; must be finite and not negative."""

_When: TypeAlias = Union[float, int, datetime.datetime]
"""A point in time: a Unix timestamp in seconds (``time.time()``) or a ``datetime`` (its
``timestamp()``: a naive ``datetime`` is local time, as Python reads it)."""

_Pem: TypeAlias = Union[str, os.PathLike[str], bytes, bytearray]
"""PEM for TLS: the path of a PEM file (``str`` or ``os.PathLike``), or the PEM itself
(``bytes`` or ``bytearray``)."""

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

_FieldCallback: TypeAlias = Callable[[bytes, Union[bytes, None]], object]
"""A hash watcher callback: ``callback(field, value)``, ``value`` ``None`` for a deleted
field."""

_Protocol: TypeAlias = Literal["redipc", "redis-ipc"]
"""The wire of an RPC service (:meth:`Client.call`, :meth:`Client.serve`,
:meth:`Client.serve_methods`):

- ``"redipc"`` (the default): redipc's own binary envelopes on
  ``{key_prefix}{rpc:SERVICE}:pending``; servers announce themselves, so a call can tell
  "no server" (``NoServerError``, ``fail_fast``) from "slow server". Payloads are any bytes.
- ``"redis-ipc"``: the JSON wire of the Go library redis-ipc (librescoot), so a Python
  caller or server joins an existing fleet. The service name is the Redis list itself; the
  caller ``LPUSH``es ``{"id": "<32 hex>", "method": "<m>", "reply_channel":
  "<list>:reply:<id>", "deadline": <unix ms>, "payload": <JSON>}`` (``method`` left out
  when not given) and the server ``PUBLISH``es ``{"ok": true, "payload": <JSON>}`` or
  ``{"ok": false, "error": "<text>"}`` on the reply channel. Payloads are JSON text
  (``bytes`` or ``str``; an ``int``/``float`` is sent as its decimal text, which is JSON
  too), returned as ``bytes``: use ``json.dumps``/``json.loads`` for Python objects. A
  payload that is not JSON raises ``InvalidArgument`` before anything is sent; there is no
  server registry (``fail_fast`` raises ``InvalidArgument``; a call nobody answers raises
  ``TimeoutError``).
"""

_Timestamp: TypeAlias = Union[bool, Literal["rfc3339", "unix_ms"]]
"""Whether and how a hash write also sets ``<field>:timestamp`` for each field it writes:
``True`` or ``"rfc3339"``: RFC 3339 in UTC with milliseconds
(``"2026-12-04T21:40:00.123Z"``), the format redis-ipc's convention names;
``"unix_ms"``: Unix time in milliseconds (``"1796420400123"``), as librescoot's Go
``SetWithTimestamp`` writes it; ``False`` (like ``None``): no timestamp field."""

_T = TypeVar("_T")

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
    """A feature that is not built into redipc or not available here, or one the server
    does not allow: :meth:`Client.watch_keys` with ``configure_server=True`` on a server
    whose ``CONFIG`` command is renamed away (the message says so)."""

class WatchError(RedipcError):
    """A WATCHed key changed and the optimistic transaction gave up after its retries."""

class RemoteError(RedipcError):
    """The RPC handler reported an error. ``str(e)`` is the call and the handler's text,
    e.g. ``"call users.get: KeyError: 'ada'"``; a Python handler's error text is
    ``"TypeName: message"``, or just the message when it raised ``RemoteError`` itself."""

class NoServerError(RedipcError):
    """No server of the called RPC service is running (see :meth:`Client.call`)."""

class HandlerError(RedipcError):
    """A handler failed: it raised, or returned something unusable. What the core records
    and reports for a failed request, entry or call (a handler's own exception is kept
    with it: reports carry it, see :class:`Report`)."""

class AbortedError(RedipcError):
    """The function of an optimistic transaction gave it up: nothing queued ran. (An
    exception raised by the function is raised again as itself, see
    :meth:`Client.transaction`.)"""

@final
class Client:
    """A connection to one Redis server.

    ``url`` is ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (the same over
    TLS, see the ``tls_*`` options), ``unix:///path/to.sock[?db=N]``, or
    ``redis-sentinel://[user:password@]host:26379[,host2:26379...][/db]#mastername``
    (Redis Sentinel; ``rediss-sentinel://`` over TLS, to the sentinels and the master
    alike). With a sentinel URL the client asks the sentinels in turn where the master of
    that name is (``SENTINEL get-master-addr-by-name``), checks with ``ROLE`` that the
    server it reaches is a master, and asks again on every reconnect; it follows
    ``+switch-master`` (failovers of other master names are ignored) and asks the
    sentinels every ``health_check_interval`` as a backstop; a command refused with
    ``READONLY`` by a demoted master is sent again to the new one. The URL's credentials
    (and ``username``/``password``) are the master's; the sentinels' own are
    ``sentinel_username``/``sentinel_password``. No sentinel giving the address is a
    ``ConnectionError`` saying what each sentinel answered.
    The constructor connects once (``ConnectionError`` within ``connect_timeout`` if the
    server cannot be reached); afterwards a broken connection is re-established in the
    background, and a call made meanwhile waits for it up to ``response_timeout``.

    One client may be shared by any number of threads: their calls share one
    auto-pipelined connection, and the GIL is released while a call waits. A blocking
    command (``BLPOP`` ...) holds that connection until it returns, delaying the calls of
    the other threads: use a separate client for it.

    After ``os.fork()`` (``multiprocessing``'s fork start method, gunicorn's preload, a
    daemon's double fork) the child cannot use a client made before the fork: its
    connections are the parent's. Its calls there raise ``ClosedError`` at once, never
    touching the parent's connections (``close()`` there does nothing); make a new client
    in the child. The parent's clients are not affected.

    Keyword options (``None``: the default of the core):

    - ``connect_timeout``, ``response_timeout``: seconds or timedelta (default 5 s each);
      ``response_timeout`` bounds every call, including waiting for a reconnect.
    - ``client_name``: set with ``CLIENT SETNAME`` on every connection.
    - ``database``, ``username``, ``password``: override the URL's.
    - ``sentinel_username``, ``sentinel_password``: the ACL user and password of the
      sentinels of a ``redis-sentinel://`` URL (default: none), separate from the URL's
      credentials, which are the master's. Neither password is ever shown (``repr``,
      exception messages, logs).
    - ``key_prefix``: prefix of the keys redipc itself creates (default ``"ipc:"``).
    - ``io_threads``: threads of the process-wide I/O runtime (default 1); only the first
      client of a process decides it, a different value later raises ``InvalidArgument``.
    - ``resp3``: speak RESP3 (default) or RESP2.
    - ``max_value_size``: largest argument in bytes (the smaller of this and the server's
      ``proto-max-bulk-len`` applies); a larger one raises ``InvalidArgument`` before
      anything is sent.
    - ``max_reply_size``: largest reply in bytes (default 1 GiB, at least 64 KiB: a smaller
      one raises ``InvalidArgument``). A reply, or a pub/sub message, that grows past it
      before it is complete is a protocol error (``ProtocolError``) that drops that
      connection, which is re-established, instead of memory growing with what the server
      announces.
    - ``poll_mode``: subscription callbacks run only inside :meth:`poll`, on the thread
      that calls it, never in the background (see :meth:`poll` and :meth:`fileno`).
    - ``health_check_interval``: how long the pub/sub connection may be quiet before it
      is checked with a PING (at least 10 ms; unset: 3 s over TCP, off over a unix socket,
      which cannot be half-open); a connection that does not answer (a half-open socket, a
      stopped server) is declared dead within 1.5 times this, and the subscriptions see
      ``"disconnected"``. An idle subscriber wakes twice per interval; ``0`` turns the
      check off (no wake-ups when idle), only over a unix socket (``InvalidArgument`` with
      a TCP URL). With a sentinel URL it is also how often the
      sentinels are asked where the master is (besides following ``+switch-master``).
    - ``stream_maxlen``: the default length bound of :meth:`stream_publish` (``MAXLEN ~``,
      default 100,000; 0: unbounded).
    - ``on_report``: called with each :class:`Report` of the client's workers, RPC
      servers, stream consumers, watchers and subscriptions (on their threads) instead of
      logging it.
    - ``cluster``: ``None`` (the default) asks the first node that answers whether it is
      a Redis Cluster node; ``True`` requires one (``UnsupportedError`` otherwise),
      ``False`` talks to the one server named. On a cluster every command is routed by its
      keys to the node owning their slot (``MOVED`` and ``ASK`` are followed); ``MGET``,
      ``DEL``, ``EXISTS`` over several slots are split and merged, other commands and
      transactions whose keys are in several slots raise ``InvalidArgument`` before
      anything is sent (give the keys one ``{hash tag}``: :func:`keyslot`). The URL may
      list several nodes, ``redis://10.0.0.1:7000,10.0.0.2:7000/``: the first that
      answers is used.
    - ``read_from_replicas``: on a cluster, single read-only commands (``GET``,
      ``HGETALL``, ``XRANGE`` ...) go to a replica of their slot's primary (default
      ``False``). A replica may lag behind: such a read may not see a write just made.
    - ``direct_connections``: at most this many direct connections per server (default
      16, at most 256; 0: none). A single command of a calling thread takes one nobody else
      holds and is written and read on that thread (one ``write``, one ``read``); they are
      opened only as calling threads overlap (a lone thread has one). Everything else, and
      threads beyond this many at once, shares the client's auto-pipelined connection.
      Lower it where the server's connections are counted (0: one connection per server
      for commands, whatever the threads). asyncio calls do not use them.
    - ``tls_ca``, ``tls_cert``, ``tls_key``, ``tls_server_name``, ``tls_insecure``: TLS of
      a ``rediss://`` URL; every connection of the client (commands, pub/sub, workers,
      reconnects) uses it. Giving any of them with another URL raises ``InvalidArgument``
      (the connection would not be encrypted).

      - ``tls_ca``: the CA certificates that may sign the server's certificate (default:
        the system's root certificates).
      - ``tls_cert``, ``tls_key``: the client's certificate (chain) and its private key,
        for a server that asks for one (mutual TLS); one without the other raises
        ``InvalidArgument``.
      - ``tls_ca``, ``tls_cert`` and ``tls_key`` are each a path (``str`` or
        ``os.PathLike``) of a PEM file, read when the client is made, or the PEM itself as
        ``bytes``/``bytearray``; another type raises ``TypeError``. A file that cannot be
        read or holds no usable PEM raises ``InvalidArgument`` (naming the file, never
        showing PEM).
      - ``tls_server_name``: the name the server's certificate must hold, instead of the
        URL's host.
      - ``tls_insecure``: accept any server certificate: **no protection against a man in
        the middle**; for tests only (default ``False``).

      A certificate the client refuses raises ``ConnectionError`` saying why (``"unknown
      issuer"``: not signed by a trusted CA; ``"name mismatch"``: not valid for the name
      checked), as does a server that requires a client certificate when none is given.

    Reports: what those handles report besides their handlers' results (a handler failed,
    requests were dead-lettered or recovered, a loop lost its connection and got it back, a
    watcher's read failed) goes to the ``logging`` logger ``"redipc"``, at a level chosen
    from the report's kind: ``"handler_failed"`` WARNING (DEBUG when the exception went to
    the handle's ``on_error`` already), ``"dead_lettered"`` ERROR, ``"connection_lost"``
    and ``"read_failed"`` WARNING, ``"connection_restored"`` and ``"recovered"`` INFO. The
    report's fields are on the ``LogRecord``: ``redipc_kind``, ``redipc_source``,
    ``redipc_name``, ``redipc_group``, ``redipc_item``, ``redipc_attempt``,
    ``redipc_max_attempts``, ``redipc_count``, ``redipc_error``, ``redipc_during`` and
    ``redipc_report`` (the :class:`Report`); a handler's exception is its ``exc_info``.
    Without any logging configured, Python prints WARNING and above to stderr.

    Logging: besides the reports, the client's connections log on children of
    ``"redipc"``: ``"redipc.connection"`` (the command connection) and ``"redipc.pubsub"``
    (the pub/sub connection): WARNING when a connection is lost (with the reason), INFO
    when it is restored, DEBUG for each connect and reconnect attempt, ERROR when
    reconnecting gives up. See the package README ("Observability") for when levels are
    read and what happens to records that come faster than ``logging`` takes them. No
    record and no exception message carries a password.

    Statistics: :meth:`stats`.

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
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        key_prefix: str | None = None,
        io_threads: int | None = None,
        resp3: bool | None = None,
        max_value_size: int | None = None,
        max_reply_size: int | None = None,
        poll_mode: bool | None = None,
        health_check_interval: _Seconds | None = None,
        stream_maxlen: int | None = None,
        on_report: Callable[[Report], object] | None = None,
        tls_ca: _Pem | None = None,
        tls_cert: _Pem | None = None,
        tls_key: _Pem | None = None,
        tls_server_name: str | None = None,
        tls_insecure: bool = False,
        cluster: bool | None = None,
        read_from_replicas: bool | None = None,
        direct_connections: int | None = None,
    ) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...
    def close(self) -> None:
        """Close the client: later calls raise ``ClosedError``, and calls in flight on other
        threads (a ``BLPOP`` waiting forever included) raise ``ClosedError`` at once. Closing
        again does nothing."""
    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
    @property
    def poll_mode(self) -> bool:
        """Whether the client was made with ``poll_mode=True``."""
    def stats(self) -> ClientStats:
        """The client's counters and latency summary since it was made (a snapshot; each
        counter is read once, and they may move while it is taken)."""
    def node_stats(self) -> list[NodeStats]:
        """Each server's share of the client's traffic: on a cluster every node of the slot
        map (primaries by their first slot, each followed by its replicas), standalone the
        one server."""
    def hash_tag_for_node(self, addr: str) -> str:
        """A short hash tag (without braces) whose keys land on the cluster's primary at
        ``addr`` (``"host:port"``, as :meth:`node_stats` names it) with the slot map the
        client has now: ``f"{{{tag}}}:jobs"`` is served by that node. ``UnsupportedError``
        on a standalone server, ``InvalidArgument`` for an address that is not a primary."""
    def command(self, *args: _Arg) -> _Reply:
        """Send any command, ``command("SET", "k", "v")``, and return its reply (see
        ``_Reply`` for the types). An error reply raises ``ResponseError``. A blocking
        command (``BLPOP``, ``XREAD ... BLOCK``) runs on a connection of its own with a
        limit of its block time plus the response timeout, and Ctrl-C interrupts it; what
        a pop took after its caller stopped waiting is put back."""
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
        capacity: int | None = None,
        overflow: _Overflow | None = None,
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

        ``capacity`` (>= 1, default 10,000) bounds the subscription's queue; ``overflow``
        (default ``"block"``) says what happens when it is full (see ``_Overflow``). Channel names are ``bytes`` or ``str``.
        Several subscriptions may share channels; each gets every message.
        """
    def psubscribe(
        self,
        *patterns: _Arg,
        callback: _Callback | None = None,
        capacity: int | None = None,
        overflow: _Overflow | None = None,
        on_error: _ErrorHook | None = None,
    ) -> Subscription:
        """``PSUBSCRIBE pattern...``: like :meth:`subscribe` for glob patterns
        (``"news.*"``); a message's ``pattern`` is the pattern that matched and its
        ``channel`` the channel it was published on."""
    def ssubscribe(
        self,
        *channels: _Arg,
        callback: _Callback | None = None,
        capacity: int | None = None,
        overflow: _Overflow | None = None,
        on_error: _ErrorHook | None = None,
    ) -> Subscription:
        """``SSUBSCRIBE channel...``: like :meth:`subscribe` for shard channels (published
        with :meth:`spublish`; Redis 7 or later)."""
    def subscribe_group(
        self,
        name: str = "",
        *,
        capacity: int | None = None,
        overflow: _Overflow | None = None,
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

    # --- pipelines and transactions -------------------------------------------------
    def pipeline(self) -> Batch:
        """A new, empty pipeline: a :class:`Batch` sent in one write, not atomic."""
    def tx(self) -> Batch:
        """A new, empty transaction: an atomic :class:`Batch` (``MULTI`` ... ``EXEC``)."""
    def batch(self, atomic: bool) -> Batch:
        """A new, empty :class:`Batch`: a transaction when ``atomic``, else a pipeline."""
    def transaction(
        self,
        func: Callable[[WatchSession], object],
        *watch_keys: _Arg,
        max_retries: int = 100,
    ) -> list[_Reply]:
        """An optimistic transaction (like redis-py's ``transaction``): ``WATCH
        watch_keys`` on a connection of its own, call ``func(session)`` (read with
        ``session.command(...)``, queue writes with ``session.queue(...)``), then ``MULTI``,
        the queued commands, ``EXEC``. Returns one result per queued command, like
        :meth:`Batch.exec`.

        When a watched key changed before ``EXEC`` nothing ran, and all of it runs again
        (``func`` is called again with a new session), up to ``max_retries`` more times;
        then ``WatchError``. An exception raised by ``func`` aborts (nothing queued runs):
        it travels through the core as the transaction's abort and is raised again as
        itself. ``func`` runs on the calling thread with the GIL held;
        the waits on the server release it. Give at least one key (``InvalidArgument``)::

            def transfer(s: redipc.WatchSession) -> None:
                balance = int(s.command("GET", "alice") or 0)
                if balance < 30:
                    raise ValueError("insufficient funds")
                s.queue("DECRBY", "alice", 30)
                s.queue("INCRBY", "bob", 30)

            client.transaction(transfer, "alice", "bob")  # [70, 30]
        """

    # --- request queues -------------------------------------------------------------
    def send_request(
        self,
        queue: _Arg,
        payload: _Arg,
        delay: _Seconds | None = None,
        at: _When | None = None,
        *,
        bare: bool = False,
    ) -> None:
        """Send a request: ``LPUSH`` ``payload`` (any size, also empty) into the queue's
        key ``{key_prefix}{q:QUEUE}:pending``. ``InvalidArgument`` for an empty queue name
        or one containing ``{`` or ``}``.

        A delayed request: with ``delay`` (seconds from now) or ``at`` (a Unix timestamp or
        a ``datetime``; not both: ``InvalidArgument``) it waits in the queue's delayed set
        (``{key_prefix}{q:QUEUE}:delayed``, counted by ``queue_stats().delayed``) and no
        worker takes it before it is due, on the server's clock (``at`` is compared with the
        server's clock: mind the skew between hosts). Whichever worker of the queue runs
        moves it into the queue when due, atomically (never twice, never lost, also when a
        worker dies), and an idle worker is told at once, so it is handled on time; with no
        worker running it waits and goes into the queue when one starts. Then it is handled
        like any request (reliable workers: leases, retries, dead letters). Not with
        ``bare=True`` (``InvalidArgument``).

        With ``bare=True`` the queue name is the Redis list itself: ``LPUSH queue payload``
        (no key prefix, any name but an empty one), what a redis-ipc fleet's consumer
        (``BRPOP queue``) and a worker with ``handle_requests(..., bare=True)`` take."""
    def handle_requests(
        self,
        queues: _Arg | Sequence[_Arg],
        handler: Callable[[Request], object],
        *,
        concurrency: int | None = None,
        reliable: bool | None = None,
        max_attempts: int | None = None,
        lease: _Seconds | None = None,
        block_timeout: _Seconds | None = None,
        prefetch: int | None = None,
        bare: bool | None = None,
        on_error: _ErrorHook | None = None,
    ) -> Worker:
        """Start a :class:`Worker` that pops the requests of ``queues`` (one name, or a list
        of names served together: one blocking pop over all of them, in rotating order for
        fairness) and calls ``handler(request)`` for each.

        ``handler`` runs on one of the worker's own threads (``concurrency`` of them, each
        with its own connection; default 1), taking the GIL for each call. Returning
        (whatever the value) acknowledges the request. Raising an exception is a failure
        with the text ``"TypeName: message"``; the worker goes on with the next request.

        - Plain mode (default, at-most-once): ``BRPOP``, or ``RPOP`` of up to ``prefetch``
          (default 16) requests at once while the queue is busy (a worker that dies loses at most
          these). A failed request is not retried.
        - ``reliable=True`` (at-least-once): each request is moved atomically into the
          worker thread's in-flight list, guarded by a lease of ``lease`` seconds
          (default 30) that a heartbeat renews. A failure re-queues it with
          ``request.attempt`` raised, and after ``max_attempts`` (default 3) failures it
          goes to the queue's dead letters with the failure text. When a worker process
          dies, its lease expires and any live worker of the queue puts its in-flight
          requests back into the queue (they are handled again: duplicates are possible);
          the death counts as an attempt, so a request that crashes every worker taking it
          ends in the dead letters after ``max_attempts`` deaths.

        - ``bare=True``: the queue names are the Redis lists themselves (``BRPOP
          scooter:state scooter:seatbox``), as in redis-ipc fleets and for any producer
          that ``LPUSH``es to a plain key (``redis-cli LPUSH scooter:state lock``); FIFO per
          list. Plain mode only: ``reliable=True`` with it raises ``InvalidArgument``
          (reliable mode needs redipc's own keys next to the queue). Default ``False``:
          redipc's keys (see :meth:`send_request`).

        ``block_timeout`` (default 1 s, at least 10 ms) is how long one blocking pop waits;
        :meth:`Worker.stop` wakes a blocked pop at once (``CLIENT UNBLOCK``; where ACLs
        forbid it, within this time).
        ``on_error(exception)`` is called (on the worker's thread) with each exception the
        handler raised. Every failure, dead letter and worker problem (a lost connection:
        the worker waits and retries) is reported to the ``redipc`` logger (see
        :class:`Client`; a failure at WARNING, or DEBUG when ``on_error`` got it).

        ``TypeError`` if ``handler`` is not callable; ``InvalidArgument`` for an empty
        queue name or a bad option. Like a thread, a worker runs until stopped: use
        :meth:`Worker.stop` or a ``with`` block.
        """
    def queue_stats(self, queue: _Arg) -> QueueCounts:
        """How many requests of ``queue`` are pending, in flight (reliable workers),
        dead letters and delayed (not due yet)."""
    def dead_letters(self, queue: _Arg) -> list[DeadLetter]:
        """The dead letters of ``queue``, oldest first (they stay where they are)."""
    def requeue_dead_letters(self, queue: _Arg) -> int:
        """Put every dead letter of ``queue`` back into the queue (their attempts start
        over); returns how many."""

    # --- RPC ------------------------------------------------------------------------
    def call(
        self,
        service: _Arg,
        payload: _Arg,
        *,
        method: _Arg | None = None,
        timeout: _Seconds | None = None,
        fail_fast: bool | None = None,
        protocol: _Protocol | None = None,
    ) -> bytes:
        """Call ``service`` (its ``method``; none by default) with ``payload`` and return
        the reply, waiting up to ``timeout`` seconds (default 5, must be > 0).

        ``protocol`` (default ``"redipc"``) is the wire, see :data:`_Protocol`. With
        ``"redis-ipc"`` ``service`` is the fleet's list, ``payload`` and the reply are JSON
        text (a reply without a payload is ``b"null"``), an ``{"ok": false}`` reply
        raises ``RemoteError`` with its ``error`` text (``"unknown method: m"`` for an
        unknown method), and a call nobody answers raises ``TimeoutError`` (its request
        is taken back from the list if no server took it). Its replies arrive on one
        pattern subscription per list and client (``<list>:reply:<client's prefix>*``),
        made on its first call there::

            reply = client.call("motion:speed", json.dumps({"kmh": 21}),
                                protocol="redis-ipc")
            speed = json.loads(reply)["speed"]

        Raises ``RemoteError`` with the handler's error text (also for an unknown method of
        a :meth:`serve_methods` server), ``TimeoutError`` when no reply came in time, and
        ``NoServerError`` when no server of the service is running: after the timeout, or
        at once with ``fail_fast=True`` (one round trip more per call). A request nobody
        took before its deadline is dropped by the server unrun.

        The reply arrives on the client's own reply channel, subscribed on its first call
        and shared by all its calls (no key or subscription is left behind per call). The
        GIL is released while waiting; any number of threads may call at once."""
    def serve(
        self,
        service: _Arg,
        handler: Callable[[Call], bytes | bytearray | memoryview | str | None],
        *,
        concurrency: int | None = None,
        protocol: _Protocol | None = None,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RpcServer:
        """Answer calls to ``service`` with ``handler(call)`` on ``concurrency`` threads of
        the server (taking the GIL for each call). What the handler returns is the reply
        (``bytes``-like, ``str`` as UTF-8, ``None`` as ``b""``); an exception it raises is
        sent to the caller as a ``RemoteError`` with the text ``"TypeName: message"`` (a
        ``redipc.RemoteError`` raised by the handler: its message alone), and the server
        goes on. Calls whose deadline passed before a server took them are dropped
        without running the handler. ``TypeError`` if ``handler`` is not callable.

        With ``protocol="redis-ipc"`` (see :data:`_Protocol`) it serves the fleet's list
        ``service`` (a plain consumer of it: no presence, nothing else is written):
        ``call.payload`` is the request's JSON text (``b"null"`` when it has none), the
        handler returns JSON text (``None`` is sent as ``null``), and the caller gets
        ``{"ok": true, "payload": <reply>}``; an exception gives ``{"ok": false, "error":
        "TypeName: message"}``, a reply that is not JSON ``{"ok": false, "error": "the
        handler's reply is not JSON: ..."}``. A request whose ``deadline`` passed is
        dropped without a reply (the fleet's rule).

        While it runs, the server is an instance of ``service`` in the service registry
        (see :meth:`instances`), renewed every second and gone 3 s after its last renewal
        (a server process that died) or at once when it stops: what it announces there is
        ``version`` (default ``""``), ``metadata`` (your own ``str`` fields), its host,
        process id and start time. Not on the ``"redis-ipc"`` wire, which has no
        registry."""
    def serve_methods(
        self,
        service: _Arg,
        methods: Mapping[str, Callable[[Call], bytes | bytearray | memoryview | str | None]],
        *,
        concurrency: int | None = None,
        protocol: _Protocol | None = None,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RpcServer:
        """Like :meth:`serve`, routing each call by its method name to a handler of
        ``methods``; a call of another method gets ``RemoteError('unknown method "name"')``
        (so does every call of a server with no methods). With ``protocol="redis-ipc"``
        the method is the envelope's ``"method"`` and an unknown one is answered with the
        fleet's ``{"ok": false, "error": "unknown method: name"}``. ``version`` and
        ``metadata`` are announced as with :meth:`serve`."""
    def services(self) -> list[bytes]:
        """The services (``"redipc"`` wire) with at least one live server, sorted."""
    def instances(self, service: _Arg) -> list[Instance]:
        """The live servers of ``service``, with what each announced (:class:`Instance`);
        a server whose process died is gone within 3 s (its registry entry is no longer
        renewed). ``InvalidArgument`` for a service name the RPC functions refuse."""

    # --- event streams --------------------------------------------------------------
    def stream_publish(
        self,
        stream: _Arg,
        fields: Mapping[_Arg, _Arg] | None = None,
        *,
        payload: _Arg | None = None,
        maxlen: int | None = None,
    ) -> str:
        """``XADD stream MAXLEN ~ maxlen * field value ...``: append an entry and return its
        id (``"1700000000000-0"``). Give ``fields`` (a mapping, sent in its order) or
        ``payload=`` (a shortcut for the single field ``"payload"``), not both
        (``TypeError``). ``maxlen``: ``None`` uses the client's ``stream_maxlen`` (default
        100,000), ``0`` means unbounded; the bound is approximate (``~``), so the stream
        may hold somewhat more. ``InvalidArgument`` for an empty stream name, no field or
        a negative ``maxlen``."""
    def stream_read(
        self,
        stream: _Arg,
        from_id: str = "0",
        count: int = 100,
        block: _Seconds | None = None,
    ) -> list[StreamEntry]:
        """``XREAD``: up to ``count`` entries after ``from_id`` (``"0"``: from the start, an
        entry id: after it, ``"$"``: only entries added from now on, which needs
        ``block``), oldest first. Without ``block`` it returns what is there (maybe
        ``[]``); with ``block`` (seconds) it waits up to that long for at least one entry
        and returns ``[]`` if none came. A blocking read uses a connection of its own
        (other calls of the client are not held up), releases the GIL, and waits in
        slices of 100 ms with signals checked between them (Ctrl-C works; ``"$"`` is
        pinned to the last id first, so nothing arriving between slices is missed).
        ``InvalidArgument`` for an invalid id (``"abc"``, ``"1-x"``) or ``count < 1``."""
    def stream_follow(self, stream: _Arg, from_id: str = "$") -> StreamFollower:
        """A :class:`StreamFollower`: an iterator over the entries after ``from_id``
        (``"$"``, the default: the entries added after this call; ``"0"``: every entry;
        or an entry id), that keeps its position between calls. ``InvalidArgument`` for an
        invalid id."""
    def stream_last(self, stream: _Arg) -> StreamEntry | None:
        """The stream's last entry, or ``None`` for an empty or missing stream."""
    def stream_len(self, stream: _Arg) -> int:
        """``XLEN``: how many entries the stream holds (0 when it does not exist)."""
    def stream_group_create(self, stream: _Arg, group: _Arg, from_id: str = "$") -> bool:
        """Create the consumer group ``group`` (``XGROUP CREATE ... MKSTREAM``: the stream
        too, if missing), delivering the entries after ``from_id`` (``"$"``: only new ones;
        ``"0"``: every entry). ``True`` if it was created, ``False`` if it existed already
        (not an error). ``InvalidArgument`` for an invalid id or empty name."""
    def stream_pending(self, stream: _Arg, group: _Arg) -> PendingInfo:
        """The group's pending entries (delivered to a consumer, not acknowledged): how many
        in all, and per consumer. ``ResponseError`` (``NOGROUP``) for an unknown group."""
    def stream_consume(
        self,
        stream: _Arg,
        group: _Arg,
        consumer: _Arg,
        handler: Callable[[StreamEntry], object],
        *,
        count: int | None = None,
        block: _Seconds | None = None,
        min_idle: _Seconds | None = None,
        max_deliveries: int | None = None,
        claim_interval: _Seconds | None = None,
        on_error: _ErrorHook | None = None,
    ) -> StreamConsumer:
        """Consume ``stream`` in the consumer group ``group`` as ``consumer``, on a thread
        of its own (the group is created from ``"0"`` if it does not exist). At-least-once:

        - New entries are read ``count`` (default 10) at a time (``XREADGROUP``, waiting up
          to ``block`` seconds per read, default 1, at least 1 ms) and ``handler(entry)`` is
          called for each, in order, on the consumer's thread with the GIL taken for each
          call. Returning normally acknowledges the entry (``XACK``). Raising leaves it
          pending, never acknowledged: ``"TypeName: message"`` is recorded as its error,
          the exception goes to ``on_error(exception)`` if given, and the failure is
          reported (see below).
        - Every ``claim_interval`` seconds (default ``min_idle / 2``) the consumer takes
          over entries pending longer than ``min_idle`` seconds (default 30;
          ``XAUTOCLAIM``): those of
          consumers that died (a killed process) and its own failed ones, and handles them
          again (``entry.deliveries`` counts the deliveries).
        - An entry delivered more than ``max_deliveries`` (default 5) times is not handled
          again: it is
          moved to the dead-letter stream ``<stream>:dead`` (see
          :meth:`stream_dead_letters`) with its fields plus ``_id``, ``_group``,
          ``_deliveries`` and ``_error`` (the recorded error text), and acknowledged.

        Failures, dead letters and trouble of the consumer itself (a lost connection, after
        which it retries) are reported to the ``redipc`` logger (see :class:`Client`: a
        handler failure at WARNING, or DEBUG when ``on_error`` got it; a dead letter at
        ERROR). Like a thread it runs until stopped: use
        :meth:`StreamConsumer.stop` or a ``with`` block. ``TypeError`` if ``handler`` is
        not callable; ``InvalidArgument`` for an empty name, ``count`` or
        ``max_deliveries`` below 1."""
    def stream_dead_letters(self, stream: _Arg, count: int = 100) -> list[StreamEntry]:
        """The first ``count`` dead letters of ``stream`` (entries of ``<stream>:dead``, see
        :meth:`stream_consume`), oldest first; they stay where they are."""

    # --- cache ----------------------------------------------------------------------
    def cache_set(self, key: _Arg, value: _Arg, ttl: _Seconds | None = None) -> None:
        """Set the cache entry ``key`` (the Redis key ``{key_prefix}cache:KEY``) to
        ``value``, expiring after ``ttl`` seconds (``None``: never; at least 1 ms), and
        wake the :meth:`cache_wait` calls waiting for it (in one script: the value and
        the notification go together). ``InvalidArgument`` for an empty key."""
    def cache_get(self, key: _Arg) -> bytes | None:
        """The cache entry's value, or ``None`` when it is missing or expired."""
    def cache_delete(self, key: _Arg) -> bool:
        """Delete the cache entry; ``True`` if it existed."""
    def cache_exists(self, key: _Arg) -> bool:
        """Whether the cache entry exists."""
    def cache_wait(self, key: _Arg, timeout: _Seconds | None) -> bytes | None:
        """Wait until the cache entry exists and return its value; ``None`` when
        ``timeout`` seconds passed first (``None``: no limit). A timeout is not an error;
        an error (``ConnectionError`` ...) is raised.

        It does not poll: it subscribes to the key's notification channel before it
        looks, and :meth:`cache_set` of any client of this library wakes it at once. A
        key written another way (a plain ``SET`` of ``{key_prefix}cache:KEY`` by another
        program) is noticed by a fallback check once a second. The GIL is released while
        waiting, in slices of 100 ms with signals checked between them (Ctrl-C works)."""

    # --- hash state -----------------------------------------------------------------
    def hash_set(
        self,
        hash: _Arg,
        field: _Arg,
        value: _Arg,
        *,
        timestamp: _Timestamp | None = None,
        channel: _Arg | None = None,
    ) -> None:
        """``HSET hash field value`` and ``PUBLISH hash field``, atomically (one script):
        the device-state publisher. ``ResponseError`` (``WRONGTYPE``) if ``hash`` is not a
        hash; nothing is changed or published then.

        ``timestamp`` also sets ``<field>:timestamp`` in the same step (``True``: RFC 3339
        UTC; see :data:`_Timestamp` for the formats); ``channel`` announces on that channel
        instead of the one named like the hash (the redis-ipc fleet's words, e.g. a status
        hash ``battery:0`` announced on ``battery``)."""
    def hash_set_if_changed(self, hash: _Arg, field: _Arg, value: _Arg) -> bool:
        """Like :meth:`hash_set`, but writes and publishes only when the value differs from
        the stored one; ``True`` if it changed."""
    def hash_set_many(
        self,
        hash: _Arg,
        mapping: Mapping[_Arg, _Arg],
        summary: bool = False,
        *,
        announce: _Arg | None = None,
        channel: _Arg | None = None,
        timestamp: _Timestamp | None = None,
    ) -> None:
        """Set several fields atomically; publish each field name, or with ``summary`` one
        ``"*"`` (redipc watchers then re-read the whole hash), or with ``announce`` that
        word once (a redis-ipc fleet's e.g. ``"blinker:state"``; its watchers treat it as
        an event). ``summary`` and ``announce`` together raise ``TypeError``.
        ``channel`` and ``timestamp`` as for :meth:`hash_set` (a timestamp field for each
        field written). ``InvalidArgument`` for an empty mapping."""
    def hash_delete(self, hash: _Arg, field: _Arg, *, channel: _Arg | None = None) -> bool:
        """``HDEL`` the field and publish its name (on ``channel`` if given, else the
        channel named like the hash); ``True`` if it existed (nothing is published
        otherwise)."""
    def hash_replace_all(
        self,
        hash: _Arg,
        mapping: Mapping[_Arg, _Arg],
        *,
        announce: _Arg | None = None,
        channel: _Arg | None = None,
        timestamp: _Timestamp | None = None,
    ) -> None:
        """Replace the whole hash with ``mapping`` (an empty mapping deletes it) and
        publish ``"*"`` (or ``announce``: a redis-ipc fleet says ``"replaced"``),
        atomically. Watchers (redipc's and the fleet's) read the whole hash again and
        report the fields that are gone. ``channel`` and ``timestamp`` as for
        :meth:`hash_set`."""
    def hash_clear(
        self, hash: _Arg, *, channel: _Arg | None = None, announce: _Arg | None = None
    ) -> None:
        """Delete the whole hash and publish ``"cleared"`` (or ``announce``) on its channel
        (``channel`` if given), atomically: the fleet's clear (``DEL`` + ``PUBLISH hash
        cleared``). Watchers read the hash again and report every field deleted."""

    # --- faults (the redis-ipc fleet's layout) --------------------------------------
    def fault_set(self, group: _Arg, code: int, description: _Arg) -> bool:
        """Raise fault ``code`` (a positive int) of ``group``, atomically: ``SADD
        <group>:fault code``, and when it is new ``XADD events:faults MAXLEN ~ 1000 * group
        <group> code <code> description <description>`` and ``PUBLISH <group> fault``.
        ``True`` when the fault is new (raising it again changes nothing and returns
        ``False``). ``InvalidArgument`` for an empty group or a code that is not
        positive."""
    def fault_clear(self, group: _Arg, code: int) -> bool:
        """Clear fault ``code`` of ``group``, atomically: ``SREM <group>:fault code``, and
        when it was set ``XADD events:faults MAXLEN ~ 1000 * group <group> code -<code>``
        and ``PUBLISH <group> fault``. ``True`` when it was set."""
    def hash_watch(
        self,
        hash: _Arg,
        on_field: Mapping[_Arg, _FieldCallback] | None = None,
        on_any: _FieldCallback | None = None,
        *,
        initial_sync: bool | None = None,
        debounce: _Seconds | None = None,
        every_notification: bool | None = None,
        on_event: Callable[[bytes], object] | None = None,
        channel: _Arg | None = None,
        on_error: _ErrorHook | None = None,
    ) -> HashWatcher:
        """Watch a hash written with :meth:`hash_set` and its siblings (or by any program
        that publishes the field name on the channel named like the hash, as the C
        ``ipc_hash_*`` functions do).

        ``on_field`` maps field names to callbacks, ``on_any`` is called for every field
        (after the field's own callback). A callback is called as ``callback(field, value)`` with ``bytes``, ``value`` being
        ``None`` when the field was deleted.

        It subscribes first, then reads the whole hash: with ``initial_sync`` (default on)
        every current field is delivered first, then every change, with neither a gap nor
        a duplicate between the two (a value is delivered only when it differs from the
        one delivered last; changes in quick succession may be coalesced into the latest
        value). After a reconnect the hash is read whole again. ``debounce`` (seconds)
        coalesces the changes arriving within that window. Returns once subscribed and
        read.

        The channel's payloads ``"*"``, ``"cleared"`` and ``"replaced"`` make it read the
        whole hash again, delivering changed fields and, with ``value`` ``None``, the
        fields that are gone. For a redis-ipc fleet's hashes:

        - ``every_notification=True`` delivers every notification, reading the field each
          time, also when its value did not change (a keycard tapped twice); default
          ``False``: a value already delivered is not delivered again.
        - ``on_event(payload)`` gets each payload that is not a field of the hash (neither
          now nor before), e.g. ``b"seatbox:opened"`` or ``b"fault"``; without it they are
          ignored.
        - ``channel`` follows that channel instead of the one named like the hash.

        Callbacks run on the watcher's own thread, one at a time and in order, taking the
        GIL for each call. An exception goes to ``on_error(exception)`` if given, else to
        ``sys.unraisablehook``; later changes are still delivered. A read of the hash that
        fails (the connection is down, the key is not a hash) is retried with backoff as a
        whole read, so no change is lost; it goes to ``on_error`` as a
        :class:`RedipcError` if given, else to the ``redipc`` logger (``"read_failed"``,
        WARNING). Like a thread, a watcher runs until stopped: :meth:`HashWatcher.stop` or a
        ``with`` block."""

    # --- locks ----------------------------------------------------------------------
    def lock(
        self,
        name: _Arg,
        ttl: _Seconds | None = None,
        wait: _Seconds | None = None,
        *,
        auto_renew: bool | None = None,
    ) -> Lock:
        """Acquire the distributed lock ``name``, waiting up to ``wait`` seconds (default
        10; 0: try once); ``TimeoutError`` if it stayed taken. The lock expires ``ttl``
        seconds (default 10) after
        it was taken unless extended (:meth:`Lock.extend`, or ``auto_renew=True``: renewed
        every ``ttl / 3`` in the background while the :class:`Lock` is held), so a holder
        that dies loses it after at most ``ttl``. The returned :class:`Lock` carries a
        fencing token greater than that of every earlier holder of this name. Use it as a
        context manager::

            with client.lock("printer", ttl=30) as lk:
                store.write(data, fence=lk.token)

        A waiter is woken at once by a release (it also retries when the holder's TTL runs
        out); the GIL is released while waiting, in slices of 100 ms with signals checked
        between them. ``InvalidArgument`` for an empty name, a name with ``{`` or ``}``, or
        a zero ``ttl``."""

    # --- coordination: rate limiters, semaphores, scripts ----------------------------
    def rate_limiter(
        self,
        name: _Arg,
        rate: float,
        per: _Seconds = 1.0,
        burst: int | None = None,
    ) -> RateLimiter:
        """A :class:`RateLimiter` named ``name``: ``rate`` units per ``per`` seconds, up to
        ``burst`` at once (default: ``rate`` rounded, at least 1). Every process (and every
        binding: C, Rust) using the same name, rate and burst shares it: over any window of
        ``w`` seconds at most ``burst + rate * w / per`` units pass, all processes together.
        It is GCRA (the generic cell rate algorithm) in one Lua script on the server's
        clock, in one key ``{key_prefix}{rate:NAME}`` that expires when the limiter is idle.
        Nothing is sent until the first acquisition. ``InvalidArgument`` for an empty name,
        one with ``{`` or ``}``, a rate or period that is not above 0, or a zero burst."""
    def semaphore(self, name: _Arg, permits: int, lease: _Seconds = 30.0) -> Semaphore:
        """A :class:`Semaphore` named ``name`` with ``permits`` permits, shared by every
        process using the name (all must give the same ``permits``). A permit's lease
        ends ``lease`` seconds after it was taken unless extended (:meth:`Permit.extend`),
        so a holder that dies without releasing gives its permit back then. Waiters are
        served first come, first served (none starves), woken at once by a release.
        Nothing is sent until the first call. ``InvalidArgument`` for an empty name, one
        with ``{`` or ``}``, zero permits or a lease under 1 ms."""
    def script(self, source: str) -> Script:
        """A :class:`Script` with this Lua source, run by its SHA (``EVALSHA``), like
        redis-py's ``register_script``::

            incr_to = client.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            incr_to(keys=["counter"], args=[5])         # 5
            incr_to(["counter"], [5], client=pipeline)   # queued in a pipeline

        A server that does not know the script (after a restart, a failover or ``SCRIPT
        FLUSH``) is sent the source once more: the caller never sees ``NOSCRIPT``. Nothing
        is sent until the first call."""

    # --- keyspace notifications -----------------------------------------------------
    def watch_keys(
        self,
        pattern: _Arg,
        callback: Callable[[bytes, str], object],
        events: Sequence[str] = (),
        *,
        configure_server: bool = True,
        on_error: _ErrorHook | None = None,
    ) -> KeyspaceWatch:
        """Call ``callback(key, event)`` for the keyspace events (``"set"``, ``"del"``,
        ``"expired"``, ``"hset"``, ...) of keys matching the glob ``pattern``, of the names
        in ``events`` (all when empty). With ``configure_server`` (default) the flags the
        events need are added to the server's ``notify-keyspace-events`` (flags are added,
        never removed); with ``False`` the server's configuration is left alone (and
        nothing arrives unless it is configured). Returns once subscribed.

        On a server that does not let ``CONFIG`` change it (renamed away or forbidden, as
        on many embedded boards), ``configure_server=True`` raises ``UnsupportedError``
        saying so: enable ``notify-keyspace-events`` in the server's configuration and
        pass ``configure_server=False``.

        The callback runs like a subscription callback (on the client's dispatcher thread,
        or inside :meth:`poll`), taking the GIL for each event; an exception goes to
        ``on_error`` or ``sys.unraisablehook``. Expired keys are reported when Redis
        expires them (on access, or by its background sweep)."""

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
class LatencyStats:
    """The latency of a client's successful calls, from the call to its reply, in seconds:
    a histogram whose quantiles are accurate to 25 % (each is its bucket's upper bound)."""

    @property
    def count(self) -> int:
        """How many calls were timed."""
    @property
    def p50(self) -> float:
        """Median, in seconds (0.0 when nothing was timed)."""
    @property
    def p90(self) -> float:
        """90th percentile, in seconds."""
    @property
    def p99(self) -> float:
        """99th percentile, in seconds."""
    @property
    def p999(self) -> float:
        """99.9th percentile, in seconds."""
    @property
    def max(self) -> float:
        """The longest, in seconds."""
    @property
    def buckets(self) -> list[tuple[float, int]]:
        """The non-empty buckets, ascending: ``(upper bound in seconds, count)``; the
        counts add up to :attr:`count`."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class NodeStats:
    """One server's share of a client's traffic (:meth:`Client.node_stats`)."""

    @property
    def addr(self) -> str:
        """``host:port``, or the unix socket's path."""
    @property
    def primary(self) -> bool:
        """A primary (``False``: a replica, read from with ``read_from_replicas``)."""
    @property
    def slots(self) -> list[tuple[int, int]]:
        """The slot ranges it serves, inclusive, ascending (a replica: its primary's); empty
        for a standalone server."""
    @property
    def connected(self) -> bool:
        """Its command connection is up now (``False`` too before its first use)."""
    @property
    def commands(self) -> int:
        """Commands written to it."""
    @property
    def failed(self) -> int:
        """Calls on it that failed with a connection error or a timeout."""
    @property
    def reconnects(self) -> int:
        """Times its command connection was re-established after it broke."""
    @property
    def redirects(self) -> int:
        """``MOVED``/``ASK`` replies it gave."""
    @property
    def bytes_in(self) -> int:
        """Bytes read from it."""
    @property
    def bytes_out(self) -> int:
        """Bytes written to it."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class ClientStats:
    """Statistics of a :class:`Client` since it was made (:meth:`Client.stats`)."""

    @property
    def commands(self) -> int:
        """Commands written to the server on every connection of the client: calls, each
        command of a pipeline or transaction (``MULTI`` and ``EXEC`` included), the
        patterns' own (a worker's ``BLMOVE``, a consumer's ``XREADGROUP`` ...), the
        connections' handshakes, pub/sub's ``SUBSCRIBE`` and health-check ``PING``."""
    @property
    def failed(self) -> dict[str, int]:
        """Calls that failed, by error kind: ``"connection"``, ``"timeout"``, ``"server"``
        (an error reply, ``ResponseError``), ``"protocol"``, ``"invalid_argument"``,
        ``"closed"``, ``"unsupported"``, ``"watch"``, ``"remote"``, ``"no_server"``,
        ``"handler"``, ``"aborted"``; kinds with no failure are left out."""
    @property
    def reconnects(self) -> int:
        """Times the command connection was re-established after it broke."""
    @property
    def redirects(self) -> int:
        """Redis Cluster redirects followed (``MOVED``, ``ASK``: a slot moved or is
        moving); 0 for a standalone server."""
    @property
    def pubsub_reconnects(self) -> int:
        """Times the pub/sub connection was re-established after it broke."""
    @property
    def bytes_in(self) -> int:
        """Bytes read from the server, on every connection of the client."""
    @property
    def bytes_out(self) -> int:
        """Bytes written to the server, on every connection of the client."""
    @property
    def in_flight(self) -> int:
        """Calls waiting for their reply now."""
    @property
    def pubsub_received(self) -> int:
        """Pub/sub messages received (before routing to subscriptions)."""
    @property
    def pubsub_dropped(self) -> int:
        """Pub/sub messages dropped by subscriptions' overflow policies."""
    @property
    def workers(self) -> WorkerStats:
        """The sum of the counters of every worker and RPC server the client ran (stopped
        ones included)."""
    @property
    def consumers(self) -> ConsumerStats:
        """The sum of the counters of every stream group consumer the client ran (stopped
        ones included)."""
    @property
    def latency(self) -> LatencyStats:
        """The latency of successful calls (a failed call is counted in :attr:`failed`,
        not timed)."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (``latency`` stays a :class:`LatencyStats`)."""
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
        """Whether it was closed (by :meth:`close`, or by closing its client)."""
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
        100 ms slices with signals checked between them); ``None`` when the time passed.
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

@final
class Batch:
    """Commands sent together, from :meth:`Client.pipeline` (in one write, answered in
    order, not atomic: other clients' commands may run between them), :meth:`Client.tx`
    (``MULTI``/``EXEC``: atomic) or :meth:`Client.batch`. Safe to share between threads.

    ::

        p = client.pipeline()
        for i in range(1000):
            p.add("INCR", f"k{i % 10}")
        results = p.exec()   # 1000 replies

    :meth:`exec` returns one result per command, in order; a command's error reply is a
    ``ResponseError`` instance in its slot (not raised) while the others carry their
    values. In a transaction, a command the server refuses while queueing (unknown
    command, wrong arity) aborts the whole transaction: nothing runs and ``exec()`` raises
    ``ResponseError`` with ``code == "EXECABORT"`` and a message naming the refused
    command(s), e.g. ``"command 1 (NOSUCH x) was rejected: ERR unknown command ..."``.

    Used as a context manager, whatever is still queued when the block ends is
    discarded (nothing is sent): call :meth:`exec` inside the block.
    """

    def add(self, *args: _Arg) -> Self:
        """Queue a command (checked now: ``InvalidArgument`` for an empty command or a
        value over the size limit); returns this object, so calls can be chained."""
    def exec(self) -> list[_Reply]:
        """Send the queued commands (a transaction: ``MULTI``, the commands, ``EXEC``) and
        return one result per command, in order. The batch is empty afterwards (also if it
        failed) and may be reused; an empty batch returns ``[]`` without sending
        anything."""
    def clear(self) -> None:
        """Forget the queued commands."""
    @property
    def atomic(self) -> bool:
        """Whether it is a transaction (``MULTI``/``EXEC``) rather than a pipeline."""
    def __len__(self) -> int:
        """How many commands are queued."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

Pipeline = Batch
"""What :meth:`Client.pipeline` returns: a :class:`Batch` that is not atomic."""

Transaction = Batch
"""What :meth:`Client.tx` returns: an atomic :class:`Batch`."""

@final
class WatchSession:
    """What the function of :meth:`Client.transaction` is called with. Valid only while
    that call runs (afterwards its methods raise ``ClosedError``)."""

    def command(self, *args: _Arg) -> _Reply:
        """Run a command now on the watching connection (typically a read of a watched
        key) and return its reply; an error reply raises ``ResponseError``."""
    def queue(self, *args: _Arg) -> None:
        """Queue a command for the atomic ``MULTI``/``EXEC`` at the end."""

@final
class Request:
    """One request handed to a :meth:`Client.handle_requests` handler. Records (this one,
    :class:`Call`, :class:`StreamEntry`, the counters ...) compare equal when their fields
    are, and ``as_dict()`` gives their fields."""

    @property
    def queue(self) -> bytes:
        """The queue it came from."""
    @property
    def payload(self) -> bytes:
        """The payload as sent."""
    @property
    def attempt(self) -> int:
        """How many times it was handed to a handler before: 0 the first time (reliable
        mode counts failed attempts)."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class Worker:
    """A running request worker, from :meth:`Client.handle_requests`.

    Like the other handles that run handlers on threads of the core (:class:`RpcServer`,
    :class:`StreamConsumer`, :class:`HashWatcher`, :class:`KeyspaceWatch`), it has one
    lifecycle, the core's: :meth:`stop`, :attr:`stopped`, :meth:`close` and ``with``
    (stopped when the block ends). Dropped without being stopped, it is stopped without
    holding up other Python threads (waiting up to 10 s for running handlers). Its
    handler (and ``on_error``) are released once it has stopped. One whose handler
    refers to it stays alive, like a thread, until stopped."""

    def stop(self, timeout: _Seconds | None = None) -> None:
        """Stop and wait up to ``timeout`` seconds (default 10) for the running handlers to
        return, with the GIL released. ``TimeoutError`` if some still ran then (they finish
        on their own: the worker stops when they return; in reliable mode their requests
        stay in flight and are recovered after the lease; ``stop()`` may be called again to
        wait more). Stopping a stopped worker does nothing. Called from inside one of its
        own handlers it only asks for the stop and returns at once: the worker stops when
        that handler returns."""
    def close(self) -> None:
        """The same as :meth:`stop` with its default timeout."""
    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good (every handler returned)."""
    @property
    def running(self) -> bool:
        """The opposite of :attr:`stopped`."""
    def stats(self) -> WorkerStats:
        """The worker's counters."""
    @property
    def queues(self) -> list[bytes]:
        """The queue names it serves."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class WorkerStats:
    """Counters of a :class:`Worker` or an :class:`RpcServer`."""

    @property
    def handled(self) -> int:
        """Requests handled successfully (a server: calls answered, or dropped because
        their deadline had passed)."""
    @property
    def failed(self) -> int:
        """Handler failures; each retry counts."""
    @property
    def dead_lettered(self) -> int:
        """Requests this worker moved to the dead letters."""
    @property
    def recovered(self) -> int:
        """In-flight requests of dead workers this worker put back into their queue."""
    def as_dict(self) -> dict[str, int]:
        """The four counters as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class QueueCounts:
    """Counters of a queue, read from the server by :meth:`Client.queue_stats`."""

    @property
    def pending(self) -> int:
        """Requests waiting."""
    @property
    def inflight(self) -> int:
        """Requests being handled by reliable workers."""
    @property
    def dead(self) -> int:
        """Dead letters."""
    @property
    def delayed(self) -> int:
        """Delayed requests not moved into the queue yet (see :meth:`Client.send_request`)."""
    def as_dict(self) -> dict[str, int]:
        """The four counters as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class DeadLetter:
    """A request that failed ``max_attempts`` times (:meth:`Client.dead_letters`)."""

    @property
    def payload(self) -> bytes:
        """The payload as sent."""
    @property
    def attempts(self) -> int:
        """How many times it was tried."""
    @property
    def error(self) -> str:
        """The last failure: ``"TypeName: message"`` from a Python handler."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class Call:
    """One call as an RPC handler (:meth:`Client.serve`) sees it."""

    @property
    def method(self) -> str:
        """The method name; ``""`` for a call without one (bytes that are not UTF-8 are
        replaced with U+FFFD)."""
    @property
    def payload(self) -> bytes:
        """The request payload (on the ``"redis-ipc"`` wire: its JSON text, ``b"null"``
        when the request had none)."""
    @property
    def deadline(self) -> float:
        """When the caller stops waiting, in seconds since the epoch (compare with
        ``time.time()``)."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class RpcServer:
    """A running RPC server, from :meth:`Client.serve` or :meth:`Client.serve_methods`,
    with the lifecycle of :class:`Worker`. While it runs it announces itself (so callers
    can tell "no server" from "slow server"); on the ``"redis-ipc"`` wire, which has no
    server registry, it does not."""

    def stop(self, timeout: _Seconds | None = None) -> None:
        """Stop answering and wait up to ``timeout`` seconds (default 10) for running
        handlers, with the GIL released; ``TimeoutError`` if some still ran then. Calls
        still queued stay for another server (or expire). From inside one of its own
        handlers it only asks for the stop and returns at once."""
    def close(self) -> None:
        """The same as :meth:`stop` with its default timeout."""
    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good (every handler returned)."""
    @property
    def running(self) -> bool:
        """The opposite of :attr:`stopped`."""
    def stats(self) -> WorkerStats:
        """The server's counters."""
    @property
    def service(self) -> bytes:
        """The service name (on the ``"redis-ipc"`` wire: the list it serves)."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class StreamEntry:
    """One entry of a stream: its ``id``, its ``fields`` and, for an entry handed to a
    group consumer, how many times it was delivered. ``entry[b"field"]`` (or
    ``entry["field"]``) is a field's value (``KeyError`` when missing); entries compare
    equal when id, fields and deliveries are equal."""

    @property
    def id(self) -> str:
        """The entry id, ``"<milliseconds>-<sequence>"``."""
    @property
    def fields(self) -> dict[bytes, bytes]:
        """The fields in the order they were written (the first of a repeated name
        wins)."""
    @property
    def deliveries(self) -> int:
        """How many times it was delivered to a consumer of a group (1 the first time);
        0 for entries read outside consumer groups."""
    def __getitem__(self, name: _Arg, /) -> bytes: ...
    def __contains__(self, name: _Arg, /) -> bool: ...
    def __len__(self) -> int: ...
    @overload
    def get(self, name: _Arg, default: None = None) -> bytes | None:
        """The value of the field ``name``, or ``default``."""
    @overload
    def get(self, name: _Arg, default: _T) -> bytes | _T: ...
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class StreamFollower:
    """Follows a stream (:meth:`Client.stream_follow`) on a connection of its own,
    keeping its position: ``for entry in follower:`` yields each entry in order as it
    comes (waiting with the GIL released, Ctrl-C works) and ends when the follower or
    its client is closed; :meth:`next` waits with a timeout. Use it from one thread at a
    time."""

    @property
    def position(self) -> str:
        """The id of the last entry returned (at first the starting position, ``"$"``
        pinned to the stream's last id when the follower was made, ``"0-0"`` for an empty
        stream)."""
    def next(self, timeout: _Seconds | None = None) -> StreamEntry | None:
        """The next entry, waiting up to ``timeout`` seconds (``None``: without limit);
        ``None`` when the time passed. ``ClosedError`` once closed."""
    def __iter__(self) -> Self: ...
    def __next__(self) -> StreamEntry: ...
    def close(self) -> None:
        """Close the follower and its connection."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class StreamConsumer:
    """A running consumer of a consumer group (:meth:`Client.stream_consume`), with the
    lifecycle of :class:`Worker`."""

    def stop(self, timeout: _Seconds | None = None) -> None:
        """Stop reading and wait up to ``timeout`` seconds (default 10) for the handler to
        finish, with the GIL released; ``TimeoutError`` if it was still running then (call
        ``stop`` again to wait more). From inside its own handler it returns at once: the
        consumer stops after that handler returns, and the rest of the entries it had read
        stay pending (other consumers claim them after ``min_idle``)."""
    def close(self) -> None:
        """The same as :meth:`stop` with its default timeout."""
    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good (every handler returned)."""
    @property
    def running(self) -> bool:
        """The opposite of :attr:`stopped`."""
    def stats(self) -> ConsumerStats:
        """The consumer's counters."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class ConsumerStats:
    """Counters of a :class:`StreamConsumer`."""

    @property
    def acked(self) -> int:
        """Entries handled and acknowledged."""
    @property
    def failed(self) -> int:
        """Handler failures (each leaves its entry pending)."""
    @property
    def claimed(self) -> int:
        """Entries taken over after ``min_idle``: from dead consumers, or its own failed
        ones retried."""
    @property
    def dead_lettered(self) -> int:
        """Entries moved to the dead-letter stream."""
    def as_dict(self) -> dict[str, int]:
        """The four counters as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class PendingInfo:
    """The pending entries of a consumer group (:meth:`Client.stream_pending`)."""

    @property
    def count(self) -> int:
        """How many entries are delivered and not acknowledged."""
    @property
    def consumers(self) -> dict[str, int]:
        """How many per consumer name (consumers with none are not listed)."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class HashWatcher:
    """A running hash watcher (:meth:`Client.hash_watch`), with the lifecycle of
    :class:`Worker`."""

    def stop(self, timeout: _Seconds | None = None) -> None:
        """Stop watching (unsubscribe), waiting up to ``timeout`` seconds (default 10),
        with the GIL released, for a callback running on the watcher's thread;
        ``TimeoutError`` if it still runs then. After it returns no callback runs (called
        from inside a callback: it returns at once, and none runs after that one returns).
        Stopping again does nothing."""
    def close(self) -> None:
        """The same as :meth:`stop` with its default timeout."""
    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good (every callback returned)."""
    @property
    def running(self) -> bool:
        """The opposite of :attr:`stopped`."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class Lock:
    """A held distributed lock (:meth:`Client.lock`). As a context manager it is released
    when the block ends (a failing release does not hide the block's own exception).
    Dropped while held, it is released without holding up other Python threads."""

    @property
    def name(self) -> bytes:
        """The lock's name."""
    @property
    def token(self) -> int:
        """The fencing token: strictly greater than the token of every earlier holder of
        this lock name. Pass it to the resource the lock guards, so that the resource can
        refuse a write of a holder whose lock expired meanwhile (an older token)."""
    @property
    def held(self) -> bool:
        """Whether this object has not released the lock yet. The lock may have expired
        on the server meanwhile: :meth:`extend` and :meth:`release` tell."""
    def extend(self, ttl: _Seconds) -> bool:
        """Make the lock expire ``ttl`` seconds from now; ``False`` if it is no longer ours
        (it expired, maybe somebody else holds it now) or was released."""
    def release(self) -> bool:
        """Release the lock (compare-and-delete: only if still ours) and wake its waiters;
        ``False`` if it was no longer ours or was released already."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class RateLimiter:
    """A rate limiter shared by every process using its name (:meth:`Client.rate_limiter`).
    Safe to share between threads."""

    def acquire(self, n: int = 1) -> tuple[bool, float]:
        """Take ``n`` units if the rate allows it now: ``(True, 0.0)``; otherwise nothing
        is taken and it returns ``(False, retry_after)``, the seconds after which ``n``
        units would pass (if nobody else takes them first). ``InvalidArgument`` unless
        ``1 <= n <= burst``."""
    def acquire_wait(self, n: int = 1, timeout: _Seconds | None = None) -> bool:
        """Take ``n`` units, waiting as long as the rate says: one sleep of exactly the
        wait the server named, then another try (only a competitor that got there first
        makes it wait again); no polling. ``timeout`` (seconds; ``None``: as long as it
        takes): ``False`` as soon as the wait would end after it, without sleeping in vain.
        The GIL is released while waiting (other threads run) and signals are checked
        every 100 ms, so Ctrl-C works (nothing is taken)."""
    @property
    def name(self) -> bytes:
        """The limiter's name."""
    @property
    def burst(self) -> int:
        """How many units may be taken at once."""

@final
class Semaphore:
    """A counting semaphore with leases (:meth:`Client.semaphore`), shared by every
    process using its name. Safe to share between threads::

        sem = client.semaphore("gpu", 2, lease=60)
        with sem.acquire(timeout=10) as permit:   # TimeoutError if none came
            run_job()                             # permit.extend(60) for long jobs
    """

    def acquire(self, timeout: _Seconds | None = None) -> Permit:
        """Take a permit, waiting up to ``timeout`` seconds (``None``: as long as it takes;
        ``0``: try once); ``TimeoutError`` if none came (like :meth:`Client.lock`).
        Waiters are served in arrival order and woken at once by a release (also when a
        dead holder's lease runs out). The GIL is released while waiting (other threads
        run) and signals are checked every 100 ms without losing the waiter's place, so
        Ctrl-C works (the waiter leaves the queue)."""
    def held(self) -> int:
        """How many permits are held now, by every process (expired leases not
        counted)."""
    @property
    def name(self) -> bytes:
        """The semaphore's name."""
    @property
    def permits(self) -> int:
        """Its number of permits."""

@final
class Permit:
    """A held permit of a :class:`Semaphore`. As a context manager it is released when the
    block ends (a failing release does not hide the block's own exception). Dropped while
    held, it is released without holding up other Python threads."""

    @property
    def id(self) -> str:
        """The permit's id (random, unique)."""
    @property
    def released(self) -> bool:
        """Whether this object has released the permit. Its lease may have run out on the
        server meanwhile: :meth:`extend` and :meth:`release` tell."""
    def release(self) -> bool:
        """Give the permit back and wake the waiters; ``False`` if it was no longer held
        (its lease ran out) or was released already."""
    def extend(self, seconds: _Seconds) -> bool:
        """Make the lease end ``seconds`` from now; ``False`` if the permit is no longer
        held. ``InvalidArgument`` for less than 1 ms."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class Script:
    """A Lua script run by SHA (:meth:`Client.script`). Safe to share between threads and
    clients."""

    @overload
    def __call__(
        self,
        keys: Sequence[_Arg] = (),
        args: Sequence[_Arg] = (),
        client: Client | None = None,
    ) -> _Reply:
        """Run the script with ``keys`` (``KEYS``) and ``args`` (``ARGV``) and return its
        reply, converted like :meth:`Client.command` (a Lua error raises
        ``ResponseError``). ``client``: run it on another :class:`Client` instead of the
        one that made the script; or a :class:`Batch` (pipeline or transaction), where it
        is queued (redis-py style) and this returns the batch; its reply is in the batch's
        results. In a pipeline a script the server no longer knows is sent again as source
        right after the pipeline (so in that case it runs after the pipeline's later
        commands); a transaction sends the source."""
    @overload
    def __call__(self, keys: Sequence[_Arg], args: Sequence[_Arg], client: Batch) -> Batch: ...
    @overload
    def __call__(self, keys: Sequence[_Arg] = (), args: Sequence[_Arg] = (), *, client: Batch) -> Batch: ...
    @property
    def sha(self) -> str:
        """The script's SHA1, in hex (what ``SCRIPT LOAD`` answers)."""
    @property
    def source(self) -> str:
        """The script's Lua source."""

@final
class Instance:
    """One live server of an RPC service in the service registry
    (:meth:`Client.instances`)."""

    @property
    def service(self) -> bytes:
        """The service it serves."""
    @property
    def id(self) -> str:
        """Its id (random, unique per server)."""
    @property
    def version(self) -> str:
        """The ``version=`` it was started with (``""`` when none)."""
    @property
    def host(self) -> str:
        """The host name of its machine."""
    @property
    def pid(self) -> int:
        """Its process id."""
    @property
    def started(self) -> float:
        """When it started serving, in seconds since the epoch (its host's clock)."""
    @property
    def metadata(self) -> dict[str, str]:
        """The ``metadata=`` it was started with."""
    @property
    def expires_in(self) -> float:
        """Seconds it stays listed without another heartbeat (at most 3)."""
    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class KeyspaceWatch:
    """A keyspace-notification watch (:meth:`Client.watch_keys`), with the lifecycle of
    :class:`Worker`."""

    def stop(self, timeout: _Seconds | None = None) -> None:
        """Unsubscribe, waiting up to ``timeout`` seconds (default 10) for a running
        callback; ``TimeoutError`` if it still runs then. After it returns the callback is
        not called again (from inside the callback: it returns at once, and no call follows
        that one). Stopping again does nothing."""
    def close(self) -> None:
        """The same as :meth:`stop` with its default timeout."""
    @property
    def stopped(self) -> bool:
        """Whether it has stopped for good."""
    @property
    def running(self) -> bool:
        """The opposite of :attr:`stopped`."""
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...

@final
class Report:
    """What a worker, RPC server, stream consumer, watcher or subscription of a client
    reports besides its handlers' results; see :class:`Client` (logging, ``on_report``).
    ``str(report)`` is its one-line text."""

    @property
    def kind(self) -> Literal[
        "handler_failed",
        "dead_lettered",
        "recovered",
        "connection_lost",
        "connection_restored",
        "read_failed",
    ]:
        """What happened."""
    @property
    def source(self) -> Literal[
        "worker", "rpc_server", "stream_consumer", "hash_watcher", "keyspace_watch", "subscription"
    ]:
        """Which kind of handle reports it."""
    @property
    def name(self) -> bytes:
        """The queue, service, stream, hash, channel or key pattern."""
    @property
    def group(self) -> bytes | None:
        """The consumer group (stream consumers)."""
    @property
    def item(self) -> str | None:
        """The item it is about (a stream entry id)."""
    @property
    def attempt(self) -> int:
        """How many times the item was handed to a handler, this time included (for
        streams: its deliveries); 0 when it does not apply."""
    @property
    def max_attempts(self) -> int:
        """After how many attempts an item is dead-lettered; 0 when it does not apply."""
    @property
    def count(self) -> int:
        """How many items (dead letters, recovered requests); 0 when it does not apply."""
    @property
    def error(self) -> BaseException | None:
        """The exception: a handler's own, or the :class:`RedipcError` of what failed."""
    @property
    def during(self) -> str | None:
        """What the handle was doing when its operation failed."""
    @property
    def text(self) -> str:
        """The one-line text (also ``str(report)``)."""

@final
class AsyncClient:
    """The awaitable side of a :class:`Client`, bound to one event loop: what
    :class:`redipc.asyncio.Client` is built on (use that). Single commands go on a
    connection the loop's thread writes and reads itself (plain TCP and unix sockets); the
    other calls start on redipc's runtime. Each method returns an ``asyncio.Future`` that
    the loop completes when it reads the client's descriptor (``fd``, watched with
    ``loop.add_reader(fd, _readable, closed)``); cancelling the future cancels a runtime call (a
    command already written may still run)."""

    def __new__(cls, client: Client, event_loop: asyncio.AbstractEventLoop) -> AsyncClient: ...
    @property
    def fd(self) -> int:
        """The descriptor the event loop watches: readable while results wait."""
    @property
    def in_flight(self) -> int:
        """Calls started and not finished (or cancelled) yet."""
    def _readable(self, closed: Callable[[], object]) -> None:
        """The loop's reader callback: :meth:`_drain`, then ``closed()`` once it returns
        ``True``."""
    def _drain(self) -> bool:
        """Complete the futures of the finished calls; ``True`` once the client is closed
        and every call has completed (the reader can go)."""
    def _flush(self) -> None:
        """Write the commands queued behind others (scheduled with ``loop.call_soon``)."""
    def _expire(self) -> None:
        """Fail the calls past the response timeout (scheduled with ``loop.call_later``)."""
    def command(self, *args: _Arg) -> asyncio.Future[_Reply]: ...
    def get(self, key: _Arg) -> asyncio.Future[bytes | None]: ...
    def set(
        self, key: _Arg, value: _Arg, ttl: _Seconds | None = None, *, nx: bool = False, xx: bool = False
    ) -> asyncio.Future[bool]: ...
    def delete(self, *keys: _Arg) -> asyncio.Future[int]: ...
    def exists(self, *keys: _Arg) -> asyncio.Future[int]: ...
    def incr(self, key: _Arg, amount: int = 1) -> asyncio.Future[int]: ...
    def publish(self, channel: _Arg, message: _Arg) -> asyncio.Future[int]: ...
    def decr(self, key: _Arg, amount: int = 1) -> asyncio.Future[int]: ...
    def expire(self, key: _Arg, seconds: _Seconds) -> asyncio.Future[bool]: ...
    def hget(self, key: _Arg, field: _Arg) -> asyncio.Future[bytes | None]: ...
    def hset(
        self,
        key: _Arg,
        field: _Arg | None = None,
        value: _Arg | None = None,
        *,
        mapping: Mapping[_Arg, _Arg] | None = None,
    ) -> asyncio.Future[int]: ...
    def hgetall(self, key: _Arg) -> asyncio.Future[dict[bytes, bytes]]: ...
    def hdel(self, key: _Arg, *fields: _Arg) -> asyncio.Future[int]: ...
    def lpush(self, key: _Arg, *values: _Arg) -> asyncio.Future[int]: ...
    def rpush(self, key: _Arg, *values: _Arg) -> asyncio.Future[int]: ...
    def lpop(self, key: _Arg) -> asyncio.Future[bytes | None]: ...
    def rpop(self, key: _Arg) -> asyncio.Future[bytes | None]: ...
    def llen(self, key: _Arg) -> asyncio.Future[int]: ...
    def ping(self) -> asyncio.Future[bool]: ...
    def spublish(self, channel: _Arg, message: _Arg) -> asyncio.Future[int]: ...
    def pipeline_raw(self, commands: Iterable[Sequence[_Arg]]) -> asyncio.Future[list[_Reply]]: ...
    def run_script(self, script: Script, keys: Sequence[_Arg], args: Sequence[_Arg]) -> asyncio.Future[_Reply]:
        """Run ``script`` with ``keys`` and ``args``; its reply, as :meth:`command`'s."""
    def queue_stats(self, queue: _Arg) -> asyncio.Future[QueueCounts]: ...
    def dead_letters(self, queue: _Arg) -> asyncio.Future[list[DeadLetter]]: ...
    def requeue_dead_letters(self, queue: _Arg) -> asyncio.Future[int]: ...
    def services(self) -> asyncio.Future[list[bytes]]: ...
    def instances(self, service: _Arg) -> asyncio.Future[list[Instance]]: ...
    def cache_delete(self, key: _Arg) -> asyncio.Future[bool]: ...
    def cache_exists(self, key: _Arg) -> asyncio.Future[bool]: ...
    def hash_set_many(
        self,
        hash: _Arg,
        mapping: Mapping[_Arg, _Arg],
        summary: bool = False,
        *,
        announce: _Arg | None = None,
        channel: _Arg | None = None,
        timestamp: _Timestamp | None = None,
    ) -> asyncio.Future[None]: ...
    def hash_delete(self, hash: _Arg, field: _Arg, *, channel: _Arg | None = None) -> asyncio.Future[bool]: ...
    def hash_replace_all(
        self,
        hash: _Arg,
        mapping: Mapping[_Arg, _Arg],
        *,
        announce: _Arg | None = None,
        channel: _Arg | None = None,
        timestamp: _Timestamp | None = None,
    ) -> asyncio.Future[None]: ...
    def hash_clear(
        self, hash: _Arg, *, channel: _Arg | None = None, announce: _Arg | None = None
    ) -> asyncio.Future[None]: ...
    def fault_set(self, group: _Arg, code: int, description: _Arg) -> asyncio.Future[bool]: ...
    def fault_clear(self, group: _Arg, code: int) -> asyncio.Future[bool]: ...
    def subscribe_group(
        self,
        name: str = "",
        capacity: int | None = None,
        overflow: _Overflow | None = None,
        on_error: _ErrorHook | None = None,
    ) -> asyncio.Future[SubscriptionGroup]:
        """A subscription group (as :meth:`Client.subscribe_group`)."""
    def subscribe(
        self,
        kind: Literal["channel", "pattern", "shard"],
        names: Sequence[_Arg],
        capacity: int | None = None,
        overflow: _Overflow | None = None,
    ) -> asyncio.Future[Subscription]:
        """Subscribe without a callback; resolves once the server confirmed it."""
    def next_events(
        self, sub: Subscription, timeout: _Seconds | None = None, max: int = 256
    ) -> asyncio.Future[list[Message]]:
        """The next events of ``sub``: the first within ``timeout`` (``None``: no limit),
        then those queued behind it, ``max`` at most; empty when none came in time.
        Cancelled before it completed, it puts the events it took back (the next call gets
        them first)."""
    def send_request(self, queue: _Arg, payload: _Arg, delay: _Seconds | None = None) -> asyncio.Future[None]: ...
    def call(
        self,
        service: _Arg,
        payload: _Arg,
        *,
        method: _Arg | None = None,
        timeout: _Seconds | None = None,
        fail_fast: bool | None = None,
    ) -> asyncio.Future[bytes]: ...
    def cache_set(self, key: _Arg, value: _Arg, ttl: _Seconds | None = None) -> asyncio.Future[None]: ...
    def cache_get(self, key: _Arg) -> asyncio.Future[bytes | None]: ...
    def cache_wait(self, key: _Arg, timeout: _Seconds) -> asyncio.Future[bytes | None]: ...
    def lock(
        self,
        name: _Arg,
        ttl: _Seconds | None = None,
        wait: _Seconds | None = None,
        auto_renew: bool | None = None,
    ) -> asyncio.Future[Lock]:
        """Acquire a fencing-token lock (``TimeoutError`` when it stayed taken)."""
    def stream_publish(
        self,
        stream: _Arg,
        fields: Mapping[_Arg, _Arg] | None = None,
        *,
        payload: _Arg | None = None,
        maxlen: int | None = None,
    ) -> asyncio.Future[str]: ...
    def stream_read(
        self, stream: _Arg, from_id: str = "0", count: int = 100, block: _Seconds | None = None
    ) -> asyncio.Future[list[StreamEntry]]: ...
    def hash_set(
        self,
        hash: _Arg,
        field: _Arg,
        value: _Arg,
        *,
        timestamp: _Timestamp | None = None,
        channel: _Arg | None = None,
    ) -> asyncio.Future[None]: ...
    def hash_set_if_changed(self, hash: _Arg, field: _Arg, value: _Arg) -> asyncio.Future[bool]: ...
    def release_lock(self, lock: Lock) -> asyncio.Future[bool]:
        """Release ``lock``; ``False`` if it was no longer ours or released already."""
    def exec_batch(self, batch: Batch) -> asyncio.Future[list[_Reply]]:
        """Send what ``batch`` queued (it is empty afterwards); one result per command."""
    def stream_last(self, stream: _Arg) -> asyncio.Future[StreamEntry | None]: ...
    def stream_len(self, stream: _Arg) -> asyncio.Future[int]: ...
    def stream_group_create(self, stream: _Arg, group: _Arg, from_id: str = "$") -> asyncio.Future[bool]: ...
    def stream_pending(self, stream: _Arg, group: _Arg) -> asyncio.Future[PendingInfo]: ...
    def stream_dead_letters(self, stream: _Arg, count: int = 100) -> asyncio.Future[list[StreamEntry]]: ...
    def subscription_add(self, sub: Subscription, *names: _Arg) -> asyncio.Future[None]:
        """Subscribe ``sub`` to more names (recorded at once); resolves once the server
        confirmed them. A cancelled await leaves them subscribed."""
    def watch(self, *keys: _Arg) -> asyncio.Future[AsyncWatchSession]:
        """``WATCH keys`` on a connection of its own."""
    def watch_command(self, session: AsyncWatchSession, *args: _Arg) -> asyncio.Future[_Reply]:
        """Run a command now on the session's connection (cancelling gives the session
        up)."""
    def watch_exec(self, session: AsyncWatchSession) -> asyncio.Future[list[_Reply] | None]:
        """``MULTI``, the queued commands, ``EXEC``: one result per command, or ``None``
        when a watched key changed (nothing ran). The session is finished afterwards."""
    def rate_acquire(self, limiter: RateLimiter, n: int = 1) -> asyncio.Future[tuple[bool, float]]: ...
    def rate_acquire_wait(
        self, limiter: RateLimiter, n: int = 1, timeout: _Seconds | None = None
    ) -> asyncio.Future[bool]: ...
    def semaphore_acquire(self, semaphore: Semaphore, timeout: _Seconds | None = None) -> asyncio.Future[Permit]:
        """Take a permit (``TimeoutError`` if none came); cancelling leaves the queue."""
    def permit_release(self, permit: Permit) -> asyncio.Future[bool]: ...
    @staticmethod
    def _unraisable(exc: BaseException, obj: object = None) -> None:
        """Give ``exc`` of the callback ``obj`` to ``sys.unraisablehook``."""
    def closed(self) -> asyncio.Future[None]:
        """Resolves once the client is closed (cancelling it only stops waiting)."""
    def close(self) -> None:
        """Close the client: calls still waiting fail with ``ClosedError``."""

@final
class AsyncWatchSession:
    """An optimistic transaction's session of :class:`AsyncClient` (``watch``): what
    :class:`redipc.asyncio.WatchSession` is built on."""

    def queue(self, *args: _Arg) -> None:
        """Queue a command for the ``MULTI``/``EXEC`` at the end."""
    def close(self) -> None:
        """Give the session up (its connection and ``WATCH``); nothing queued runs."""

def keyslot(key: _Arg) -> int:
    """The Redis Cluster slot of ``key`` (0 to 16383), as the server's ``CLUSTER KEYSLOT``
    says: CRC16 of the key, or of its ``{hash tag}`` (``{user:42}:cart`` and
    ``{user:42}:orders`` share a slot). Computed locally, no server needed."""

def hash_tag_for_slot(slot: int) -> str:
    """A short hash tag whose keys land in ``slot``: ``f"{{{tag}}}:jobs"`` is in that slot
    (the same tag in every process), to put queues, streams or shard channels on chosen
    slots. ``InvalidArgument`` when ``slot`` is not in 0..16384."""
