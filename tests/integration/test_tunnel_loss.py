"""When the tunnel goes, apps are told at once (issue 15): `quit`, the
manager dying, connects while reconnecting, addresses nobody owns, UDP.

Every app here is a small client in the laptop namespace that prints one
JSON line: what its socket saw and when.  Time bounds are the issue's
(1 s, the grace + 1 s, 5 ms) with room for a loaded machine."""
import json
import os
import signal
import time

import pytest

from labutil import PYTHON, SLOWDOWN, SUBWAY, connect, manager_hold, manager_release, status, wait_for

# A client that connects, asks for /big slowly, and reports how its read ended.
SLOW_DOWNLOAD = r'''
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=30)
s.sendall(b"GET /big HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
got, t0, out = 0, time.monotonic(), "eof"
s.settimeout(20)
print("reading", flush=True)
try:
    while True:
        b = s.recv(16384)
        if not b:
            break
        got += len(b)
        time.sleep(0.002)  # a slow reader: the rest waits in the tunnel
except ConnectionResetError:
    out = "reset"
except socket.timeout:
    out = "timeout"
print(json.dumps({"end": out, "bytes": got, "t_end": time.time()}), flush=True)
'''

# A client that only reads (a log tail, a watch): the echo server sends nothing.
READ_ONLY = r'''
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=10)
s.settimeout(20)
print("reading", flush=True)
out = "eof"
try:
    s.recv(100)
except ConnectionResetError:
    out = "reset"
except socket.timeout:
    out = "timeout"
print(json.dumps({"end": out, "t_end": time.time()}), flush=True)
'''

CONNECT = r'''
import errno, json, socket, sys, time
s = socket.socket()
s.settimeout(float(sys.argv[3]))
t0 = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    r = "ok"
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e)) if e.errno else "timeout"
print(json.dumps({"result": r, "s": time.monotonic() - t0}), flush=True)
'''


def start_client(lab, script, *args):
    """Starts a client in the laptop namespace; returns once it is reading."""
    p = lab.popen("laptop", [PYTHON, "-c", script, *map(str, args)])
    line = p.stdout.readline()
    assert line.strip() == "reading", (line, p.stderr.read() if p.poll() is not None else "")
    return p


def finish(p, timeout=30):
    out, err = p.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, err
    return json.loads(lines[-1])


def kill_manager(lab):
    """The manager's container killed, and kept down (the lab's kubelet
    would start it again at once): start_manager lets the kubelet go on."""
    manager_hold(lab)
    wait_for(lambda: not lab.listens("manager-0", 8443), timeout=5, what="manager's port free")


def start_manager(lab):
    manager_release(lab, wait=False)
    wait_for(lambda: lab.listens("manager-0", 8443), timeout=5, what="manager listening")


def connected(lab):
    return status(lab)["connected"]


@pytest.fixture
def conn(lab_factory):
    lab = lab_factory("host-only")
    p = connect(lab)
    assert p.returncode == 0, p.stdout + p.stderr
    return lab


def test_quit_resets_a_download(conn):
    lab = conn
    p = start_client(lab, SLOW_DOWNLOAD, lab.cluster_ip("web"))
    time.sleep(0.5)
    t0 = time.time()
    q = lab.exec([SUBWAY, "quit"], timeout=20)
    assert q.returncode == 0, q.stderr
    r = finish(p)
    assert r["end"] == "reset", r
    assert 0 < r["bytes"] < 64 << 20, r
    assert r["t_end"] - t0 < 1.0 * SLOWDOWN, r


def test_manager_death_resets_a_reader(conn):
    lab = conn
    p = start_client(lab, READ_ONLY, lab.cluster_ip("echo"))
    time.sleep(0.3)
    t0 = time.time()
    kill_manager(lab)
    r = finish(p)
    assert r["end"] == "reset", r
    assert r["t_end"] - t0 < 1.0 * SLOWDOWN, r


def test_insecure_manager_death_resets_a_reader(lab_factory):
    lab = lab_factory("host-only", args=("--insecure",))
    assert connect(lab, "--insecure").returncode == 0
    p = start_client(lab, READ_ONLY, lab.cluster_ip("echo"))
    time.sleep(0.3)
    t0 = time.time()
    kill_manager(lab)
    r = finish(p)
    assert r["end"] == "reset", r
    assert r["t_end"] - t0 < 1.0 * SLOWDOWN, r


