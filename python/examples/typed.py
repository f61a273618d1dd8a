"""A small typed program, checked with `mypy --strict` by the packaging test.

Run: `python typed.py URL [--fleet]` (`--fleet` writes the keys of `join_fleet`).
"""

from __future__ import annotations

import json
import sys

import redipc


def greet(client: redipc.Client, name: str) -> bytes | None:
    client.set(f"greeting:{name}", f"hello {name}", ttl=60)
    value: bytes | None = client.get(f"greeting:{name}")
    return value


def join_fleet(client: redipc.Client) -> None:
    """The redis-ipc fleet's conventions (README: "Joining a redis-ipc fleet")."""
    client.send_request("scooter:state", b"lock", bare=True)
    client.hash_set("vehicle", "state", "parked", timestamp=True)
    client.hash_set_many("vehicle", {"blinker:left": "on"}, announce="blinker:state")
    client.hash_clear("vehicle")
    new_fault: bool = client.fault_set("battery:0", 35, "too hot")
    print(f"new fault: {new_fault}")

    def speed(call: redipc.Call) -> str:
        return json.dumps({"speed": json.loads(call.payload)["kmh"] * 2})

    with client.serve("motion:speed", speed, protocol="redis-ipc"):
        reply: bytes = client.call("motion:speed", json.dumps({"kmh": 21}), protocol="redis-ipc")
        print(json.loads(reply))

    def on_event(payload: bytes) -> None:
        print("event", payload)

    with client.hash_watch("vehicle", every_notification=True, on_event=on_event, channel="vehicle"):
        pass


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    url = args[0] if args else "redis://127.0.0.1:6379/0"
    try:
        with redipc.Client(url, client_name="typed-example") as client:
            print(greet(client, "world"))
            count: int = client.incr("visits")
            print(f"visits: {count}")
            if "--fleet" in argv:
                join_fleet(client)
            stats: redipc.ClientStats = client.stats()
            p99: float = stats.latency.p99
            failed: dict[str, int] = stats.failed
            print(f"{stats.commands} commands, p99 {p99 * 1e3:.2f} ms, failed {failed}")
    except redipc.ConnectionError as e:
        print(f"cannot reach {url}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
