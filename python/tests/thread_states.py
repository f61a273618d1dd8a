"""Helpers for the tests of the Python thread states that redipc's core threads keep
(`python/src/guard.rs`): count the interpreter's thread states, and start and stop a worker
whose two handler threads both call Python."""

from __future__ import annotations

import ctypes
import threading

import redipc


def count() -> int:
    """How many Python thread states the interpreter has (its list, read with the GIL)."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    n, state = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        n, state = n + 1, api.PyThreadState_Next(state)
    return n


def worker_cycle(client: redipc.Client, queue: str) -> None:
    """Start a worker with two handler threads on `queue`, have both in Python at once,
    and stop it: two core threads that called Python end."""
    client.command("DEL", queue)
    both = threading.Barrier(3, timeout=10)
    for _ in range(2):
        client.send_request(queue, b"x", bare=True)
    worker = client.handle_requests(queue, lambda r: both.wait(), bare=True, concurrency=2, prefetch=1)
    try:
        both.wait()
    finally:
        worker.stop()
