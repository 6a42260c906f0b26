"""A small DNS client for the tests (stdlib only; runs inside a namespace,
prints one JSON line).  The server is the first nameserver of
/etc/resolv.conf unless --server is given.

    dnsprobe.py time NAME [--count N] [--type A]      N sequential queries, one at a time
    dnsprobe.py parallel NAME [--count N]             N queries at once, each from its own socket
    dnsprobe.py burst [--count N]                     N queries as fast as they go, a mix of
                                                      cached, unique cluster and upstream names

Every answer is checked against its query (ID, question); results count
rcodes, answers' addresses and milliseconds.  Every wait is bounded.
"""
import argparse
import json
import random
import socket
import struct
import sys
import threading
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def nameserver():
    for line in open("/etc/resolv.conf"):
        w = line.split()
        if len(w) >= 2 and w[0] == "nameserver":
            return w[1]
    raise SystemExit("no nameserver in /etc/resolv.conf")


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, name, qtype=1, rd=True):
    return struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0) + encode_name(name) + \
        struct.pack(">HH", qtype, 1)


def read_name(m, off):
    labels, jumped, end = [], False, off
    for _ in range(128):
        n = m[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            jumped = True
            off = ((n & 0x3F) << 8) | m[off + 1]
            continue
        if n == 0:
            return ".".join(labels), (end if jumped else off + 1)
        labels.append(m[off + 1:off + 1 + n].decode(errors="replace"))
        off += n + 1
    raise ValueError("name loops")


def parse(m):
    """(id, rcode, tc, qname, qtype, [(type, rdata-as-text)])"""
    qid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", m[:12])
    qname, off = read_name(m, 12)
    qtype = struct.unpack(">H", m[off:off + 2])[0]
    off += 4
    answers = []
    for _ in range(an):
        _owner, off = read_name(m, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", m[off:off + 10])
        off += 10
        rd = m[off:off + rdlen]
        if rtype == 1 and rdlen == 4:
            answers.append((rtype, socket.inet_ntoa(rd)))
        else:
            answers.append((rtype, rd.hex()))
        off += rdlen
    return qid, flags & 15, bool(flags & 0x200), qname, qtype, answers


def one(sock, server, name, qtype, timeout):
    qid = random.randrange(65536)
    t0 = time.monotonic()
    sock.sendto(query(qid, name, qtype), (server, 53))
    deadline = t0 + timeout
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            m, _ = sock.recvfrom(65535)
        except socket.timeout:
            return {"rcode": "TIMEOUT", "ms": round((time.monotonic() - t0) * 1000, 3), "a": []}
        r = parse(m)
        if r[0] == qid and r[3].lower() == name.lower().rstrip("."):
            return {"rcode": RCODES.get(r[1], str(r[1])), "ms": round((time.monotonic() - t0) * 1000, 3),
                    "a": [a for t, a in r[5] if t == 1]}


def cmd_time(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    res = []
    for i in range(a.count):
        name = a.name.replace("{i}", str(i))
        res.append(one(s, a.server, name, TYPES[a.type], a.timeout))
    ms = sorted(r["ms"] for r in res)
    return {"results": res, "ms_sorted": ms, "max_ms": ms[-1], "median_ms": ms[len(ms) // 2]}


def cmd_parallel(a):
    res = [None] * a.count
    start = threading.Barrier(a.count)

    def worker(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start.wait(timeout=10)
        res[i] = one(s, a.server, a.name, TYPES[a.type], a.timeout)
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.count)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(a.timeout + 10)
    return {"results": res, "rcodes": sorted({r["rcode"] for r in res if r})}


def burst_names(count, seed):
    """A mix: a cached cluster name, unique cluster names (NXDOMAIN, never
    cached), a short name, and an upstream name."""
    rnd = random.Random(seed)
    names = []
    for i in range(count):
        k = rnd.random()
        if k < 0.4:
            names.append(("web.default.svc.cluster.local", "NOERROR"))
        elif k < 0.8:
            names.append(("n%d-%d.default.svc.cluster.local" % (seed, i), "NXDOMAIN"))
        elif k < 0.9:
            names.append(("web", "NOERROR"))
        else:
            names.append(("example.com", "NOERROR"))
    return names


def cmd_burst(a):
    names = burst_names(a.count, a.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: every answer fits
    s.connect((a.server, 53))
    got = {}
    bad = []
    done = threading.Event()

    def reader():
        s.settimeout(a.timeout)
        try:
            while len(got) + len(bad) < a.count:
                m = s.recv(65535)
                r = parse(m)
                i = r[0]
                if i >= a.count or i in got or r[3].lower() != names[i][0]:
                    bad.append(i)
                else:
                    got[i] = RCODES.get(r[1], str(r[1]))
        except socket.timeout:
            pass
        done.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t0 = time.monotonic()
    for i, (name, _want) in enumerate(names):
        s.send(query(i, name))  # IDs 0..count-1 name the query
    sent_s = time.monotonic() - t0
    done.wait(a.timeout + 60)
    wrong = {}
    for i, rc in got.items():
        if rc != names[i][1]:
            kind = names[i][0] if not names[i][0].startswith("n") else "unique cluster names"
            wrong.setdefault(kind, {}).setdefault(rc, 0)
            wrong[kind][rc] += 1
    return {"sent": a.count, "answered": len(got), "lost": a.count - len(got), "mismatched": len(bad),
            "wrong_rcode": sum(sum(v.values()) for v in wrong.values()), "wrong": wrong,
            "send_s": round(sent_s, 3), "seconds": round(time.monotonic() - t0, 3)}


def main(argv):
    ap = argparse.ArgumentParser(prog="dnsprobe.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("time")
    p.add_argument("name")
    p.add_argument("--count", type=int, default=10)
    p = sub.add_parser("parallel")
    p.add_argument("name")
    p.add_argument("--count", type=int, default=50)
    p = sub.add_parser("burst")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    for p in sub.choices.values():
        p.add_argument("--server", default=None)
        p.add_argument("--type", default="A", choices=sorted(TYPES))
        p.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args(argv)
    a.server = a.server or nameserver()
    fn = {"time": cmd_time, "parallel": cmd_parallel, "burst": cmd_burst}[a.cmd]
    print(json.dumps(fn(a)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
