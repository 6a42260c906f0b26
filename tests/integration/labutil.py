"""Helpers for integration tests against `subway lab` (see docs/lab.md).

Import from tests:   from labutil import Lab, TOPOLOGIES, run, netns_run ...
(and connect, status, short ... for the laptop's subway).
Fixtures using these live in conftest.py (`lab`, `lab_factory`).

Run as a script inside a namespace, this file is also a small probe tool
(stdlib only, prints one JSON line):

    python3 labutil.py tcp-echo HOST PORT [--size N] [--timeout S]
    python3 labutil.py udp-echo HOST PORT [--count N] [--max-size N] [--window N]
    python3 labutil.py connect HOST PORT [--timeout S]

Every command and loop here is bounded by a timeout.
"""
import argparse
import errno as errno_mod
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBWAY = os.environ.get("SUBWAY", os.path.join(ROOT, "build", "subway"))
PYTHON = "/usr/bin/python3"  # Debian's, whatever python3 is on PATH
HERE = os.path.abspath(__file__)
TOPOLOGIES = ("host-only", "bridged", "cloud", "nat")
STATE_ROOT = "/run/subway-lab"
# Every namespace suffix a lab may use: "<lab>-<suffix>".
NS_SUFFIXES = ("laptop", "router", "internet", "server", "agent1", "agent2", "kube-dns-0",
               "manager-0", "web-0", "echo-0", "web-1", "udp-echo-0", "iperf-0", "client", "laptop2")
NODES = ("server", "agent1", "agent2")
DEFAULT_TIMEOUT = 20.0


