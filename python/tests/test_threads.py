"""One client shared by many Python threads; the GIL is released while a call waits."""

from __future__ import annotations

import threading
import time

import redipc
import thread_states
from thread_states import worker_cycle

THREADS = 8
COMMANDS = 10_000


def test_threads_share_one_client(client: redipc.Client) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            key = f"counter:{t}"
            for i in range(COMMANDS // 2):
                assert client.incr(key) == i + 1
                value = f"{t}:{i}"
                assert client.command("ECHO", value) == value.encode()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    assert not errors, errors[0]
    for t in range(THREADS):
        assert client.get(f"counter:{t}") == str(COMMANDS // 2).encode()
    print(f"{THREADS * COMMANDS} commands from {THREADS} threads in {elapsed:.2f} s")


def test_gil_is_released_while_waiting(make_client, transport: str) -> None:
    blocked = make_client(transport)
    pusher = make_client(transport)
    blocked.command("DEL", "q")
    result: list[object] = []

    def pop() -> None:
        result.append(blocked.command("BLPOP", "q", 5))

    th = threading.Thread(target=pop)
    start = time.monotonic()
    th.start()
    # This thread runs while the other one waits in BLPOP: had that one kept the GIL,
    # the push that wakes it could not be made until BLPOP timed out (5 s, reply None).
    time.sleep(0.3)
    pusher.rpush("q", "wake")
    th.join(timeout=10)
    assert result == [[b"q", b"wake"]]
    assert time.monotonic() - start < 2


def test_a_core_thread_keeps_its_python_thread_state(client: redipc.Client) -> None:
    """A handler called again on the same core thread runs in the same Python thread state
    (`guard.rs`, `keep_thread_state`): `threading.local` data, which lives in the thread
    state, is still there. Made per call, each call found it empty, and a fork() while one
    was being made could hang CPython's child."""
    local = threading.local()
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def handler(req: redipc.Request) -> None:
        local.calls = getattr(local, "calls", 0) + 1
        seen.append((threading.get_ident(), local.calls))
        if len(seen) == 20:
            done.set()

    client.command("DEL", "tstate:q")
    for _ in range(20):
        client.send_request("tstate:q", b"x", bare=True)
    worker = client.handle_requests("tstate:q", handler, bare=True, concurrency=1)
    try:
        assert done.wait(10), seen
    finally:
        worker.stop()
    by_thread: dict[int, list[int]] = {}
    for ident, calls in seen:
        by_thread.setdefault(ident, []).append(calls)
    for counts in by_thread.values():
        assert counts == list(range(1, len(counts) + 1)), seen
    assert max(len(c) for c in by_thread.values()) > 1, seen


def test_an_ended_core_thread_leaves_no_python_thread_state(client: redipc.Client) -> None:
    """The thread state a core thread keeps is deleted once the thread ends (`guard.rs`,
    `reap`): workers started and stopped one after another, each with two handler threads
    that called Python, leave the interpreter's thread list as it was. Before, each ended
    thread left its state (and CPython's 16 KB frame stack) until the interpreter exited;
    a subscription's dispatcher thread, which ends after 10 idle seconds, leaked one per
    burst of messages."""

    worker_cycle(client, "tstate:reap:0")  # threads redipc keeps for good (if any) start here
    client.ping()  # a call that deletes what ended
    before = thread_states.count()
    for i in range(1, 9):
        worker_cycle(client, f"tstate:reap:{i}")
    client.ping()
    after = thread_states.count()
    # 16 handler threads ended; the last worker's may still be ending after its stop()
    assert after <= before + 2, (before, after)
