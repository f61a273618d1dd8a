"""Print what arrives on a channel: `python listen.py URL CHANNEL COUNT`.

Used by the showcase: a C program publishes, this Python process listens.
"""

import sys

import redipc


def main() -> int:
    url, channel, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with redipc.Client(url, client_name="py-listener") as client:
        with client.subscribe(channel) as sub:
            print(f"python: subscribed to {channel}", flush=True)
            seen = 0
            while seen < count:
                msg = sub.get(timeout=10)
                if msg is None:
                    print("python: no message within 10 s", file=sys.stderr)
                    return 1
                if msg.kind == "message":
                    seen += 1
                    print(f"python: got {msg.payload.decode()} on {msg.channel.decode()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
