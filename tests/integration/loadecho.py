"""Many concurrent TCP echo connections, each sending random bytes and
half-closing, checked byte for byte.  Prints one JSON line.
usage: loadecho.py HOST PORT CONNECTIONS BYTES [TIMEOUT]"""
import asyncio
import json
import os
import sys
import time


async def one(host, port, size):
    r, w = await asyncio.open_connection(host, port)
    data = os.urandom(size)

    async def send():
        w.write(data)
        await w.drain()
        w.write_eof()
    sender = asyncio.create_task(send())
    got = bytearray()
    while True:
        b = await r.read(65536)
        if not b:
            break
        got.extend(b)
    await sender
    w.close()
    return bytes(got) == data


async def main(host, port, n, size, timeout):
    t0 = time.monotonic()
    res = await asyncio.wait_for(asyncio.gather(*[one(host, port, size) for _ in range(n)],
                                                return_exceptions=True), timeout)
    errors = sorted({repr(x) for x in res if x is not True and x is not False})[:3]
    print(json.dumps({"ok": sum(1 for x in res if x is True), "total": n,
                      "mismatch": sum(1 for x in res if x is False), "errors": errors,
                      "seconds": round(time.monotonic() - t0, 2)}))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], int(a[1]), int(a[2]), int(a[3]), float(a[4]) if len(a) > 4 else 120.0))
