"""The agent's port redirect (src/agent/nft.c) against the real kernel, in
two namespaces of its own (no lab):

      ns <name>-cli  10.231.0.1/24 ---- veth ---- ns <name>-pod  10.231.0.2/24
                     fd31::1/64                                  fd31::2/64
      server "cli" on P                            servers "P" on P, "Q" on Q, ...
                                                   (TCP and UDP, IPv4 and IPv6)
                                                   the agent: build/tests/test_nft agent

The agent is the unit test binary's helper mode (tests/unit/test_nft.c),
which drives the library's agent_nft_* calls one command a line.  Clients
inside the pod run as uids of their own (setpriv), so that the exempt uid
is told from the others.  Each test makes its namespaces afresh (unique
names) and deletes them, with every process in them, even on failure; the
root namespace's nftables ruleset is checked to be untouched.

Run as a script, this file is the servers and the probe:
    python3 test_agent_nft.py serve NAME:PORT...   (prints "ready")
    python3 test_agent_nft.py probe tcp|udp HOST PORT
"""
import os
import platform
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import labutil
from labutil import PYTHON, ROOT, run

HERE = os.path.abspath(__file__)
HELPER = os.path.join(ROOT, "build", "tests", "test_nft")
POD_IP, CLI_IP = "10.231.0.2", "10.231.0.1"
POD_IP6, CLI_IP6 = "fd31::2", "fd31::1"
P, Q, P2, Q2 = 8000, 15001, 9000, 15002
EXEMPT, OTHER = 4242, 4343  # the agent's uid, and some other process's
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


# ---- run as a script: the servers and the probe -------------------------

