"""Hostile peers against the manager's port and the daemon's control socket,
and the manager's limits (docs/security.md).  After each attack a legitimate
client works and the victim's open fds are back where they were.

    the manager: on loopback over TLS (as test_manager.py, whose helpers
                 this reuses), in the root namespace, 127.0.0.0/8 only
    the daemon:  `subway daemon` in a namespace of its own (no lab, no
                 connect): its control socket is all there is to attack

The daemon's DNS server is attacked in test_security.py (it needs a lab).
"""
import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

import labutil
import test_manager as tm
from labutil import SUBWAY, netns_inode, run, unique_name, wait_for
from tlsclient import TLSSocket, client_context

GIB4 = 0xffffffff


@pytest.fixture(scope="module")
def servers():
    echo = tm.EchoServer(tm.ECHO_ADDR)
    udp = tm.udp_echo(tm.UDP_ADDR)
    dns, dns_tcp = tm.dns_server(tm.DNS_ADDR)
    yield dict(echo=echo, udp=udp, dns=dns)
    for s in (echo.lsock, udp, dns, dns_tcp):
        s.close()


def start_manager(tmp_path, servers, *limits, tls=True):
    extra = []
    for l in limits:
        extra += ["--limit", l]
    return tm.Manager(tmp_path, servers["dns"].getsockname()[1], extra=extra, tls=tls)


@pytest.fixture
def mgr(tmp_path, servers):
    m = start_manager(tmp_path, servers)
    yield m
    assert m.stop() == 0


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def stats(m):
    """The counters the manager logs on SIGUSR1, as one string."""
    return labutil.manager_counters(m.logtext, m.proc.pid)


def counters(text, pattern):
    """The numbers the regex pattern captures in the counters."""
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return tuple(int(x) for x in m.groups())


FORBIDDEN = r"forbidden tcp (\d+) udp (\d+) icmp (\d+)"
LIMITS = r"limits hit: sessions (\d+) flows (\d+) dials (\d+) dial-rate (\d+) udp (\d+)"


def legit(m, servers):
    """A session, a flow through it, 64 KiB each way byte-exact."""
    c = tm.Conn(m.port)
    assert c.reply_type == tm.FT["AUTH_OK"], tm.text_of(c.reply)
    f, st = tm.dial(m.port, c.session, tm.ECHO_ADDR, servers["echo"].port)
    assert st == tm.DIAL_OK
    data = os.urandom(64 * 1024)
    assert tm.exchange(f.sock, data) == data
    f.close()
    c.close()


def fds_back(m, before):
    wait_for(lambda: m.fds() <= before, 5, what="manager fds back to %d" % before)


def closed(sock, timeout=3.0):
    """True once the peer closes (FIN, RST or TLS failure), reading what comes."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        pass
    return True


def client_hello():
    """The bytes of a real TLS 1.3 ClientHello."""
    out = ssl.MemoryBIO()
    obj = client_context().wrap_bio(ssl.MemoryBIO(), out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_hello(m):
    """A TLS connection that has read the manager's HELLO (not authenticated)."""
    s = TLSSocket.connect(("127.0.0.1", m.port), m.fingerprint)
    assert tm.read_frame(s)[0] == tm.FT["HELLO"]
    return s


# ---- the manager's port ----

def test_garbage(mgr, servers):
    before = mgr.fds()
    # (a record header announcing more than is sent would just wait: see the slowloris)
    for junk in (b"\xff" + os.urandom(4095), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100,
                 b"\x16\x03\x01\x00\x40" + os.urandom(64)):
        s = socket.create_connection(("127.0.0.1", mgr.port))
        s.sendall(junk)
        assert closed(s)
        s.close()
    # inside TLS, before and after authentication
    s = tls_hello(mgr)
    s.sendall(os.urandom(2000))
    assert closed(s)
    c = tm.Conn(mgr.port)
    c.sock.sendall(os.urandom(2000))
    assert closed(c.sock)
    legit(mgr, servers)
    fds_back(mgr, before)
    assert counters(stats(mgr), r"bad frames (\d+)")[0] >= 2


