"""The exception tree and which error each failure raises."""

from __future__ import annotations

import builtins
import pickle
import threading
import time

import pytest

import redipc
from conftest import names
from redipc import _native


def test_hierarchy() -> None:
    kinds = [
        redipc.ConnectionError,
        redipc.TimeoutError,
        redipc.ResponseError,
        redipc.ProtocolError,
        redipc.InvalidArgument,
        redipc.ClosedError,
        redipc.UnsupportedError,
        redipc.WatchError,
        redipc.RemoteError,
        redipc.NoServerError,
        redipc.HandlerError,
        redipc.AbortedError,
    ]
    assert issubclass(redipc.RedipcError, Exception)
    for k in kinds:
        assert issubclass(k, redipc.RedipcError)
        assert k.__module__ == "redipc._native"
        assert getattr(_native, k.__name__) is k
    assert issubclass(redipc.ConnectionError, builtins.ConnectionError)
    assert issubclass(redipc.TimeoutError, builtins.TimeoutError)
    assert issubclass(redipc.InvalidArgument, ValueError)
    assert not issubclass(redipc.ResponseError, OSError)
    assert redipc.ResponseError.code is None
    assert set(redipc.__all__) == {k.__name__ for k in kinds} | {
        "Client",
        "Message",
        "Subscription",
        "SubscriptionGroup",
        "SubscriptionStats",
        # Batches (pipelines and transactions are one class), request queues, RPC.
        "Batch",
        "Pipeline",
        "Transaction",
        "WatchSession",
        "Request",
        "Worker",
        "WorkerStats",
        "QueueCounts",
        "DeadLetter",
        "Call",
        "RpcServer",
        # Streams, shared state, locks, keyspace notifications.
        "StreamEntry",
        "StreamFollower",
        "StreamConsumer",
        "ConsumerStats",
        "PendingInfo",
        "HashWatcher",
        "Lock",
        "KeyspaceWatch",
        "Report",
        # Coordination: rate limiters, semaphores, scripts, the service registry.
        "RateLimiter",
        "Semaphore",
        "Permit",
        "Script",
        "Instance",
        # Observability.
        "ClientStats",
        "LatencyStats",
        "NodeStats",
        "RedipcError",
        # Redis Cluster helpers (functions).
        "keyslot",
        "hash_tag_for_slot",
        "__version__",
    }


def test_version() -> None:
    assert redipc.__version__.count(".") == 2


def test_unreachable_server_raises_connection_error_in_time() -> None:
    start = time.monotonic()
    with pytest.raises(redipc.ConnectionError) as e:
        redipc.Client("redis://127.0.0.1:1", connect_timeout=1)
    assert time.monotonic() - start < 1.5
    assert "127.0.0.1:1" in str(e.value)
    assert isinstance(e.value, builtins.ConnectionError)


def test_missing_unix_socket_raises_connection_error(tmp_path) -> None:
    with pytest.raises(redipc.ConnectionError):
        redipc.Client(f"unix://{tmp_path}/nothing.sock", connect_timeout=1)


def test_wrongtype(client: redipc.Client) -> None:
    client.rpush("list", "a")
    with pytest.raises(redipc.ResponseError) as e:
        client.get("list")
    err = e.value
    assert err.code == "WRONGTYPE"
    assert "Operation against a key holding the wrong kind of value" in str(err)
    assert "Operation against a key holding the wrong kind of value" in err.message
    assert str(err).startswith("GET list: WRONGTYPE ")
    assert "GET list" in str(err)
    # The client goes on working.
    assert client.lpop("list") == b"a"


def test_unknown_command(client: redipc.Client) -> None:
    with pytest.raises(redipc.ResponseError) as e:
        client.command("NOSUCHCOMMAND", "x")
    assert e.value.code == "ERR"
    assert "unknown command" in str(e.value)


def test_exception_pickles(client: redipc.Client) -> None:
    client.rpush("list", "a")
    with pytest.raises(redipc.ResponseError) as e:
        client.get("list")
    copy = pickle.loads(pickle.dumps(e.value))
    assert type(copy) is redipc.ResponseError
    assert copy.code == "WRONGTYPE" and str(copy) == str(e.value)


@pytest.mark.parametrize(
    "url",
    ["", "localhost:6379", "http://example.invalid", "redis://", "redis://h:notaport"],
)
def test_invalid_url(url: str) -> None:
    with pytest.raises(redipc.InvalidArgument) as e:
        redipc.Client(url)
    assert isinstance(e.value, ValueError)


def test_url_must_be_str() -> None:
    with pytest.raises(TypeError):
        redipc.Client(b"redis://127.0.0.1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"connect_timeout": 0},
        {"response_timeout": -1},
        {"response_timeout": float("inf")},
        {"database": -1},
        {"max_value_size": 0},
        {"io_threads": 0},
        {"client_name": ""},
        {"health_check_interval": 0},  # off: only over a unix socket
        {"health_check_interval": 0.005},
        {"direct_connections": 257},
        {"direct_connections": -1},
    ],
)
def test_invalid_options(server, options: dict) -> None:
    with pytest.raises(redipc.InvalidArgument):
        redipc.Client(server.tcp_url, **options)


def test_health_check_off_over_a_unix_socket(server) -> None:
    with redipc.Client(server.unix_url, health_check_interval=0) as c:
        sub = c.subscribe("hc-off")
        c.publish("hc-off", "x")
        assert sub.get(timeout=2) is not None
        sub.close()


def test_direct_connections(server) -> None:
    # Off: every call of every thread takes the one shared connection (a batch always does).
    with redipc.Client(server.unix_url, direct_connections=0) as c:
        shared = c.pipeline().add("CLIENT", "ID").exec()[0]
        seen: set[int] = set()

        def calls() -> None:
            for _ in range(100):
                seen.add(c.command("CLIENT", "ID"))

        threads = [threading.Thread(target=calls) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {shared}
    # On (the default): a lone caller's commands take a connection of their own.
    with redipc.Client(server.unix_url) as c:
        shared = c.pipeline().add("CLIENT", "ID").exec()[0]
        end = time.monotonic() + 5  # the first calls take the shared one while it is dialled
        while c.command("CLIENT", "ID") == shared:
            assert time.monotonic() < end, "no direct connection within 5 s"
            time.sleep(0.01)


def test_option_types(server) -> None:
    with pytest.raises(TypeError, match="expected a number of seconds" + names("connect_timeout")):
        redipc.Client(server.tcp_url, connect_timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        redipc.Client(server.tcp_url, database="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        redipc.Client(server.tcp_url, resp3=1)  # type: ignore[arg-type]


def test_io_threads_conflict(make_client) -> None:
    make_client()  # the process runtime exists now, with 1 thread unless asked otherwise
    make_client(io_threads=1)
    with pytest.raises(redipc.InvalidArgument, match="io_threads"):
        make_client(io_threads=3)


def test_empty_command(client: redipc.Client) -> None:
    with pytest.raises(redipc.InvalidArgument, match="empty command"):
        client.command()
    with pytest.raises(redipc.InvalidArgument, match="empty command name"):
        client.command("")


def test_response_timeout(make_client, transport: str) -> None:
    c = make_client(transport, response_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(redipc.TimeoutError) as e:
        c.command("DEBUG", "SLEEP", "1")
    assert time.monotonic() - start < 0.9
    assert isinstance(e.value, builtins.TimeoutError)
    # Once the server is done sleeping, the client answers again.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert c.ping()
            break
        except redipc.RedipcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
