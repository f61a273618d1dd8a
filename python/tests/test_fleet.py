"""Joining a redis-ipc fleet (issue 14): every convention played from the other side with
the raw commands the fleet's daemons send (``command()`` and ``subscribe()`` of a second
client), and checked both ways: Python receives what the fleet sends and produces what the
fleet reads, byte for byte."""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

import redipc
from conftest import RedisServer, names

Make = Callable[..., redipc.Client]


@pytest.fixture
def raw(make_client: Make, client: redipc.Client) -> redipc.Client:
    """The fleet's side: a second client that sends raw commands (after ``client``
    emptied the server)."""
    return make_client()


def wait_for(what: str, pred: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def next_message(sub: redipc.Subscription, timeout: float = 2) -> Optional[tuple[bytes, bytes]]:
    """The next message (channel, payload) of a raw subscription within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        m = sub.get(timeout=left)
        if m is None:
            return None
        if m.kind == "message":
            return m.channel, m.payload


def now_ms() -> int:
    return int(time.time() * 1000)


# --- request queues ---------------------------------------------------------------------


def test_a_bare_worker_takes_what_the_fleet_lpushes_from_several_lists(
    client: redipc.Client, raw: redipc.Client
) -> None:
    got: list[tuple[bytes, bytes]] = []
    with client.handle_requests(
        ["scooter:state", "scooter:seatbox"], lambda r: got.append((r.queue, r.payload)), bare=True
    ) as worker:
        assert worker.queues == [b"scooter:state", b"scooter:seatbox"]
        # The fleet's producers: LPUSH on the bare keys (like redis-cli LPUSH scooter:state lock).
        raw.command("LPUSH", "scooter:state", "lock")
        raw.command("LPUSH", "scooter:state", "unlock")
        raw.command("LPUSH", "scooter:seatbox", "open")
        wait_for("three requests", lambda: len(got) == 3)
    # FIFO per list; each request names the list it came from.
    assert [p for q, p in got if q == b"scooter:state"] == [b"lock", b"unlock"]
    assert (b"scooter:seatbox", b"open") in got
    # Consumed from the lists themselves; nothing of redipc's own was written next to them.
    assert raw.command("KEYS", "*") == []
    assert worker.stats().handled == 3


def test_send_request_bare_is_an_lpush_the_fleets_brpop_takes(
    client: redipc.Client, raw: redipc.Client
) -> None:
    client.send_request("scooter:blinker", b"left", bare=True)
    client.send_request("scooter:blinker", "right", bare=True)
    # The fleet's consumer: BRPOP on the bare key, FIFO.
    assert raw.command("BRPOP", "scooter:blinker", 2) == [b"scooter:blinker", b"left"]
    assert raw.command("BRPOP", "scooter:blinker", 2) == [b"scooter:blinker", b"right"]
    # Without bare the queue is redipc's own key, not the list of that name.
    client.send_request("scooter:blinker", b"x")
    assert raw.command("LLEN", "scooter:blinker") == 0
    assert client.queue_stats("scooter:blinker").pending == 1


def test_a_bare_queue_is_plain_only(client: redipc.Client) -> None:
    with pytest.raises(redipc.InvalidArgument, match="bare"):
        client.handle_requests("scooter:state", lambda r: None, bare=True, reliable=True)
    with pytest.raises(redipc.InvalidArgument, match="empty"):
        client.send_request("", b"x", bare=True)
    with pytest.raises(TypeError, match="not an instance of 'bool'" + names("bare")):
        client.handle_requests("scooter:state", lambda r: None, bare="yes")  # type: ignore[arg-type]


# --- RPC on the redis-ipc JSON wire ---------------------------------------------------


def fleet_call(
    raw: redipc.Client,
    list_: str,
    payload: Any,
    *,
    method: Optional[str] = None,
    deadline_ms: Optional[int] = None,
    wait: float = 2,
) -> Optional[dict[str, Any]]:
    """A fleet caller, by hand: SUBSCRIBE <list>:reply:<id> (confirmed), LPUSH the
    envelope, wait for the reply on that channel; ``None`` when none came."""
    id_ = uuid.uuid4().hex
    reply_channel = f"{list_}:reply:{id_}"
    with raw.subscribe(reply_channel) as sub:
        first = sub.get(timeout=2)
        assert first is not None and first.kind == "activated"
        env: dict[str, Any] = {
            "id": id_,
            "reply_channel": reply_channel,
            "deadline": now_ms() + 5000 if deadline_ms is None else deadline_ms,
            "payload": payload,
        }
        if method is not None:
            env["method"] = method
        raw.command("LPUSH", list_, json.dumps(env))
        got = next_message(sub, wait)
    if got is None:
        return None
    channel, body = got
    assert channel == reply_channel.encode()
    reply: dict[str, Any] = json.loads(body)
    return reply


def test_serve_answers_the_fleets_envelopes(client: redipc.Client, raw: redipc.Client) -> None:
    calls: list[redipc.Call] = []

    def speed(call: redipc.Call) -> Any:
        calls.append(call)
        req = json.loads(call.payload)
        if req == "none":
            return None
        if req == "text":
            return "not json"
        if req.get("fail") == "remote":
            raise redipc.RemoteError("cannot do that")
        if req.get("fail"):
            raise ValueError("too fast")
        return json.dumps({"speed": req["kmh"] * 2})

    with client.serve("motion:speed", speed, protocol="redis-ipc") as server:
        assert server.service == b"motion:speed"
        assert fleet_call(raw, "motion:speed", {"kmh": 21}) == {"ok": True, "payload": {"speed": 42}}
        assert calls[0].method == ""
        assert json.loads(calls[0].payload) == {"kmh": 21}
        assert abs(calls[0].deadline - time.time()) < 6
        # The error form: the handler's exception, or a RemoteError's message alone.
        assert fleet_call(raw, "motion:speed", {"fail": True}) == {
            "ok": False,
            "error": "ValueError: too fast",
        }
        assert fleet_call(raw, "motion:speed", {"fail": "remote"}) == {
            "ok": False,
            "error": "cannot do that",
        }
        # None is JSON null; a reply that is not JSON goes back as an error reply.
        assert fleet_call(raw, "motion:speed", "none") == {"ok": True, "payload": None}
        bad = fleet_call(raw, "motion:speed", "text")
        assert bad is not None and bad["ok"] is False
        assert "not JSON" in bad["error"]
        # An expired deadline: dropped without a reply, the handler not run.
        n = len(calls)
        assert fleet_call(raw, "motion:speed", {"kmh": 1}, deadline_ms=now_ms() - 10, wait=0.5) is None
        assert len(calls) == n
        # It is a plain consumer of the list: nothing else was written.
        assert raw.command("KEYS", "*") == []


def test_serve_methods_dispatches_the_fleets_method_field(
    client: redipc.Client, raw: redipc.Client
) -> None:
    methods = {
        "ping": lambda call: b'"pong"',
        "echo": lambda call: call.payload,
    }
    with client.serve_methods("motion:rpc", methods, protocol="redis-ipc", concurrency=2):
        assert fleet_call(raw, "motion:rpc", None, method="ping") == {"ok": True, "payload": "pong"}
        assert fleet_call(raw, "motion:rpc", [1, {"a": "b"}], method="echo") == {
            "ok": True,
            "payload": [1, {"a": "b"}],
        }
        assert fleet_call(raw, "motion:rpc", None, method="jump") == {
            "ok": False,
            "error": "unknown method: jump",
        }
        # A Python caller on the same wire.
        assert client.call("motion:rpc", "{}", method="ping", protocol="redis-ipc") == b'"pong"'
        with pytest.raises(redipc.RemoteError, match="unknown method: jump"):
            client.call("motion:rpc", "{}", method="jump", protocol="redis-ipc")


def test_call_speaks_the_fleets_wire_to_a_fleet_server(
    client: redipc.Client, raw: redipc.Client
) -> None:
    result: dict[str, Any] = {}

    def call(**kw: Any) -> None:
        try:
            result["reply"] = client.call("nav:route", protocol="redis-ipc", timeout=5, **kw)
        except redipc.RedipcError as e:
            result["error"] = e

    # With a method: the fleet's server BRPOPs the envelope and PUBLISHes the reply.
    t = threading.Thread(target=call, kwargs={"payload": json.dumps({"to": "home"}), "method": "plan"})
    before = now_ms()
    t.start()
    popped = raw.command("BRPOP", "nav:route", 5)
    assert popped is not None and popped[0] == b"nav:route"
    env = json.loads(popped[1])
    assert set(env) == {"id", "method", "reply_channel", "deadline", "payload"}
    assert re.fullmatch(r"[0-9a-f]{32}", env["id"])
    assert env["method"] == "plan"
    assert env["reply_channel"] == f"nav:route:reply:{env['id']}"
    assert env["payload"] == {"to": "home"}
    assert before + 4900 <= env["deadline"] <= now_ms() + 5100
    raw.command("PUBLISH", env["reply_channel"], '{"ok":true,"payload":[1,2,3]}')
    t.join(10)
    assert result == {"reply": b"[1,2,3]"}

    # Without a method the field is left out; the error form is a RemoteError.
    result.clear()
    t = threading.Thread(target=call, kwargs={"payload": b"1"})
    t.start()
    popped = raw.command("BRPOP", "nav:route", 5)
    env = json.loads(popped[1])
    assert "method" not in env and env["payload"] == 1
    raw.command("PUBLISH", env["reply_channel"], '{"ok":false,"error":"no route"}')
    t.join(10)
    err = result["error"]
    assert isinstance(err, redipc.RemoteError) and "no route" in str(err)

    # A reply without a payload is null.
    result.clear()
    t = threading.Thread(target=call, kwargs={"payload": "null"})
    t.start()
    env = json.loads(raw.command("BRPOP", "nav:route", 5)[1])
    raw.command("PUBLISH", env["reply_channel"], '{"ok":true}')
    t.join(10)
    assert result == {"reply": b"null"}


def test_an_expired_call_gets_no_reply_and_the_caller_times_out(
    client: redipc.Client, raw: redipc.Client
) -> None:
    # A fleet server that takes the request but answers only after its deadline: nothing
    # reaches the caller, which raises TimeoutError at its own timeout.
    def late_server() -> None:
        popped = raw.command("BRPOP", "nav:slow", 5)
        env = json.loads(popped[1])
        time.sleep(max(0, env["deadline"] - now_ms()) / 1000 + 0.1)
        raw.command("PUBLISH", env["reply_channel"], '{"ok":true,"payload":1}')

    t = threading.Thread(target=late_server)
    t.start()
    start = time.monotonic()
    with pytest.raises(redipc.TimeoutError):
        client.call("nav:slow", "1", timeout=0.3, protocol="redis-ipc")
    assert 0.25 < time.monotonic() - start < 2
    t.join(10)
    # Nobody at all: a timeout too, and the request is taken back from the list.
    with pytest.raises(redipc.TimeoutError):
        client.call("nav:nobody", "1", timeout=0.2, protocol="redis-ipc")
    assert raw.command("LLEN", "nav:nobody") == 0
    # A redipc server drops a request whose deadline passed while it was busy.
    gate = threading.Event()
    ran: list[bytes] = []

    def handler(call: redipc.Call) -> bytes:
        ran.append(call.payload)
        gate.wait(5)
        return b"true"

    with client.serve("nav:busy", handler, protocol="redis-ipc") as server:
        busy = threading.Thread(target=lambda: client.call("nav:busy", "1", protocol="redis-ipc"))
        busy.start()
        wait_for("the first call to run", lambda: ran == [b"1"])
        # Queued behind it with a deadline that passes before the server is free.
        raw.command(
            "LPUSH", "nav:busy",
            json.dumps({"id": "0" * 32, "reply_channel": "nav:busy:reply:" + "0" * 32,
                        "deadline": now_ms() + 50, "payload": 2}),
        )
        time.sleep(0.2)
        gate.set()
        busy.join(10)
        wait_for("both requests taken", lambda: server.stats().handled == 2)
    assert ran == [b"1"]


def test_16_concurrent_callers_each_get_their_own_reply(
    client: redipc.Client, raw: redipc.Client, make_client: Make
) -> None:
    def double(call: redipc.Call) -> bytes:
        return json.dumps({"n": json.loads(call.payload)["n"] * 2}).encode()

    results: dict[int, Any] = {}

    def caller(c: redipc.Client, list_: str, i: int) -> None:
        try:
            results[i] = json.loads(c.call(list_, json.dumps({"n": i}), protocol="redis-ipc"))
        except Exception as e:  # noqa: BLE001 - the assertion below shows it
            results[i] = e

    def run_all(c: redipc.Client, list_: str) -> None:
        results.clear()
        threads = [threading.Thread(target=caller, args=(c, list_, i)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert results == {i: {"n": i * 2} for i in range(16)}

    # Python callers, a Python server.
    with client.serve("calc:double", double, protocol="redis-ipc", concurrency=4):
        run_all(make_client(), "calc:double")

    # Python callers, a fleet server played by hand: replies published in reverse order.
    def fleet_server() -> None:
        envs = [json.loads(raw.command("BRPOP", "calc:fleet", 5)[1]) for _ in range(16)]
        for env in reversed(envs):
            reply = {"ok": True, "payload": {"n": env["payload"]["n"] * 2}}
            raw.command("PUBLISH", env["reply_channel"], json.dumps(reply))

    t = threading.Thread(target=fleet_server)
    t.start()
    run_all(client, "calc:fleet")
    t.join(10)


def test_redis_ipc_payloads_are_json_and_checked_before_sending(
    client: redipc.Client, raw: redipc.Client
) -> None:
    with pytest.raises(redipc.InvalidArgument, match="not JSON"):
        client.call("motion:speed", b"not json", protocol="redis-ipc")
    assert raw.command("LLEN", "motion:speed") == 0
    with pytest.raises(redipc.InvalidArgument, match="fail_fast"):
        client.call("motion:speed", b"1", protocol="redis-ipc", fail_fast=True)
    with pytest.raises(redipc.InvalidArgument, match="redis-ipc"):
        client.call("motion:speed", b"1", protocol="json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected 'redipc' or 'redis-ipc', not int" + names("protocol")):
        client.serve("motion:speed", lambda c: None, protocol=1)  # type: ignore[arg-type]
    # The default wire is redipc's own: nothing is pushed to the bare list.
    with pytest.raises(redipc.NoServerError):
        client.call("motion:speed", b"x", timeout=0.1, protocol="redipc")
    assert raw.command("LLEN", "motion:speed") == 0


# --- hash state -------------------------------------------------------------------------


class Seen:
    """What a watcher delivered: ``"field=value"``, ``"field=<gone>"``, ``"event:payload"``."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.lock = threading.Lock()

    def field(self, field: bytes, value: Optional[bytes]) -> None:
        with self.lock:
            self.items.append(f"{field.decode()}={'<gone>' if value is None else value.decode()}")

    def event(self, payload: bytes) -> None:
        with self.lock:
            self.items.append(f"event:{payload.decode()}")

    def now(self) -> list[str]:
        with self.lock:
            return list(self.items)


@pytest.fixture
def seen() -> Iterator[Seen]:
    yield Seen()


def fleet_set(raw: redipc.Client, hash_: str, field: str, value: str, channel: Optional[str] = None) -> None:
    """The fleet's write: HSET, then PUBLISH the field on the hash's channel."""
    raw.command("HSET", hash_, field, value)
    raw.command("PUBLISH", channel or hash_, field)


def test_every_notification_delivers_a_repeated_value(
    client: redipc.Client, raw: redipc.Client, seen: Seen
) -> None:
    raw.command("HSET", "keycard", "uid", "04ab")
    with client.hash_watch("keycard", on_any=seen.field, every_notification=True):
        wait_for("the initial sync", lambda: seen.now() == ["uid=04ab"])
        # The same card tapped twice: two notifications, two deliveries.
        fleet_set(raw, "keycard", "uid", "04ab")
        fleet_set(raw, "keycard", "uid", "04ab")
        wait_for("both taps", lambda: seen.now() == ["uid=04ab"] * 3)
        # A notification of a field that is missing now reads as deleted.
        raw.command("HDEL", "keycard", "uid")
        raw.command("PUBLISH", "keycard", "uid")
        wait_for("the deletion", lambda: seen.now()[-1:] == ["uid=<gone>"])

    # redipc's default: a value already delivered is not delivered again.
    other = Seen()
    raw.command("HSET", "dedupe", "a", "1")
    with client.hash_watch("dedupe", on_any=other.field, on_event=other.event):
        wait_for("the initial sync", lambda: other.now() == ["a=1"])
        raw.command("PUBLISH", "dedupe", "a")
        raw.command("PUBLISH", "dedupe", "ping")
        wait_for("the event after it", lambda: len(other.now()) == 2)
    assert other.now() == ["a=1", "event:ping"]


def test_payloads_that_are_not_fields_go_to_on_event(
    client: redipc.Client, raw: redipc.Client, seen: Seen
) -> None:
    fleet_set(raw, "seatbox", "state", "closed")
    with client.hash_watch(
        "seatbox", on_field={"state": seen.field}, on_event=seen.event, every_notification=True
    ):
        wait_for("the initial sync", lambda: seen.now() == ["state=closed"])
        raw.command("PUBLISH", "seatbox", "seatbox:opened")
        fleet_set(raw, "seatbox", "state", "open")
        raw.command("PUBLISH", "seatbox", "fault")
        wait_for(
            "the events in order",
            lambda: seen.now() == ["state=closed", "event:seatbox:opened", "state=open", "event:fault"],
        )
    # Without on_event they are ignored.
    other = Seen()
    with client.hash_watch("seatbox", on_any=other.field):
        raw.command("PUBLISH", "seatbox", "seatbox:opened")
        fleet_set(raw, "seatbox", "state", "closed")
        wait_for("the change", lambda: other.now()[-1:] == ["state=closed"])
    assert other.now() == ["state=open", "state=closed"]


def test_replaced_and_cleared_reread_the_hash_and_report_deletions(
    client: redipc.Client, raw: redipc.Client, seen: Seen
) -> None:
    raw.command("HSET", "vehicle", "state", "parked", "kickstand", "down")
    with client.hash_watch("vehicle", on_any=seen.field, on_event=seen.event):
        wait_for("the initial sync", lambda: len(seen.now()) == 2)
        # The fleet's replace-all: DEL, HSETs, PUBLISH replaced.
        raw.command("DEL", "vehicle")
        raw.command("HSET", "vehicle", "state", "ready", "blinker", "off")
        raw.command("PUBLISH", "vehicle", "replaced")
        wait_for("the re-read", lambda: len(seen.now()) == 5)
        assert sorted(seen.now()[2:]) == ["blinker=off", "kickstand=<gone>", "state=ready"]
        # The fleet's clear: DEL, PUBLISH cleared.
        raw.command("DEL", "vehicle")
        raw.command("PUBLISH", "vehicle", "cleared")
        wait_for("the clear", lambda: len(seen.now()) == 7)
        assert sorted(seen.now()[5:]) == ["blinker=<gone>", "state=<gone>"]
        # Python's own clear and replace-all in the fleet's words, seen the same way.
        client.hash_replace_all("vehicle", {"state": "off"}, announce="replaced")
        wait_for("the replace", lambda: seen.now()[-1:] == ["state=off"])
        client.hash_clear("vehicle")
        wait_for("the clear", lambda: seen.now()[-1:] == ["state=<gone>"])
    assert not any(s.startswith("event:") for s in seen.now())


def test_a_watcher_follows_a_custom_channel(
    client: redipc.Client, raw: redipc.Client, seen: Seen
) -> None:
    with client.hash_watch("battery:0", on_any=seen.field, channel="battery", initial_sync=False):
        fleet_set(raw, "battery:0", "charge", "80", channel="battery")
        wait_for("the change", lambda: seen.now() == ["charge=80"])
        # The hash's own channel is not followed.
        fleet_set(raw, "battery:0", "charge", "79")
        time.sleep(0.2)
        assert seen.now() == ["charge=80"]
        fleet_set(raw, "battery:0", "charge", "78", channel="battery")
        wait_for("the second change", lambda: len(seen.now()) == 2)
    assert seen.now() == ["charge=80", "charge=78"]


RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_hash_writes_in_the_fleets_words(client: redipc.Client, raw: redipc.Client) -> None:
    with raw.subscribe("vehicle", "battery", "blinker") as sub:

        def msg() -> Optional[tuple[bytes, bytes]]:
            return next_message(sub, 2)

        # A plain write: HSET + PUBLISH <hash> <field>.
        client.hash_set("vehicle", "state", "ready")
        assert msg() == (b"vehicle", b"state")
        assert raw.command("HGETALL", "vehicle") == {b"state": b"ready"}

        # Timestamps: True is RFC 3339 UTC, "unix_ms" Unix milliseconds.
        for stamp in (True, "rfc3339"):
            before = datetime.datetime.now(datetime.timezone.utc)
            client.hash_set("vehicle", "state", "parked", timestamp=stamp)
            assert msg() == (b"vehicle", b"state")
            ts = raw.command("HGET", "vehicle", "state:timestamp").decode()
            assert RFC3339_MS.fullmatch(ts), ts
            when = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc
            )
            assert before - datetime.timedelta(seconds=1) <= when <= before + datetime.timedelta(seconds=5)
        before_ms = now_ms()
        client.hash_set("vehicle", "state", "ready", timestamp="unix_ms")
        assert msg() == (b"vehicle", b"state")
        ts_ms = int(raw.command("HGET", "vehicle", "state:timestamp"))
        assert before_ms <= ts_ms <= now_ms()
        # timestamp=False: no timestamp field is written.
        client.hash_set("other", "x", "1", timestamp=False)
        assert raw.command("HKEYS", "other") == [b"x"]

        # Another channel.
        client.hash_set("battery:0", "charge", 80, channel="battery")
        assert msg() == (b"battery", b"charge")

        # Several fields with one announcement word, stamped, on another channel.
        client.hash_set_many(
            "vehicle",
            {"blinker:left": "on", "blinker:right": "off"},
            announce="blinker:state",
            channel="blinker",
            timestamp="unix_ms",
        )
        assert msg() == (b"blinker", b"blinker:state")
        fields = raw.command("HGETALL", "vehicle")
        assert fields[b"blinker:left"] == b"on" and fields[b"blinker:right"] == b"off"
        assert int(fields[b"blinker:left:timestamp"]) >= before_ms
        assert int(fields[b"blinker:right:timestamp"]) >= before_ms
        # Each field (redipc's default), or "*" with summary.
        client.hash_set_many("vehicle", {"a": 1, "b": 2})
        assert [msg(), msg()] == [(b"vehicle", b"a"), (b"vehicle", b"b")]
        client.hash_set_many("vehicle", {"a": 3}, summary=True)
        assert msg() == (b"vehicle", b"*")

        # Delete: HDEL + PUBLISH <field> (on the channel given).
        assert client.hash_delete("battery:0", "charge", channel="battery") is True
        assert msg() == (b"battery", b"charge")
        assert client.hash_delete("battery:0", "charge", channel="battery") is False

        # Replace-all: DEL + HSETs + PUBLISH replaced; redipc's default word is "*".
        client.hash_replace_all("vehicle", {"state": "off"}, announce="replaced", timestamp=True)
        assert msg() == (b"vehicle", b"replaced")
        fields = raw.command("HGETALL", "vehicle")
        assert set(fields) == {b"state", b"state:timestamp"} and fields[b"state"] == b"off"
        client.hash_replace_all("vehicle", {"state": "on"})
        assert msg() == (b"vehicle", b"*")
        assert raw.command("HGETALL", "vehicle") == {b"state": b"on"}

        # Clear: DEL + PUBLISH cleared (or another word, on another channel).
        client.hash_clear("vehicle")
        assert msg() == (b"vehicle", b"cleared")
        assert raw.command("EXISTS", "vehicle") == 0
        raw.command("HSET", "battery:0", "charge", "5")
        client.hash_clear("battery:0", channel="battery", announce="reset")
        assert msg() == (b"battery", b"reset")
        assert raw.command("EXISTS", "battery:0") == 0
        assert msg() is None