def test_frames_announcing_4_gib(mgr, servers):
    before, rss = mgr.fds(), tm.rss_kib(mgr.proc.pid)
    # a TLS record header announcing 64 KiB (the most it can say)
    s = socket.create_connection(("127.0.0.1", mgr.port))
    s.sendall(b"\x16\x03\x01\xff\xff" + b"\x00" * 100)
    assert closed(s)
    for ftype in (tm.FT["AUTH"], 99):  # pre-auth, inside TLS
        s = tls_hello(mgr)
        s.sendall(struct.pack(">BBHI", ftype, 0, 0, GIB4) + b"\x00" * 64)
        assert closed(s)
    c = tm.Conn(mgr.port)  # a session's control connection
    c.sock.sendall(struct.pack(">BBHI", tm.FT["UDP"], 0, 0, GIB4))
    assert closed(c.sock)
    c = tm.Conn(mgr.port)
    f = tm.Conn(mgr.port, tm.FLOW, c.session)  # a pooled flow connection
    f.sock.sendall(struct.pack(">BBHI", tm.FT["DIAL"], 0, 0, GIB4))
    assert closed(f.sock)
    t = tm.Conn(mgr.port, TRUNK, c.session)  # a trunk
    t.sock.sendall(struct.pack(">BBHI", ST["DATA"], 0, 0, GIB4))
    assert closed(t.sock)
    c.close()
    legit(mgr, servers)
    fds_back(mgr, before)
    assert tm.rss_kib(mgr.proc.pid) - rss < 8 * 1024  # nothing sized by what the peer announced


TRUNK = 3
ST = dict(OPEN=17, RESULT=18, DATA=19, FIN=20, RST=21, CREDIT=22)


def stream(ftype, sid, payload=b""):
    return tm.frame(ftype, struct.pack(">I", sid) + payload)


def stream_open(sid, addr, port):
    return stream(ST["OPEN"], sid, struct.pack(">IHI", tm.ip2int(addr), port, 0))


def test_trunk_rule_breakers(mgr, servers):
    """Streams on a trunk against a peer that breaks the rules: frames for
    ids never opened are ignored, a dial outside the cluster is refused on
    its stream, a stream still works after all that, and a second OPEN of a
    live id ends the trunk, as does an OPEN with the manager's own (even) ids.  The manager serves on; its fds come back."""
    before = mgr.fds()
    c = tm.Conn(mgr.port)
    c.expect(tm.FT["CLUSTER_INFO"])
    t = tm.Conn(mgr.port, TRUNK, c.session)
    assert t.reply_type == tm.FT["AUTH_OK"], tm.text_of(t.reply)
    s = t.sock
    s.sendall(stream(ST["DATA"], 77, b"x") + stream(ST["FIN"], 78) + stream(ST["RST"], 80) +
              stream(ST["CREDIT"], 79, struct.pack(">I", 5)))
    s.sendall(stream_open(1, "8.8.8.8", 80))
    assert tm.read_frame(s) == (ST["RESULT"], struct.pack(">IB", 1, tm.DIAL_FORBIDDEN))
    s.sendall(stream_open(3, tm.ECHO_ADDR, servers["echo"].port))
    assert tm.read_frame(s) == (ST["RESULT"], struct.pack(">IB", 3, tm.DIAL_OK))
    data = os.urandom(3000)
    s.sendall(stream(ST["DATA"], 3, data) + stream(ST["FIN"], 3))
    got, fin = b"", False
    while not fin:
        ftype, p = tm.read_frame(s)
        assert struct.unpack(">I", p[:4])[0] == 3, (ftype, p[:8])
        if ftype == ST["DATA"]:
            got += p[4:]
        fin = ftype == ST["FIN"]
    assert got == data  # echoed, then the echo server's FIN
    s.sendall(stream_open(5, tm.ECHO_ADDR, servers["echo"].port))
    assert tm.read_frame(s) == (ST["RESULT"], struct.pack(">IB", 5, tm.DIAL_OK))
    s.sendall(stream_open(5, tm.ECHO_ADDR, servers["echo"].port))  # a live id again
    assert closed(s)
    t = tm.Conn(mgr.port, TRUNK, c.session)
    t.sock.sendall(stream_open(2, tm.ECHO_ADDR, servers["echo"].port))  # the manager's parity
    assert closed(t.sock)
    c.close()
    legit(mgr, servers)
    fds_back(mgr, before)


