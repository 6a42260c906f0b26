"""Intercepts (docs/intercepts.md), end to end in a lab that runs what a
cluster would: `lab inject web` gives the web pods the agent's container
(from the lab's registry, as the patch says), two laptops connect, and the
lab's client pod calls web the way another service would.

    client pod ──► web (ClusterIP or pod IP) ──► agent in web-N ──► manager ──► laptop's daemon
                                                  (nft redirect)                  ──► 127.0.0.1:PORT

Each laptop runs icept_http.py serve on 127.0.0.1:8080, answering
"lapN METHOD PATH BODYLEN"; the pods' nginx answers its pod's name.
"""
import json
import os
import random
import re
import signal
import sys
import time

import pytest

import conftest
import labutil
from labutil import SUBWAY, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ICEPT = os.path.join(HERE, "icept_http.py")
PY = "/usr/bin/python3"
PORT = 8080
TOPOLOGIES = [t for t in ("host-only", "cloud") if t in conftest._TOPOLOGIES]
PODS = {"web-0", "web-1"}


@pytest.fixture(scope="module", params=TOPOLOGIES)
def ilab(request, subway_bin, tmp_path_factory):
    made = []
    request.addfinalizer(lambda: conftest._destroy_all(made))
    lab = conftest._make(request.param, args=("--laptops", "2"))
    made.append(lab)
    p = labutil.subway("lab", "inject", "--name", lab.name, "web")
    assert p.returncode == 0, p
    for n in (1, 2):
        p = labutil.connect(lab, laptop=n)
        assert p.returncode == 0, p
    wait_for(lambda: all(a["ready"] for a in agents(lab)) and len(agents(lab)) == 2, timeout=15,
             what="both agents ready")
    lab.logdir = str(tmp_path_factory.mktemp("icept"))
    for n in (1, 2):
        serve(lab, n, PORT, "lap%d" % n)
    return lab


def serve(lab, n, port, name):
    """icept_http.py serve on laptop n; returns (process, its log path)."""
    log = os.path.join(lab.logdir, "%s-%d.log" % (name, port))
    p = lab.spawn("laptop" if n == 1 else "laptop2", [PY, ICEPT, "serve", str(port), name, log])
    wait_for(lambda: lab.listens("laptop" if n == 1 else "laptop2", port), timeout=5, what="%s listening" % name)
    return p, log


def log_lines(lab, name, port=PORT):
    path = os.path.join(lab.logdir, "%s-%d.log" % (name, port))
    with open(path) as f:
        return f.read().splitlines()


def clear_log(lab, name, port=PORT):
    open(os.path.join(lab.logdir, "%s-%d.log" % (name, port)), "w").close()


def sw(lab, *args, laptop=1, timeout=30):
    return lab.exec([SUBWAY, *args], timeout=timeout, laptop=laptop)


def agents(lab):
    p = sw(lab, "list", "--json", timeout=10)
    if p.returncode != 0:
        return []
    w = [w for w in json.loads(p.stdout)["workloads"] if w["name"] == "web"]
    return w[0]["agents"] if w else []


def listed(lab, laptop=1):
    """The web workload's intercepts as subway list --json shows them."""
    p = sw(lab, "list", "--json", laptop=laptop, timeout=10)
    assert p.returncode == 0, p
    w = [w for w in json.loads(p.stdout)["workloads"] if w["name"] == "web"]
    return {i["name"]: i for i in w[0]["intercepts"]} if w else {}


def mine(lab, laptop=1):
    """This laptop's intercepts (subway status --json), by name."""
    return {i["name"]: i for i in labutil.status(lab, laptop=laptop)["intercepts"]}


def client(lab, plan, url="http://web/", timeout=60):
    """Runs the plan from the client pod; returns (answers per connection, seconds)."""
    t0 = time.monotonic()
    p = lab.run("client", [PY, ICEPT, "client", url, json.dumps(plan)], timeout=timeout)
    took = time.monotonic() - t0
    assert p.returncode == 0, p
    return json.loads(p.stdout), took


def gets(lab, n, url="http://web/", headers=None):
    """n requests, one connection each; the answers."""
    ans, _ = client(lab, [[{"path": "/", "headers": headers or {}}] for _ in range(n)], url=url)
    return [a[0] for a in ans]


