"""`subway lab`: the emulated cluster, in every topology (docs/lab.md).

Tests taking `lab` run once per topology against one lab per topology
(module-scoped); the others make their own labs.  All traffic stays
inside the lab's namespaces.

                    host-only / nat                      bridged / cloud
    pod ─ cni0 ─ node ─ eth0 ─┐                pod ─ cni0 ─ node ─ eth0 ─┐
                  laptop (vboxnet0 .56.1) ─ wan0 ─ internet     router (lan0 / vpc0) ─ wan0 ─ internet
                                                               laptop ─┘ (lan0)
"""
import hashlib
import json
import os
import pwd
import re
import signal
import ssl
import subprocess
import time

import pytest

import labutil
from labutil import Lab, subway

UNOWNED = "10.43.250.250"  # in the service CIDR, owned by no service


def replicas(text):
    return set(re.findall(r"^web-\d$", text, re.M))


# ---- every topology ----

def test_status_json(lab):
    st = lab.status(refresh=True)
    for key in ("name", "state", "topology", "topology_summary", "state_dir", "started", "up_seconds",
                "pod_cidr", "service_cidr", "cluster_domain", "cluster_dns", "namespaces", "laptop",
                "router", "internet", "nodes", "services", "pods", "manager", "big", "processes"):
        assert key in st, key
    assert (st["name"], st["state"], st["topology"]) == (lab.name, "up", lab.topology)
    assert (st["pod_cidr"], st["service_cidr"], st["cluster_dns"]) == ("10.42.0.0/16", "10.43.0.0/16", "10.43.0.10")
    assert st["up_seconds"] < 5
    existing = set(labutil.netns_list())
    assert all(n["exists"] and n["name"] in existing for n in st["namespaces"])
    assert [n["name"] for n in st["nodes"]] == list(labutil.NODES)
    for i, n in enumerate(st["nodes"]):
        assert n["pod_cidr"] == "10.42.%d.0/24" % i and n["cni0"] == "10.42.%d.1" % i
    for p in st["pods"]:
        node = lab.node(p["node"])
        assert p["ip"].startswith(node["pod_cidr"].rsplit(".", 1)[0] + "."), p
        assert p["running"] or p["name"] == "manager-0", p
    web = lab.service("web")
    assert web["cluster_ip"] == "10.43.0.20" and web["dns_name"] == "web.default.svc.cluster.local"
    assert web["ports"][0] == {"name": "http", "protocol": "TCP", "port": 80, "target_port": 80, "node_port": 30080}
    assert len({e["node"] for e in web["endpoints"]}) == 2
    assert lab.cluster_ip("kube-dns", "kube-system") == "10.43.0.10"
    m = st["manager"]
    assert m["endpoint"] == lab.node_ips()[0] + ":30443"
    assert m["token_file"] == "/run/subway-lab/%s/token" % lab.name
    assert (m["pod"], m["pod_ip"], m["port"], m["node_port"]) == ("manager-0", lab.pod_ip("manager-0"), 8443, 30443)
    assert os.stat(m["token_file"]).st_mode & 0o777 == 0o600
    with open(m["token_file"]) as f:
        token = f.read()
    assert re.fullmatch(r"token=[0-9a-f]{64}\nmanager=%s\nfingerprint=sha256:[0-9a-f]{64}\n"
                        % re.escape(m["endpoint"]), token)
    # the pin is the manager's certificate, in the Secret `subway install` made, mounted
    # into the pod where the manifest says: readable by the pod's group only
    tls = "/run/subway-lab/%s/volumes/manager-0/secret/tls" % lab.name
    with open(tls + "/cert.pem") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    assert m["fingerprint"] == "sha256:" + hashlib.sha256(der).hexdigest() and m["fingerprint"] in token
    assert m["transport"] == "tls" and m["user"] == "65532:65532"
    key = os.stat(tls + "/key.pem")
    assert key.st_mode & 0o777 == 0o440 and (key.st_uid, key.st_gid) == (0, 65532)
    assert re.fullmatch(r"[0-9a-f]{64}", m["container_id"]) and m["image"].endswith(":5000/subway:0.1.0")
    assert re.fullmatch(r"[0-9a-f]{64}", st["big"]["sha256"]) and st["big"]["size"] == 64 << 20
    assert st["laptop"]["namespace"] == lab.laptop and st["laptop"]["addresses"]
    assert (st["router"] is not None) == (lab.topology in ("bridged", "cloud"))