def test_truncated_handshakes(mgr, servers):
    before = mgr.fds()
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", mgr.port))  # half a ClientHello, then gone
    s.sendall(hello[:len(hello) // 2])
    s.close()
    s = tls_hello(mgr)  # half an AUTH, then gone
    s.sendall(tm.frame(tm.FT["AUTH"], b"\x00\x01\x01" + b"\x00" * 40)[:30])
    s.close()
    s = socket.create_connection(("127.0.0.1", mgr.port))  # TCP only, then a RST
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    legit(mgr, servers)
    fds_back(mgr, before)


def test_2000_idle_unauthenticated(mgr, servers):
    raise_nofile(4096)
    before = mgr.fds()
    idle = [socket.create_connection(("127.0.0.1", mgr.port)) for _ in range(2000)]
    try:
        legit(mgr, servers)  # still served: the oldest idle ones made room
        assert mgr.fds() < before + 300
    finally:
        for s in idle:
            s.close()
    fds_back(mgr, before)
    assert counters(stats(mgr), r"(\d+) pre-auth dropped")[0] >= 1700


def test_slowloris(mgr, servers):
    """A byte a second (of a ClientHello; of an AUTH after a fast TLS
    handshake), and half a ClientHello that stalls: each is dropped when
    the pre-auth time (5 s) is up, however it trickles; meanwhile others are
    served.  Bounded: 10 s."""
    before = mgr.fds()
    hello = client_hello()
    slow = socket.create_connection(("127.0.0.1", mgr.port))
    stall = socket.create_connection(("127.0.0.1", mgr.port))
    stall.sendall(hello[:40])
    slow_auth = tls_hello(mgr)
    t0 = time.monotonic()
    gone = {}

    def trickle(name, send, data):
        for b in data:
            try:
                send(bytes([b]))
            except OSError:
                break
            time.sleep(1)
            if time.monotonic() - t0 > 10:
                return
        gone.setdefault(name, time.monotonic() - t0)
    auth = tm.frame(tm.FT["AUTH"], b"\x00\x01\x01" + b"\x00" * 120)
    threads = [threading.Thread(target=trickle, args=("hello", slow.sendall, hello)),
               threading.Thread(target=trickle, args=("auth", slow_auth.sendall, auth))]
    for t in threads:
        t.start()
    legit(mgr, servers)
    assert closed(stall, timeout=8)
    gone["stall"] = time.monotonic() - t0
    for t in threads:
        t.join(12)
    assert 4 < gone["stall"] < 8, gone
    assert all(4 < v < 9 for v in gone.values()) and len(gone) == 3, gone
    for s in (slow, stall, slow_auth):
        s.close()
    assert counters(stats(mgr), r"(\d+) auth timeouts")[0] >= 3
    legit(mgr, servers)
    fds_back(mgr, before)


# ---- the manager: not an open proxy, limits per session ----

def test_not_an_open_proxy(mgr, servers):
    c = tm.Conn(mgr.port)
    c.expect(tm.FT["CLUSTER_INFO"])
    refused = ["192.0.2.1", "8.8.8.8", "169.254.169.254", "10.44.0.1", "255.255.255.255", "224.0.0.1"]
    for addr in refused:
        assert tm.dial(mgr.port, c.session, addr, 80)[1] == tm.DIAL_FORBIDDEN, addr
    assert tm.dial(mgr.port, c.session, "127.0.0.1", mgr.port)[1] == tm.DIAL_FORBIDDEN  # itself
    for i, addr in enumerate(("8.8.8.8", "169.254.169.254")):
        c.send(tm.FT["UDP"], struct.pack(">IIHIHH", 50 + i, 1, 2, tm.ip2int(addr), 53, 1) + b"x")
        assert struct.unpack(">I", c.expect(tm.FT["UDP_CLOSE"]))[0] == 50 + i
    c.send(tm.FT["PING"], struct.pack(">IIHHH", 9, tm.ip2int("8.8.8.8"), 1, 1, 0))
    assert struct.unpack(">IB", c.expect(tm.FT["PONG"])[:5]) == (9, 1)  # unreachable, at once
    assert counters(stats(mgr), FORBIDDEN) == (7, 2, 1)
    assert "refused: outside the cluster's networks" in mgr.logtext()
    c.close()


def test_limit_dial_rate(tmp_path, servers):
    m = start_manager(tmp_path, servers, "dial-rate=5", "dial-burst=5")
    try:
        c = tm.Conn(m.port)
        port = tm.free_port(tm.ECHO_ADDR)
        got = [tm.dial(m.port, c.session, tm.ECHO_ADDR, port)[1] for _ in range(7)]
        assert got == [tm.DIAL_REFUSED] * 5 + [6, 6], got  # 6: limit
        time.sleep(0.5)  # 5 a second: two more by now
        assert tm.dial(m.port, c.session, tm.ECHO_ADDR, port)[1] == tm.DIAL_REFUSED
        assert counters(stats(m), LIMITS)[3] == 2
        assert "5 dials/s (burst 5)" in m.logtext()
        c.close()
    finally:
        assert m.stop() == 0


def test_limit_dials_in_progress(tmp_path, servers):
    """Dials to a listener whose backlog is full never complete (the SYNs
    are dropped): the third pending one is refused as over the limit."""
    m = start_manager(tmp_path, servers, "dials=2")
    full = socket.socket()
    full.bind((tm.ECHO_ADDR, 0))
    full.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue; later SYNs get no answer
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(full.getsockname())
            fillers.append(s)
        time.sleep(0.2)
        c = tm.Conn(m.port)
        pend = []
        for _ in range(2):
            f = tm.Conn(m.port, tm.FLOW, c.session)
            f.send(tm.FT["DIAL"], struct.pack(">IHI", tm.ip2int(tm.ECHO_ADDR), full.getsockname()[1], 3000))
            pend.append(f)
        time.sleep(0.3)
        assert tm.dial(m.port, c.session, tm.ECHO_ADDR, 1)[1] == 6
        assert counters(stats(m), LIMITS)[2] == 1
        for f in pend:
            f.close()
        c.close()
    finally:
        for s in fillers + [full]:
            s.close()
        assert m.stop() == 0


def test_limit_flows_sessions_udp(tmp_path, servers):
    m = start_manager(tmp_path, servers, "flows=3", "sessions=2", "udp=3")
    try:
        c = tm.Conn(m.port)
        flows = [tm.Conn(m.port, tm.FLOW, c.session) for _ in range(3)]
        assert all(f.reply_type == tm.FT["AUTH_OK"] for f in flows)
        f = tm.Conn(m.port, tm.FLOW, c.session)
        assert f.reply_type == tm.FT["AUTH_FAIL"] and tm.text_of(f.reply) == "too many flow connections"
        c2 = tm.Conn(m.port)
        assert c2.reply_type == tm.FT["AUTH_OK"]
        c3 = tm.Conn(m.port)
        assert c3.reply_type == tm.FT["AUTH_FAIL"] and tm.text_of(c3.reply) == "too many sessions"
        port = servers["udp"].getsockname()[1]
        for i in range(4):
            c.send(tm.FT["UDP"], struct.pack(">IIHIHH", i, 1, 2, tm.ip2int(tm.UDP_ADDR), port, 1) + b"u")
        got = {tm.FT["UDP"]: 0, tm.FT["UDP_CLOSE"]: 0}
        for _ in range(4):
            t, p = tm.read_frame(c.sock)
            while t not in got:
                t, p = tm.read_frame(c.sock)
            got[t] += 1
        assert got == {tm.FT["UDP"]: 3, tm.FT["UDP_CLOSE"]: 1}, got
        assert counters(stats(m), LIMITS) == (1, 1, 0, 0, 1)
        for x in flows + [c, c2]:
            x.close()
    finally:
        assert m.stop() == 0


# ---- the daemon's control socket ----

@pytest.fixture(scope="module")
def daemon(subway_bin):
    """`subway daemon` alone in a namespace of its own: (pid, socket path, ns)."""
    ns = unique_name("h")
    run(["ip", "netns", "add", ns], check=True)
    path = "/run/subway/daemon-%d.sock" % netns_inode(ns)
    log = "/run/subway/daemon-%d.log" % netns_inode(ns)
    errf = open(log, "a")
    p = subprocess.Popen(["ip", "netns", "exec", ns, SUBWAY, "daemon"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(path), 5, what="the daemon's socket")
        yield p.pid, path, ns
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        errf.close()
        run(["ip", "netns", "del", ns])
        text = open(log).read()
        os.unlink(log)
        assert p.returncode == 0, text
        assert "Sanitizer" not in text and "runtime error" not in text, text


def ctl(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits for room in the listen backlog
    s.settimeout(5)
    return s


def ctl_answer(s, timeout=7.0):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    except (ConnectionResetError, BrokenPipeError):
        return out


def pid_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def status_works(ns):
    p = run(["ip", "netns", "exec", ns, SUBWAY, "status", "--json"], timeout=10)
    assert p.returncode == 0 and '"state": "idle"' in p.stdout, p.stdout + p.stderr


def test_daemon_keeps_only_network_capabilities(daemon):
    pid, _, _ = daemon
    st = dict(l.split(":\t", 1) for l in open("/proc/%d/status" % pid).read().splitlines() if ":\t" in l)
    want = (1 << 12) | (1 << 10)  # CAP_NET_ADMIN, CAP_NET_BIND_SERVICE
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[key], 16) == want, (key, st[key])
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"].strip() == "1"


def test_control_socket_refuses_other_users(daemon):
    pid, path, ns = daemon
    for argv in (["status"], ["status", "--json"], ["quit"]):
        p = run(["ip", "netns", "exec", ns, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 SUBWAY, *argv], timeout=10)
        assert p.returncode == 1 and "permission denied" in p.stderr and not p.stdout.strip(), (argv, p)
    p = run(["ip", "netns", "exec", ns, "runuser", "-u", "nobody", "--", SUBWAY, "status"], timeout=10)
    assert p.returncode == 1 and "permission denied" in p.stderr
    status_works(ns)  # still there: quit was refused


def test_control_socket_garbage_and_oversized(daemon):
    pid, path, ns = daemon
    before = pid_fds(pid)
    for junk in (os.urandom(500) + b"\n", b"status\x00quit\n", b"connect " + b"x=" * 300 + b"\n",
                 b"\xff" * 10 + b"\n"):
        s = ctl(path)
        s.sendall(junk)
        assert ctl_answer(s).startswith(b"error "), junk
        s.close()
    # a request announcing far more than the daemon takes: 4 MiB, no newline
    s = ctl(path)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 5
    while sent < 4 << 20 and time.monotonic() < deadline:
        try:
            sent += s.send(b"a" * 65536)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    s.setblocking(True)
    assert b"request too long" in ctl_answer(s)
    s.close()
    # half a request, then gone
    s = ctl(path)
    s.sendall(b"stat")
    s.close()
    status_works(ns)
    wait_for(lambda: pid_fds(pid) <= before, 5, what="daemon fds back")


def test_control_socket_2000_idle(daemon):
    pid, path, ns = daemon
    raise_nofile(4096)
    before = pid_fds(pid)
    idle = [ctl(path) for _ in range(2000)]
    try:
        status_works(ns)  # the oldest idle clients made room
        assert pid_fds(pid) < before + 80
    finally:
        for s in idle:
            s.close()
    status_works(ns)
    wait_for(lambda: pid_fds(pid) <= before, 5, what="daemon fds back")


def test_control_socket_slowloris(daemon):
    """"status\n" a byte a second: dropped unanswered when its 5 s are up."""
    pid, path, ns = daemon
    before = pid_fds(pid)
    slow = ctl(path)
    t0 = time.monotonic()

    def trickle():
        for b in b"status\n":
            try:
                slow.send(bytes([b]))
            except OSError:
                return
            time.sleep(1)
    t = threading.Thread(target=trickle)
    t.start()
    status_works(ns)
    assert ctl_answer(slow, timeout=8) == b""
    assert 4 < time.monotonic() - t0 < 8
    t.join(10)
    slow.close()
    status_works(ns)
    wait_for(lambda: pid_fds(pid) <= before, 5, what="daemon fds back")
