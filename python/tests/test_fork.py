"""A process that forks after making clients (multiprocessing's fork start method,
gunicorn's preload, a daemon's double fork): the child's calls on an inherited client fail
at once with ``ClosedError`` and never touch the parent's connections (they would take the
parent's replies, and a runtime driven from the child would corrupt the parent's); a client
made in the child works; the parent's clients go on as if nothing happened.

Each scenario runs in a fresh interpreter (``subprocess``) that makes its clients, forks,
and reports what each side saw: the forking process holds nothing but the client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import RedisServer

SCRIPT = textwrap.dedent(
    r"""
    import asyncio, gc, json, os, sys, time
    import redipc, redipc.asyncio

    url, how = sys.argv[1], sys.argv[2]
    c = redipc.Client(url, response_timeout=3)
    key = f"fork:{os.getpid()}"
    c.set(key, "parent")
    seen = {}

    def child_side():
        out = {}
        t = time.monotonic()
        try:
            c.get(key)
            out["inherited"] = "answered"
        except redipc.ClosedError as e:
            out["inherited"] = "ClosedError"
            out["message"] = str(e)
        out["inherited_s"] = time.monotonic() - t
        try:
            c.set(key, "child")
            out["inherited_set"] = "answered"
        except redipc.ClosedError:
            out["inherited_set"] = "ClosedError"
        if how == "new":
            with redipc.Client(url, response_timeout=3) as mine:
                out["new"] = mine.get(key).decode()
                mine.set(key + ":child", "made")
        if how == "close":
            c.close()
            out["closed"] = True
        return out

    got = []
    if how == "finalize":
        # Handles whose threads the child will not have: a worker and a callback.
        worker = c.handle_requests(key + ":q", lambda req: got.append(req.payload))
        sub = c.subscribe(
            key + ":ch",
            callback=lambda m: got.append(m.payload) if m.kind == "message" else None,
        )
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = child_side()
        except BaseException as e:  # reported, not lost
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os.close(w)
        if how == "finalize":
            # Dropped by the interpreter's own clean-up, as a child that returns normally:
            # nothing of the parent's threads is waited for.
            t = time.monotonic()
            del c, worker, sub
            gc.collect()
            if time.monotonic() - t > 1.0:
                os._exit(3)
            sys.exit(0)
        os._exit(0)
    os.close(w)
    # The parent keeps calling while the child runs, and after it.
    values = set()
    for _ in range(200):
        values.add(c.get(key))
    child = json.loads(os.read(r, 65536) or b"{}")
    _, status = os.waitpid(pid, 0)
    for _ in range(200):
        values.add(c.get(key))
    seen["parent_values"] = sorted(v.decode() for v in values)
    seen["child_status"] = status
    seen["child"] = child
    seen["child_made"] = (c.get(key + ":child") or b"").decode()
    if how == "finalize":
        # The parent's worker and subscription still run.
        c.send_request(key + ":q", "job")
        c.publish(key + ":ch", "news")
        end = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < end:
            time.sleep(0.01)
        seen["parent_handles"] = sorted(g.decode() for g in got)
        worker.stop()
        sub.close()

    async def on_a_loop():
        a = await redipc.asyncio.Client.connect(url)
        await a.get(key)
        pid = os.fork()
        if pid == 0:
            try:
                await a.get(key)
                code = 1
            except redipc.ClosedError:
                code = 0
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        after = await a.get(key)
        await a.close()
        return status, after.decode()

    if how == "asyncio":
        status, after = asyncio.run(on_a_loop())
        seen["asyncio_child_status"] = status
        seen["asyncio_parent_after"] = after
    c.close()
    print(json.dumps(seen))
    """
)


def run(server: RedisServer, transport: str, how: str) -> dict[str, object]:
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.url(transport), how],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    result: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("how", ["plain", "new", "close", "finalize", "asyncio"])
def test_a_forked_child_leaves_the_parents_client_alone(
    server: RedisServer, transport: str, how: str
) -> None:
    seen = run(server, transport, how)
    child = seen["child"]
    assert isinstance(child, dict), seen
    assert "error" not in child, child
    assert child["inherited"] == "ClosedError", child
    assert child["inherited_set"] == "ClosedError", child
    assert "before fork()" in str(child["message"]), child
    assert float(child["inherited_s"]) < 0.5, child
    assert seen["child_status"] == 0, seen
    # Every reply the parent got was its own, before, during and after the child.
    assert seen["parent_values"] == ["parent"], seen
    if how == "new":
        assert child["new"] == "parent", child
        assert seen["child_made"] == "made", seen
    if how == "finalize":
        assert seen["parent_handles"] == ["job", "news"], seen
    if how == "asyncio":
        assert seen["asyncio_child_status"] == 0, seen
        assert seen["asyncio_parent_after"] == "parent", seen


SUBSCRIPTIONS = textwrap.dedent(
    r"""
    import gc, json, os, sys, time
    import redipc

    url = sys.argv[1]
    c = redipc.Client(url, response_timeout=3)
    got = []
    group = c.subscribe_group()
    for i in range(5):
        group.handle(f"fork:g{i}", lambda m: got.append(m.payload) if m.kind == "message" else None)
    sub = c.subscribe("fork:s")
    sub.get(timeout=1)  # activated
    for i in range(5):
        c.publish("fork:s", f"m{i}")  # left queued in the parent's subscription
        c.publish(f"fork:g{i}", "before")
    end = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = {}
        def timed(name, f):
            t = time.monotonic()
            try:
                out[name] = repr(f())
            except redipc.ClosedError:
                out[name] = "ClosedError"
            except BaseException as e:
                out[name] = "unexpected " + repr(e)
            out[name + "_s"] = time.monotonic() - t
        timed("get", lambda: sub.get(timeout=2))
        timed("add", lambda: sub.add("fork:x"))
        timed("remove", lambda: sub.remove("fork:s"))
        timed("names", lambda: sub.names)
        timed("handle", lambda: group.handle("fork:g9", lambda m: None))
        timed("unhandle", lambda: group.unhandle("fork:g1"))
        timed("close", lambda: (sub.close(), group.close()))
        os.write(w, json.dumps(out).encode())
        os.close(w)
        del sub, group, c
        gc.collect()
        sys.exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536) or b"{}")
    _, status = os.waitpid(pid, 0)
    # The parent's subscriptions are untouched: its queued messages, then new ones.
    mine = [sub.get(timeout=2) for _ in range(5)]
    c.publish("fork:g1", "after")
    end = time.monotonic() + 5
    while len(got) < 6 and time.monotonic() < end:
        time.sleep(0.01)
    print(json.dumps({
        "child": child,
        "child_status": status,
        "parent_queued": [m.payload.decode() if m else None for m in mine],
        "parent_group": sorted(g.decode() for g in got),
        "parent_names": sorted(n.decode() for n in sub.names),
    }))
    sub.close()
    group.close()
    c.close()
    """
)


def test_a_forked_child_leaves_the_parents_subscriptions_alone(
    server: RedisServer, transport: str
) -> None:
    """A subscription and a subscription group made before fork(): in the child, taking
    events or adding names raises ClosedError at once (a queued message of the parent's is
    never taken), removing names, unhandling and closing do nothing, and none of them waits
    for a lock a parent's thread held at the fork; the parent's go on."""
    p = subprocess.run(
        [sys.executable, "-c", SUBSCRIPTIONS, server.url(transport)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    child = seen["child"]
    assert seen["child_status"] == 0, seen
    for name in ("get", "add", "handle"):
        assert child[name] == "ClosedError", child
    for name in ("remove", "unhandle", "close"):
        assert not child[name].startswith("unexpected"), child
    assert child["names"] == "[]", child
    assert all(float(v) < 0.5 for k, v in child.items() if k.endswith("_s")), child
    assert seen["parent_queued"] == [f"m{i}" for i in range(5)], seen
    assert seen["parent_group"] == ["after"] + ["before"] * 5, seen
    assert seen["parent_names"] == ["fork:s"], seen


THREAD_STATES = textwrap.dedent(
    r"""
    import json, os, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    import redipc
    from thread_states import count as states, worker_cycle

    def cycle(client, i):
        worker_cycle(client, f"fork:ts:{os.getpid()}:{i}")

    url = sys.argv[1]
    c = redipc.Client(url, response_timeout=3)
    for i in range(3):
        cycle(c, i)
    # A worker whose handlers stop it themselves (stop() returns at once there): its two
    # threads end after every call into redipc, so their states are still queued at the fork.
    q = f"fork:ts:{os.getpid()}:last"
    c.command("DEL", q)
    started = threading.Event()
    both = threading.Barrier(2, timeout=10)
    holder = []
    def stop_myself(r):
        started.wait(10)
        both.wait()
        holder[0].stop()
    for _ in range(2):
        c.send_request(q, b"x", bare=True)
    holder.append(c.handle_requests(q, stop_myself, bare=True, concurrency=2, prefetch=1))
    started.set()
    end = time.monotonic() + 10
    while not holder[0].stopped and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.3)  # the handler threads have ended; nothing has deleted their states
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            mine = redipc.Client(url, response_timeout=3)
            mine.ping()  # forgets the parent's queued states: CPython deleted them here
            cycle(mine, 100)
            mine.ping()
            before = states()
            for i in range(101, 106):
                cycle(mine, i)
            mine.ping()
            out = {"before": before, "after": states()}
            mine.close()
        except BaseException as e:  # reported, not lost
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536) or b"{}")
    _, status = os.waitpid(pid, 0)
    c.ping()
    print(json.dumps({"child": child, "status": status}))
    """
)


def test_a_forked_child_deletes_its_own_ended_threads_states(server: RedisServer) -> None:
    """The Python thread states of ended core threads (`guard.rs`, `reap`): those the
    parent queued before the fork are only forgotten in the child (CPython's after-fork
    clean-up deleted them: deleting them again would free them twice), and the child's own
    ended threads' states are deleted as in any process."""
    p = subprocess.run(
        [sys.executable, "-c", THREAD_STATES, server.url("unix"), os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0, seen
    child = seen["child"]
    assert "error" not in child, child
    # 10 handler threads ended in the child; the last worker's may still be ending
    assert child["after"] <= child["before"] + 2, child
