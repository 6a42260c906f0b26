"""Load for the loop guard tests (stdlib only; prints one JSON line).
Every loop is bounded in count and time.

    loopload.py seq HOST PORT N [TIMEOUT]
        N sequential TCP connects; each one's outcome and duration (ms)
    loopload.py burst HOST PORT N [TIMEOUT]
        N concurrent HTTP GET / (a new connection each); the wall time (s)
    loopload.py hammer PREFIX THREADS SECONDS [PORT]
        THREADS threads, each connecting over and over to PREFIX.<100+i>:PORT
        (addresses nothing owns) for SECONDS; outcomes counted
    loopload.py udp HOST PORT N [TIMEOUT]
        N datagrams, each from a new socket, each waiting up to TIMEOUT for
        an answer or an error; outcomes counted
"""
import asyncio
import errno
import json
import socket
import sys
import threading
import time


def connect_once(host, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    t0 = time.monotonic()
    try:
        s.connect((host, port))
        err = "ok"
    except socket.timeout:
        err = "ETIMEDOUT"
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    return err, (time.monotonic() - t0) * 1000


def seq(host, port, n, timeout=5.0):
    res = [connect_once(host, port, timeout) for _ in range(n)]
    errors = {}
    for e, _ in res:
        errors[e] = errors.get(e, 0) + 1
    return {"errors": errors, "ms": [round(ms, 3) for _, ms in res]}


async def _get(host, port, timeout):
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(r.read(), timeout)
    w.close()
    return data.startswith(b"HTTP/1.1 200")


async def _burst(host, port, n, timeout):
    t0 = time.monotonic()
    res = await asyncio.gather(*[_get(host, port, timeout) for _ in range(n)], return_exceptions=True)
    errors = sorted({repr(x) for x in res if x is not True})[:3]
    return {"ok": sum(1 for x in res if x is True), "total": n, "errors": errors,
            "seconds": round(time.monotonic() - t0, 4)}


def burst(host, port, n, timeout=10.0):
    return asyncio.run(_burst(host, port, n, timeout))


def hammer(prefix, threads, seconds, port=80):
    stop = time.monotonic() + seconds
    counts = [dict() for _ in range(threads)]

    def run(i):
        host = "%s.%d" % (prefix, 100 + i)
        while time.monotonic() < stop:
            e, _ = connect_once(host, port, 2.0)
            counts[i][e] = counts[i].get(e, 0) + 1

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 5)
    total = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return {"errors": total, "connects": sum(total.values())}


def udp(host, port, n, timeout=1.0):
    out = {}
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(timeout)
        u.connect((host, port))
        try:
            u.send(b"loop? %d" % i)
            u.recv(2048)
            e = "answer"
        except socket.timeout:
            e = "timeout"
        except OSError as x:
            e = errno.errorcode.get(x.errno, str(x.errno))
        u.close()
        out[e] = out.get(e, 0) + 1
    return {"outcomes": out}


def main(a):
    cmd = a[0]
    if cmd == "seq":
        r = seq(a[1], int(a[2]), int(a[3]), *(float(x) for x in a[4:5]))
    elif cmd == "burst":
        r = burst(a[1], int(a[2]), int(a[3]), *(float(x) for x in a[4:5]))
    elif cmd == "hammer":
        r = hammer(a[1], int(a[2]), float(a[3]), *(int(x) for x in a[4:5]))
    elif cmd == "udp":
        r = udp(a[1], int(a[2]), int(a[3]), *(float(x) for x in a[4:5]))
    else:
        print("usage: see the docstring", file=sys.stderr)
        return 2
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
