"""Publish commands to a C daemon and read its state: `python command.py URL CHANNEL N`."""

import sys
import time

import redipc


def main() -> int:
    url, channel, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with redipc.Client(url, client_name="py-commander") as client:
        for i in range(n):
            # Wait until the C subscriber is there, then send.
            deadline = time.monotonic() + 10
            while client.publish(channel, f"cmd-{i}") == 0:
                if time.monotonic() > deadline:
                    print("python: nobody is listening", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            print(f"python: sent cmd-{i}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
