"""A process that forks after making clients (multiprocessing's fork start method,
gunicorn's preload, a daemon's double fork): the child's calls on an inherited client fail
at once with ``ClosedError`` and never touch the parent's connections (they would take the
parent's replies, and a runtime driven from the child would corrupt the parent's); a client
made in the child works; the parent's clients go on as if nothing happened.

Each scenario runs in a fresh interpreter (``subprocess``) that makes its clients, forks,
and reports what each side saw: the forking process holds nothing but the client."""

from __future__ import annotations

import json
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
