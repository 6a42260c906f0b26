#!/usr/bin/python3
"""Compares two subway binaries on the subway path, side by side.

    bench/ab.py OLD_BINARY NEW_BINARY [--rounds 5] [--seconds 4] [--case conn --case tcp1]

Brings up one lab per binary (its manager runs that binary), connects each,
then measures A B A B ... and prints the medians and NEW/OLD.  This is how
each optimisation in bench/README.md was measured: copy build/subway aside
before a change (cp build/subway /tmp/subway-old), rebuild, compare.
"""
import argparse
import os
import statistics
import sys

import bench


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def work(c, v, secs):
    """What a case moved: connections, or gigabytes."""
    if "conn_per_s" in v:
        return v["conn_per_s"] * secs, "us/conn", 1e6
    if "gbps" in v:
        return v["gbps"] * secs / 8, "ms/GB", 1e3
    if "req_per_s" in v:
        return v["req_per_s"] * secs, "us/req", 1e6
    return None, None, None


def measure(lab, path, c, secs):
    """Runs case c; adds the CPU the daemon and the manager spent per unit of
    work, which other load on the machine disturbs far less than rates."""
    pids = (path.status()["daemon_pid"], lab.manager_pid)
    t0 = [cpu_s(p) for p in pids]
    v = bench.run_case(lab, path, c, secs)
    t1 = [cpu_s(p) for p in pids]
    n, unit, scale = work(c, v, secs)
    if n:
        v["daemon_cpu_" + unit] = (t1[0] - t0[0]) / n * scale
        v["manager_cpu_" + unit] = (t1[1] - t0[1]) / n * scale
    return v


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--case", action="append", choices=list(bench.CASES))
    a = ap.parse_args(argv)
    cases = a.case or ["conn", "tcp1"]
    labs = [bench.Lab("ab%d%s" % (os.getpid(), k), subway=os.path.abspath(b)) for k, b in (("a", a.old), ("b", a.new))]
    paths = []
    res = {c: ([], []) for c in cases}
    try:
        for lab in labs:
            lab.up()
            paths.append(bench.Subway(lab))
            paths[-1].up()
        for r in range(a.rounds):
            for i, (lab, path) in enumerate(zip(labs, paths)):
                for c in cases:
                    v = measure(lab, path, c, a.seconds)
                    res[c][i].append(v)
    finally:
        for p in paths:
            p.down()
        for lab in labs:
            lab.down()
    for c in cases:
        keys = list(bench.CASES[c][2]) + sorted({k for v in res[c][0] for k in v if "_cpu_" in k})
        for m in keys:
            old = [v[m] for v in res[c][0] if m in v]
            new = [v[m] for v in res[c][1] if m in v]
            if old and new:
                mo, mn = statistics.median(old), statistics.median(new)
                print("%-6s %-16s old %10.4g (%s)  new %10.4g (%s)  new/old %.3f" % (
                    c, m, mo, " ".join("%.4g" % x for x in old), mn, " ".join("%.4g" % x for x in new),
                    mn / mo if mo else float("nan")))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("ab: interrupted; labs taken down")