@pytest.fixture(autouse=True)
def nothing_held(request):
    """Every test starts and ends with no intercept held."""
    yield
    lab = request.getfixturevalue("ilab")
    for n in (1, 2):
        for name in mine(lab, n):
            sw(lab, "leave", name, laptop=n)
    wait_for(lambda: not listed(lab), timeout=10, what="no intercept left")


def test_global_every_replica_then_leave(ilab):
    lab = ilab
    clear_log(lab, "lap1")
    p = sw(lab, "intercept", "web", "--port", str(PORT))
    assert p.returncode == 0, p
    assert re.match(r"intercept web: default/web port 80 -> 127\.0\.0\.1:%d \(global\): ACTIVE on 2 pod\(s\)" % PORT,
                    p.stdout), p.stdout
    assert listed(lab, laptop=2)["web"]["state"] == "ACTIVE"
    # 100 by ClusterIP: every one reaches the laptop
    ip = lab.cluster_ip("web")
    got = gets(lab, 100, url="http://%s/" % ip)
    assert got == ["lap1 GET / 0"] * 100, [g for g in got if g != "lap1 GET / 0"][:5]
    # each replica forwards: its own pod IP, 10 each
    for pod in sorted(PODS):
        assert gets(lab, 10, url="http://%s/" % lab.pod_ip(pod)) == ["lap1 GET / 0"] * 10, pod
    assert len(log_lines(lab, "lap1")) == 120
    st = wait_for(lambda: (lambda i: i if i["connections"] == 120 else None)(mine(lab)["web"]), timeout=5,
                  what="120 connections counted")
    assert st["mode"] == "global" and st["pods"] == 2 and st["bytes_out"] > 0
    # leave: all of them reach the pods again, both of them
    p = sw(lab, "leave", "web")
    assert p.returncode == 0 and "left web" in p.stdout, p
    got = gets(lab, 100, url="http://%s/" % ip)
    assert set(got) == PODS, set(got)
    assert len(log_lines(lab, "lap1")) == 120


def test_personal_two_laptops_exact(ilab):
    lab = ilab
    clear_log(lab, "lap1")
    clear_log(lab, "lap2")
    assert sw(lab, "intercept", "web", "--port", str(PORT), "--name", "alice",
              "--http-header", "x-dev=alice").returncode == 0
    p = sw(lab, "intercept", "web", "--port", str(PORT), "--name", "bob", "--http-header", "x-dev=bob", laptop=2)
    assert p.returncode == 0 and "(personal): ACTIVE on 2 pod(s)" in p.stdout, p
    # 300 mixed: 30 keep-alive connections of 10, headers in any case
    rng = random.Random(13)
    plan, want = [], []
    for c in range(30):
        conn = []
        for r in range(10):
            who = rng.choice(("alice", "bob", None))
            hdr = {rng.choice(("X-Dev", "x-dev", "X-DEV")): who} if who else {}
            if not who and rng.random() < 0.3:
                hdr = {"X-Dev": "carol"}  # a header no filter takes
            conn.append({"path": "/", "headers": hdr})
            want.append(who)
        plan.append(conn)
    ans, _ = client(lab, plan)
    flat = [a for conn in ans for a in conn]
    assert len(flat) == 300
    for w, a in zip(want, flat):
        if w == "alice":
            assert a == "lap1 GET / 0", (w, a)
        elif w == "bob":
            assert a == "lap2 GET / 0", (w, a)
        else:
            assert a in PODS, (w, a)
    n_alice, n_bob = want.count("alice"), want.count("bob")
    assert len(log_lines(lab, "lap1")) == n_alice and len(log_lines(lab, "lap2")) == n_bob
    wait_for(lambda: mine(lab)["alice"]["requests"] == n_alice and mine(lab, 2)["bob"]["requests"] == n_bob,
             timeout=5, what="requests counted exactly on each laptop: %d, %d" % (n_alice, n_bob))
    # a third filter that could match alice's requests is refused, naming her intercept
    p = sw(lab, "intercept", "web", "--port", str(PORT), "--name", "carol", "--http-header", "X-Dev=alice", laptop=2)
    assert p.returncode == 1 and "held by" in p.stderr and "'alice'" in p.stderr and "x-dev=alice" in p.stderr, p
    # and so is a global one while personal ones are held
    p = sw(lab, "intercept", "web", "--port", str(PORT), "--name", "all", laptop=2)
    assert p.returncode == 1 and "held by" in p.stderr, p
    assert set(listed(lab)) == {"alice", "bob"}