def test_web_by_cluster_ip_from_pods(lab):
    urls = ["http://10.43.0.20/"] * 24
    for pod in ("echo-0", "kube-dns-0"):  # echo-0 shares agent1 with web-0; kube-dns-0 is on server
        assert replicas(lab.curl(pod, *urls)) == {"web-0", "web-1"}, pod


def test_web_by_dns_name_from_pod(lab):
    assert replicas(lab.curl("iperf-0", *["http://web/"] * 24)) == {"web-0", "web-1"}
    out = lab.curl("iperf-0", "http://web.default.svc.cluster.local/", "http://web.default/")
    assert len(replicas(out)) >= 1 and len(out.split()) == 2


def test_web_from_node(lab):
    assert replicas(lab.curl("server", *["http://10.43.0.20/"] * 24)) == {"web-0", "web-1"}
    # A node resolves cluster names through the cluster DNS service.
    ip = lab.dig("agent2", "+short", "@10.43.0.10", "web.default.svc.cluster.local").strip()
    assert ip == "10.43.0.20"
    name = "web.default.svc.cluster.local"
    out = lab.curl("agent2", *["http://%s/" % name] * 24, extra=("--resolve", "%s:80:%s" % (name, ip)))
    assert replicas(out) == {"web-0", "web-1"}


def test_cluster_ip_from_outside(lab):
    """Traffic to a ClusterIP arriving from outside the cluster (the laptop,
    routing it to a node) is DNATed there and masqueraded, so the reply of
    an endpoint on another node comes back through that node."""
    if lab.topology == "cloud":
        pytest.skip("in cloud the laptop reaches node ports only")
    route = ["ip", "route", "add", "10.43.0.20/32", "via", lab.node_ip("agent2")]
    lab.run("laptop", route, check=True)
    try:
        assert replicas(lab.curl("laptop", *["http://10.43.0.20/"] * 24)) == {"web-0", "web-1"}
    finally:
        lab.run("laptop", ["ip", "route", "del", "10.43.0.20/32"])


def test_echo_half_close(lab):
    for where in ("web-1", "agent2"):  # a pod and a node, echo-0 being on agent1
        r = lab.probe(where, "tcp-echo", "10.43.0.30", 7, "--size", 1 << 20, "--timeout", 15)
        assert r["equal"] and r["eof"], (where, r)
        r = lab.probe(where, "tcp-echo", "echo.default.svc.cluster.local" if where == "web-1" else "10.43.0.30",
                      7, "--size", 1)
        assert r["equal"] and r["eof"], (where, r)


def test_udp_echo(lab):
    r = lab.probe("web-0", "udp-echo", "10.43.0.31", 7, "--count", 1000, "--max-size", 1400, "--timeout", 3)
    assert r["sent"] == 1000 and r["matched"] == 1000, r


def test_dns_from_pod(lab):
    srv = lab.dig("echo-0", "+short", "SRV", "_http._tcp.web.default.svc.cluster.local").split()
    assert srv == ["0", "100", "80", "web.default.svc.cluster.local."]
    srv = lab.dig("echo-0", "+short", "SRV", "_dns._udp.kube-dns.kube-system.svc.cluster.local").split()
    assert srv[2:] == ["53", "kube-dns.kube-system.svc.cluster.local."]
    assert lab.dig("echo-0", "+short", "example.com").split() == ["203.0.113.80"]
    assert lab.dig("echo-0", "+short", "+search", "web").split() == ["10.43.0.20"]  # search path
    assert "status: NXDOMAIN" in lab.dig("echo-0", "nope.default.svc.cluster.local")
    assert "status: NXDOMAIN" in lab.dig("echo-0", "not-example.org")
    assert lab.dig("echo-0", "+short", "-x", "10.43.0.30").split() == ["echo.default.svc.cluster.local."]
    pod = lab.pod_ip("web-1")
    name = "%s.default.pod.cluster.local" % pod.replace(".", "-")
    assert lab.dig("echo-0", "+short", name).split() == [pod]
    with open("/etc/netns/%s/resolv.conf" % lab.ns("echo-0")) as f:
        resolv = f.read()
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "options ndots:5" in resolv and "nameserver 10.43.0.10" in resolv