def _serve(specs):
    """Answers each TCP connection and UDP datagram with its name."""
    socks = {}
    for spec in specs:
        name, port = spec.rsplit(":", 1)
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                s = socket.socket(socket.AF_INET6, kind)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                addr = ("::", int(port))
            except OSError:
                s, addr = socket.socket(socket.AF_INET, kind), ("0.0.0.0", int(port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            socks[s] = name.encode()
    print("ready", flush=True)
    while True:
        for s in select.select(list(socks), [], [])[0]:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.sendall(socks[s] + b"\n")
                c.close()
            else:
                _, peer = s.recvfrom(2048)
                s.sendto(socks[s] + b"\n", peer)


def _probe(proto, host, port):
    """Prints the name of the server that answered, or error: ..."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if proto == "tcp":
            s = socket.create_connection((host, int(port)), timeout=3)
            data = s.recv(100)
        else:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.sendto(b"hello", (host, int(port)))
            data = s.recv(100)
        print(data.decode().strip() or "error: empty")
    except OSError as e:
        print("error: %s" % e)


# ---- the fixture ----------------------------------------------------------

def _helper():
    """The helper binary, made (in the build mode in force) if needed."""
    try:
        mode = open(os.path.join(ROOT, "build", "mode")).read().strip() or "0"
    except OSError:
        mode = "0"
    p = run(["make", "-s", "-C", ROOT, "build/tests/test_nft", "SANITIZE=" + mode], timeout=300)
    if p.returncode != 0:
        pytest.fail("cannot build the helper: %s%s" % (p.stdout, p.stderr))
    return HELPER


def _ruleset(ns=None):
    argv = ["nft", "list", "ruleset"]
    p = run(["ip", "netns", "exec", ns, *argv] if ns else argv, check=True)
    # An owned table says which program owns it: not part of the rules.
    return re.sub(r" # progname \S+", "", p.stdout).strip()


def expected(redirects, uid=EXEMPT, owner=True, kept=False):
    """`nft list ruleset` for [(proto, port, to_port)], as the agent makes it;
    kept: none left, but some were (the chains stay, empty)."""
    if not redirects and not kept:
        return ""
    pre = "".join("\t\t%s dport %d redirect to :%d\n" % r for r in redirects)
    out = "".join("\t\tmeta skuid != %d fib daddr type local %s dport %d redirect to :%d\n"
                  % ((uid,) + r) for r in redirects)
    return ("table inet subway-agent {\n" + ("\tflags owner\n\n" if owner else "")
            + "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            + pre + "\t}\n\n"
            "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
            + out + "\t}\n}")


class Agent:
    """The helper in the pod, one command at a time."""

    def __init__(self, pod, wrap=()):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["ip", "netns", "exec", pod.ns, *wrap, pod.helper, "agent"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.buf = b""
        pod.procs.append(self.proc)
        assert self.line() == "ready"

    def line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError("the agent did not answer within %.0f s" % timeout)
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError("the agent exited: %s" % self.stderr())
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        return self.line()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def quit(self):
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=10) == 0, self.stderr()
        assert not SANITIZER.search(self.stderr()), self.stderr()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


class Pod:
    def __init__(self, name):
        self.name, self.ns, self.cli = name, name + "-pod", name + "-cli"
        self.procs = []
        self.helper = _helper()

    def up(self):
        for ns in (self.ns, self.cli):
            run(["ip", "netns", "add", ns], check=True)
            run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        run(["ip", "-n", self.cli, "link", "add", "c0", "type", "veth", "peer", "name", "p0",
             "netns", self.ns], check=True)
        for ns, dev, ip, ip6 in ((self.cli, "c0", CLI_IP, CLI_IP6), (self.ns, "p0", POD_IP, POD_IP6)):
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev], check=True)
            run(["ip", "-n", ns, "addr", "add", ip6 + "/64", "dev", dev, "nodad"], check=True)
            run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        self.serve(self.ns, "%d:%d" % (P, P), "%d:%d" % (Q, Q), "%d:%d" % (P2, P2), "%d:%d" % (Q2, Q2))
        self.serve(self.cli, "cli:%d" % P)  # answers "cli"

    def serve(self, ns, *specs):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, HERE, "serve", *specs],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 10)
        assert ready and p.stdout.readline().strip() == "ready"

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for ns in (self.ns, self.cli):
            if not os.path.exists("/run/netns/" + ns):
                continue
            # Anything else left in it (ours all), then the namespace.
            for pid in run(["ip", "netns", "pids", ns]).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            run(["ip", "netns", "del", ns])

    def agent(self, wrap=()):
        return Agent(self, wrap)

    def ruleset(self):
        return _ruleset(self.ns)

    def probe(self, proto, host, port, uid=None, ns=None):
        """Which server answered a client in ns (the pod) running as uid."""
        wrap = [] if uid is None else ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
        p = run(["ip", "netns", "exec", ns or self.ns, *wrap, PYTHON, HERE, "probe", proto, host, str(port)],
                timeout=15)
        return p.stdout.strip() or p.stderr.strip()

    def outside(self, proto, port, host=POD_IP):
        return self.probe(proto, host, port, ns=self.cli)


@pytest.fixture
def pod():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, nftables)")
    root_before = _ruleset()
    pod = Pod(labutil.unique_name("nft"))
    try:
        pod.up()
        yield pod
    finally:
        pod.down()
    assert _ruleset() == root_before, "the root namespace's ruleset changed"


def _owner_flag():
    """NFT_TABLE_F_OWNER: Linux 5.12."""
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (5, 12)


# ---- the tests --------------------------------------------------------------

def test_tcp_redirect(pod):
    a = pod.agent()
    assert pod.ruleset() == ""
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("tcp", P, Q)])
    # From the cluster: the agent's port.
    assert pod.outside("tcp", P) == str(Q)
    assert pod.outside("tcp", P, host=POD_IP6) == str(Q)
    # The pod calling itself, on any of its addresses: the agent's port,
    # except from the agent's own uid, which reaches the app.
    for host in ("127.0.0.1", POD_IP, "::1", POD_IP6):
        assert pod.probe("tcp", host, P, uid=OTHER) == str(Q), host
        assert pod.probe("tcp", host, P, uid=EXEMPT) == str(P), host
    assert pod.probe("tcp", POD_IP, P, uid=0) == str(Q)
    # The app's calls to port P of another host are not the pod's own.
    assert pod.probe("tcp", CLI_IP, P, uid=OTHER) == "cli"
    assert pod.probe("tcp", CLI_IP6, P, uid=OTHER) == "cli"
    # Other ports and UDP untouched.
    assert pod.outside("tcp", P2) == str(P2)
    assert pod.outside("udp", P) == str(P)

    assert a.cmd("unredirect tcp %d" % P) == "ok"
    assert pod.ruleset() == expected([], kept=True)
    assert pod.outside("tcp", P) == str(P)
    assert pod.probe("tcp", "127.0.0.1", P, uid=OTHER) == str(P)
    a.quit()


def test_udp_redirect(pod):
    a = pod.agent()
    assert a.cmd("redirect udp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("udp", P, Q)])
    assert pod.outside("udp", P) == str(Q)
    assert pod.outside("udp", P, host=POD_IP6) == str(Q)
    assert pod.outside("tcp", P) == str(P)
    for host in ("127.0.0.1", POD_IP, "::1", POD_IP6):
        assert pod.probe("udp", host, P, uid=OTHER) == str(Q), host
        assert pod.probe("udp", host, P, uid=EXEMPT) == str(P), host
    assert pod.probe("udp", CLI_IP, P, uid=OTHER) == "cli"
    assert a.cmd("unredirect udp %d" % P) == "ok"
    assert pod.ruleset() == expected([], kept=True)
    assert pod.outside("udp", P) == str(P)
    a.quit()


def test_several_ports(pod):
    """One port's redirect ends, the others stay; a port redirected anew
    is replaced, not doubled."""
    a = pod.agent()
    for line in ("redirect tcp %d %d %d" % (P, Q, EXEMPT), "redirect tcp %d %d %d" % (P2, Q2, EXEMPT),
                 "redirect udp %d %d %d" % (P, Q, EXEMPT)):
        assert a.cmd(line) == "ok"
    assert pod.ruleset() == expected([("tcp", P, Q), ("tcp", P2, Q2), ("udp", P, Q)])
    assert pod.outside("tcp", P2) == str(Q2)

    assert a.cmd("unredirect tcp %d" % P) == "ok"
    assert pod.ruleset() == expected([("tcp", P2, Q2), ("udp", P, Q)])
    assert pod.outside("tcp", P) == str(P)
    assert pod.outside("tcp", P2) == str(Q2)
    assert pod.outside("udp", P) == str(Q)
    assert a.cmd("unredirect tcp %d" % P) == "err -2 unredirect of tcp port %d: not redirected" % P

    assert a.cmd("redirect tcp %d %d %d" % (P2, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("tcp", P2, Q), ("udp", P, Q)])
    assert pod.outside("tcp", P2) == str(Q)
    # quit: agent_nft_close deletes the table
    a.quit()
    assert pod.ruleset() == ""
    assert pod.outside("tcp", P2) == str(P2)


def test_killed_agent_leaves_nothing(pod):
    if not _owner_flag():
        pytest.skip("no table owner flag before Linux 5.12 (cleanup covers it)")
    a = pod.agent()
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.outside("tcp", P) == str(Q)
    a.kill()
    # The kernel deleted the table with the socket: the app has its port back.
    assert pod.ruleset() == ""
    assert pod.outside("tcp", P) == str(P)


def test_killed_agent_without_owner_flag(pod):
    """As on Linux < 5.12: a killed agent's table stays, and the next
    agent's cleanup removes it."""
    a = pod.agent()
    assert a.cmd("no-owner") == "ok"
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("tcp", P, Q)], owner=False)
    a.kill()
    assert pod.ruleset() == expected([("tcp", P, Q)], owner=False)
    assert pod.outside("tcp", P) == str(Q)
    b = pod.agent()
    assert b.cmd("cleanup") == "ok"
    assert pod.ruleset() == ""
    assert pod.outside("tcp", P) == str(P)
    b.quit()