def test_keepalive_alternating_bodies(ilab):
    lab = ilab
    clear_log(lab, "lap1")
    assert sw(lab, "intercept", "web", "--port", str(PORT), "--name", "ka",
              "--http-header", "X-Dev=alice").returncode == 0
    conn, want = [], []
    for i in range(24):
        match = i % 2 == 0
        body = ("chunked", "fixed", None)[i % 3]
        size = 1 + (i * 7919) % 70000 if body else 0
        req = {"path": "/", "headers": {"X-Dev": "alice"} if match else {"X-Other": "1"}}
        if body:
            req.update(body=body, size=size)
        conn.append(req)
        want.append("lap1 %s / %d" % ("POST" if body else "GET", size) if match else None)
    ans, _ = client(lab, [conn])
    assert len(ans) == 1 and len(ans[0]) == 24
    for i, (w, a) in enumerate(zip(want, ans[0])):
        if w:
            assert a == w, (i, a)
        else:
            assert a in PODS, (i, a)  # nginx answers bodies too (return 200)
    assert log_lines(lab, "lap1") == [w for w in want if w]


def test_mirror_copies_and_an_absent_laptop(ilab):
    lab = ilab
    srv, log = serve(lab, 1, 8081, "mirror")
    p = sw(lab, "intercept", "web", "--port", "8081", "--name", "mir", "--mirror")
    assert p.returncode == 0 and "(mirror): ACTIVE" in p.stdout, p
    got, base = client(lab, [[{"path": "/", "headers": {"X-N": str(i)}}] for i in range(50)])
    assert {a[0] for a in got} == PODS and len(got) == 50  # the app answers every one
    wait_for(lambda: len(log_lines(lab, "mirror", 8081)) == 50, timeout=5, what="50 copies on the laptop")
    assert set(log_lines(lab, "mirror", 8081)) == {"mirror GET / 0"}
    # the laptop's server goes: the app answers as before, copies are dropped and counted
    srv.kill()
    srv.wait(5)
    got, took = client(lab, [[{"path": "/"}] for _ in range(50)])
    assert {a[0] for a in got} == PODS and len(got) == 50
    print("\nmirror: 50 requests %.2f s with the laptop's server, %.2f s without" % (base, took))
    assert took < base * 3 + 2
    wait_for(lambda: mine(lab)["mir"]["dropped"] == 50, timeout=5, what="50 copies counted as dropped")
    assert len(log_lines(lab, "mirror", 8081)) == 50


def nft_rules(lab, pod):
    """The agent's nftables table in the pod, as text ("" when absent)."""
    p = lab.run(pod, ["nft", "list", "table", "inet", "subway-agent"], timeout=10)
    return p.stdout if p.returncode == 0 else ""


def agent_pid(lab, pod):
    a = next(p for p in lab.status(refresh=True)["pods"] if p["name"] == pod)["agent"]
    return a["pid"] if a and a["running"] else None


