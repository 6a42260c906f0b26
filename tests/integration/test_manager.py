"""The manager on loopback, driven by a small Python client of the tunnel
protocol (docs/protocol.md).  Only 127.0.0.0/8 addresses are used; no
namespaces, no privileges needed (the ICMP test needs a ping or raw socket
and skips otherwise).  Every test that takes the `mgr` fixture runs twice:
over TLS 1.3 with the certificate pinned (tlsclient.py), and --insecure.

    test process                          subway manager (127.0.0.1:P)
    ┌──────────────────────┐  control ┌──────────────────────────┐
    │ Client  ─────────────┼──────────┼─► session                │
    │ flow conns ──────────┼──────────┼─► dial 127.0.0.2:echo ───┼─► echo server
    │ echo / udp / dns srv │◄─────────┼── udp 127.0.0.3, dns .4  │
    └──────────────────────┘          └──────────────────────────┘
"""
import hashlib
import hmac
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from tlsclient import TLSSocket

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBWAY = os.environ.get("SUBWAY", os.path.join(ROOT, "build", "subway"))

FT = dict(HELLO=1, AUTH=2, AUTH_OK=3, AUTH_FAIL=4, CLUSTER_INFO=5, DIAL=6, DIAL_RESULT=7,
          UDP=8, UDP_CLOSE=9, PING=10, PONG=11, DNS_QUERY=12, DNS_REPLY=13, HEARTBEAT=14,
          HEARTBEAT_ACK=15, ERROR=16)
DIAL_OK, DIAL_REFUSED, DIAL_UNREACHABLE, DIAL_TIMEOUT, DIAL_FORBIDDEN = 0, 1, 2, 3, 4
CONTROL, FLOW = 1, 2
TOKEN = bytes(range(32))
VERSION = 5  # PROTO_VERSION (src/proto/frame.h)

ECHO_ADDR = "127.0.0.2"
UDP_ADDR = "127.0.0.3"
DNS_ADDR = "127.0.0.4"


# ---- protocol helpers ----

_FP = {}  # manager port -> fingerprint of its certificate (TLS managers only)


def dial_tcp(port, timeout=5.0):
    """A connection to the manager on port, TLS (pinned) if it speaks TLS."""
    if _FP.get(port):
        return TLSSocket.connect(("127.0.0.1", port), _FP[port], timeout=timeout)
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def ip2int(s):
    return struct.unpack(">I", socket.inet_aton(s))[0]


def int2ip(v):
    return socket.inet_ntoa(struct.pack(">I", v))


def frame(ftype, payload=b""):
    return struct.pack(">BBHI", ftype, 0, 0, len(payload)) + payload


def pstr(s):
    b = s.encode()
    return bytes([len(b)]) + b


def recv_exact(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock, timeout=5.0):
    t, flags, res, n = struct.unpack(">BBHI", recv_exact(sock, 8, timeout))
    assert flags == 0 and res == 0
    return t, recv_exact(sock, n, timeout) if n else b""


def get_str(p, off):
    n = p[off]
    return p[off + 1:off + 1 + n].decode(), off + 1 + n


def mac(role, ns, nc, kind, session, token=TOKEN):
    label = b"subway-v1 client proof" if role == "client" else b"subway-v1 server proof"
    return hmac.new(token, label + ns + nc + bytes([kind]) + session, hashlib.sha256).digest()


def exchange(sock, data, timeout=20.0, chunk=16384):
    """Sends data and half-closes, reading what comes back meanwhile, in
    one thread (a TLS connection is not to be read and written from two
    threads at once).  Returns every byte received until EOF."""
    got = bytearray()

    def drain():
        sock.settimeout(0.0)
        try:
            while True:
                d = sock.recv(65536)
                if not d:
                    return
                got.extend(d)
        except (BlockingIOError, socket.timeout):
            pass
    for i in range(0, len(data), chunk):
        sock.settimeout(timeout)
        sock.sendall(data[i:i + chunk])
        drain()
    sock.settimeout(timeout)
    sock.shutdown(socket.SHUT_WR)
    while True:
        d = sock.recv(65536)
        if not d:
            return bytes(got)
        got.extend(d)


