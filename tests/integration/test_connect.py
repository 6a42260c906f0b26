"""`subway connect` in the lab: the cluster's pod and service networks on
the laptop namespace, through the VIF and the hairpin NAT (issue 3).

Each topology's lab comes up once for this module; the laptop connects,
the tests run in file order, and the last ones break things on purpose
(manager restart, kill -9 of the daemon, a wrong token)."""
import hashlib
import json
import os
import re
import signal
import time

import pytest

from labutil import PYTHON, SUBWAY, connect, manager_pid, netns_run, status, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def vif_leftovers(lab):
    """Links, addresses and routes of subway left in the laptop namespace."""
    out = lab.run("laptop", ["ip", "-o", "link"]).stdout + lab.run("laptop", ["ip", "-o", "addr"]).stdout
    out += lab.run("laptop", ["ip", "route"]).stdout
    return [l for l in out.splitlines() if "subway" in l or "198.18." in l or "10.42." in l or "10.43." in l]


def daemon_pid(lab):
    pids = lab.run("laptop", ["pgrep", "-f", "^subway daemon"]).stdout.split()
    mine = set(netns_run(lab.laptop, ["sh", "-c", "ip netns pids %s" % lab.laptop]).stdout.split())
    # ip netns pids lists the namespace's processes; keep the daemon that lives there
    pids = [p for p in pids if p in set(run_pids(lab))]
    return int(pids[0]) if pids else None


def run_pids(lab):
    from labutil import run
    return run(["ip", "netns", "pids", lab.laptop]).stdout.split()


@pytest.fixture(scope="module")
def conn(lab):
    p = connect(lab)
    assert p.returncode == 0, p.stdout + p.stderr
    yield lab
    lab.exec([SUBWAY, "quit"], timeout=20)


def test_connect_progress_and_routes(conn):
    lab = conn
    s = status(lab)
    assert s["connected"] is True and s["state"] == "connected"
    assert s["vif"]["name"].startswith("subway")
    assert set(s["routes"]) == {"10.42.0.0/16", "10.43.0.0/16"}
    assert s["manager"]["endpoint"] == lab.status()["manager"]["endpoint"]
    routes = lab.run("laptop", ["ip", "route"]).stdout
    assert re.search(r"10\.43\.0\.0/16 dev subway\d", routes), routes


def test_second_connect_says_so(conn):
    p = connect(conn)
    assert p.returncode == 0
    assert "already connected" in p.stdout


def test_web_by_cluster_ip_both_replicas(conn):
    lab = conn
    ip = lab.cluster_ip("web")
    seen = set()
    for _ in range(40):
        seen.add(lab.curl("laptop", "http://%s/" % ip).strip())
        if seen == {"web-0", "web-1"}:
            break
    assert seen == {"web-0", "web-1"}


def test_every_pod_ip_directly(conn):
    lab = conn
    for pod in ("web-0", "web-1"):
        assert lab.curl("laptop", "http://%s/" % lab.pod_ip(pod)).strip() == pod


def test_big_file_sha256(conn):
    lab = conn
    want = lab.status()["web"]["big"]["sha256"] if "web" in lab.status() else None
    if want is None:
        want = json.dumps(lab.status())
        want = re.search(r'"sha256": "([0-9a-f]{64})"', want).group(1)
    p = lab.run("laptop", ["curl", "-sS", "--max-time", "60", "http://%s/big" % lab.cluster_ip("web")],
                timeout=70, text=False)
    assert p.returncode == 0
    assert len(p.stdout) == 64 << 20
    assert hashlib.sha256(p.stdout).hexdigest() == want


def test_echo_half_close(conn):
    r = conn.probe("laptop", "tcp-echo", conn.cluster_ip("echo"), 7, "--size", 1 << 20, "--timeout", 20)
    assert r["equal"] and r["eof"], r


def test_udp_echo_1000_datagrams(conn):
    r = conn.probe("laptop", "udp-echo", conn.cluster_ip("udp-echo"), 7, "--count", 1000,
                   "--max-size", 1400, "--timeout", 3, timeout=60)
    assert r["sent"] == 1000 and r["matched"] == 1000, r


def test_ping_pod(conn):
    p = conn.run("laptop", ["ping", "-c", "3", "-i", "0.2", "-W", "2", conn.pod_ip("echo-0")], timeout=15)
    assert p.returncode == 0, p.stdout
    assert " 0% packet loss" in p.stdout


def test_refused_port_fails_fast(conn):
    times = []
    for _ in range(5):
        r = conn.probe("laptop", "connect", conn.pod_ip("web-0"), 81, "--timeout", 5)
        assert r["error"] == "ECONNREFUSED", r
        times.append(r["ms"])
    assert sorted(times)[2] < 50, times