def _sanitized():
    try:
        with open(SUBWAY, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# A `make SANITIZE=1` binary runs everything (TLS handshakes first) 2-4 times
# slower: timing thresholds that guard the product's speed scale by this.
SANITIZED = _sanitized()
SLOWDOWN = 2.0 if SANITIZED else 1.0

_counter = itertools.count()


def unique_name(prefix="t"):
    """A short lab name unique to this test process: t<pid><n> (<= 20 chars)."""
    return "%s%d%d" % (prefix, os.getpid(), next(_counter))


def run(argv, timeout=DEFAULT_TIMEOUT, check=False, input=None, text=True, env=None):
    """subprocess.run with captured output and a timeout; never a shell."""
    p = subprocess.run(argv, input=input, capture_output=True, text=text, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" %
                             (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def subway(*args, timeout=60.0, check=False, input=None):
    """Runs the subway binary ($SUBWAY)."""
    return run([SUBWAY, *args], timeout=timeout, check=check, input=input)


def netns_run(ns, argv, **kw):
    """Runs argv in network namespace ns (`ip netns exec`: its own resolv.conf)."""
    return run(["ip", "netns", "exec", ns, *argv], **kw)


def netns_list():
    out = run(["ip", "netns", "list"], check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_inode(ns):
    try:
        return os.stat("/run/netns/" + ns).st_ino
    except FileNotFoundError:
        return None


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Polls pred() until it is truthy; returns its value or raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def processes_in_netns(inodes):
    """PIDs whose network namespace inode is in inodes."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ino = os.stat("/proc/%s/ns/net" % d).st_ino
        except OSError:
            continue
        if ino in inodes:
            pids.append(int(d))
    return pids


def processes_mentioning(text):
    """PIDs whose command line contains text."""
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) != os.getpid() and text in cmdline(int(d))]


def manager_counters(text, pid):
    """The counters a manager logs on SIGUSR1 (to pid), as one string: the
    last dump in text() (its log), from its "sessions" line on."""
    n = text().count("mgr_log_stats: intercepts ")
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: text().count("mgr_log_stats: intercepts ") > n, 3, what="counters in the manager's log")
    lines = [l for l in text().splitlines() if "mgr_log_stats" in l]
    first = max(k for k, l in enumerate(lines) if "mgr_log_stats: sessions " in l)
    return "\n".join(lines[first:])


def cmdline(pid):
    """A process's command line, its arguments joined by spaces ("" once gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def leftovers(name, inodes=()):
    """Everything of lab `name` still on the machine, as readable strings:
    namespaces, /etc/netns dirs, state files, processes (by namespace inode,
    taken before `down`, and by command line), links in the root namespace."""
    found = []
    names = ["%s-%s" % (name, s) for s in NS_SUFFIXES]
    found += ["namespace " + n for n in names if os.path.exists("/run/netns/" + n)]
    found += ["dir /etc/netns/" + n for n in names if os.path.exists("/etc/netns/" + n)]
    for p in ("%s/%s" % (STATE_ROOT, name), "%s/%s.lock" % (STATE_ROOT, name)):
        if os.path.exists(p):
            found.append("file " + p)
    found += ["process %d in a lab namespace" % p for p in processes_in_netns(set(inodes))]
    found += ["process %d mentions the state dir: %s" % (p, (cmdline(p) or "(gone)")[:300])
              for p in processes_mentioning("%s/%s/" % (STATE_ROOT, name))]
    found += ["process %d is the lab's kubelet" % p
              for p in processes_mentioning("lab kubelet --name %s " % name)]
    links = run(["ip", "-o", "link", "show"]).stdout
    found += ["root link: " + line for line in links.splitlines() if name + "-" in line]
    return found


def root_snapshot():
    """What the lab must never change in the root namespace."""
    def cmd(*argv):
        return run(list(argv)).stdout
    with open("/etc/resolv.conf") as f:
        resolv = f.read()
    sysctls = {}
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter",
                "net/bridge/bridge-nf-call-iptables"):
        try:
            with open("/proc/sys/" + key) as f:
                sysctls[key] = f.read()
        except OSError:
            sysctls[key] = None
    return {"routes": cmd("ip", "-4", "route", "show", "table", "all"),
            "addrs": cmd("ip", "-o", "-4", "addr", "show"),
            "links": sorted(l.split(":")[1].strip().split("@")[0]
                            for l in cmd("ip", "-o", "link", "show").splitlines()),
            "sysctls": sysctls, "resolv.conf": resolv}


class Lab:
    """A lab brought up by `subway lab up`.  Namespaces are named by what
    they hold: lab.ns("laptop"), lab.ns("server"), lab.ns("web-0")."""

    def __init__(self, name, topology="host-only"):
        self.name = name
        self.topology = topology
        self._status = None
        self._procs = []

    # ---- life cycle ----

    @classmethod
    def create(cls, topology="host-only", name=None, args=(), timeout=60.0):
        """Brings a lab up; raises with subway's output if it fails."""
        lab = cls(name or unique_name(), topology)
        lab.up_result = lab.up(*args, timeout=timeout)
        lab._daemon_log_start = lab._daemon_log_size()
        if lab.up_result.returncode != 0:
            lab.down()
            raise AssertionError("lab up %s (%s) failed:\n%s%s" % (lab.name, topology,
                                 lab.up_result.stdout, lab.up_result.stderr))
        return lab

    def up(self, *args, timeout=60.0):
        self._status = None
        return subway("lab", "up", "--name", self.name, "--topology", self.topology, *args, timeout=timeout)

    def down(self, timeout=60.0):
        """Stops what tests spawned, then `lab down`."""
        self.kill_spawned()
        if getattr(self, "_held_kubelet", None):  # manager_hold without a release
            try:
                os.kill(self._held_kubelet, signal.SIGCONT)
            except OSError:
                pass
        self._status = None
        return subway("lab", "down", "--name", self.name, timeout=timeout)

    # ---- sanitizer reports (make SANITIZE=1) ----

    def daemon_log(self):
        """/run/subway/daemon-<laptop netns inode>.log: the daemon's log and stderr."""
        ino = netns_inode(self.laptop)
        return "/run/subway/daemon-%d.log" % ino if ino else None

    def _daemon_log_size(self):
        path = self.daemon_log()
        try:
            return os.path.getsize(path) if path else 0
        except OSError:
            return 0

    def sanitizer_reports(self):
        """Stops the laptop's daemon and the manager (their exit is when a
        leak report comes), then returns the sanitizer lines in their logs
        (the daemon's since this lab came up; inodes get reused)."""
        self.exec([SUBWAY, "quit"], timeout=20)
        if os.path.exists("/run/netns/" + self.ns("laptop2")):
            self.exec([SUBWAY, "quit"], timeout=20, laptop=2)
        pid_file = "%s/%s/pids/manager-0.pid" % (STATE_ROOT, self.name)
        try:
            pid = int(open(pid_file).read())
            os.kill(pid, 15)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                     open("/proc/%d/stat" % pid).read().split()[2] == "Z", 5, what="manager exit")
        except (OSError, ValueError, AssertionError):
            pass
        texts = []
        for path, start in ((self.daemon_log(), getattr(self, "_daemon_log_start", 0)),
                            ("%s/%s/logs/manager-0.log" % (STATE_ROOT, self.name), 0)):
            try:
                with open(path, errors="replace") as f:
                    f.seek(start)
                    texts.append((path, f.read()))
            except (OSError, TypeError):
                pass
        return ["%s: %s" % (path, line) for path, text in texts for line in text.splitlines()
                if "Sanitizer" in line or "runtime error" in line]

    def inodes(self):
        """Inodes of the lab's namespaces, to find processes left in them later."""
        return [i for i in (netns_inode(self.ns(s)) for s in NS_SUFFIXES) if i]

    # ---- the plan, from `lab status --json` ----

    def status(self, refresh=False):
        if self._status is None or refresh:
            p = subway("lab", "status", "--name", self.name, "--json", timeout=20)
            self._status = json.loads(p.stdout)
        return self._status

    def ns(self, what):
        """Namespace name of a role, node or pod ("laptop", "agent1", "web-0")."""
        return "%s-%s" % (self.name, what)

    @property
    def laptop(self):
        return self.ns("laptop")

    def pod(self, name):
        return next(p for p in self.status()["pods"] if p["name"] == name)

    def pod_ip(self, name):
        return self.pod(name)["ip"]

    def node(self, name):
        return next(n for n in self.status()["nodes"] if n["name"] == name)

    def node_ip(self, name):
        return self.node(name)["ip"]

    def node_ips(self):
        return [n["ip"] for n in self.status()["nodes"]]

    def service(self, name, namespace="default"):
        return next(s for s in self.status()["services"]
                    if s["name"] == name and s["namespace"] == namespace)

    def cluster_ip(self, name, namespace="default"):
        return self.service(name, namespace)["cluster_ip"]

    def laptop_addr(self):
        """The laptop's address on the nodes' side (the host-only bridge or the LAN)."""
        return self.status()["laptop"]["addresses"][0]["address"].split("/")[0]

    # ---- running things ----

    def _nsname(self, what):
        return what if what.startswith(self.name + "-") else self.ns(what)

    def run(self, what, argv, timeout=DEFAULT_TIMEOUT, **kw):
        """Runs argv in the namespace of `what` (role, node, pod, or full name)."""
        return netns_run(self._nsname(what), argv, timeout=timeout, **kw)

    def sh(self, what, script, timeout=DEFAULT_TIMEOUT, **kw):
        return self.run(what, ["sh", "-c", script], timeout=timeout, **kw)

    def exec(self, argv, timeout=DEFAULT_TIMEOUT, laptop=1, **kw):
        """Runs argv on the laptop (laptop=2: the second one) through `subway lab exec`."""
        which = ["--laptop", str(laptop)] if laptop != 1 else []
        return run([SUBWAY, "lab", "exec", "--name", self.name, *which, "--", *argv], timeout=timeout, **kw)

    # ---- the lab's containers (podman, as its kubelet runs them) ----

    def podman(self, *args, timeout=60, check=False):
        """podman with the lab's own storage (docs/lab.md)."""
        d = "%s/%s/containers" % (STATE_ROOT, self.name)
        return run(["podman", "--storage-driver=vfs", "--root=%s/root" % d, "--runroot=%s/run" % d,
                    "--tmpdir=%s/tmp" % d, "--volumepath=%s/volumes" % d, "--events-backend=none",
                    "--cgroup-manager=cgroupfs", "--runtime=runc", "--log-level=error", *args],
                   timeout=timeout, check=check)

    def containers(self):
        """{name: status} of every container podman has for the lab."""
        out = self.podman("ps", "-a", "--format", "{{.Names}}\t{{.Status}}", check=True).stdout
        return dict(line.split("\t", 1) for line in out.splitlines() if line.strip())

    def inspect(self, container):
        return json.loads(self.podman("inspect", container, check=True).stdout)[0]

    def probe(self, what, *args, timeout=DEFAULT_TIMEOUT, via_exec=False):
        """Runs this file's probe tool in a namespace; returns its JSON result."""
        argv = [PYTHON, HERE, *[str(a) for a in args]]
        p = self.exec(argv, timeout=timeout) if via_exec else self.run(what, argv, timeout=timeout)
        if p.returncode != 0 or not p.stdout.strip():
            raise AssertionError("probe %s in %s failed (%d): %s" % (args, what, p.returncode, p.stderr))
        return json.loads(p.stdout.strip().splitlines()[-1])

    def curl(self, what, *urls, timeout=10.0, close=True, extra=()):
        """GETs urls in one curl (a new connection each when close); returns stdout."""
        argv = ["curl", "-sS", "--max-time", str(int(timeout)), *extra]
        if close:
            argv += ["-H", "Connection: close"]
        p = self.run(what, argv + list(urls), timeout=timeout + 5)
        if p.returncode != 0:
            raise AssertionError("curl %s in %s: exit %d %s" % (urls, what, p.returncode, p.stderr))
        return p.stdout

    def dig(self, what, *args, timeout=10.0):
        p = self.run(what, ["dig", "+time=2", "+tries=2", *args], timeout=timeout)
        return p.stdout

    def spawn(self, what, argv):
        """Starts argv in a namespace in the background; killed by kill_spawned()/down()."""
        p = subprocess.Popen(["ip", "netns", "exec", self._nsname(what), *argv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(p)
        return p

    def popen(self, what, argv):
        """Like spawn, with stdout and stderr as text pipes for the caller
        to read (communicate() with a timeout)."""
        p = subprocess.Popen(["ip", "netns", "exec", self._nsname(what), *argv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._procs.append(p)
        return p

    def kill_spawned(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._procs = []

    def listens(self, what, port, proto="tcp"):
        """Something listens on (or, for udp, is bound to) port in the namespace."""
        flag = "-Htln" if proto == "tcp" else "-Huln"
        p = self.run(what, ["ss", flag, "sport = :%d" % port], timeout=10)
        return bool(p.stdout.strip())

    # ---- nftables ----

    def nft(self, what, ruleset):
        self.run(what, ["nft", "-f", "-"], input=ruleset, check=True)

    def nft_counters(self, what, table, counters):
        """Adds `table ip <table>` to a namespace with one counter per
        {name: (hook, match)}; hook is prerouting, input, forward, output or
        postrouting.  Returns a function that reads {name: packets}."""
        hooks = sorted({h for h, _ in counters.values()})
        text = "table ip %s {\n" % table
        for h in hooks:
            text += "\tchain %s {\n\t\ttype filter hook %s priority -300; policy accept;\n" % (h, h)
            for n, (hook, match) in counters.items():
                if hook == h:
                    text += "\t\t%s counter comment \"%s\"\n" % (match, n)
            text += "\t}\n"
        self.nft(what, text + "}\n")

        def read():
            out = self.run(what, ["nft", "-j", "list", "table", "ip", table], check=True).stdout
            res = {}
            for item in json.loads(out)["nftables"]:
                rule = item.get("rule")
                if not rule:
                    continue
                for e in rule["expr"]:
                    if "counter" in e:
                        res[rule.get("comment")] = e["counter"]["packets"]
            return res
        return read

    def nft_delete(self, what, table):
        self.run(what, ["nft", "delete", "table", "ip", table])


# ---- the laptop's subway, as the test files drive it ----

def connect(lab, *extra, timeout=30, laptop=1):
    """`subway connect --lab` on the laptop (or the second one), with extra arguments."""
    return lab.exec([SUBWAY, "connect", "--lab", lab.name, *extra], timeout=timeout, laptop=laptop)


def status(lab, laptop=1):
    """The daemon's `subway status --json` (lab.status() is the lab's plan)."""
    p = lab.exec([SUBWAY, "status", "--json"], timeout=10, laptop=laptop)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def daemon_log_text(lab):
    """The daemon's log so far; "" while there is none (lab.daemon_log()
    is its path)."""
    path = lab.daemon_log()
    if not path:
        return ""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def manager_pid(lab):
    """The manager's pid and argv in its pod, to kill and respawn it;
    (None, None) when none runs."""
    for pid in run(["ip", "netns", "pids", lab.ns("manager-0")]).stdout.split():
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if b"manager" in cmd:
            return int(pid), [c.decode() for c in cmd if c]
    return None, None


def kubelet_pid(lab):
    """The pid of the lab's kubelet, which restarts the manager's container."""
    return next((p["pid"] for p in lab.status(refresh=True)["processes"] if p["name"] == "kubelet"), None)


def manager_hold(lab):
    """Kills the manager's container and keeps it down: its kubelet is
    paused (SIGSTOP) until manager_release (or lab.down())."""
    kubelet = kubelet_pid(lab)
    assert kubelet, "the lab has no kubelet"
    os.kill(kubelet, signal.SIGSTOP)
    lab._held_kubelet = kubelet
    pid, cmd = manager_pid(lab)
    assert pid, "no manager runs in the lab"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: manager_pid(lab)[0] is None, timeout=5, what="manager gone")
    return cmd


def manager_release(lab, wait=True):
    """The kubelet goes on, and starts the manager's container again at once."""
    kubelet = getattr(lab, "_held_kubelet", None)
    lab._held_kubelet = None
    if kubelet:
        os.kill(kubelet, signal.SIGCONT)
    if wait:
        wait_for(lambda: lab.listens("manager-0", 8443), timeout=15, what="manager back")


class ManagerAway:
    """`with ManagerAway(lab):` the manager's container is killed and stays
    down (its kubelet paused) until the block ends; then the kubelet
    restarts it, as it would have at once."""

    def __init__(self, lab):
        self.lab = lab

    def __enter__(self):
        manager_hold(self.lab)
        return self

    def __exit__(self, *exc):
        manager_release(self.lab)
        return False


def short(lab, *args):
    """`dig +short` on the laptop: the answers, split on whitespace."""
    return lab.run("laptop", ["dig", "+time=3", "+tries=1", "+short", *args], timeout=15).stdout.split()


# ---- the probe tool (runs inside a namespace) ----

def _probe_tcp_echo(a):
    data = random.Random(a.size).randbytes(a.size)
    t0 = time.monotonic()
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    got = bytearray()
    eof = []

    def reader():
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    eof.append(True)
                    return
                got.extend(b)
        except OSError:
            return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)  # half-close: the echo must still arrive, then EOF
    t.join(a.timeout)
    s.close()
    return {"sent": len(data), "received": len(got), "equal": bytes(got) == data,
            "eof": bool(eof), "seconds": round(time.monotonic() - t0, 3)}


def _probe_udp_echo(a):
    rnd = random.Random(1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(a.timeout)
    u.connect((a.host, a.port))
    matched = sent = received = corrupt = 0
    want = {}  # every datagram sent and not yet back: a late one still matches
    t0 = time.monotonic()
    while sent < a.count:
        # sizes from 1 to max_size, both ends included
        sizes = [1 if (sent + i) % 10 == 0 else a.max_size if (sent + i) % 10 == 1 else
                 rnd.randint(1, a.max_size) for i in range(min(a.window, a.count - sent))]
        batch = [rnd.randbytes(n) for n in sizes]
        for m in batch:
            want[m] = want.get(m, 0) + 1
            u.send(m)
        sent += len(batch)
        for _ in batch:
            try:
                m = u.recv(65536)
            except socket.timeout:
                break
            received += 1
            if want.get(m):
                want[m] -= 1
                matched += 1
            else:
                corrupt += 1  # nothing we sent: changed on the way
    return {"sent": sent, "matched": matched, "received": received, "corrupt": corrupt,
            "lost": sent - matched, "seconds": round(time.monotonic() - t0, 3)}


def _probe_connect(a):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    try:
        s.connect((a.host, a.port))
        res = {"ok": True, "error": None}
    except socket.timeout:
        res = {"ok": False, "error": "ETIMEDOUT"}
    except OSError as e:
        res = {"ok": False, "error": errno_mod.errorcode.get(e.errno, str(e.errno))}
    finally:
        s.close()
    res["ms"] = round((time.monotonic() - t0) * 1000, 2)
    return res


def _probe_main(argv):
    ap = argparse.ArgumentParser(prog="labutil.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tcp-echo")
    p.add_argument("--size", type=int, default=1 << 20)
    p = sub.add_parser("udp-echo")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--max-size", type=int, default=1400)
    p.add_argument("--window", type=int, default=50)
    p = sub.add_parser("connect")
    for p in sub.choices.values():
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args(argv)
    fn = {"tcp-echo": _probe_tcp_echo, "udp-echo": _probe_udp_echo, "connect": _probe_connect}[a.cmd]
    print(json.dumps(fn(a)))
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