def text_of(payload):
    return get_str(payload, 0)[0]


class Conn:
    """One authenticated (or refused) connection to the manager."""

    def __init__(self, port, kind=CONTROL, session=bytes(16), token=TOKEN, version=None):
        self.sock = dial_tcp(port)
        t, p = read_frame(self.sock)
        assert t == FT["HELLO"]
        ver, ns = struct.unpack(">H", p[:2])[0], p[2:34]
        assert ver == VERSION
        self.server_name = get_str(p, 34)[0]
        nc = os.urandom(32)
        m = mac("client", ns, nc, kind, session, token)
        auth = struct.pack(">HB", VERSION if version is None else version, kind) + session + nc + m + pstr("pytest")
        self.sock.sendall(frame(FT["AUTH"], auth))
        self.reply_type, self.reply = read_frame(self.sock)
        self.session = None
        if self.reply_type == FT["AUTH_OK"]:
            self.session = self.reply[:16]
            assert self.reply[16:48] == mac("server", ns, nc, kind, self.session, token)
            if kind == FLOW:
                assert self.session == session

    def send(self, ftype, payload):
        self.sock.sendall(frame(ftype, payload))

    def expect(self, ftype, timeout=5.0):
        while True:
            t, p = read_frame(self.sock, timeout)
            if t == ftype:
                return p
            assert t in (FT["CLUSTER_INFO"], FT["UDP_CLOSE"], FT["HEARTBEAT_ACK"]), (t, p)

    def close(self):
        self.sock.close()


def decode_cluster_info(p):
    off = 0
    out = {}
    for key in ("pod", "svc"):
        n = p[off]
        off += 1
        lst = []
        for _ in range(n):
            a, l = struct.unpack(">IB", p[off:off + 5])
            lst.append("%s/%d" % (int2ip(a), l))
            off += 5
        out[key] = lst
    out["domain"], off = get_str(p, off)
    out["dns"] = int2ip(struct.unpack(">I", p[off:off + 4])[0])
    off += 4
    for key in ("nodes", "managers"):
        n = p[off]
        off += 1
        out[key] = [int2ip(struct.unpack(">I", p[off + 4 * i:off + 4 * i + 4])[0]) for i in range(n)]
        off += 4 * n
    out["tos"] = p[off]
    out["version"], off = get_str(p, off + 1)
    names = ("none", "flag", "env", "derived", "default")
    out["sources"] = dict(zip(("pod", "svc", "domain", "dns", "nodes"), (names[b] for b in p[off:off + 5])))
    off += 5
    assert off == len(p)
    return out


def dial(port, session, addr, dport, timeout_ms=0):
    f = Conn(port, FLOW, session)
    assert f.reply_type == FT["AUTH_OK"], text_of(f.reply)
    f.send(FT["DIAL"], struct.pack(">IHI", ip2int(addr), dport, timeout_ms))
    t, p = read_frame(f.sock, 10)
    assert t == FT["DIAL_RESULT"] and len(p) == 1
    return f, p[0]


# ---- servers the manager dials ----