def test_nft_rule_only_while_intercepting_and_stale_ones_go(ilab):
    lab = ilab
    for pod in sorted(PODS):
        assert "redirect" not in nft_rules(lab, pod)
    assert sw(lab, "intercept", "web", "--port", str(PORT)).returncode == 0
    for pod in sorted(PODS):
        assert re.search(r"tcp dport 80 redirect to :15001", nft_rules(lab, pod)), nft_rules(lab, pod)
    assert sw(lab, "leave", "web").returncode == 0
    wait_for(lambda: all("redirect" not in nft_rules(lab, p) for p in PODS), timeout=5, what="rules removed")
    # the table stays, empty, while the agent lives (its NAT hooks still
    # serve the connections redirected before); the kernel removes it with
    # the agent (owner flag).  A stale rule (an agent killed on a kernel
    # without that flag) goes when the agent starts again.
    assert "subway-agent" in nft_rules(lab, "web-0")
    stale = ("table inet subway-agent {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n"
             "  tcp dport 80 redirect to :15001\n }\n}\n")
    kubelet = labutil.kubelet_pid(lab)
    pid = agent_pid(lab, "web-0")
    os.kill(kubelet, signal.SIGSTOP)  # no restart meanwhile
    try:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: nft_rules(lab, "web-0") == "", timeout=5, what="the killed agent's table gone")
        lab.run("web-0", ["nft", "-f", "-"], input=stale, check=True)
        assert "redirect" in nft_rules(lab, "web-0")
    finally:
        os.kill(kubelet, signal.SIGCONT)
    wait_for(lambda: (agent_pid(lab, "web-0") or pid) != pid, timeout=15, what="the kubelet to restart the agent")
    wait_for(lambda: "redirect" not in nft_rules(lab, "web-0"), timeout=5, what="the stale rule removed")
    wait_for(lambda: all(a["ready"] for a in agents(lab)) and len(agents(lab)) == 2, timeout=15,
             what="both agents ready again")
    assert set(gets(lab, 20)) == PODS


def test_env_exact_and_env_file_roundtrip(ilab, tmp_path):
    lab = ilab
    def app_env(pod):
        pid = int(open("/run/subway-lab/%s/pids/%s.pid" % (lab.name, pod)).read())
        return dict(e.split(b"=", 1) for e in open("/proc/%d/environ" % pid, "rb").read().split(b"\0") if b"=" in e)
    envf, envj = tmp_path / "pod.env", tmp_path / "pod.json"
    p = lab.exec([SUBWAY, "intercept", "web", "--port", "8090", "--name", "envt", "--http-header", "X-Dev=env",
                  "--env-file", str(envf), "--env-json", str(envj), "--", "env", "-0"], timeout=30, text=False)
    assert p.returncode == 0, p
    assert b"intercept envt:" in p.stderr and b"intercept envt:" not in p.stdout
    got = dict(e.split(b"=", 1) for e in p.stdout.split(b"\0") if b"=" in e)
    pod = got[b"POD_NAME"].decode()  # one replica's: the app's own POD_NAME, reported as it is
    assert pod in PODS
    pod_env = app_env(pod)
    # the app's own variables, byte for byte (the GREETING has quotes, a newline, '=', '$')
    app = {k: v for k, v in pod_env.items() if k not in (b"PATH", b"HOME", b"HOSTNAME")}
    assert b"\n" in pod_env[b"GREETING"] and b"'" in pod_env[b"GREETING"]
    for k, v in app.items():
        assert got.get(k) == v, k
    assert got[b"PATH"] == os.environ["PATH"].encode()  # this machine's, not the pod's
    # the intercept ended with the command
    assert "envt" not in listed(lab)
    # --env-file through a shell, --env-json as JSON: the same values
    sh = "set -a; . %s; set +a; env -0" % envf
    back = dict(e.split(b"=", 1) for e in lab.run("laptop", ["env", "-i", "sh", "-c", sh], text=False).stdout
                .split(b"\0") if b"=" in e)
    js = json.load(open(envj))
    for k, v in pod_env.items():
        if k in (b"HOME", b"HOSTNAME"):
            continue
        assert back.get(k) == v, k
        assert js[k.decode()].encode() == v, k


# Connects to port 80 of argv[1], sends half a request, says "sent", then
# waits (at most 10 s) for how the connection ends: "eof S" or "reset S".
INFLIGHT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\\r\\nHost: web\\r\\n")
print("sent", flush=True)
t0 = time.monotonic()
s.settimeout(10)
try:
    d = s.recv(100)
    print("eof %.3f %r" % (time.monotonic() - t0, d))
except ConnectionResetError:
    print("reset %.3f" % (time.monotonic() - t0))
except socket.timeout:
    print("hung %.3f" % (time.monotonic() - t0))
