"""The device-state dashboard: `python dashboard.py URL HASH [SECONDS]`.

A daemon (for example the C program `c-examples/device_state`) publishes the device's
state in the hash HASH with `hash_set_if_changed` (HSET + PUBLISH of the field, in one
step). This dashboard watches the hash: it first prints every current field (the initial
sync), then each change as it happens, as `dashboard: battery=87`, and exits after
SECONDS (default 10; Ctrl-C ends it earlier).

The line `dashboard: watching HASH` comes first, once the watcher is subscribed and has
read the hash: whatever the daemon publishes after that line is shown. The last line is
`dashboard: done, N updates`.
"""

from __future__ import annotations

import sys
import threading
import time

import redipc


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    url, hash_name = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) == 4 else 10.0
    announced = threading.Event()
    updates = 0

    def show(field: bytes, value: bytes | None) -> None:
        nonlocal updates
        # The initial sync starts on the watcher's thread while hash_watch() returns:
        # keep its lines after the "watching" line.
        announced.wait()
        updates += 1
        shown = "(deleted)" if value is None else value.decode(errors="replace")
        sys.stdout.write(f"dashboard: {field.decode(errors='replace')}={shown}\n")
        sys.stdout.flush()

    with redipc.Client(url, client_name="py-dashboard") as client:
        with client.hash_watch(hash_name, on_any=show):
            print(f"dashboard: watching {hash_name}", flush=True)
            announced.set()
            try:
                time.sleep(seconds)
            except KeyboardInterrupt:
                pass
    print(f"dashboard: done, {updates} updates", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