def test_quit_closes_the_cluster_side(conn, tmp_path):
    """The manager's socket toward the pod closes within 1 s of the session's end."""
    lab = conn
    seen = tmp_path / "seen"
    server = r'''
import socket, sys, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", 9100)); ls.listen(4); ls.settimeout(30)
c, _ = ls.accept(); c.settimeout(30)
try:
    while c.recv(100):
        pass
    how = "eof"
except ConnectionResetError:
    how = "reset"
except socket.timeout:
    how = "timeout"
open(sys.argv[1], "w").write("%s %f" % (how, time.time()))
'''
    lab.spawn("web-0", [PYTHON, "-c", server, str(seen)])
    wait_for(lambda: lab.listens("web-0", 9100), timeout=5, what="server listening")
    p = start_client(lab, READ_ONLY.replace(", 7)", ", 9100)"), lab.pod_ip("web-0"))
    time.sleep(0.3)
    t0 = time.time()
    assert lab.exec([SUBWAY, "quit"], timeout=20).returncode == 0
    wait_for(seen.exists, timeout=5, what="the pod's socket closed")
    how, t = seen.read_text().split()
    assert how in ("reset", "eof") and float(t) - t0 < 1.0 * SLOWDOWN, (how, float(t) - t0)
    finish(p)


def test_connect_while_down_fails_after_the_grace(conn):
    lab = conn
    kill_manager(lab)
    wait_for(lambda: status(lab)["state"] == "reconnecting", timeout=5, what="reconnecting")
    r = json.loads(lab.run("laptop", [PYTHON, "-c", CONNECT, lab.cluster_ip("web"), "80", "15"],
                           timeout=30).stdout)
    assert r["result"] == "EHOSTUNREACH", r
    assert 1.5 < r["s"] < 3.0 * SLOWDOWN, r  # the grace is 2 s
    assert status(lab)["counters"]["failed_while_down"] >= 1
    udp = r'''
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], 7)); s.send(b"x")
try:
    s.recv(10); print("answer")
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout"))
'''
    u = lab.run("laptop", [PYTHON, "-c", udp, lab.cluster_ip("udp-echo")], timeout=10)
    assert u.stdout.strip() == "ECONNREFUSED", u.stdout + u.stderr


def test_grace_is_configurable(lab_factory):
    lab = lab_factory("host-only")
    assert connect(lab, "--grace", "0.5").returncode == 0
    kill_manager(lab)
    wait_for(lambda: status(lab)["state"] == "reconnecting", timeout=5, what="reconnecting")
    r = json.loads(lab.run("laptop", [PYTHON, "-c", CONNECT, lab.cluster_ip("web"), "80", "15"],
                           timeout=30).stdout)
    assert r["result"] == "EHOSTUNREACH", r
    assert 0.4 < r["s"] < 1.5 * SLOWDOWN, r


def test_connect_held_until_the_manager_returns(conn):
    lab = conn
    kill_manager(lab)
    wait_for(lambda: status(lab)["state"] == "reconnecting", timeout=5, what="reconnecting")
    p = lab.popen("laptop", [PYTHON, "-c", CONNECT, lab.cluster_ip("web"), "80", "15"])
    time.sleep(0.2)
    start_manager(lab)
    r = finish(p)
    assert r["result"] == "ok", r
    assert r["s"] < 2.0 + 0.5, r
    wait_for(lambda: connected(lab), timeout=5, what="reconnected")


def test_addresses_nobody_owns_fail_fast(conn):
    """A pod CIDR no node owns loops back through the laptop in host-only:
    refused at once, and counted, like a dead ClusterIP."""
    lab = conn
    before = status(lab)["loops_blocked"]["tcp"]
    load = lab.run("laptop", [os.path.join(os.path.dirname(SUBWAY), "subway-load"), "-n", "100", "-c", "1",
                              "-s", "0", "-t", "3000", "10.42.9.9:80"], timeout=60)
    r = json.loads(load.stdout.strip().splitlines()[-1])
    assert r["errors"]["refused"] == 100, r
    assert r["fail_ms"]["p99"] <= 5.0 * SLOWDOWN, r
    after = status(lab)["loops_blocked"]["tcp"]
    assert after > before


def test_too_large_a_datagram_is_refused(conn):
    lab = conn
    big = r'''
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], 7))
s.send(b"x" * 65400)  # past the VIF's MTU (65000): the kernel fragments it
try:
    s.recv(70000); print("answer")
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout"))
'''
    u = lab.run("laptop", [PYTHON, "-c", big, lab.cluster_ip("udp-echo")], timeout=10)
    assert u.stdout.strip() == "EMSGSIZE", u.stdout + u.stderr
