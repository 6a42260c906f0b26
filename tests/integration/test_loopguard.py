"""The loop guard (issue 5, docs/vm-networking.md): a cluster in a VM on
the same machine sends back what the manager dials for the laptop; subway
must refuse such a loop at once, count it, and slow nothing else down.

    laptop ns ──VIF──► daemon ──tunnel──► manager pod ── connect(10.43.250.250)
        ▲                                                     │ node: no rule,
        │  host-only: forwarded by the laptop (node source, TOS mark)
        └─ nat:       re-originated by slirp4netns (laptop source, no mark)

Each topology's lab comes up once for this module; the laptop connects with
the guard on.  The --no-loop-guard test reconnects and puts the guard back.
DNS loops are issue 4's (branch dns) and are tested there."""
import json
import os
import re
import subprocess
import threading
import time

import pytest

from labutil import PYTHON, SLOWDOWN, SUBWAY, connect, daemon_log_text, run, status, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = os.path.join(HERE, "loopload.py")
NOWHERE = "10.43.250.250"  # in the service CIDR, owned by no service
DIALS_MAX = 512            # src/daemon/daemon.h


def load(lab, what, *args, ns="laptop", timeout=120):
    p = lab.run(ns, [PYTHON, LOAD, what, *[str(a) for a in args]], timeout=timeout)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def p99(ms):
    s = sorted(ms)
    return s[max(0, -(-len(s) * 99 // 100) - 1)]  # nearest rank


def manager_counters(lab, table, counters):
    """nft counters in the manager's pod: what the manager itself sends."""
    lab.nft_delete("manager-0", table)
    return lab.nft_counters("manager-0", table, counters)


@pytest.fixture(scope="module")
def conn(lab):
    p = connect(lab)
    assert p.returncode == 0, p.stdout + p.stderr
    s = status(lab)
    assert s["loop_guard"]["enabled"] is True
    yield lab
    lab.exec([SUBWAY, "quit"], timeout=20)


@pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
def test_loop_refused_at_once(conn):
    lab = conn
    before = status(lab)["loops_blocked"]
    syns = manager_counters(lab, "lgsyn", {
        "syn": ("output", "ip daddr %s tcp flags & (syn|ack) == syn" % NOWHERE)})
    limit = (5.0 if lab.topology == "host-only" else 20.0) * SLOWDOWN
    # This machine may be shared: a run of 100 whose p99 a neighbour's
    # burst spoiled is run again, at most twice.  A slow guard fails all.
    runs = []
    for _ in range(3):
        r = load(lab, "seq", NOWHERE, 80, 100, 5)
        assert r["errors"] == {"ECONNREFUSED": 100}, r
        runs.append(r["ms"])
        print("\n%s: loop connect p50 %.2f ms p99 %.2f ms max %.2f ms" %
              (lab.topology, sorted(r["ms"])[49], p99(r["ms"]), max(r["ms"])))
        if p99(r["ms"]) < limit:
            break
    assert min(p99(ms) for ms in runs) < limit, [sorted(ms)[90:] for ms in runs]
    n = 100 * len(runs)
    dials = syns()["syn"]
    print("%s: the manager dialled %d times for %d connects" % (lab.topology, dials, n))
    if lab.topology == "host-only":
        assert n <= dials <= 2 * n, dials  # at most 2 per connect: here exactly 1
    after = status(lab)["loops_blocked"]
    assert after["tcp"] - before["tcp"] >= n, (before, after)
    assert after["last_source"] == (lab.node_ip("server") if lab.topology == "host-only" else "198.18.0.1")
    # One log line per source, however many loops (the log file outlives
    # daemons: a namespace's inode may be reused, so keep this daemon's).
    me = "subway-daemon[%d]" % status(lab)["daemon_pid"]
    lines = [l for l in daemon_log_text(lab).splitlines()
             if me in l and "loop refused" in l and "from %s " % after["last_source"] in l]
    assert len(lines) == 1, lines
    assert "docs/vm-networking.md" in lines[0]


@pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
def test_looped_udp_and_ping_refused(conn):
    lab = conn
    before = status(lab)
    sent = manager_counters(lab, "lgudp", {"udp": ("output", "ip daddr %s udp dport 9" % NOWHERE)})
    r = load(lab, "udp", NOWHERE, 9, 20, 0.3)
    assert sum(r["outcomes"].values()) == 20 and "answer" not in r["outcomes"], r
    after = status(lab)
    assert after["loops_blocked"]["udp"] - before["loops_blocked"]["udp"] >= 20
    # Nothing was forwarded around: one datagram per app datagram in
    # host-only; in nat one short chain (cut), then one per datagram at most.
    n = sent()["udp"]
    print("\n%s: the manager sent %d datagrams for 20" % (lab.topology, n))
    assert n <= (20 if lab.topology == "host-only" else 20 + 200), n
    p = lab.run("laptop", ["ping", "-c", "3", "-i", "0.2", "-W", "1", NOWHERE], timeout=15)
    assert " 0 received" in p.stdout
    assert status(lab)["loops_blocked"]["icmp"] - before["loops_blocked"]["icmp"] >= 3


def hammered(lab, seconds, threads=20):
    """Starts threads hammering nonexistent ClusterIPs; returns a join()."""
    res = {}

    def go():
        res.update(load(lab, "hammer", "10.43.250", threads, seconds, 80, timeout=seconds + 60))
    t = threading.Thread(target=go, daemon=True)
    t.start()

    def join():
        t.join(seconds + 60)
        return res
    return join


@pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
def test_hammering_does_not_slow_others(conn):
    lab = conn
    web = lab.cluster_ip("web")
    # The first burst to a destination the guard has never seen answer:
    # it must not notice the guard either.
    r = load(lab, "burst", web, 80, 200)
    assert r["ok"] == 200, r

    def median_burst():
        times = []
        for _ in range(5):
            r = load(lab, "burst", web, 80, 200)
            assert r["ok"] == 200, r
            times.append(r["seconds"])
        return sorted(times)[2], times

    # Twice at most, for the same reason as above (a shared machine).
    for attempt in range(2):
        base, base_all = median_burst()
        loops = status(lab)["loops_blocked"]["tcp"]
        join = hammered(lab, 10)
        time.sleep(1.0)
        ham, ham_all = median_burst()
        h = join()
        print("\n%s: 200 requests to web: %.3f s alone %s, %.3f s hammered %s: ratio %.2f; hammer: %s" %
              (lab.topology, base, base_all, ham, ham_all, ham / base, h))
        assert h.get("errors", {}).get("ECONNREFUSED", 0) > 1000, h
        assert set(h["errors"]) == {"ECONNREFUSED"}, h
        assert status(lab)["loops_blocked"]["tcp"] - loops > 1000
        if ham < 1.5 * base:
            break
    assert ham < 1.5 * base, (base_all, ham_all)


@pytest.mark.parametrize("lab", ["bridged", "cloud"], indirect=True)
def test_no_loop_no_count(conn):
    lab = conn
    # What the cluster makes of it, from the manager's own pod: nothing
    # routes it, "unreachable" (or, once the internet's ICMP errors are
    # rate-limited, silence).  Never "refused": nothing loops here.
    cluster = {"EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT"}
    r = lab.probe("manager-0", "connect", NOWHERE, 80, "--timeout", 4, timeout=30)
    assert r["error"] in cluster, r
    for _ in range(3):
        r = lab.probe("laptop", "connect", NOWHERE, 80, "--timeout", 4, timeout=30)
        assert r["error"] in cluster, r
    load(lab, "udp", NOWHERE, 9, 5, 0.2)
    lab.run("laptop", ["ping", "-c", "2", "-i", "0.2", "-W", "1", NOWHERE], timeout=15)
    s = status(lab)
    assert s["loops_blocked"] == {"tcp": 0, "udp": 0, "dns": 0, "icmp": 0, "last_source": None}, s
    assert s["loop_guard"]["chains_cut"] == 0
    f = s["counters"]["dial_failures"]
    assert f["refused"] == 0 and f["unreachable"] + f["timeout"] >= 3, f


def container(lab, idx=7):
    """A namespace routed through the laptop (a container or a VM of the
    laptop's own): veth ctr0 172.31.<idx>.1 on the laptop, .2 inside."""
    ns = "%s-ctr" % lab.name
    net = "172.31.%d" % idx
    run(["ip", "netns", "add", ns], check=True)
    try:
        run(["ip", "-n", lab.laptop, "link", "add", "ctr0", "type", "veth", "peer", "name", "eth0", "netns", ns],
            check=True)
        for argv in (["-n", lab.laptop, "addr", "add", net + ".1/24", "dev", "ctr0"],
                     ["-n", lab.laptop, "link", "set", "ctr0", "up"],
                     ["-n", ns, "addr", "add", net + ".2/24", "dev", "eth0"],
                     ["-n", ns, "link", "set", "eth0", "up"], ["-n", ns, "link", "set", "lo", "up"],
                     ["-n", ns, "route", "add", "default", "via", net + ".1"]):
            run(["ip", *argv], check=True)
    except Exception:
        run(["ip", "netns", "del", ns])
        raise
    return ns


@pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
def test_forwarded_container_reaches_web(conn):
    lab = conn
    assert lab.run("laptop", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    ns = container(lab)
    try:
        before = status(lab)["loops_blocked"]
        seen = set()
        for _ in range(40):
            p = run(["ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "5", "-H", "Connection: close",
                     "http://%s/" % lab.cluster_ip("web")], timeout=10)
            assert p.returncode == 0, p.stderr
            seen.add(p.stdout.strip())
            if seen == {"web-0", "web-1"}:
                break
        assert seen == {"web-0", "web-1"}
        r = json.loads(run(["ip", "netns", "exec", ns, PYTHON, os.path.join(HERE, "labutil.py"), "tcp-echo",
                            lab.cluster_ip("echo"), "7", "--size", str(1 << 20)], timeout=30).stdout)
        assert r["equal"] and r["eof"], r
        r = json.loads(run(["ip", "netns", "exec", ns, PYTHON, os.path.join(HERE, "labutil.py"), "udp-echo",
                            lab.cluster_ip("udp-echo"), "7", "--count", "100", "--timeout", "2"], timeout=30).stdout)
        assert r["matched"] == 100, r
        assert status(lab)["loops_blocked"] == before
        # Its own loop is refused as the laptop's would be.
        r = json.loads(run(["ip", "netns", "exec", ns, PYTHON, LOAD, "seq", NOWHERE, "80", "5", "5"],
                           timeout=30).stdout)
        assert r["errors"] == {"ECONNREFUSED": 5}, r
    finally:
        run(["ip", "netns", "del", ns])


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


@pytest.mark.parametrize("lab", ["host-only"], indirect=True)
def test_no_loop_guard_storm_is_bounded(conn):
    lab = conn
    lab.exec([SUBWAY, "quit"], timeout=20)
    try:
        p = connect(lab, "--no-loop-guard")
        assert p.returncode == 0, p.stderr
        s = status(lab)
        assert s["loop_guard"]["enabled"] is False
        pid = s["daemon_pid"]
        fds = [fd_count(pid)]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                fds.append(fd_count(pid))
                time.sleep(0.01)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # One looping connection after another: each one a storm of its own.
        join = hammered(lab, 4, threads=1)
        web_ok, web_ms = 0, []
        t_end = time.monotonic() + 3.5
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            p = lab.run("laptop", ["curl", "-sS", "--max-time", "5", "http://%s/" % lab.cluster_ip("web")],
                        timeout=10)
            web_ms.append((time.monotonic() - t0) * 1000)
            web_ok += p.returncode == 0 and p.stdout.strip() in ("web-0", "web-1")
        h = join()
        stop.set()
        sampler.join(5)
        s = status(lab)
        print("\nno guard: hammer %s; web %d/%d ok, slowest %.0f ms; daemon fds max %d; dialing peak %d; "
              "refused by the caps %d" % (h, web_ok, len(web_ms), max(web_ms), max(fds),
                                          s["flows"]["dialing_peak"], s["limits"]["refused"]))
        assert s["loops_blocked"]["tcp"] == 0  # nothing was guarded ...
        assert s["flows"]["dialing_peak"] <= DIALS_MAX  # ... the caps held the storm
        assert s["limits"]["refused"] > 0
        # a storm indeed (each dial also spends a TLS-resumed pooled connection)
        assert s["counters"]["dials"] > 4 * DIALS_MAX / SLOWDOWN  # far past the cap: a storm, held by it
        assert max(fds) <= DIALS_MAX + 150, max(fds)  # one fd per dial in flight, plus the pool
        assert web_ok >= 0.9 * len(web_ms) and web_ok >= 5, (web_ok, len(web_ms))
        assert "Too many open files" not in daemon_log_text(lab)
        wait_for(lambda: status(lab)["flows"]["dialing"] == 0, timeout=10, what="the storm to drain")
        assert fd_count(pid) < 100
        assert lab.curl("laptop", "http://%s/" % lab.cluster_ip("web")).strip() in ("web-0", "web-1")
    finally:
        lab.exec([SUBWAY, "quit"], timeout=20)
        p = connect(lab)
        assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("lab", ["host-only"], indirect=True)
def test_connect_tos(conn):
    lab = conn
    assert status(lab)["loop_guard"]["mark"] == "0x04"  # what the manager announces
    lab.exec([SUBWAY, "quit"], timeout=20)
    try:
        assert connect(lab, "--tos", "0").returncode == 0
        s = status(lab)
        assert s["loop_guard"]["enabled"] is True and s["loop_guard"]["mark"] is None
        # The source layer still catches the host-only loop.
        r = lab.probe("laptop", "connect", NOWHERE, 80, "--timeout", 5)
        assert r["error"] == "ECONNREFUSED" and r["ms"] < 100, r
        lab.exec([SUBWAY, "quit"], timeout=20)
        assert connect(lab, "--tos", "0xb8").returncode == 0
        assert status(lab)["loop_guard"]["mark"] == "0xb8"
    finally:
        lab.exec([SUBWAY, "quit"], timeout=20)
        assert connect(lab).returncode == 0


def doctor(lab, *args):
    p = lab.exec([SUBWAY, "doctor", *args], timeout=30)
    return p


@pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
def test_doctor_names_the_vm(conn):
    lab = conn
    p = doctor(lab)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "your cluster runs in a VM on this machine" in p.stdout
    assert "docs/vm-networking.md" in p.stdout and "bridged" in p.stdout
    assert lab.node_ip("server") in p.stdout and "vboxnet0" in p.stdout
    j = json.loads(doctor(lab, "--json").stdout)
    assert j["clean"] is False and j["connected"] is True
    checks = {f["check"]: f for f in j["findings"]}
    assert checks["vm"]["severity"] == "warning" and checks["vm"]["fix"]
    assert checks["loop-guard"]["severity"] == "ok"
    if lab.topology == "nat":
        assert checks["user-mode-nat"]["severity"] == "warning"
        assert "slirp4netns" in checks["user-mode-nat"]["message"]
    else:
        assert "user-mode-nat" not in checks
    # Not connected: the lab's token names the manager.
    lab.exec([SUBWAY, "quit"], timeout=20)
    try:
        p = doctor(lab, "--lab", lab.name)
        assert p.returncode == 1 and "your cluster runs in a VM on this machine" in p.stdout, p.stdout
        assert "not connected" in p.stdout
    finally:
        assert connect(lab).returncode == 0


@pytest.mark.parametrize("lab", ["bridged"], indirect=True)
def test_doctor_clean_then_names_an_overlap(conn):
    lab = conn
    p = doctor(lab)
    assert p.returncode == 0, p.stdout
    assert "no problems found" in p.stdout
    j = json.loads(doctor(lab, "--json").stdout)
    assert j["clean"] is True and all(f["severity"] in ("ok", "info") for f in j["findings"]), j
    dev = lab.status()["laptop"]["addresses"][0]["interface"]
    lab.run("laptop", ["ip", "route", "add", "10.42.7.0/24", "dev", dev], check=True)
    try:
        p = doctor(lab)
        assert p.returncode == 1
        line = next(l for l in p.stdout.splitlines() if "overlaps" in l)
        assert "10.42.0.0/16" in line and "10.42.7.0/24" in line and dev in line, p.stdout
        assert "fix:" in p.stdout
    finally:
        lab.run("laptop", ["ip", "route", "del", "10.42.7.0/24", "dev", dev])
    # A policy rule that sends the service CIDR elsewhere, with strict
    # reverse-path filtering: the cluster's replies would be dropped.
    rp = lab.run("laptop", ["sysctl", "-n", "net.ipv4.conf.all.rp_filter"]).stdout.strip()
    lab.sh("laptop", "ip route add 10.43.0.0/16 dev %s table 100 && ip rule add to 10.43.0.0/16 table 100 pref 100"
           " && sysctl -qw net.ipv4.conf.all.rp_filter=1" % dev, check=True)
    try:
        p = doctor(lab)
        assert p.returncode == 1
        line = next(l for l in p.stdout.splitlines() if l.startswith("problem") and "routing" in l)
        assert "10.43.0.0/16" in line and dev in line and "rp_filter" in line, p.stdout
    finally:
        lab.sh("laptop", "ip rule del pref 100; ip route flush table 100; sysctl -qw net.ipv4.conf.all.rp_filter=%s" % rp)


def test_doctor_bad_arguments(subway_bin):
    for args in (["--bogus"], ["--manager"], ["--manager", "nohost"], ["extra"], ["--lab", "x", "--manager", "1.2.3.4:5"]):
        p = run([SUBWAY, "doctor", *args])
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("subway doctor: "), p.stderr
    p = run([SUBWAY, "doctor", "--help"])
    assert p.returncode == 0 and p.stdout.startswith("usage: subway doctor")
    for args in (["--tos", "5"], ["--tos", "300"], ["--tos"], ["--no-such"]):
        p = run([SUBWAY, "connect", "--lab", "x", *args])
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.count("\n") == 1, p.stderr