def test_hash_write_arguments(client: redipc.Client) -> None:
    with pytest.raises(TypeError, match="summary"):
        client.hash_set_many("h", {"a": 1}, True, announce="x")
    with pytest.raises(redipc.InvalidArgument, match="unix_ms"):
        client.hash_set("h", "f", "v", timestamp="iso")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a bool, 'rfc3339' or 'unix_ms', not int" + names("timestamp")):
        client.hash_set("h", "f", "v", timestamp=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected bytes.*not list" + names("channel")):
        client.hash_delete("h", "f", channel=[])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a callable" + names("on_event")):
        client.hash_watch("h", on_event=5)  # type: ignore[arg-type]


# --- faults -----------------------------------------------------------------------------


def test_faults_set_and_clear_in_the_set_the_stream_and_the_channel(
    client: redipc.Client, raw: redipc.Client
) -> None:
    with raw.subscribe("battery:0") as sub:
        assert client.fault_set("battery:0", 35, "too hot") is True
        assert client.fault_set("battery:0", 35, "too hot") is False  # already set: nothing more
        assert raw.command("SMEMBERS", "battery:0:fault") in ({b"35"}, [b"35"])
        assert next_message(sub) == (b"battery:0", b"fault")
        assert client.fault_clear("battery:0", 35) is True
        assert client.fault_clear("battery:0", 35) is False
        assert next_message(sub) == (b"battery:0", b"fault")
        assert next_message(sub, 0.2) is None, "one message each"
    assert raw.command("SCARD", "battery:0:fault") == 0
    entries = raw.command("XRANGE", "events:faults", "-", "+")
    assert [e[1] for e in entries] == [
        [b"group", b"battery:0", b"code", b"35", b"description", b"too hot"],
        [b"group", b"battery:0", b"code", b"-35"],
    ]
    with pytest.raises(redipc.InvalidArgument, match="positive"):
        client.fault_set("battery:0", 0, "x")
    with pytest.raises(redipc.InvalidArgument):
        client.fault_clear("", 1)
    with pytest.raises(TypeError, match="integer" + names("code")):
        client.fault_set("battery:0", "35", "x")  # type: ignore[arg-type]


# --- a server without CONFIG ------------------------------------------------------------


def test_a_server_without_config_works_and_watch_keys_says_why(no_config_server: RedisServer) -> None:
    with redipc.Client(no_config_server.unix_url) as c:
        with pytest.raises(redipc.ResponseError):
            c.command("CONFIG", "GET", "notify-keyspace-events")
        assert c.set("k", "v") and c.get("k") == b"v"
        with c.subscribe("ch") as sub:
            c.publish("ch", "x")
            assert next_message(sub) == (b"ch", b"x")
        seen = Seen()
        with c.hash_watch("h", on_any=seen.field, initial_sync=False):
            c.hash_set("h", "f", "1")
            wait_for("the change", lambda: seen.now() == ["f=1"])
        with c.serve("svc", lambda call: call.payload, protocol="redis-ipc"):
            assert c.call("svc", "[1]", protocol="redis-ipc") == b"[1]"
        with pytest.raises(redipc.UnsupportedError) as e:
            c.watch_keys("k*", lambda key, event: None, ["set"])
        text = str(e.value)
        assert "CONFIG" in text and "notify-keyspace-events" in text and "configure_server" in text
        # Not configuring the server is allowed (nothing arrives unless it is configured).
        c.watch_keys("k*", lambda key, event: None, ["set"], configure_server=False).stop()
