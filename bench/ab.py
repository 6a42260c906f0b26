#!/usr/bin/python3
"""Compares two subway binaries on the subway path, side by side.

    bench/ab.py OLD_BINARY NEW_BINARY [--rounds 5] [--seconds 4] [--case conn --case tcp1] [--insecure] [--pin]
                [--old-args "ARGS"] [--new-args "ARGS"] [--old-manager-args "ARGS"] [--new-manager-args "ARGS"]

Brings up one lab per binary (its manager runs that binary), connects each,
then measures A B A B ... and prints the medians and NEW/OLD.  This is how
each optimisation in bench/README.md was measured: copy build/subway aside
before a change (cp build/subway /tmp/subway-old), rebuild, compare.  The
same binary twice with other arguments compares options: --new-args go to
the NEW lab's `connect`, --new-manager-args to its manager (restarted with
them, as bench.py restarts it for --insecure).

Beside the rates, the CPU spent per unit of work (bench.py's accounting:
every process of the labs, and ksoftirqd; and the daemon's and the
manager's own): other load on the machine disturbs it far less than rates.
"""
import argparse
import os
import statistics
import sys

import bench


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--case", action="append", choices=list(bench.CASES))
    ap.add_argument("--insecure", action="store_true", help="both labs' managers and daemons with --insecure")
    ap.add_argument("--pin", action="store_true", help="the two-machine mode (bench.py --pin)")
    ap.add_argument("--nice", type=int, default=-10)
    for who in ("old", "new"):
        ap.add_argument("--%s-args" % who, default="", help="more arguments for the %s lab's connect" % who)
        ap.add_argument("--%s-manager-args" % who, default="", help="... and for its manager")
    a = ap.parse_args(argv)
    cases = a.case or ["conn", "tcp1"]
    if a.nice:
        os.nice(a.nice)
    labs = [bench.Lab("ab%d%s" % (os.getpid(), k), subway=os.path.abspath(b)) for k, b in (("a", a.old), ("b", a.new))]
    args = [(a.old_args.split(), a.old_manager_args.split()), (a.new_args.split(), a.new_manager_args.split())]
    paths = []
    res = {c: ([], []) for c in cases}
    bench.CPU.start()
    try:
        for lab, (extra, mextra) in zip(labs, args):
            lab.up()
            lab.pin.on = a.pin
            if mextra:
                lab.restart_manager(insecure=False, extra=mextra)
            if a.insecure:
                paths.append(bench.SubwayInsecure(lab))
                paths[-1].manager_extra = mextra
            else:
                paths.append(bench.Subway(lab))
            paths[-1].extra += extra
            paths[-1].up()
            lab.pin.level()
            if a.pin:
                lab.pin.apply()
        for r in range(a.rounds):
            for i, (lab, path) in enumerate(zip(labs, paths)):
                for c in cases:
                    res[c][i].append(bench.run_case(lab, path, c, a.seconds))
    finally:
        for p in paths:
            p.down()
        for lab in labs:
            lab.down()
        bench.CPU.stop()
    for c in cases:
        keys = list(bench.CASES[c][2]) + sorted({k for v in res[c][0] for k in v if k.split("_cpu_")[0] in
                                                 ("daemon", "manager")})
        for m in keys:
            old = [v[m] for v in res[c][0] if m in v]
            new = [v[m] for v in res[c][1] if m in v]
            if old and new:
                mo, mn = statistics.median(old), statistics.median(new)
                print("%-6s %-26s old %10.4g (%s)  new %10.4g (%s)  new/old %.3f" % (
                    c, m, mo, " ".join("%.4g" % x for x in old), mn, " ".join("%.4g" % x for x in new),
                    mn / mo if mo else float("nan")))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("ab: interrupted; labs taken down")
