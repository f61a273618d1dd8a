"""The Python client process of bench/soak: the twin of bench/c/soak_client.c.

    soak_client.py --role main|victim --name NAME --url URL --ledger FILE [--peers A,B]
                   [--scale X]

Every role serves the reliable queue soak-q, the RPC service soak-rpc and the group soak-g
of the stream soak-s; a "main" also produces every pattern (requests, calls, stream entries,
pub/sub messages, hash writes, locked and fenced writes, commands and transactions),
subscribes to the peers' channels (one pattern subscription, soak:ps:*) and watches their
hashes. What happens goes to the ledger, one os.write per line (a SIGKILL loses nothing
written). SIGUSR1: stop producing (final hash values, then "PRODUCED"); SIGTERM: stop,
write the summary ("J" line) and exit. See docs/RELIABILITY.md, "Soak".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time

import redipc

QUEUE = "soak-q"
SERVICE = "soak-rpc"
STREAM = "soak-s"
GROUP = "soak-g"
LOCK = "soak-lock"
FENCE_KEY = "soak:fence"
NFIELDS = 4
RESPONSE_TIMEOUT = 3.0
CALL_TIMEOUT = 2.0
LOCK_TTL = 2.0
LOCK_WAIT = 1.0
FENCE_SCRIPT = (
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0"
)

# The same groups as the C client's (its result codes / 100).
ERROR_GROUPS = {
    "ConnectionError": "connection",
    "TimeoutError": "timeout",
    "ResponseError": "server",
    "ProtocolError": "protocol",
    "ClosedError": "closed",
    "InvalidArgument": "invalid",
    "WatchError": "tx",
    "AbortedError": "tx",
    "RemoteError": "rpc",
    "NoServerError": "rpc",
    "HandlerError": "rpc",
}


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name
        self.url: str = args.url
        self.main = args.role == "main"
        self.scale: float = args.scale
        self.peers = [p for p in args.peers.split(",") if p]
        self.fd = os.open(args.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.mu = threading.Lock()
        self.counters: dict[str, int] = {}
        self.ops: dict[str, dict[str, int]] = {}
        self.limits = {
            "send_request": RESPONSE_TIMEOUT,
            "call": CALL_TIMEOUT,
            "stream_publish": RESPONSE_TIMEOUT,
            "publish": RESPONSE_TIMEOUT,
            "hash_set": RESPONSE_TIMEOUT,
            "lock": LOCK_WAIT + RESPONSE_TIMEOUT,
            "incr": RESPONSE_TIMEOUT,
            "tx": RESPONSE_TIMEOUT,
            "set": RESPONSE_TIMEOUT,
            "get": RESPONSE_TIMEOUT,
            "fence": RESPONSE_TIMEOUT,
            "lock_release": RESPONSE_TIMEOUT,
        }
        for op, limit in self.limits.items():
            self.ops[op] = {"n": 0, "late": 0, "max_ms": 0, "limit_ms": int(limit * 1000)}
        self.producing = threading.Event()
        self.producing.set()
        # pub/sub: per channel, the last sequence number and whether a disconnect came since
        self.chan_last: dict[bytes, int] = {}
        self.chan_disc: dict[bytes, bool] = {}
        self.hash_last: dict[str, list[int]] = {}

    def ledger(self, line: str) -> None:
        """One line, "TAG WALL_MS rest", in one os.write (survives SIGKILL)."""
        tag, _, rest = line.partition(" ")
        stamped = f"{tag} {int(time.time() * 1000)}" + (f" {rest}" if rest else "")
        try:
            os.write(self.fd, (stamped + "\n").encode())
        except OSError:
            pass

    def count(self, name: str, by: int = 1) -> None:
        with self.mu:
            self.counters[name] = self.counters.get(name, 0) + by

    def op(self, name: str, t0: float, exc: BaseException | None) -> None:
        dt_ms = int((time.monotonic() - t0) * 1000)
        group = "ok" if exc is None else ERROR_GROUPS.get(type(exc).__name__, "internal")
        with self.mu:
            s = self.ops[name]
            s["n"] += 1
            s[group] = s.get(group, 0) + 1
            s["max_ms"] = max(s["max_ms"], dt_ms)
            if dt_ms > s["limit_ms"] + 1000:
                s["late"] += 1

    def pace(self, rate: float) -> None:
        time.sleep(1.0 / (rate * self.scale))


S: State


def timed(op: str, fn, *args, **kwargs):
    """Run one call, record its outcome; returns (value, exception)."""
    t0 = time.monotonic()
    try:
        value = fn(*args, **kwargs)
    except redipc.RedipcError as e:
        S.op(op, t0, e)
        return None, e
    S.op(op, t0, None)
    return value, None


# --- reports -----------------------------------------------------------------------------------


def on_report(r: redipc.Report) -> None:
    S.count("report_" + r.kind, r.count if r.kind in ("dead_lettered", "recovered") and r.count else 1)
    if r.kind != "handler_failed":
        S.ledger("R " + r.text.replace("\n", " "))


# --- serving -----------------------------------------------------------------------------------


def victim_delay() -> None:
    if not S.main:
        time.sleep(random.random() * 0.008)


def on_request(req: redipc.Request) -> None:
    payload = req.payload.decode()
    if payload.startswith("F ") and req.attempt == 0:
        S.count("q_failed_on_purpose")
        raise RuntimeError("failing the first attempt on purpose")
    victim_delay()
    S.ledger(f"QH {payload[2:]} {req.attempt} {S.name}")
    S.count("q_handled")
    victim_delay()


def on_call(call: redipc.Call) -> bytes:
    victim_delay()
    S.count("rpc_served")
    return b"echo:" + call.payload + b"|" + S.name.encode()


def on_entry(entry: redipc.StreamEntry) -> None:
    eid = entry.get("id", b"?").decode()
    if entry.get("fail") == b"1" and entry.deliveries <= 1:
        S.count("x_failed_on_purpose")
        raise RuntimeError("failing the first delivery on purpose")
    victim_delay()
    S.ledger(f"XH {eid} {entry.deliveries} {entry.id} {S.name}")
    S.count("x_handled")


def ignore_error(_e: BaseException) -> None:
    pass


# --- pub/sub and hash watch --------------------------------------------------------------------


def on_message(m: redipc.Message) -> None:
    if m.kind == "disconnected":
        S.count("sub_disconnected")
        for ch in S.chan_disc:
            S.chan_disc[ch] = True
        S.ledger(f"PD {m.error}")
        return
    if m.kind == "reactivated":
        S.count("sub_reactivated")
        S.ledger("PR")
        return
    if m.kind == "activated":
        S.count("sub_activated")
        return
    S.count("sub_messages")
    ch = m.channel
    if ch not in S.chan_last:
        return
    seq = int(m.payload)
    last = S.chan_last[ch]
    if last >= 0:
        if seq <= last:
            S.count("sub_out_of_order")
            S.ledger(f"PO {ch.decode()} {last} {seq}")
        elif seq != last + 1:
            disc = S.chan_disc[ch]
            S.count("sub_gaps_announced" if disc else "sub_gaps_unannounced")
            S.ledger(f"PG {ch.decode()} {last + 1} {seq - 1} {int(disc)}")
    S.chan_last[ch] = seq
    S.chan_disc[ch] = False


def make_field_cb(hash_name: str):
    def on_field(field: bytes, value: bytes | None) -> None:
        if value is None or len(field) != 2 or field[:1] != b"f":
            return
        f = field[1] - ord("0")
        if not 0 <= f < NFIELDS:
            return
        v = int(value)
        S.count("hash_seen")
        with S.mu:
            last = S.hash_last[hash_name]
            before = last[f]
            if v >= before:
                last[f] = v
        if v < before:
            S.count("hash_backwards")
            S.ledger(f"HB {hash_name} f{f} {before} {v}")

    return on_field


def on_hash_event(_payload: bytes) -> None:
    S.count("hash_events")


# --- producers ---------------------------------------------------------------------------------


def produce_requests(c: redipc.Client) -> None:
    seq = 0
    while S.producing.is_set():
        rid = f"{S.name}:q:{seq}"
        payload = ("F " if seq % 50 == 7 else "N ") + rid
        _, e = timed("send_request", c.send_request, QUEUE, payload)
        if e is None:
            S.ledger(f"QS {rid}")
            S.count("q_sent")
        else:
            S.ledger(f"QU {rid} {type(e).__name__}")
            S.count("q_uncertain")
        seq += 1
        S.pace(20)


def produce_calls(c: redipc.Client) -> None:
    seq = 0
    while S.producing.is_set():
        payload = f"{S.name}:r:{seq}"
        t0 = time.monotonic()
        reply, e = timed("call", c.call, SERVICE, payload, method="echo", timeout=CALL_TIMEOUT)
        if e is None:
            want = f"echo:{payload}|".encode()
            if reply.startswith(want) and len(reply) > len(want):
                S.count("rpc_ok")
            else:
                S.count("rpc_wrong_reply")
                S.ledger(f"RW {payload} {reply[:120]!r}")
        else:
            S.ledger(f"RE {payload} {type(e).__name__} {int((time.monotonic() - t0) * 1000)}")
        seq += 1
        S.pace(8)


def produce_entries(c: redipc.Client) -> None:
    seq = 0
    while S.producing.is_set():
        eid = f"{S.name}:x:{seq}"
        fields = {"id": eid, "fail": "1" if seq % 50 == 11 else "0"}
        entry_id, e = timed("stream_publish", c.stream_publish, STREAM, fields)
        if e is None:
            S.ledger(f"XS {eid} {entry_id}")
            S.count("x_sent")
        else:
            S.ledger(f"XU {eid} {type(e).__name__}")
            S.count("x_uncertain")
        seq += 1
        S.pace(20)


def produce_messages(c: redipc.Client) -> None:
    channel = f"soak:ps:{S.name}"
    seq = 0
    while S.producing.is_set():
        _, e = timed("publish", c.publish, channel, str(seq))
        if e is None:
            S.count("pub_sent")
        else:
            S.ledger(f"PU {channel} {seq}")
            S.count("pub_uncertain")
        seq += 1
        S.pace(50)
    S.ledger(f"PX {channel} {seq - 1}")


def produce_hash(c: redipc.Client) -> None:
    hash_name = f"soak:h:{S.name}"
    seq = 1
    while S.producing.is_set():
        _, e = timed("hash_set", c.hash_set, hash_name, f"f{seq % NFIELDS}", str(seq))
        S.count("hash_set_ok" if e is None else "hash_set_uncertain")
        seq += 1
        S.pace(10)
    # The final values, written until they are written: every watcher must end on them.
    for f in range(NFIELDS):
        give_up = time.monotonic() + 30
        err: BaseException | None = None
        while True:
            try:
                c.hash_set(hash_name, f"f{f}", str(seq))
                err = None
                break
            except redipc.RedipcError as e:
                err = e
                if time.monotonic() > give_up:
                    break
                time.sleep(0.2)
        S.ledger(f"HF {hash_name} f{f} {seq}" if err is None else f"HF {hash_name} f{f} ? {type(err).__name__}")
        seq += 1


def produce_locks(c: redipc.Client) -> None:
    last_token = 0
    while S.producing.is_set():
        t0 = time.monotonic()
        try:
            lock = c.lock(LOCK, ttl=LOCK_TTL, wait=LOCK_WAIT)
        except redipc.TimeoutError as e:
            S.op("lock", t0, e)
            S.count("lock_timeout")
            lock = None
        except redipc.RedipcError as e:
            S.op("lock", t0, e)
            S.count("lock_error")
            lock = None
        if lock is not None:
            S.op("lock", t0, None)
            token = lock.token
            S.count("lock_acquired")
            S.ledger(f"LT {token}")
            if token <= last_token:
                S.count("lock_token_backwards")
                S.ledger(f"LB {last_token} {token}")
            last_token = token
            ok, e = timed("fence", c.command, "EVAL", FENCE_SCRIPT, "1", FENCE_KEY, str(token))
            if e is None:
                S.count("fence_accepted" if ok == 1 else "fence_refused")
            time.sleep(0.02)
            held, e = timed("lock_release", lock.release)
            if e is None and not held:
                S.count("lock_release_not_held")
        S.pace(5)


def produce_commands(c: redipc.Client) -> None:
    cnt, txa, txb, kv = (f"soak:{k}:{S.name}" for k in ("cnt", "txa", "txb", "kv"))
    last = 0
    seq = 0
    while S.producing.is_set():
        v, e = timed("incr", c.incr, cnt)
        if e is None:
            S.count("incr_ok")
            if v <= last:
                S.count("incr_backwards")
                S.ledger(f"CB {last} {v}")
            last = v
        else:
            S.count("incr_uncertain")
        if seq % 5 == 0:
            tx = c.tx()
            tx.add("INCR", txa).add("INCR", txb)
            r, e = timed("tx", tx.exec)
            if e is None:
                if len(r) == 2 and r[0] == r[1] and isinstance(r[0], int):
                    S.count("tx_ok")
                else:
                    S.count("tx_mismatch")
                    S.ledger(f"TM {r!r}")
            else:
                S.count("tx_uncertain")
        if seq % 3 == 0:
            n = 1 + seq * 7919 % 4095
            value = bytes((97 + (seq + i) % 26) for i in range(n))
            _, e = timed("set", c.set, kv, value)
            if e is not None:
                S.count("kv_uncertain")
            else:
                got, e = timed("get", c.get, kv)
                if e is not None:
                    S.count("kv_uncertain")
                elif got == value:
                    S.count("kv_ok")
                else:
                    S.count("kv_mismatch")
                    S.ledger(f"KM {seq} {n} {len(got) if got is not None else -1}")
        seq += 1
        S.pace(40)


# --- main --------------------------------------------------------------------------------------


def guarded(fn):
    """A producer thread that dies of an exception says so in the ledger (a problem for the
    driver) instead of stopping silently."""

    def run(c: redipc.Client) -> None:
        try:
            fn(c)
        except BaseException as e:  # noqa: BLE001 - anything that ends a producer early
            S.ledger(f"E {fn.__name__} died: {type(e).__name__}: {str(e)[:200]}".replace("\n", " "))
            raise

    return run


def connect(url: str) -> redipc.Client:
    # The server may be restarting when a victim comes back: try for a while.
    give_up = time.monotonic() + 20
    while True:
        try:
            return redipc.Client(
                url, client_name=S.name, response_timeout=RESPONSE_TIMEOUT, on_report=on_report
            )
        except redipc.ConnectionError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def main() -> int:
    global S
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("main", "victim"), required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--peers", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    S = State(ap.parse_args())

    stop_producing = threading.Event()
    terminate = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: stop_producing.set())
    signal.signal(signal.SIGTERM, lambda *_: terminate.set())
    signal.signal(signal.SIGINT, lambda *_: terminate.set())

    c = connect(S.url)
    worker = c.handle_requests(
        QUEUE, on_request, reliable=True, lease=3.0, max_attempts=20, concurrency=2,
        block_timeout=0.5, on_error=ignore_error,
    )
    server = c.serve(SERVICE, on_call, concurrency=2)
    consumer = c.stream_consume(
        STREAM, GROUP, S.name, on_entry, count=10, block=0.5, min_idle=3.0, claim_interval=1.0,
        max_deliveries=20, on_error=ignore_error,
    )
    sub = None
    watchers = []
    producers: list[threading.Thread] = []
    if S.main:
        for p in S.peers:
            ch = f"soak:ps:{p}".encode()
            S.chan_last[ch] = -1
            S.chan_disc[ch] = False
        sub = c.psubscribe("soak:ps:*", callback=on_message)
        for p in S.peers:
            h = f"soak:h:{p}"
            S.hash_last[h] = [0] * NFIELDS
            watchers.append(c.hash_watch(h, on_any=make_field_cb(h), on_event=on_hash_event))
        for fn in (produce_requests, produce_calls, produce_entries, produce_messages,
                   produce_hash, produce_locks, produce_commands):
            t = threading.Thread(target=guarded(fn), args=(c,), name=fn.__name__, daemon=True)
            t.start()
            producers.append(t)
    S.ledger(f"READY {os.getpid()}")

    produced = False
    while not terminate.wait(0.2):
        if stop_producing.is_set() and not produced:
            S.producing.clear()
            for t in producers:
                t.join()
            produced = True
            S.ledger("PRODUCED")
    S.producing.clear()
    for t in producers:
        t.join()

    t0 = time.monotonic()
    for name, h in (("worker", worker), ("server", server), ("consumer", consumer),
                    *(("watcher", w) for w in watchers), *((("subscription", sub),) if sub else ())):
        try:
            h.stop(10) if name != "subscription" else h.close()
        except redipc.RedipcError as e:
            S.ledger(f"E {name}_stop {type(e).__name__}")
    S.ledger(f"STOPPED {int((time.monotonic() - t0) * 1000)}")
    with S.mu:
        summary = {
            "name": S.name,
            "lang": "py",
            "role": "main" if S.main else "victim",
            "counters": dict(S.counters),
            "ops": {k: dict(v) for k, v in S.ops.items()},
            "hash_seen": {f"{h} f{f}": v for h, vals in S.hash_last.items() for f, v in enumerate(vals)},
        }
    S.ledger("J " + json.dumps(summary, separators=(",", ":")))
    c.close()
    S.ledger("EXIT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