"""


def test_laptop_dies_then_comes_back(ilab):
    lab = ilab
    clear_log(lab, "lap1")
    assert sw(lab, "intercept", "web", "--port", str(PORT)).returncode == 0
    assert set(gets(lab, 10)) == {"lap1 GET / 0"}
    # a connection in flight to the laptop (half a request sent): told, not left hanging
    inflight = lab.popen("client", [PY, "-c", INFLIGHT, lab.cluster_ip("web")])
    assert inflight.stdout.readline().strip() == "sent"
    os.kill(labutil.status(lab)["daemon_pid"], signal.SIGKILL)
    t0 = time.monotonic()
    out, _ = inflight.communicate(timeout=15)
    print("\nin flight at kill -9: %s" % out.strip())
    assert out.strip().startswith(("eof", "reset")), out
    assert float(out.split()[1]) < 5

    def app_serves():
        return set(gets(lab, 4)) <= PODS
    wait_for(app_serves, timeout=8, interval=0.1, what="the pods to serve again")
    took = time.monotonic() - t0
    print("\nkill -9 of the daemon: the pods serve again after %.2f s" % took)
    assert took < 5
    assert listed(lab, laptop=2)["web"]["state"] == "INACTIVE"
    # the laptop comes back: the intercept is ACTIVE again by itself
    assert labutil.connect(lab).returncode == 0
    wait_for(lambda: mine(lab).get("web", {}).get("state") == "ACTIVE", timeout=10, what="ACTIVE again")
    wait_for(lambda: set(gets(lab, 10)) == {"lap1 GET / 0"}, timeout=5, what="requests to the laptop again")
    # quit: gone at once
    assert sw(lab, "quit").returncode == 0
    assert set(gets(lab, 10)) <= PODS
    assert "web" not in listed(lab, laptop=2)
    assert labutil.connect(lab).returncode == 0


def test_network_cut_then_back(ilab):
    """No FIN, no RST: the laptop's network just stops (a lid closed, the
    Wi-Fi gone).  The manager's heartbeats go unanswered: within 5 s the
    pods serve again; when the network is back the intercept resumes."""
    lab = ilab
    assert sw(lab, "intercept", "web", "--port", str(PORT)).returncode == 0
    assert set(gets(lab, 10)) == {"lap1 GET / 0"}
    cut = ("table ip subwaytestcut {\n chain o { type filter hook output priority 0; policy accept; "
           "oif != \"lo\" drop; }\n chain i { type filter hook input priority 0; policy accept; "
           "iif != \"lo\" drop; }\n}\n")
    inflight = lab.popen("client", [PY, "-c", INFLIGHT, lab.cluster_ip("web")])
    assert inflight.stdout.readline().strip() == "sent"
    lab.nft("laptop", cut)
    try:
        t0 = time.monotonic()
        # the connection in flight: reset once the manager gives the laptop up
        out, _ = inflight.communicate(timeout=15)
        print("\nnetwork cut: in flight %s" % out.strip())
        assert out.strip().startswith(("eof", "reset")), out
        assert float(out.split()[1]) < 5 + 1  # the manager's 3.5 s of silence, and some
        wait_for(lambda: set(gets(lab, 4)) <= PODS, timeout=5, interval=0.2, what="the pods to serve again")
        print("network cut: the pods serve again after %.2f s" % (time.monotonic() - t0))
        assert listed(lab, laptop=2)["web"]["state"] == "INACTIVE"
    finally:
        lab.nft_delete("laptop", "subwaytestcut")
    t0 = time.monotonic()
    wait_for(lambda: set(gets(lab, 4)) == {"lap1 GET / 0"}, timeout=40, interval=0.5,
             what="the intercept to resume once the network is back")
    print("network back: the laptop serves again after %.2f s" % (time.monotonic() - t0))
    assert mine(lab)["web"]["state"] == "ACTIVE"


# ---- UDP ----

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(b"laptop:" + d, a)
"""