class EchoServer(threading.Thread):
    """TCP echo; on EOF from the client it echoes what is left, then shuts
    down its write side (half-close both ways)."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((addr, 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.tos = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with c:
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        c.shutdown(socket.SHUT_WR)
                        return
                    c.sendall(d)
            except OSError:
                pass


def udp_echo(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))

    def run():
        while True:
            try:
                d, peer = s.recvfrom(65535)
                s.sendto(d, peer)
            except OSError:
                return
    threading.Thread(target=run, daemon=True).start()
    return s


BIG_ANSWERS = 100  # A records in the answer for "big.*": 1,600+ bytes, too many for UDP


def big_answer(q, tc):
    """The answer to q for "big.*": truncated (TC, no records) over UDP,
    whole over TCP."""
    if tc:
        return q[:2] + b"\x83\x80" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:]
    hdr = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, BIG_ANSWERS, 0, 0)
    rrs = b"".join(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([10, 42, 1, i])
                   for i in range(BIG_ANSWERS))
    return hdr + q[12:] + rrs


def dns_server(addr):
    """Answers every query with its question and one A record 10.42.0.7,
    first sending a reply with a wrong question (which must be ignored).
    "big.*" is answered truncated over UDP, and whole over TCP on the same
    port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for _ in range(20):  # a port free for both
        s.bind((addr, 0))
        try:
            t.bind((addr, s.getsockname()[1]))
            break
        except OSError:
            s.close()
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.listen(8)

    def run():
        while True:
            try:
                q, peer = s.recvfrom(65535)
            except OSError:
                return
            if q[12] == 3 and q[13:16] == b"big":
                s.sendto(big_answer(q, True), peer)
                continue
            hdr = q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
            bogus = hdr + b"\x05bogus\x00\x00\x01\x00\x01"
            s.sendto(bogus, peer)
            ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton("10.42.0.7")
            s.sendto(hdr + q[12:] + ans, peer)

    def run_tcp():
        while True:
            try:
                c, _ = t.accept()
            except OSError:
                return
            c.settimeout(5)
            try:
                n = struct.unpack(">H", c.recv(2, socket.MSG_WAITALL))[0]
                q = c.recv(n, socket.MSG_WAITALL)
                a = big_answer(q, False)
                c.sendall(struct.pack(">H", len(a)) + a)
            except OSError:
                pass
            c.close()
    threading.Thread(target=run, daemon=True).start()
    threading.Thread(target=run_tcp, daemon=True).start()
    return s, t


def free_port(addr="127.0.0.1"):
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- the manager ----

