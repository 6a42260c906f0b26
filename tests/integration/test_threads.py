"""`subway connect --threads N` (issue 14): the data path on N lanes, each
with its own queue of the VIF, its own hairpin and its own trunks; the VIF
steers every TCP connection to one lane for its whole life.

What a user sees: every connection byte-exact whichever lane it lands on,
the lanes sharing the work (status "lanes"), the loop guard and the caps
still working across lanes, and nothing left behind after quit."""
import json
import os

import pytest

from labutil import PYTHON, SUBWAY, connect, status

HERE = os.path.dirname(os.path.abspath(__file__))


def load(lab, n, size, service="echo", port="7"):
    p = lab.run("laptop", [PYTHON, os.path.join(HERE, "loadecho.py"), lab.cluster_ip(service), port, str(n),
                           str(size), "100"], timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["tls", "insecure"])
def test_two_threads_share_the_flows(lab_factory, transport):
    lab = lab_factory("host-only", args=("--insecure",) if transport == "insecure" else ())
    p = connect(lab, "--threads", "2", *(("--insecure",) if transport == "insecure" else ()))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "data path on 2 threads" in p.stdout + p.stderr
    s = status(lab)
    assert s["threads"] == 2 and len(s["lanes"]) == 2, s
    r = load(lab, 300, 64 << 10)
    assert r["ok"] == 300 and r["mismatch"] == 0, r
    s = status(lab)
    lanes = [l["tcp_flows_total"] for l in s["lanes"]]
    # the steering hashes the ports: both lanes take a fair share of 300
    assert sum(lanes) >= 300 and min(lanes) >= 60, lanes
    assert s["counters"]["dials_ok"] >= 300 and s["counters"]["dial_failures"]["refused"] == 0, s["counters"]
    # two trunks per thread; with --insecure only the first thread's (for
    # what the manager opens toward the laptop), the others pool
    assert s["pool"]["trunks"] == (4 if transport == "tls" else 2), s["pool"]
    assert "2 threads" in lab.exec([SUBWAY, "status"]).stdout
    # names, UDP and ping stay on the first lane and work as before
    assert lab.curl("laptop", "http://web.default/").strip() in ("web-0", "web-1")
    assert lab.run("laptop", ["ping", "-c", "1", "-W", "2", lab.pod_ip("echo-0")]).returncode == 0
    q = lab.exec([SUBWAY, "quit"], timeout=20)
    assert q.returncode == 0, q.stderr
    links = lab.run("laptop", ["ip", "-o", "link"]).stdout
    assert "subway" not in links, links


def test_threads_refused_and_named(lab_factory):
    lab = lab_factory("host-only")
    for bad in ("0", "5", "two"):
        p = connect(lab, "--threads", bad)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
        assert "--threads" in p.stderr and "1..4" in p.stderr, p.stderr
    p = connect(lab, "--threads", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    s = status(lab)
    assert s["threads"] == 1 and len(s["lanes"]) == 1, s
    r = load(lab, 50, 4096)
    assert r["ok"] == 50 and r["mismatch"] == 0, r
    p = connect(lab, "--threads", "2")
    assert p.returncode != 0 and "--threads" in p.stdout + p.stderr, p.stdout + p.stderr
    lab.exec([SUBWAY, "quit"], timeout=20)


def test_connections_reset_on_every_lane(lab_factory):
    """quit resets the connections the apps hold, whichever lane holds them."""
    lab = lab_factory("host-only")
    assert connect(lab, "--threads", "2").returncode == 0
    script = ("import socket,sys,time\n"
              "ss=[socket.create_connection((sys.argv[1],7),timeout=5) for _ in range(40)]\n"
              "[s.sendall(b'x') or s.recv(1) for s in ss]\n"
              "print('up',flush=True)\n"
              "reset=0\n"
              "for s in ss:\n"
              "  s.settimeout(10)\n"
              "  try:\n"
              "    b=s.recv(1)\n"
              "    reset+= b==b''\n"
              "  except (ConnectionResetError,OSError): reset+=1\n"
              "print(reset)\n")
    proc = lab.popen("laptop", [PYTHON, "-c", script, lab.cluster_ip("echo")])
    try:
        assert proc.stdout.readline().strip() == "up"
        s = status(lab)
        assert min(l["tcp_flows_total"] for l in s["lanes"]) >= 5, s["lanes"]
        assert lab.exec([SUBWAY, "quit"], timeout=20).returncode == 0
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.strip() == "40", out