def test_no_such_pod_fails_not_hangs(conn):
    # 10.42.2.250 is in agent2's pod /24, but no pod has it.
    r = conn.probe("laptop", "connect", "10.42.2.250", 80, "--timeout", 15, timeout=30)
    assert not r["ok"], r
    assert r["ms"] < 15000, r


def test_500_concurrent_connections_byte_exact(conn):
    p = conn.run("laptop", [PYTHON, os.path.join(HERE, "loadecho.py"), conn.cluster_ip("echo"), "7", "500",
                            str(1 << 20), "100"], timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["ok"] == 500 and r["mismatch"] == 0, r


SLOW_READER = r'''
import hashlib, json, re, socket, sys, time
ip, want, pid = sys.argv[1], sys.argv[2], sys.argv[3]
req = b"GET /big HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
def rss():
    with open("/proc/%s/status" % pid) as f:  # the daemon's
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
rss0 = rss()
slows = []
for _ in range(2):  # one per trunk: every request below shares a trunk with one
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow.settimeout(30)
    slow.connect((ip, 80))
    slow.sendall(req)
    slows.append(slow)
time.sleep(1.0)  # not reading: the 64 MiB answers back up to the pods
times, ok = [], 0
for _ in range(50):
    t = time.monotonic()
    s = socket.create_connection((ip, 80), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
    body = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        body += b
    s.close()
    ok += body.endswith(b"web-0\n") or body.endswith(b"web-1\n")
    times.append(time.monotonic() - t)
grown = rss() - rss0  # while the answers are held up
lens, shas = [], []
for slow in slows:
    got = b""
    while True:
        b = slow.recv(1 << 20)
        if not b:
            break
        got += b
    body = got.split(b"\r\n\r\n", 1)[1]
    lens.append(len(body))
    shas.append(hashlib.sha256(body).hexdigest() == want)
print(json.dumps({"ok": ok, "max_s": max(times), "lens": lens, "grown_kib": grown, "sha_ok": all(shas)}))
'''


def test_slow_reader_stalls_only_itself(conn):
    """Apps that stop reading a big answer hold up only their own flows:
    other requests on the same trunks go through meanwhile, the daemon's
    memory stays bounded by the streams' windows, and the answers arrive
    whole once the apps read again."""
    lab = conn
    want = re.search(r'"sha256": "([0-9a-f]{64})"', json.dumps(lab.status())).group(1)
    pid = status(lab)["daemon_pid"]
    p = lab.run("laptop", [PYTHON, "-c", SLOW_READER, lab.cluster_ip("web"), want, str(pid)], timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["ok"] == 50, r
    assert r["max_s"] < 3.0, r  # a stalled trunk would hold them until the slow reader reads
    assert r["lens"] == [64 << 20] * 2 and r["sha_ok"], r
    assert r["grown_kib"] < 24 * 1024, r  # a 2 MiB window each, not the 64 MiB answers


def test_status_counts(conn):
    s = status(conn)
    c = s["counters"]
    assert c["dials"] >= 500 and c["dials_ok"] >= 500
    assert c["dial_failures"]["refused"] >= 5
    assert c["bytes_to_cluster"] >= 500 << 20 and c["bytes_from_cluster"] >= 500 << 20
    assert c["udp_datagrams_in"] >= 1000 and c["pongs"] >= 3
    text = conn.exec([SUBWAY, "status"]).stdout
    assert "connected to" in text and "routes:" in text


def test_manager_restart_reconnects(conn):
    """Killing the manager's container: the lab's kubelet starts it again,
    as a Deployment would, and the daemon reconnects by itself."""
    lab = conn
    pid, _ = manager_pid(lab)
    assert pid, "no manager runs in the lab"
    before = status(lab)["manager"]["reconnects"]
    restarts = lab.status(refresh=True)["manager"]["restarts"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: manager_pid(lab)[0] not in (None, pid) and lab.listens("manager-0", 8443),
             timeout=15, what="the kubelet restarted the manager")
    t_restart = time.monotonic() - t0
    wait_for(lambda: status(lab)["manager"]["reconnects"] > before and status(lab)["connected"],
             timeout=10, what="reconnect shown in status")
    t_reconnect = time.monotonic() - t0
    print("\nmanager killed: container back in %.2f s, daemon reconnected in %.2f s" % (t_restart, t_reconnect))
    assert lab.status(refresh=True)["manager"]["restarts"] == restarts + 1
    assert lab.curl("laptop", "http://%s/" % lab.cluster_ip("web")).strip() in ("web-0", "web-1")


def test_kill9_leaves_nothing_and_connect_works_again(conn):
    lab = conn
    s = status(lab)
    os.kill(s["daemon_pid"], signal.SIGKILL)
    wait_for(lambda: not vif_leftovers(lab), timeout=5, what="VIF and routes gone")
    p = connect(lab)
    assert p.returncode == 0, p.stdout + p.stderr
    assert lab.curl("laptop", "http://%s/" % lab.cluster_ip("web")).strip() in ("web-0", "web-1")


def test_quit_removes_everything(conn):
    lab = conn
    p = lab.exec([SUBWAY, "quit"], timeout=20)
    assert p.returncode == 0 and "disconnected" in p.stdout
    assert not vif_leftovers(lab)
    s = status(lab)
    assert s["connected"] is False


def test_wrong_token_refused(conn, tmp_path):
    lab = conn
    good = open(lab.status()["manager"]["token_file"]).read()
    bad = re.sub(r"token=[0-9a-f]+", "token=" + "ab" * 32, good)
    f = tmp_path / "bad-token"
    f.write_text(bad)
    os.chmod(f, 0o600)
    p = lab.exec([SUBWAY, "connect", "--manager", lab.status()["manager"]["endpoint"], "--token-file", str(f)],
                 timeout=20)
    assert p.returncode == 1
    assert "authentication refused" in p.stderr
    assert not vif_leftovers(lab)
    assert status(lab)["connected"] is False


def test_overlapping_route_is_named(conn):
    lab = conn
    dev = lab.status()["laptop"]["addresses"][0]["interface"]
    lab.run("laptop", ["ip", "route", "add", "10.42.7.0/24", "dev", dev], check=True)
    try:
        p = connect(lab)
        assert p.returncode == 1
        assert "10.42.0.0/16" in p.stderr and "10.42.7.0/24" in p.stderr and dev in p.stderr, p.stderr
        assert not vif_leftovers(lab) or all("10.42.7.0" in l for l in vif_leftovers(lab))
    finally:
        lab.run("laptop", ["ip", "route", "del", "10.42.7.0/24", "dev", dev])


def test_not_root_is_refused(conn):
    import tempfile
    lab = conn
    with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="subway-tok-", delete=True) as f:
        f.write(open(lab.status()["manager"]["token_file"]).read())
        f.flush()
        os.chmod(f.name, 0o644)
        lab.exec([SUBWAY, "quit"], timeout=20)  # no daemon: connect would have to start one
        p = lab.run("laptop", ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               SUBWAY, "connect", "--token-file", f.name], timeout=20)
    assert p.returncode == 1
    assert "must run as root" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_reset_passes_both_ways(conn, tmp_path):
    """A RST from the pod reaches the app, and the app's RST reaches the pod."""
    import socket as _s  # noqa: F401  (the client runs in the laptop namespace below)
    lab = conn
    if status(lab)["state"] != "connected":
        assert connect(lab).returncode == 0
    out = tmp_path / "seen"
    lab.spawn("web-0", [PYTHON, os.path.join(HERE, "rstpeer.py"), "9000", str(out)])
    wait_for(lambda: lab.listens("web-0", 9000), timeout=5, what="rstpeer listening")
    client = r'''
import socket, struct, sys, time
ip = sys.argv[1]
got = b""
try:
    s = socket.create_connection((ip, 9000), timeout=5)
    while True:
        b = s.recv(100)
        if not b:
            print("eof"); break
        got += b
except (ConnectionResetError, ConnectionRefusedError):
    # A pod that resets at once may do so before the app's connect() returns.
    print("reset", got.decode())
s = socket.create_connection((ip, 9000), timeout=5)
try:
    s.sendall(b"x" * 1000)
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
except OSError as e:
    print("second:", e)
'''
    p = lab.run("laptop", [PYTHON, "-c", client, lab.pod_ip("web-0")], timeout=20)
    assert p.returncode == 0, p.stderr
    # The bytes sent just before the RST may be overtaken by it; the reset must arrive.
    assert p.stdout.split()[0] == "reset", p.stdout
    assert "second:" not in p.stdout, p.stdout
    wait_for(lambda: out.exists() and out.read_text(), timeout=10, what="rstpeer verdict")
    assert out.read_text() == "reset"


def test_control_socket_survives_malformed_requests(conn):
    lab = conn
    from labutil import netns_inode
    path = "/run/subway/daemon-%d.sock" % netns_inode(lab.laptop)
    script = r'''
import socket, sys
path = sys.argv[1]
bad = [b"\n", b"bogus\n", b"connect\n", b"status format=xml\n", b"connect manager=1.2.3.4:5 token=zz\n",
       b"status " + b"a=b " * 400 + b"\n", b"\x00\xff\xfe garbage\n", b"x" * 5000]
replies = []
for req in bad:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(req)
    replies.append(s.recv(4096).decode(errors="replace").split(" ")[0])
    s.close()
print(" ".join(replies))
'''
    p = lab.run("laptop", [PYTHON, "-c", script, path], timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["error"] * 8, p.stdout
    assert status(lab)["daemon_pid"] > 0