def tls_args(tmp_path, tls):
    """(manager arguments, fingerprint or None): --tls-dir in tmp_path, or --insecure."""
    if not tls:
        return ["--insecure"], None
    d = str(tmp_path / "tls")
    p = subprocess.run([SUBWAY, "manager", "--tls-dir", d, "--print-fingerprint"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("fingerprint=sha256:"), p.stdout + p.stderr
    return ["--tls-dir", d], p.stdout.strip().split("=", 1)[1]


class Manager:
    def __init__(self, tmp_path, dns_port, extra=(), tls=True):
        if not os.access(SUBWAY, os.X_OK):
            pytest.skip("no subway binary at %s (make first)" % SUBWAY)
        self.token_file = tmp_path / "token"
        self.token_file.write_text("# test token\ntoken=%s\n" % TOKEN.hex())
        self.log = tmp_path / "manager.log"
        self.port = free_port()
        targs, self.fingerprint = tls_args(tmp_path, tls)
        _FP[self.port] = self.fingerprint
        args = [SUBWAY, "manager", "--listen", "127.0.0.1:%d" % self.port, *targs,
                "--token-file", str(self.token_file), "--pod-cidr", "127.0.0.0/8",
                "--service-cidr", "10.43.0.0/16", "--nodes", "127.0.0.9,127.0.0.10",
                "--dns", "%s:%d" % (DNS_ADDR, dns_port), "--tos", "0x04",
                "--dial-timeout-ms", "3000", "--log", str(self.log), "-v"] + list(extra)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                time.sleep(0.05)
        else:
            raise AssertionError("manager did not start listening")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def logtext(self):
        return self.log.read_text() if self.log.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("manager did not stop on SIGTERM")
        err = self.proc.stderr.read().decode()
        text = self.logtext() + err
        assert "Sanitizer" not in text and "runtime error" not in text, text
        return self.proc.returncode


@pytest.fixture(scope="module")
def servers():
    echo = EchoServer(ECHO_ADDR)
    udp = udp_echo(UDP_ADDR)
    dns, dns_tcp = dns_server(DNS_ADDR)
    yield dict(echo=echo, udp=udp, dns=dns)
    for s in (echo.lsock, udp, dns, dns_tcp):
        s.close()


@pytest.fixture(params=["tls", "insecure"])
def mgr(request, tmp_path, servers):
    m = Manager(tmp_path, servers["dns"].getsockname()[1], tls=request.param == "tls")
    yield m
    assert m.stop() == 0


@pytest.fixture
def ctl(mgr):
    c = Conn(mgr.port)
    assert c.reply_type == FT["AUTH_OK"], text_of(c.reply)
    yield c
    c.close()


# ---- tests ----

def test_handshake_and_cluster_info(mgr):
    c = Conn(mgr.port)
    assert c.reply_type == FT["AUTH_OK"]
    assert c.server_name.startswith("subway ")
    info = decode_cluster_info(c.expect(FT["CLUSTER_INFO"]))
    assert info["pod"] == ["127.0.0.0/8"] and info["svc"] == ["10.43.0.0/16"]
    assert info["domain"] == "cluster.local" and info["dns"] == DNS_ADDR
    assert info["nodes"] == ["127.0.0.9", "127.0.0.10"] and info["tos"] == 4
    assert not any(a.startswith("127.") for a in info["managers"])
    src = info["sources"]
    assert (src["pod"], src["svc"], src["dns"], src["nodes"]) == ("flag",) * 4
    assert src["domain"] in ("default", "derived")  # this machine's resolv.conf may name a cluster domain
    c.close()


def test_wrong_token_refused(mgr):
    c = Conn(mgr.port, token=b"\x01" * 32)
    assert c.reply_type == FT["AUTH_FAIL"] and text_of(c.reply) == "authentication refused"
    with pytest.raises(EOFError):
        read_frame(c.sock, 2)
    time.sleep(0.1)
    assert "authentication refused" in mgr.logtext()


def test_unsupported_version(mgr):
    c = Conn(mgr.port, version=1)
    assert c.reply_type == FT["AUTH_FAIL"] and text_of(c.reply) == "unsupported version 1"


def test_flow_unknown_session(mgr):
    c = Conn(mgr.port, FLOW, os.urandom(16))
    assert c.reply_type == FT["AUTH_FAIL"] and text_of(c.reply) == "unknown session"


def test_dial_echo_and_half_close(mgr, ctl, servers):
    f, st = dial(mgr.port, ctl.session, ECHO_ADDR, servers["echo"].port)
    assert st == DIAL_OK
    data = os.urandom(1 << 20)
    # half-close: the echo server sees EOF, echoes everything, then its FIN reaches us
    assert exchange(f.sock, data) == data
    f.close()


def test_dial_bytes_right_after_dial(mgr, ctl, servers):
    """Bytes sent in the same segment as DIAL reach the destination first."""
    f = Conn(mgr.port, FLOW, ctl.session)
    dialf = frame(FT["DIAL"], struct.pack(">IHI", ip2int(ECHO_ADDR), servers["echo"].port, 0))
    f.sock.sendall(dialf + b"early bytes")
    t, p = read_frame(f.sock)
    assert t == FT["DIAL_RESULT"] and p[0] == DIAL_OK
    f.sock.sendall(b" and later")
    assert recv_exact(f.sock, 21) == b"early bytes and later"
    f.close()


def test_dial_pipelined_with_auth(mgr, ctl, servers):
    """AUTH, DIAL and the first bytes in one segment: no round trip wasted."""
    s = dial_tcp(mgr.port)
    t, p = read_frame(s)
    ns, nc = p[2:34], os.urandom(32)
    auth = struct.pack(">HB", VERSION, FLOW) + ctl.session + nc + mac("client", ns, nc, FLOW, ctl.session)
    dialf = struct.pack(">IHI", ip2int(ECHO_ADDR), servers["echo"].port, 0)
    s.sendall(frame(FT["AUTH"], auth + pstr("pytest")) + frame(FT["DIAL"], dialf) + b"hello")
    assert read_frame(s)[0] == FT["AUTH_OK"]
    assert read_frame(s) == (FT["DIAL_RESULT"], b"\x00")
    assert recv_exact(s, 5) == b"hello"
    s.close()


def test_dial_refused(mgr, ctl):
    t0 = time.time()
    f, st = dial(mgr.port, ctl.session, ECHO_ADDR, free_port(ECHO_ADDR))
    assert st == DIAL_REFUSED and time.time() - t0 < 1
    with pytest.raises(EOFError):
        read_frame(f.sock, 2)  # the spent connection is closed


@pytest.mark.parametrize("addr", ["192.0.2.1", "8.8.8.8", "10.44.0.1"])
def test_dial_forbidden(mgr, ctl, addr):
    f, st = dial(mgr.port, ctl.session, addr, 80)
    assert st == DIAL_FORBIDDEN


def test_dial_own_listener_forbidden(mgr, ctl):
    f, st = dial(mgr.port, ctl.session, "127.0.0.1", mgr.port)
    assert st == DIAL_FORBIDDEN


def test_dial_node_allowed(mgr, ctl):
    f, st = dial(mgr.port, ctl.session, "127.0.0.9", free_port("127.0.0.9"))
    assert st == DIAL_REFUSED  # allowed (a node), nobody listens


def test_flows_reset_when_session_ends(mgr, servers):
    c = Conn(mgr.port)
    busy, st = dial(mgr.port, c.session, ECHO_ADDR, servers["echo"].port)
    assert st == DIAL_OK
    idle = Conn(mgr.port, FLOW, c.session)
    assert idle.reply_type == FT["AUTH_OK"]
    busy.sock.sendall(b"x")
    assert recv_exact(busy.sock, 1) == b"x"
    c.close()
    for s in (busy.sock, idle.sock):
        s.settimeout(5)
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass


def test_udp_echo(mgr, ctl, servers):
    port = servers["udp"].getsockname()[1]
    src, sport = ip2int("10.200.0.1"), 40000
    sizes = [0, 1, 100, 1400, 8000, 65000]
    for i, n in enumerate(sizes):
        data = os.urandom(n)
        ctl.send(FT["UDP"], struct.pack(">IIHIHH", 7, src, sport, ip2int(UDP_ADDR), port, n) + data)
        p = ctl.expect(FT["UDP"])
        flow, rsrc, rsport, rdst, rdport, ln = struct.unpack(">IIHIHH", p[:18])
        assert (flow, int2ip(rsrc), rsport, rdst, rdport) == (7, UDP_ADDR, port, src, sport)
        assert p[18:] == data and ln == n
    ctl.send(FT["UDP_CLOSE"], struct.pack(">I", 7))
    # a forbidden destination gets UDP_CLOSE back
    ctl.send(FT["UDP"], struct.pack(">IIHIHH", 8, src, sport, ip2int("192.0.2.1"), 53, 1) + b"x")
    t, p = read_frame(ctl.sock)
    assert t == FT["UDP_CLOSE"] and struct.unpack(">I", p)[0] == 8


def test_heartbeat(ctl):
    ctl.send(FT["HEARTBEAT"], struct.pack(">Q", 123456789))
    assert struct.unpack(">Q", ctl.expect(FT["HEARTBEAT_ACK"]))[0] == 123456789


def dns_query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


def test_dns(ctl):
    q = dns_query("web.default.svc.cluster.local", 0x4242)
    ctl.send(FT["DNS_QUERY"], struct.pack(">IH", 99, len(q)) + q)
    p = ctl.expect(FT["DNS_REPLY"])
    mid, n = struct.unpack(">IH", p[:6])
    r = p[6:]
    assert mid == 99 and len(r) == n
    assert r[:2] == b"\x42\x42" and r[12:12 + len(q) - 12] == q[12:]  # not the bogus reply
    assert r.endswith(socket.inet_aton("10.42.0.7"))


def test_dns_truncated_answer_comes_whole_over_tcp(mgr, ctl):
    q = dns_query("big.default.svc.cluster.local", 0x5151)
    ctl.send(FT["DNS_QUERY"], struct.pack(">IH", 7, len(q)) + q)
    p = ctl.expect(FT["DNS_REPLY"])
    mid, n = struct.unpack(">IH", p[:6])
    r = p[6:]
    assert mid == 7 and len(r) == n > 1600
    flags, _qd, an = struct.unpack(">HHH", r[2:8])
    assert r[:2] == b"\x51\x51" and not flags & 0x0200 and an == BIG_ANSWERS


def test_ping(mgr, ctl):
    if "no ICMP socket" in mgr.logtext():
        pytest.skip("neither a ping socket nor a raw socket is allowed here")
    ctl.send(FT["PING"], struct.pack(">IIHHH", 5, ip2int("127.0.0.1"), 0x1234, 7, 4) + b"ping")
    p = ctl.expect(FT["PONG"])
    pid, st, src, ident, seq, n = struct.unpack(">IBIHHH", p[:15])
    assert (pid, st, int2ip(src), ident, seq, p[15:]) == (5, 0, "127.0.0.1", 0x1234, 7, b"ping")
    # outside the cluster: unreachable at once
    ctl.send(FT["PING"], struct.pack(">IIHHH", 6, ip2int("192.0.2.1"), 1, 1, 0))
    p = ctl.expect(FT["PONG"])
    assert struct.unpack(">IB", p[:5]) == (6, 1)


def expect_closed(sock, timeout=3):
    sock.settimeout(timeout)
    try:
        while True:
            t, p = read_frame(sock, timeout)
            assert t in (FT["ERROR"], FT["CLUSTER_INFO"]), t
    except (EOFError, ConnectionResetError):
        return


def test_garbage_and_oversized(mgr):
    for junk in (b"GET / HTTP/1.0\r\n\r\n", struct.pack(">BBHI", FT["AUTH"], 0, 0, 0xffffffff),
                 struct.pack(">BBHI", 99, 0, 0, 1)):
        s = dial_tcp(mgr.port)
        read_frame(s)
        s.sendall(junk)
        expect_closed(s)
        s.close()
    c = Conn(mgr.port)
    c.send(FT["HEARTBEAT"], b"\x00")  # malformed payload: ERROR then close
    expect_closed(c.sock)
    c = Conn(mgr.port)
    c.sock.sendall(struct.pack(">BBHI", FT["UDP"], 0, 0, 0x7fffffff))
    expect_closed(c.sock)


def test_idle_unauthenticated_connections(mgr, servers):
    before = mgr.fds()
    idle = [socket.create_connection(("127.0.0.1", mgr.port)) for _ in range(600)]
    c = Conn(mgr.port)  # still served: the oldest idle ones were dropped
    assert c.reply_type == FT["AUTH_OK"]
    f, st = dial(mgr.port, c.session, ECHO_ADDR, servers["echo"].port)
    assert st == DIAL_OK
    assert mgr.fds() < before + 300
    for s in idle:
        s.close()
    f.close()
    c.close()
    time.sleep(0.3)
    assert mgr.fds() <= before + 1


def test_auth_timeout(mgr):
    s = dial_tcp(mgr.port)
    read_frame(s)
    t0 = time.time()
    s.sendall(b"\x02")  # a slowloris: one byte, then nothing
    expect_closed(s, 8)
    assert 4 < time.time() - t0 < 7


def test_sigusr1_logs_counters(mgr, ctl):
    mgr.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    assert "dials ok" in mgr.logtext()


def test_bad_arguments():
    if not os.access(SUBWAY, os.X_OK):
        pytest.skip("no subway binary")
    base = [SUBWAY, "manager", "--listen", "127.0.0.1:1", "--token-file", "/nonexistent",
            "--pod-cidr", "10.42.0.0/16", "--service-cidr", "10.43.0.0/16"]
    for opt, val in (("--pod-cidr", "10.42.0.0/33"), ("--tos", "0x101"), ("--tos", "3"),
                     ("--nodes", "1.2.3"), ("--dial-timeout-ms", "0"), ("--listen", "x:1")):
        r = subprocess.run(base + [opt, val], capture_output=True, text=True)
        assert r.returncode == 2, (opt, val, r.stderr)
        assert val in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([SUBWAY, "manager", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--pod-cidr" in r.stdout


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_udp_flood_to_a_client_that_does_not_read(mgr, servers):
    """Replies for a client that never reads are dropped, not queued without
    bound; the session keeps working once the client reads again."""
    c = Conn(mgr.port)
    c.expect(FT["CLUSTER_INFO"])
    port = servers["udp"].getsockname()[1]
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    rss0 = rss_kib(mgr.proc.pid)
    data = b"u" * 8000
    msg = frame(FT["UDP"], struct.pack(">IIHIHH", 1, ip2int("10.200.0.1"), 5, ip2int(UDP_ADDR),
                                       port, len(data)) + data)
    for _ in range(4000):
        c.sock.sendall(msg)
    time.sleep(1)
    assert rss_kib(mgr.proc.pid) - rss0 < 16 * 1024
    mgr.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    line = [l for l in mgr.logtext().splitlines() if "datagrams up" in l][-1]
    dropped = int(line.split("dropped ")[1].split(";")[0])
    down = int(line.split("down ")[1].split(" ")[0])
    # Not everything reached a client that never reads: the manager dropped
    # replies, or the echo server behind it did (which one is timing).
    assert dropped > 0 or down < 4000, line
    # drain, then the session still answers
    c.sock.settimeout(0.5)
    try:
        while c.sock.recv(1 << 20):
            pass
    except socket.timeout:
        pass
    c.send(FT["HEARTBEAT"], struct.pack(">Q", 1))
    c.expect(FT["HEARTBEAT_ACK"])
    c.close()


def test_sigterm_with_everything_open(tmp_path, servers):
    """A clean exit (status 0, no sanitizer report, no leak) with a session,
    a relayed flow, an idle pooled flow, a dial in progress and a UDP flow."""
    m = Manager(tmp_path, servers["dns"].getsockname()[1])
    c = Conn(m.port)
    busy, st = dial(m.port, c.session, ECHO_ADDR, servers["echo"].port)
    assert st == DIAL_OK
    idle = Conn(m.port, FLOW, c.session)
    port = servers["udp"].getsockname()[1]
    c.send(FT["UDP"], struct.pack(">IIHIHH", 3, 1, 2, ip2int(UDP_ADDR), port, 1) + b"x")
    c.expect(FT["UDP"])
    pre = socket.create_connection(("127.0.0.1", m.port))  # unauthenticated
    assert m.stop() == 0
    assert "signal 15: stopping" in m.logtext()
    for s in (busy.sock, idle.sock, c.sock, pre):
        s.close()


def test_concurrent_flows(mgr, ctl, servers):
    """100 flows at once, 256 KiB each way, byte-exact; fds back to where they were."""
    before = mgr.fds()
    errors = []

    def one(i):
        try:
            f, st = dial(mgr.port, ctl.session, ECHO_ADDR, servers["echo"].port)
            assert st == DIAL_OK
            data = os.urandom(256 * 1024)
            assert exchange(f.sock, data) == data
            f.close()
        except Exception as e:  # collected, asserted below
            errors.append("%d: %r" % (i, e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    time.sleep(0.5)
    assert mgr.fds() <= before + 2
