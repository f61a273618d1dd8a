"""redipc: inter-process communication over Redis, on one Rust core.

The native module ``redipc._native`` does the work; this package re-exports it.
"""

from ._native import (
    Client,
    ClosedError,
    ConnectionError,
    InvalidArgument,
    Message,
    ProtocolError,
    RedipcError,
    ResponseError,
    Subscription,
    SubscriptionGroup,
    SubscriptionStats,
    TimeoutError,
    UnsupportedError,
    WatchError,
    __version__,
)

__all__ = [
    "Client",
    "ClosedError",
    "ConnectionError",
    "InvalidArgument",
    "Message",
    "ProtocolError",
    "RedipcError",
    "ResponseError",
    "Subscription",
    "SubscriptionGroup",
    "SubscriptionStats",
    "TimeoutError",
    "UnsupportedError",
    "WatchError",
    "__version__",
]