STALE = """table inet subway-agent {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport %d redirect to :%d
    }
    chain output {
        type nat hook output priority -100; policy accept;
        meta skuid != %d fib daddr type local tcp dport %d redirect to :%d
    }
}
"""


def test_cleanup_removes_a_stale_table(pod):
    """A table left by an agent killed on a kernel without the owner flag
    (made here by nft, so without it): cleanup deletes it, and a redirect
    made without cleanup replaces it."""
    stale = STALE % (P2, Q2, EXEMPT, P2, Q2)
    run(["ip", "netns", "exec", pod.ns, "nft", "-f", "-"], input=stale, check=True)
    assert pod.outside("tcp", P2) == str(Q2)
    a = pod.agent()
    assert a.cmd("cleanup") == "ok"
    assert pod.ruleset() == ""
    assert pod.outside("tcp", P2) == str(P2)
    assert a.cmd("cleanup") == "ok"  # nothing to delete: still fine

    run(["ip", "netns", "exec", pod.ns, "nft", "-f", "-"], input=stale, check=True)
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("tcp", P, Q)])
    assert pod.outside("tcp", P2) == str(P2)
    a.quit()


def test_table_of_a_live_agent_is_refused(pod):
    if not _owner_flag():
        pytest.skip("no table owner flag before Linux 5.12")
    a, b = pod.agent(), pod.agent()
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    msg = b.cmd("cleanup")
    assert msg.startswith("err -1 cleanup: NEWTABLE inet subway-agent: Operation not permitted"), msg
    assert "another process owns the table" in msg
    assert b.cmd("redirect tcp %d %d %d" % (P2, Q2, EXEMPT)).startswith("err -1 ")
    assert pod.ruleset() == expected([("tcp", P, Q)])
    assert pod.outside("tcp", P) == str(Q)
    b.quit()
    a.quit()
    assert pod.ruleset() == ""