def test_laptop_dns_forwarder_follows_resolv_conf(lab):
    """host-only: the nodes' DNS is 192.168.56.1, a forwarder on the laptop
    that asks whatever the laptop's resolv.conf names, even after it changes."""
    if lab.topology != "host-only":
        pytest.skip("only host-only has a DNS forwarder on the laptop")
    path = "/etc/netns/%s/resolv.conf" % lab.laptop
    with open(path) as f:
        orig = f.read()
    lab.spawn("laptop", ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
                         "--listen-address=127.0.0.53", "--bind-interfaces",
                         "--address=/changed.example/203.0.113.99"])
    try:
        labutil.wait_for(lambda: lab.listens("laptop", 53) and "127.0.0.53" in
                         lab.run("laptop", ["ss", "-Htln"]).stdout, what="a resolver on 127.0.0.53")
        with open(path, "w") as f:  # in place, as through the bind mount on /etc/resolv.conf
            f.write("nameserver 127.0.0.53\n")
        labutil.wait_for(lambda: lab.dig("server", "+short", "@192.168.56.1", "changed.example").split()
                         == ["203.0.113.99"], timeout=5, interval=0.2, what="the forwarder to follow")
        assert lab.dig("web-0", "+short", "changed.example").split() == ["203.0.113.99"]
    finally:
        with open(path, "w") as f:
            f.write(orig)
        lab.kill_spawned()
    labutil.wait_for(lambda: lab.dig("server", "+short", "@192.168.56.1", "example.com").split()
                     == ["203.0.113.80"], timeout=5, interval=0.2, what="the forwarder to follow back")


def test_iperf(lab):
    p = lab.run("echo-0", ["iperf3", "-c", "10.43.0.40", "-n", "20M", "-J"], timeout=30)
    assert p.returncode == 0, p.stdout[-500:] + p.stderr
    end = json.loads(p.stdout)["end"]
    assert end["sum_sent"]["bytes"] >= 20 << 20 and end["sum_received"]["bytes"] > 0


def test_pod_reaches_the_internet(lab):
    # Masquerade on the node, then through the laptop, slirp4netns or the router.
    assert lab.curl("udp-echo-0", "http://example.com/").strip() == "example.com"


def test_big_sha256(lab):
    p = lab.sh("kube-dns-0", "curl -sSf --max-time 30 http://web.default.svc.cluster.local/big | sha256sum",
               timeout=40)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == lab.status()["big"]["sha256"]


def test_node_ports_from_laptop(lab):
    if not lab.listens("manager-0", 8443):  # no manager: a throwaway listener in its pod
        lab.spawn("manager-0", ["socat", "TCP4-LISTEN:8443,fork,reuseaddr", "SYSTEM:echo manager"])
        labutil.wait_for(lambda: lab.listens("manager-0", 8443), what="listener on 8443")
    try:
        for ip in lab.node_ips():
            r = lab.probe("laptop", "connect", ip, 30443, "--timeout", 3, via_exec=True)
            assert r["ok"], (ip, r)
        seen = set()
        for ip in lab.node_ips():
            seen |= replicas(lab.curl("laptop", *["http://%s:30080/" % ip] * 8))
        assert seen == {"web-0", "web-1"}
    finally:
        lab.kill_spawned()


def test_unowned_cluster_ip(lab):
    """No rule owns 10.43.250.250: the node routes it by its default route.
    host-only: forwarded into the laptop; nat: re-originated by slirp4netns
    in the laptop; bridged, cloud: the laptop never sees it."""
    read = lab.nft_counters("laptop", "labtest", {
        "forwarded": ("prerouting", "ip daddr %s tcp dport 80" % UNOWNED),
        "local": ("output", "ip daddr %s tcp dport 80" % UNOWNED)})
    try:
        r = lab.probe("web-0", "connect", UNOWNED, 80, "--timeout", 2)
        assert not r["ok"], r
        c = read()
    finally:
        lab.nft_delete("laptop", "labtest")
    expect = {"host-only": (True, False), "nat": (False, True),
              "bridged": (False, False), "cloud": (False, False)}[lab.topology]
    assert (c["forwarded"] > 0, c["local"] > 0) == expect, c


def test_cluster_to_laptop(lab):
    """A node opens a connection to the laptop: fine on a LAN, never in cloud."""
    addr = lab.laptop_addr()
    lab.spawn("laptop", ["socat", "TCP4-LISTEN:9999,bind=%s,fork,reuseaddr" % addr, "SYSTEM:echo laptop"])
    try:
        labutil.wait_for(lambda: lab.listens("laptop", 9999), what="listener on the laptop")
        r = lab.probe("agent1", "connect", addr, 9999, "--timeout", 1)
        assert r["ok"] == (lab.topology != "cloud"), r
    finally:
        lab.kill_spawned()


def test_exec(lab):
    p = lab.exec(["sh", "-c", "exit 7"])
    assert p.returncode == 7
    p = lab.exec(["cat", "/etc/resolv.conf"])
    assert "nameserver 203.0.113.53" in p.stdout
    assert lab.exec(["dig", "+short", "+time=2", "example.com"]).stdout.split() == ["203.0.113.80"]
    addrs = lab.exec(["ip", "-4", "-o", "addr"]).stdout
    for a in lab.status()["laptop"]["addresses"]:
        assert a["address"] in addrs


