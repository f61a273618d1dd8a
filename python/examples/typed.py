"""A small typed program, checked with `mypy --strict` by the packaging test.

Run: `python typed.py URL`.
"""

from __future__ import annotations

import sys

import redipc


def greet(client: redipc.Client, name: str) -> bytes | None:
    client.set(f"greeting:{name}", f"hello {name}", ttl=60)
    value: bytes | None = client.get(f"greeting:{name}")
    return value


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else "redis://127.0.0.1:6379/0"
    try:
        with redipc.Client(url, client_name="typed-example") as client:
            print(greet(client, "world"))
            count: int = client.incr("visits")
            print(f"visits: {count}")
    except redipc.ConnectionError as e:
        print(f"cannot reach {url}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