def test_without_cap_net_admin(pod):
    a = pod.agent(wrap=("setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-all"))
    msg = a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT))
    assert msg == ("err -1 redirect of tcp port %d to %d: batch: Operation not permitted "
                   "(CAP_NET_ADMIN is needed)" % (P, Q)), msg
    assert pod.ruleset() == ""
    assert pod.outside("tcp", P) == str(P)
    # Refused whole: nothing was taken, so there is nothing to end.
    assert a.cmd("unredirect tcp %d" % P).startswith("err -2 ")
    a.quit()


def test_as_its_own_uid_with_cap_net_admin_only(pod):
    """As the sidecar runs: a uid of its own, CAP_NET_ADMIN and nothing
    else; its own connections to the port reach the app."""
    wrap = ("setpriv", "--reuid", str(EXEMPT), "--regid", str(EXEMPT), "--clear-groups",
            "--inh-caps", "-all,+net_admin", "--ambient-caps", "-all,+net_admin",
            "--bounding-set", "-all,+net_admin")
    a = pod.agent(wrap=wrap)
    # `ip netns exec` and setpriv exec the helper: the same process.
    with open("/proc/%d/status" % a.proc.pid) as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines())
    assert status["Uid"].split()[:2] == [str(EXEMPT)] * 2
    assert int(status["CapEff"], 16) == 1 << 12  # CAP_NET_ADMIN
    assert a.cmd("redirect tcp %d %d %d" % (P, Q, EXEMPT)) == "ok"
    assert pod.ruleset() == expected([("tcp", P, Q)])
    assert pod.outside("tcp", P) == str(Q)
    assert pod.probe("tcp", "127.0.0.1", P, uid=EXEMPT) == str(P)
    assert a.cmd("unredirect tcp %d" % P) == "ok"
    assert pod.ruleset() == expected([], kept=True)
    a.quit()
    assert pod.ruleset() == ""


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        _serve(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "probe":
        _probe(*sys.argv[2:])
    else:
        sys.exit(__doc__)
