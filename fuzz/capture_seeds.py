#!/usr/bin/env python3
"""Write the seed corpus of the fuzz targets (fuzz/seeds/): the raw bytes of every reply
type a real Redis 7 sends, captured from a private redis-server, plus hand-written frames
that server never sends on its own (blob errors, RESP2 null arrays inside aggregates,
extreme numbers, nesting).

    python3 fuzz/capture_seeds.py        (from the repository root; needs redis-server)

Starts its own redis-server on a unix socket in a temp dir (no TCP port), speaks RESP over
a plain socket, and keeps each reply exactly as it arrived. Rewrites fuzz/seeds/resp/ (the
seeds of resp_differential and ffi_convert), fuzz/seeds/resp_reader/ (the same frames with
that target's control trailer) and fuzz/seeds/url/.
"""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(ROOT, "seeds")


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.s.settimeout(0.3)

    def send(self, *args):
        self.s.sendall(command(*args))

    def read(self, settle=0.3):
        """Everything that arrives until the connection is quiet for `settle` seconds."""
        data = b""
        self.s.settimeout(settle)
        while True:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return data
            if not chunk:
                return data
            data += chunk

    def call(self, *args):
        self.send(*args)
        return self.read()


def capture(sock):
    seeds = {}

    def keep(name, data):
        assert data, name
        seeds[name] = data

    for proto in (3, 2):
        c = Conn(sock)
        keep(f"hello{proto}", c.call("HELLO", proto))
        p = f"resp{proto}-"
        for kind in ("string", "integer", "double", "bignum", "null", "array", "set",
                     "map", "attrib", "push", "verbatim", "true", "false"):
            keep(p + "debug-protocol-" + kind, c.call("DEBUG", "PROTOCOL", kind))
        c.call("FLUSHALL")
        keep(p + "ok", c.call("SET", "k", "v"))
        keep(p + "pong", c.call("PING"))
        keep(p + "bulk", c.call("GET", "k"))
        keep(p + "nil", c.call("GET", "missing"))
        keep(p + "empty-bulk", c.call("ECHO", ""))
        keep(p + "binary-bulk", c.call("ECHO", bytes(range(256))))
        keep(p + "unknown-command", c.call("NOSUCHCOMMAND", "x"))
        c.call("LPUSH", "list", "a", "b")
        keep(p + "wrongtype", c.call("GET", "list"))
        keep(p + "int-min", c.call("INCRBY", "n", str(-(2**63))))
        c.call("SET", "n", str(2**63 - 1))
        keep(p + "int-max", c.call("INCRBY", "n", "0"))
        keep(p + "int-overflow-error", c.call("INCRBY", "n", "1"))
        c.call("HSET", "h", "f1", "v1", "f2", "v2")
        keep(p + "hgetall", c.call("HGETALL", "h"))
        c.call("SADD", "s", "a", "b", "c")
        keep(p + "smembers", c.call("SMEMBERS", "s"))
        c.call("ZADD", "z", "1.5", "a", "-inf", "b", "3e100", "c")
        keep(p + "zscore", c.call("ZSCORE", "z", "a"))
        keep(p + "zrange-withscores", c.call("ZRANGE", "z", "0", "-1", "WITHSCORES"))
        c.call("XADD", "st", "1-1", "f", "v")
        c.call("XADD", "st", "2-1", "f", "w", "g", "x")
        keep(p + "xrange", c.call("XRANGE", "st", "-", "+"))
        c.call("XGROUP", "CREATE", "st", "g", "0")
        keep(p + "xreadgroup", c.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"))
        keep(p + "xpending", c.call("XPENDING", "st", "g"))
        keep(p + "xinfo-stream", c.call("XINFO", "STREAM", "st"))
        c.call("MULTI")
        c.call("INCR", "k")
        c.call("SET", "x", "1")
        keep(p + "exec-with-error", c.call("EXEC"))
        keep(p + "memory-doctor", c.call("MEMORY", "DOCTOR"))
        keep(p + "config-get", c.call("CONFIG", "GET", "maxmemory*"))
        keep(p + "client-info", c.call("CLIENT", "INFO"))
        keep(p + "command-info", c.call("COMMAND", "INFO", "GET"))
        keep(p + "lpos-nil-array", c.call("LPOS", "list", "zz", "COUNT", "0"))
        keep(p + "blpop-timeout", c.call("BLPOP", "nolist", "0.01"))
        keep(p + "eval-nested", c.call("EVAL", "return {1, {2, {'x', false}}, redis.error_reply('E boom')}", "0"))
        for args in (("PING",), ("GET", "k"), ("GET", "missing")):
            c.send(*args)
        keep(p + "pipeline", c.read())
        keep(p + "getrange-empty", c.call("GETRANGE", "missing", "0", "1"))

        # Pub/sub: confirmations and messages of every kind.
        sub, pub = Conn(sock), Conn(sock)
        sub.call("HELLO", proto)
        keep(p + "subscribe", sub.call("SUBSCRIBE", "ch", "ch2"))
        keep(p + "psubscribe", sub.call("PSUBSCRIBE", "c*"))
        keep(p + "ssubscribe", sub.call("SSUBSCRIBE", "shard"))
        pub.call("PUBLISH", "ch", "hello")
        keep(p + "message-and-pmessage", sub.read())
        pub.call("PUBLISH", "ch2", b"\x00\r\n$3\r\n")
        keep(p + "message-binary", sub.read())
        pub.call("SPUBLISH", "shard", "s")
        keep(p + "smessage", sub.read())
        keep(p + "sub-ping", sub.call("PING"))
        keep(p + "unsubscribe", sub.call("UNSUBSCRIBE"))
        keep(p + "punsubscribe", sub.call("PUNSUBSCRIBE"))
        keep(p + "sunsubscribe", sub.call("SUNSUBSCRIBE"))

        if proto == 3:
            # Client-side caching: an invalidation push.
            t = Conn(sock)
            t.call("HELLO", 3)
            t.call("CLIENT", "TRACKING", "ON")
            t.call("GET", "k")
            c.call("SET", "k", "changed")
            keep(p + "invalidate", t.read())
            c.call("SET", "k", "again")
            keep(p + "invalidate-then-reply", t.call("GET", "k"))
    return seeds


# Frames the server does not send unprompted, written by hand.
HAND = {
    "blob-error": b"!21\r\nSYNTAX invalid syntax\r\n",
    "blob-error-in-array": b"*2\r\n!5\r\nERR x\r\n:1\r\n",
    "verbatim-mkd": b"=15\r\nmkd:Some string\r\n",
    "verbatim-no-format": b"=5\r\nhello\r\n",
    "double-forms": b"*6\r\n,1.5\r\n,-0\r\n,nan\r\n,-inf\r\n,1e300\r\n,3.0000000000000004\r\n",
    "bignum-negative": b"(-3492890328409238509324850943850943825024385\r\n",
    "int-extremes": b"*2\r\n:-9223372036854775808\r\n:9223372036854775807\r\n",
    "resp2-nulls-nested": b"*3\r\n$-1\r\n*-1\r\n*0\r\n",
    "null-map-set": b"*3\r\n%0\r\n~0\r\n_\r\n",
    "attrib-in-array": b"*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:2\r\n",
    "nested-attrib": b"|1\r\n+a\r\n|1\r\n+b\r\n:1\r\n:2\r\n:3\r\n",
    "map-of-aggregates": b"%2\r\n*1\r\n:1\r\n~1\r\n#t\r\n%1\r\n+k\r\n+v\r\n_\r\n",
    "push-simple-strings": b">3\r\n+message\r\n+ch\r\n+payload\r\n",
    "push-pmessage-empty": b">4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$0\r\n\r\n",
    "push-other": b">2\r\n$10\r\ninvalidate\r\n_\r\n",
    "push-empty": b">0\r\n",
    "push-message-int": b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:5\r\n",
    "deep": b"*1\r\n" * 31 + b":1\r\n",
    "too-deep": b"*1\r\n" * 33 + b":1\r\n",
    "huge-bulk-header": b"$2000000000\r\nabc",
    "huge-array-header": b"*2000000000\r\n:1\r\n",
    "huge-map-header": b"%4611686018427387904\r\n",
    "bad-crlf": b"+ok\n",
    "bad-type": b"?\r\n",
    "bad-int": b":12a\r\n",
    "negative-length": b"$-2\r\n",
    "negative-set": b"~-1\r\n",
    "bulk-without-crlf": b"$3\r\nabcd\r\n",
    "message-then-reply": b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n+OK\r\n",
}

URLS = [
    "redis://127.0.0.1:6379/0",
    "redis://user:p4ss@localhost:7000/3",
    "redis://:secret@[::1]:6380",
    "redis+unix:///tmp/redis.sock?db=2&pass=secret",
    "unix:///run/redis/redis.sock?db=1&user=u&password=pw&protocol=resp3",
    "rediss://u:pw@host:6380",
    "redis://u:p@ss/w:rd@host:notaport/0",
    "redis://u:p%40ss@host",
    "REDIS://HOST",
    "http://x",
    "localhost:6379",
    "redis://",
]


def write(directory, items):
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for name, data in sorted(items.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main():
    tmp = tempfile.mkdtemp(prefix="redipc-seeds.")
    sock = os.path.join(tmp, "redis.sock")
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", tmp, "--enable-debug-command", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        seeds = capture(sock)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    seeds.update(HAND)
    write(os.path.join(SEEDS, "resp"), seeds)
    # The reader target takes a control trailer (control bytes, then their count, plus 32
    # for small limits): whole reads with the default limits; reads of 1, 2, 4 and 8 bytes;
    # small limits (16-byte values, 64 + 4 * 8-byte frames) with reads of 3 bytes.
    reader = {}
    for name, data in seeds.items():
        reader[name + ".whole"] = data + b"\x00"
        reader[name + ".split"] = data + bytes([0, 0, 0, 1, 3, 7, 6])
        reader[name + ".small"] = data + bytes([16, 8, 2, 3 | 32])
    write(os.path.join(SEEDS, "resp_reader"), reader)
    write(os.path.join(SEEDS, "url"),
          {hashlib.sha1(u.encode()).hexdigest()[:12]: u.encode() for u in URLS})
    print(f"{len(seeds)} RESP seeds ({len(HAND)} by hand), {len(URLS)} URLs in {SEEDS}")


if __name__ == "__main__":
    sys.exit(main())
