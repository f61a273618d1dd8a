"""Type stubs of ``redipc._native``, the Rust extension behind the ``redipc`` package."""

import builtins
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union, final

from typing_extensions import Self, TypeAlias

__version__: str

_Arg: TypeAlias = Union[bytes, bytearray, memoryview, str, int, float]
"""A command argument. ``str`` is sent as UTF-8; ``int`` and ``float`` as their decimal
text (``repr``), like redis-py. ``bool`` and anything else raise ``TypeError``."""

_Seconds: TypeAlias = Union[float, int, datetime.timedelta]
"""A duration: a number of seconds or a ``timedelta``; must be finite and not negative."""

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
    ) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object = None, exc_value: object = None, traceback: object = None) -> bool: ...
    def close(self) -> None:
        """Close the client: later calls raise ``ClosedError``. Closing again does nothing."""
    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
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
