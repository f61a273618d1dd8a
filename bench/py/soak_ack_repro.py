"""Reproduces the soak's stranded-acknowledgement finding (docs/RELIABILITY.md, "Soak").

    .venv/bin/python bench/py/soak_ack_repro.py [ack|nack]

A reliable worker handles one request; while the handler runs the server is killed
(SIGKILL, AOF on) and started again 3 s later, so the acknowledgement (ack: the handler
succeeds) or the nack (the handler fails) cannot be sent. With a 1 s lease, 12 s later the
request should have been settled (ack) or retried (nack); it is still in the live worker's
in-flight list instead, and goes back to the queue only when the worker stops.
Exits 1 when the request is stranded (the bug), 0 otherwise. Needs redis-server and
redis-cli; uses a unix socket in a temp dir (no TCP port).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import redipc

MODE = sys.argv[1] if len(sys.argv) > 1 else "ack"
assert MODE in ("ack", "nack"), "usage: soak_ack_repro.py [ack|nack]"

d = tempfile.mkdtemp(prefix="redipc-ack-repro.")
sock = os.path.join(d, "redis.sock")
server_args = ["redis-server", "--port", "0", "--unixsocket", sock, "--dir", d, "--save", "",
               "--appendonly", "yes", "--appendfsync", "always", "--logfile", "redis.log"]
server = [subprocess.Popen(server_args, stdout=subprocess.DEVNULL)]


def cli(*args: str) -> str:
    return subprocess.run(["redis-cli", "-s", sock, *args], capture_output=True, text=True).stdout.strip()


def wait_up() -> None:
    deadline = time.monotonic() + 20
    while cli("PING") != "PONG":
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server does not start")
        time.sleep(0.05)


def inflight() -> list[str]:
    out = []
    for key in cli("--scan", "--pattern", "ipc:{q:repro}:inflight:*").split():
        out += cli("LRANGE", key, "0", "-1").splitlines()
    return out


stranded = False
try:
    wait_up()
    c = redipc.Client(f"unix://{sock}", response_timeout=1.0)
    calls = []

    def handler(req: redipc.Request) -> None:
        calls.append(req.attempt)
        if len(calls) == 1:
            server[0].kill()  # the server dies while the handler runs ...
            server[0].wait()

            def restart() -> None:
                time.sleep(3)  # ... and is back 3 s later, with its data
                server[0] = subprocess.Popen(server_args, stdout=subprocess.DEVNULL)

            threading.Thread(target=restart).start()
            if MODE == "nack":
                raise RuntimeError("the handler fails")

    w = c.handle_requests("repro", handler, reliable=True, lease=1.0, block_timeout=0.2,
                          on_error=lambda e: None)
    c.send_request("repro", b"one")
    time.sleep(12)
    wait_up()
    left = inflight()
    print(f"{MODE}: handler calls (attempts) after 12 s with a 1 s lease: {calls}; "
          f"in the live worker's in-flight list: {left}; queued: {cli('LLEN', 'ipc:{q:repro}:pending')}")
    stranded = bool(left)
    w.stop(5)
    print(f"after the worker stopped: queued {cli('LLEN', 'ipc:{q:repro}:pending')}")
    c.close()
finally:
    server[0].kill()
    server[0].wait()
    shutil.rmtree(d, ignore_errors=True)
print("stranded: the settle was not retried" if stranded else "settled")
sys.exit(1 if stranded else 0)
