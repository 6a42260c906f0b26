"""A lossy link between the laptop and the nodes: nftables drops 2 % of the
packets at random (`numgen random mod 50 == 0`) both ways on the laptop's
host-only bridge, where the tunnel to the manager runs:

    laptop ── vboxnet0 (2 % of packets dropped, in and out) ── nodes ── pods

500 concurrent connections each move 1 MiB both ways byte-exact (TCP
retransmits under TLS); UDP echo, relayed over the control connection,
reports its loss and nothing it receives differs from what it sent.
"""
import json
import os

import pytest

from labutil import PYTHON, SUBWAY

pytestmark = pytest.mark.parametrize("lab", ["host-only"], indirect=True)

HERE = os.path.dirname(os.path.abspath(__file__))
LOSSY = """
table ip lossy {
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "vboxnet0" numgen random mod 50 == 0 counter drop comment "out"
	}
	chain in {
		type filter hook input priority 0; policy accept;
		iifname "vboxnet0" numgen random mod 50 == 0 counter drop comment "in"
	}
	chain pass {
		type filter hook output priority -10; policy accept;
		oifname "vboxnet0" counter comment "all out"
	}
}
"""


@pytest.fixture(scope="module")
def lossy(lab):
    p = lab.exec([SUBWAY, "connect", "--lab", lab.name], timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    lab.nft("laptop", LOSSY)
    yield lab
    lab.nft_delete("laptop", "lossy")
    lab.exec([SUBWAY, "quit"], timeout=20)


def dropped(lab):
    out = lab.run("laptop", ["nft", "-j", "list", "table", "ip", "lossy"], check=True).stdout
    res = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        for e in (rule or {}).get("expr", []):
            if "counter" in e:
                res[rule.get("comment")] = e["counter"]["packets"]
    return res


def test_500_connections_1mib_both_ways_byte_exact(lossy):
    lab = lossy
    before = dropped(lab)
    p = lab.run("laptop", [PYTHON, os.path.join(HERE, "loadecho.py"), lab.cluster_ip("echo"), "7", "500",
                           str(1 << 20), "150"], timeout=180)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    after = dropped(lab)
    print("\nlossy link: %s; dropped out %d in %d of %d packets out" %
          (r, after["out"] - before["out"], after["in"] - before["in"], after["all out"] - before["all out"]))
    assert r["ok"] == 500 and r["mismatch"] == 0, r
    assert after["out"] - before["out"] > 100 and after["in"] - before["in"] > 100  # the loss was real
    s = json.loads(lab.exec([SUBWAY, "status", "--json"]).stdout)
    assert s["connected"] and s["manager"]["transport"] == "tls"


def test_udp_echo_reports_loss_without_corruption(lossy):
    r = lossy.probe("laptop", "udp-echo", lossy.cluster_ip("udp-echo"), 7, "--count", 1000, "--max-size", 1400,
                    "--timeout", 3, timeout=120)
    print("\nudp over the lossy link: %s" % r)
    assert r["sent"] == 1000 and r["corrupt"] == 0, r
    assert r["matched"] + r["lost"] == r["sent"] and r["lost"] <= 50, r