# ---- bad arguments ----

BAD_ARGS = [
    ["lab"], ["lab", "frob"], ["lab", "up", "--frob"], ["lab", "up", "extra"],
    ["lab", "up", "--topology", "mesh"], ["lab", "up", "--topology"], ["lab", "up", "--top", "nat"],
    ["lab", "up", "--name", "Bad_Name"], ["lab", "up", "--name", "a" * 21], ["lab", "up", "--name", "-x"],
    ["lab", "up", "--name", "x-"], ["lab", "up", "--name="], ["lab", "down", "--json"],
    ["lab", "down", "--topology", "nat"], ["lab", "status", "--name", "a/b"], ["lab", "status", "x"],
    ["lab", "exec"], ["lab", "exec", "--name", "x"], ["lab", "exec", "--name", "x", "--"],
    ["lab", "exec", "--frob", "--", "true"], ["lab", "list", "--name", "x"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a[1:]) or "none")
def test_bad_arguments(args):
    p = subway(*args, timeout=10)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("cmd", ["up", "down", "status", "exec", "list"])
def test_help(cmd):
    p = subway("lab", cmd, "--help", timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("usage: subway lab " + cmd)
    assert subway("lab", "--help", timeout=10).returncode == 0


# ---- life cycle ----

def test_two_labs_then_down_leaves_nothing(lab_factory):
    """Two labs side by side (one named like the other plus "-2"), same
    addresses, separate namespaces; down removes exactly one lab."""
    before = labutil.root_snapshot()
    a = lab_factory("host-only")
    b = lab_factory("host-only", name=a.name + "-2")
    for x in (a, b):
        assert replicas(x.curl("echo-0", *["http://10.43.0.20/"] * 24)) == {"web-0", "web-1"}
    again = subway("lab", "up", "--name", a.name, timeout=30)
    assert again.returncode == 1 and "already up" in again.stderr

    # "<a>-udp" would name its echo-0 pod "<a>-udp-echo-0", which is a's udp-echo-0.
    clash = subway("lab", "up", "--name", a.name + "-udp", timeout=30)
    assert clash.returncode == 1 and "belongs to another lab" in clash.stderr
    assert subway("lab", "down", "--name", a.name + "-udp").returncode == 0
    assert os.path.exists("/run/netns/%s-udp-echo-0" % a.name)

    inodes = a.inodes()
    p = a.down()
    assert p.returncode == 0 and p.stdout.strip() == "lab %s is down" % a.name
    assert labutil.leftovers(a.name, inodes) == []
    assert b.status(refresh=True)["state"] == "up"
    assert replicas(b.curl("echo-0", *["http://10.43.0.20/"] * 24)) == {"web-0", "web-1"}

    inodes = b.inodes()
    assert b.down().returncode == 0
    assert labutil.leftovers(b.name, inodes) == []
    again = b.down()
    assert again.returncode == 0 and "not up" in again.stdout
    assert subway("lab", "status", "--name", b.name).returncode == 1
    assert labutil.root_snapshot() == before


def test_down_after_an_up_that_died(lab_factory):
    lab = lab_factory("nat", up=False)
    p = subprocess.Popen([labutil.SUBWAY, "lab", "up", "--name", lab.name, "--topology", "nat"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        labutil.wait_for(lambda: os.path.exists("/run/netns/%s-web-1" % lab.name) or p.poll() is not None,
                         timeout=10, interval=0.001, what="up to create namespaces")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    st = lab.status(refresh=True)["state"]
    assert st in ("partial", "up"), st  # "up" only if it won the race
    inodes = lab.inodes()
    time.sleep(0.2)  # let servers it started before dying settle into their namespaces
    assert lab.down().returncode == 0
    assert labutil.leftovers(lab.name, inodes) == []

    # An up after a dead up cleans what is left and comes up.
    p = subprocess.Popen([labutil.SUBWAY, "lab", "up", "--name", lab.name, "--topology", "nat"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    labutil.wait_for(lambda: os.path.exists("/run/netns/%s-laptop" % lab.name) or p.poll() is not None,
                     timeout=10, interval=0.001, what="up to create namespaces")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    up = lab.up()
    assert up.returncode == 0, up.stdout + up.stderr
    assert lab.status(refresh=True)["state"] == "up"
    assert replicas(lab.curl("echo-0", *["http://10.43.0.20/"] * 24)) == {"web-0", "web-1"}
