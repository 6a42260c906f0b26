#!/usr/bin/python3
"""What one unit of work costs the daemon and the manager: syscalls by
kind, context switches (each one a wakeup: the process slept), and CPU,
counted by perf over one run of a case (bench/README.md, "Profile").

    bench/cost.py BINARY [BINARY ...] [--case rtt --case http] [--insecure] [--pin] [--args=ARGS ...]

--args, once per binary and in the same order, adds to its `connect` and
to its manager (restarted with them): `cost.py B B --args="--threads 1"
--args="--threads 2"` compares two settings of one binary.

Counts hardly move with the machine's load, unlike rates: this is how
the latency path's changes were checked, call by call.  Needs perf.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import bench

SYSCALLS = ("epoll_wait", "epoll_ctl", "read", "readv", "recvfrom", "write", "writev", "sendto", "sendmsg",
            "splice", "accept4", "close", "setsockopt")
# the unit, and how many of them one of the case's own (its "_work") holds
UNITS = {"rtt": ("round trip", 1), "rtt4k": ("round trip", 1), "http": ("request", 1e4),
         "conn": ("connection", 1), "tcp1": ("MB", 1e3), "tcp4": ("MB", 1e3)}
RTT_WARMUP = 200  # round trips subway-load --rtt makes before it counts


def perf_start(pid, out):
    ev = ["-e", "context-switches", "-e", "task-clock", "-e", "raw_syscalls:sys_enter"]
    for s in SYSCALLS:
        ev += ["-e", "syscalls:sys_enter_" + s]
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-p", str(pid)] + ev,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stop(p, out):
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    got = {}
    with open(out) as f:
        for line in f:
            v = line.strip().split(",")
            if len(v) > 2 and v[0] and not line.startswith("#"):
                try:
                    got[v[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "syscalls")] = \
                        float(v[0])
                except ValueError:
                    pass
    return got


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", nargs="+")
    ap.add_argument("--case", action="append", choices=list(UNITS))
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--args", action="append", default=[], help="per binary: more arguments (connect and manager)")
    a = ap.parse_args(argv)
    cases = a.case or ["rtt", "http", "conn", "tcp1"]
    tmp = tempfile.mkdtemp(prefix="subway-cost-")
    rows = []
    for i, b in enumerate(a.binary):
        lab = bench.Lab("cost%d%d" % (os.getpid(), i), subway=os.path.abspath(b))
        path = bench.SubwayInsecure(lab) if a.insecure else bench.Subway(lab)
        extra = a.args[i].split() if i < len(a.args) else []
        path.extra += extra
        try:
            lab.up()
            if extra:
                lab.restart_manager(insecure=False, extra=extra)
                path.manager_extra = extra
            lab.pin.on = a.pin
            path.up()
            lab.pin.level()
            if a.pin:
                lab.pin.apply()
            bench.wait_ready(lab, path)
            pids = {"daemon": path.status()["daemon_pid"], "manager": lab.manager_pid}
            for c in cases:
                ps = {k: perf_start(p, os.path.join(tmp, k)) for k, p in pids.items()}
                time.sleep(0.3)  # perf attached
                v = bench.CASES[c][0](lab, path, a.seconds)
                got = {k: perf_stop(p, os.path.join(tmp, k)) for k, p in ps.items()}
                work = v["_work"] * UNITS[c][1] + (RTT_WARMUP if c.startswith("rtt") else 0)
                for k, g in got.items():
                    per = {s: n / work for s, n in g.items()}
                    rows.append((b + (" " + " ".join(extra) if extra else ""), c, k, per))
        finally:
            path.down()
            lab.down()
    cols = ["syscalls", "context-switches", "task-clock"] + list(SYSCALLS)
    print("%-28s %-6s %-8s %s" % ("binary", "case", "who", " ".join("%9s" % c[:9] for c in cols)))
    for b, c, k, per in rows:
        print("%-28s %-6s %-8s %s" % (os.path.basename(b)[:28], c, k, " ".join(
            "%9.2f" % (per.get(x, 0) * (1000 if x == "task-clock" else 1)) for x in cols)))
    print("per %s; task-clock: us of CPU" % ", ".join("%s: %s" % (c, UNITS[c][0]) for c in cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