# argv: host port n.  Two sockets (two clients of the port) take turns:
# datagram i of 1..n bytes, its answer awaited (2 s); prints one JSON line
# {"ok": answers as expected, "pod": answered as the pod's echo does,
#  "lost": none, "bad": anything else}.
UDP_CLIENT = """
import json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
out = {"ok": 0, "pod": 0, "lost": 0, "bad": 0}
for i in range(n):
    s = socks[i % 2]
    s.settimeout(2)
    d = bytes((i + k) % 251 for k in range(1 + (i * 977) % 8000))
    s.sendto(d, (host, port))
    try:
        r = s.recv(65535)
    except socket.timeout:
        out["lost"] += 1
        continue
    out["ok" if r == b"laptop:" + d else "pod" if r == d else "bad"] += 1
print(json.dumps(out))
"""


def udp_agent(lab, tmp_path):
    """The agent, run by hand in pod udp-echo-0 (its socat echoes UDP port
    7), for workload udp-echo: the lab injects only Deployments it holds."""
    token = open("/run/subway-lab/%s/volumes/manager-0/secret/agent-token" % lab.name).read()
    return run_agent(lab, tmp_path, "udp-echo-0", token, lab.pod_ip("udp-echo-0"), pod="udp-echo-0",
                     workload="udp-echo", ports="echo:7/udp")


def udp_client(lab, host, n):
    p = lab.run("client", [PY, "-c", UDP_CLIENT, host, "7", str(n)], timeout=60)
    assert p.returncode == 0, p
    return json.loads(p.stdout)


def test_udp_global(ilab, tmp_path):
    """A UDP port, intercepted globally: every datagram to it, from each
    client, reaches the laptop's port and its answer comes back byte for
    byte; filters are refused on UDP; leave and the pod answers again."""
    lab = ilab
    agent = udp_agent(lab, tmp_path)
    try:
        def ready():
            p = sw(lab, "list", "--json", timeout=10)
            return p.returncode == 0 and any(a["ready"] for w in json.loads(p.stdout)["workloads"]
                                             if w["name"] == "udp-echo" for a in w["agents"])
        wait_for(ready, timeout=10, what="the udp-echo agent ready")
        lab.spawn("laptop", [PY, "-c", UDP_ECHO, "9999"])
        wait_for(lambda: lab.listens("laptop", 9999, "udp"), timeout=5, what="the laptop's UDP echo")
        assert udp_client(lab, lab.pod_ip("udp-echo-0"), 10) == {"ok": 0, "pod": 10, "lost": 0, "bad": 0}
        p = sw(lab, "intercept", "udp-echo", "--port", "9999", "--name", "u", "--http-header", "x-dev=me")
        assert p.returncode == 1 and "UDP: intercepted globally only" in p.stderr, p
        p = sw(lab, "intercept", "udp-echo", "--port", "9999", "--name", "u")
        assert p.returncode == 0 and "ACTIVE on 1 pod(s)" in p.stdout, p
        assert re.search(r"udp dport 7 redirect to :\d+", lab.run("udp-echo-0", ["nft", "list", "ruleset"]).stdout)
        # by pod IP and by ClusterIP, two clients taking turns, sizes 1..8000
        r = udp_client(lab, lab.pod_ip("udp-echo-0"), 200)
        assert r == {"ok": 200, "pod": 0, "lost": 0, "bad": 0}, r
        r = udp_client(lab, lab.cluster_ip("udp-echo"), 50)
        assert r == {"ok": 50, "pod": 0, "lost": 0, "bad": 0}, r
        # each client a flow: the manager counts them as connections
        wait_for(lambda: mine(lab)["u"]["connections"] >= 4, timeout=5, what="the flows counted")
        assert sw(lab, "leave", "u").returncode == 0
        r = udp_client(lab, lab.pod_ip("udp-echo-0"), 20)
        assert r == {"ok": 0, "pod": 20, "lost": 0, "bad": 0}, r
    finally:
        for name in mine(lab):
            sw(lab, "leave", name)
        agent.kill()
        agent.communicate(timeout=5)


# ---- hostile ----

def manager_stats(lab):
    """The lab's manager's counters (SIGUSR1), as one string."""
    log = "/run/subway-lab/%s/logs/manager-0.log" % lab.name
    return labutil.manager_counters(lambda: open(log, errors="replace").read(), labutil.manager_pid(lab)[0])


def count(text, pattern):
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return int(m.group(1))


def run_agent(lab, tmp_path, where, token, pod_ip, pod="web-0", workload="web", ports="http:80"):
    """`subway agent` run by hand in the namespace of `where`, with `token`
    and the manager's certificate, saying it is `pod` of `workload`."""
    d = tmp_path / ("agent-%s-%s" % (where, pod_ip))
    d.mkdir()
    vol = "/run/subway-lab/%s/volumes/manager-0/secret" % lab.name
    (d / "agent-token").write_text(token)
    (d / "cert.pem").write_text(open(vol + "/tls/cert.pem").read())
    env = ["env", "-i", "SUBWAY_MANAGER=10.43.0.50:443", "SUBWAY_WORKLOAD=%s" % workload,
           "SUBWAY_PORTS=%s" % ports, "SUBWAY_AGENT_DIR=%s" % d, "SUBWAY_POD_NAME=%s" % pod,
           "SUBWAY_POD_NAMESPACE=default", "SUBWAY_POD_IP=%s" % pod_ip]
    return lab.popen(where, env + [SUBWAY, "agent"])


def fake_agent(lab, tmp_path, token, pod_ip):
    """An agent in the client pod saying it is web-0."""
    return run_agent(lab, tmp_path, "client", token, pod_ip)


def test_hostile_agents_refused_and_counted(ilab, tmp_path):
    lab = ilab
    before = manager_stats(lab)
    failed, refused = count(before, r"(\d+) auth failed"), count(before, r"agents refused (\d+)")
    token = open("/run/subway-lab/%s/volumes/manager-0/secret/agent-token" % lab.name).read()
    # a forged registration: a token of its own
    forged = fake_agent(lab, tmp_path, "token=" + "ab" * 32 + "\n", lab.pod_ip("client"))
    wait_for(lambda: count(manager_stats(lab), r"(\d+) auth failed") > failed, timeout=5,
             what="the forged agent refused")
    forged.kill()
    _, err = forged.communicate(timeout=5)
    # the right token from the wrong address: the client pod says it is web-0
    liar = fake_agent(lab, tmp_path, token, lab.pod_ip("web-0"))
    wait_for(lambda: count(manager_stats(lab), r"agents refused (\d+)") > refused, timeout=5,
             what="the agent claiming web-0 refused")
    liar.kill()
    liar.communicate(timeout=5)
    # the real ones still serve
    assert {a["pod"]: a["ip"] for a in agents(lab)} == {"web-0": lab.pod_ip("web-0"), "web-1": lab.pod_ip("web-1")}
    assert all(a["ready"] for a in agents(lab))
    assert sw(lab, "intercept", "web", "--port", str(PORT)).returncode == 0
    assert set(gets(lab, 10)) == {"lap1 GET / 0"}


def test_hostile_namespace_not_covered(ilab):
    """A laptop token limited to other namespaces (a namespaces= line) may
    reach the cluster but not intercept in default."""
    lab = ilab
    secret = "/run/subway-lab/%s/volumes/manager-0/secret/token" % lab.name
    orig = open(secret).read()
    try:
        with labutil.ManagerAway(lab):
            os.chmod(secret, 0o640)
            with open(secret, "w") as f:
                f.write(orig + "namespaces=team-a,team-b\n")
            os.chmod(secret, 0o440)
        wait_for(lambda: labutil.status(lab)["state"] == "connected", timeout=20, what="laptop reconnected")
        p = sw(lab, "intercept", "web", "--port", str(PORT))
        assert p.returncode == 1 and "namespaces" in p.stderr and "default" in p.stderr, p
        assert count(manager_stats(lab), r"intercepts outside the token's namespaces (\d+)") == 1
        assert set(gets(lab, 10)) == PODS
        assert "web" not in listed(lab, laptop=2)
    finally:
        with labutil.ManagerAway(lab):
            os.chmod(secret, 0o640)
            with open(secret, "w") as f:
                f.write(orig)
            os.chmod(secret, 0o440)
        for n in (1, 2):
            wait_for(lambda: labutil.status(lab, laptop=n)["state"] == "connected", timeout=20,
                     what="laptop %d reconnected" % n)
        wait_for(lambda: all(a["ready"] for a in agents(lab)) and len(agents(lab)) == 2, timeout=20,
                 what="both agents back")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
