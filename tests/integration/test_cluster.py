"""subway on a real cluster, as the lab emulates one (issue 12; docs/install.md):
the image, deploy/, `subway install`, the manager's discovery in its pod, the
lab's kubelet; and the lab telling the truth about itself (its sysctls, a dead
pod, `lab restart`).

    build/image/subway-V.oci.tar ──skopeo──► registry (server :5000) ──podman pull──► manager-0
    deploy/subway.yaml ──subway install──► DIR/subway.yaml + DIR/token ──lab's kubelet──► the container
"""
import json
import os
import re
import signal
import subprocess
import tarfile
import time

import pytest

import labutil
from labutil import ROOT, SUBWAY, ManagerAway, manager_pid, run, status, wait_for

VERSION = re.search(r'SUBWAY_VERSION "([^"]+)"', open(os.path.join(ROOT, "src/commands.h")).read()).group(1)
ARCHIVE = os.path.join(os.path.dirname(SUBWAY), "image", "subway-%s.oci.tar" % VERSION)
MANIFEST = os.path.join(ROOT, "deploy", "subway.yaml")


def yaml_docs(path):
    import yaml  # python3-yaml (make deps)
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kind(docs, k, name=None):
    return next(d for d in docs if d["kind"] == k and (name is None or d["metadata"]["name"] == name))


def container(docs):
    return kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


# ---- the image ----

def oci_blob(tar, digest):
    return tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()


def image_contents():
    """(config, file names of every layer, layers' size in bytes) of the OCI archive."""
    with tarfile.open(ARCHIVE) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        manifest = json.loads(oci_blob(tar, index["manifests"][0]["digest"]))
        config = json.loads(oci_blob(tar, manifest["config"]["digest"]))
        names, size = [], 0
        for layer in manifest["layers"]:
            blob = oci_blob(tar, layer["digest"])
            mode = "r:gz" if blob[:2] == b"\x1f\x8b" else "r:"
            import io
            with tarfile.open(fileobj=io.BytesIO(blob), mode=mode) as lt:
                for m in lt.getmembers():
                    names.append(m.name)
                    size += m.size
        return config, names, size


def test_image_is_small_static_without_shell():
    assert os.path.exists(ARCHIVE), "no %s: make image" % ARCHIVE
    config, names, size = image_contents()
    print("\nimage: %d bytes in its layers, archive %d bytes" % (size, os.path.getsize(ARCHIVE)))
    assert size <= 10 * 1000 * 1000 and os.path.getsize(ARCHIVE) <= 10 * 1000 * 1000
    assert [n.lstrip("./") for n in names if n.strip("./")] == ["subway"]  # no shell, no libc, nothing else
    c = config["config"]
    assert c["User"] == "65532:65532" and c["Entrypoint"] == ["/subway"]
    assert c["Labels"]["org.opencontainers.image.version"] == VERSION
    # the binary is static and has the cluster's roles only
    binary = os.path.join(os.path.dirname(SUBWAY), "image", "subway")
    assert b"/lib64/ld-linux" not in open(binary, "rb").read(4096)
    p = run([binary, "--help"])
    assert "manager" in p.stdout and "connect" not in p.stdout and "lab" not in p.stdout


# ---- deploy/ ----

def test_manifests_parse_and_are_locked_down():
    docs = yaml_docs(MANIFEST)
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "Secret", "Deployment", "Service",
                                          "Service"]
    assert all(d["metadata"].get("namespace", "subway") == "subway" for d in docs)
    assert not any(d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") for d in docs)
    assert kind(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    dep = kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1 and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    c = container(docs)
    sc = c["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    for k in ("requests", "limits"):
        assert set(c["resources"][k]) == {"cpu", "memory"}
    assert c["livenessProbe"]["tcpSocket"]["port"] == c["ports"][0]["name"]
    assert c["readinessProbe"]["tcpSocket"]["port"] == c["ports"][0]["name"]
    svc = kind(docs, "Service", "manager")["spec"]
    assert svc["type"] == "NodePort" and svc["ports"][0]["nodePort"] == 30443
    assert kind(docs, "Service", "manager-internal")["spec"]["type"] == "ClusterIP"
    # no flag for what the manager learns in its pod
    assert not any(a in c["args"] for a in ("--pod-cidr", "--service-cidr", "--dns", "--cluster-domain"))


# ---- subway install ----

def install(tmp_path, *args):
    out = tmp_path / "install"
    p = run([SUBWAY, "install", "--out", str(out), *args])
    return out, p


def test_install_writes_secret_files_and_prints_no_secret(tmp_path):
    out, p = install(tmp_path, "--manager-address", "192.168.56.10,192.168.56.11", "--pod-cidr", "10.42.0.0/16",
                     "--node-port", "31443")
    assert p.returncode == 0, p.stderr
    assert os.stat(out).st_mode & 0o777 == 0o700
    token = open(out / "token").read()
    secret = re.search(r"^token=([0-9a-f]{64})$", token, re.M).group(1)
    assert "manager=192.168.56.10:31443\n" in token and re.search(r"^fingerprint=sha256:[0-9a-f]{64}$", token, re.M)
    for f in ("token", "subway.yaml"):
        assert os.stat(out / f).st_mode & 0o777 == 0o600
    assert secret not in p.stdout + p.stderr and "PRIVATE KEY" not in p.stdout + p.stderr
    docs = yaml_docs(out / "subway.yaml")
    data = kind(docs, "Secret")["stringData"]
    assert data["token"].strip() == "token=" + secret
    assert "BEGIN CERTIFICATE" in data["cert.pem"] and "PRIVATE KEY" in data["key.pem"]
    env = {e["name"]: e.get("value") for e in container(docs)["env"]}
    assert env["SUBWAY_POD_CIDR"] == "10.42.0.0/16" and env["SUBWAY_NODES"] == "192.168.56.10,192.168.56.11"
    assert "SUBWAY_SERVICE_CIDR" not in env
    assert kind(docs, "Service", "manager")["spec"]["ports"][0]["nodePort"] == 31443
    # the same as deploy/ otherwise
    assert container(docs)["args"] == container(yaml_docs(MANIFEST))["args"]
    # a second install: a new token
    out2, _ = install(tmp_path / "b")
    assert secret not in open(out2 / "token").read()


@pytest.mark.parametrize("args,exit_code,message", [
    ((), 2, "--out DIR is required"),
    (("--out", "/tmp/x", "--node-port", "80"), 2, "--node-port: not a node port 30000..32767: '80'"),
    (("--out", "/tmp/x", "--pod-cidr", "10.42.0.1/16"), 2, "--pod-cidr: not a CIDR"),
    (("--out", "/tmp/x", "--manager-address", "node1"), 2, "--manager-address: not an IPv4 address: 'node1'"),
    (("--out", "/tmp/x", "--frobnicate"), 2, "unknown option '--frobnicate'"),
    (("--out", "/proc/nope/x"), 1, "cannot create /proc/nope/x"),
])
def test_install_errors(args, exit_code, message):
    p = run([SUBWAY, "install", *args])
    assert p.returncode == exit_code and message in p.stderr and len(p.stderr.splitlines()) == 1, p


def fake_kubectl(tmp_path):
    """A kubectl that records its arguments and stdin (no cluster here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text("#!/bin/sh\necho \"$@\" > %s/args\ncat > %s/stdin\necho applied\n" % (tmp_path, tmp_path))
    script.chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))


def test_install_apply_and_uninstall_use_kubectl(tmp_path):
    env = fake_kubectl(tmp_path)
    out = tmp_path / "install"
    p = run([SUBWAY, "install", "--out", str(out), "--apply", "--context", "k3s", "--kubeconfig", "/k"], env=env)
    assert p.returncode == 0 and "applied" in p.stdout, p
    assert open(tmp_path / "args").read().split() == ["--context", "k3s", "--kubeconfig", "/k", "apply", "-f", "-"]
    assert open(tmp_path / "stdin").read() == open(out / "subway.yaml").read()
    p = run([SUBWAY, "uninstall", "--context", "k3s"], env=env)
    assert p.returncode == 0, p
    assert open(tmp_path / "args").read().split() == ["--context", "k3s", "delete", "--ignore-not-found", "-f", "-"]
    assert "kind: Namespace" in open(tmp_path / "stdin").read()
    p = run([SUBWAY, "uninstall"], env=dict(os.environ, PATH="/nonexistent"))
    assert p.returncode == 1 and "kubectl is not installed" in p.stderr


def test_install_then_connect_with_its_token_file(tmp_path, lab_factory):
    """A lab that deploys what `subway install` wrote (its Secret, its
    default image loaded on the node as `k3s ctr images import` would),
    then `connect --token-file` with no other flag."""
    name = labutil.unique_name()
    out, p = install(tmp_path, "--manager-address", "192.168.56.10")
    assert p.returncode == 0, p.stderr
    lab = lab_factory("host-only", name=name, args=("--install", str(out)))
    m = lab.status()["manager"]
    assert m["image"] == "subway:%s" % VERSION and m["fingerprint"] in open(out / "token").read()
    p = lab.exec([SUBWAY, "connect", "--token-file", str(out / "token")], timeout=30)
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert lab.curl("laptop", "http://web.default/").strip() in ("web-0", "web-1")
    finally:
        lab.exec([SUBWAY, "quit"])
    # wrong or missing files: one clear line each
    other, _ = install(tmp_path / "other", "--manager-address", "192.168.56.10")
    bad = tmp_path / "bad-token"
    bad.write_text("token=xyz\n")
    for path, msg in ((tmp_path / "missing", "No such file"), (bad, "line 1: token"),
                      (other / "token", "is not the one the token file pins")):
        p = lab.exec([SUBWAY, "connect", "--token-file", str(path)], timeout=30)
        assert p.returncode == 1 and msg in p.stderr, (path, p.stdout, p.stderr)
        assert len([line for line in p.stderr.splitlines() if line.strip()]) == 1, p.stderr
    assert not status_running(lab)


def status_running(lab):
    p = lab.exec([SUBWAY, "status", "--json"], timeout=10)
    return p.returncode == 0 and json.loads(p.stdout).get("connected")


# ---- the lab runs what deploy/ says ----

def proc_info(pid):
    st = dict(line.split(":", 1) for line in open("/proc/%d/status" % pid).read().splitlines() if ":" in line)
    cmd = [c.decode() for c in open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0") if c]
    env = dict(e.decode().split("=", 1) for e in open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
               if b"=" in e)
    mounts = {}
    for line in open("/proc/%d/mountinfo" % pid):
        f = line.split()
        mounts[f[4]] = f[5].split(",")
    return st, cmd, env, mounts


@pytest.fixture(scope="module")
def hostonly(subway_bin):
    lab = labutil.Lab.create("host-only")
    yield lab
    lab.down()


def test_lab_runs_the_manifest(hostonly):
    lab = hostonly
    docs = yaml_docs("/run/subway-lab/%s/install/subway.yaml" % lab.name)  # what subway install made
    c = container(docs)
    assert c["args"] == container(yaml_docs(MANIFEST))["args"]  # deploy/ as it is, not a copy of it
    pid, _ = manager_pid(lab)
    st, cmd, env, mounts = proc_info(pid)
    assert cmd == c["command"] + c["args"]
    assert st["Uid"].split()[:2] == ["65532", "65532"] and st["Gid"].split()[:2] == ["65532", "65532"]
    assert "65532" in st["Groups"].split()  # fsGroup
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0 and st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"  # the runtime's default profile
    assert "ro" in mounts["/"]  # readOnlyRootFilesystem
    for vm in c["volumeMounts"]:
        assert vm["mountPath"] in mounts and "ro" in mounts[vm["mountPath"]]
    vol = kind(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]
    secret = kind(docs, "Secret")["stringData"]
    for item in vol["items"]:  # the Secret's keys where the manifest mounts them, readable by the pod only
        f = "/proc/%d/root%s/%s" % (pid, c["volumeMounts"][0]["mountPath"], item["path"])
        assert open(f).read() == secret[item["key"]]
        assert os.stat(f).st_mode & 0o777 == vol["defaultMode"] and os.stat(f).st_gid == 65532
    want = {"POD_NAME": "manager-0", "POD_NAMESPACE": "subway", "POD_IP": lab.pod_ip("manager-0"),
            "HOST_IP": lab.node_ip("server"), "KUBERNETES_SERVICE_HOST": "10.43.0.1",
            "KUBERNETES_SERVICE_PORT": "443", "SUBWAY_NODES": ",".join(lab.node_ips())}
    assert {k: env.get(k) for k in want} == want
    assert open("/proc/%d/root/etc/resolv.conf" % pid).read() == \
        open("/etc/netns/%s-manager-0/resolv.conf" % lab.name).read()
    # the port and the probe: the manager listens where the probe looks
    assert lab.listens("manager-0", c["ports"][0]["containerPort"])
    m = lab.status(refresh=True)["manager"]
    assert m["image"] == "%s:5000/subway:%s" % (lab.node_ip("server"), VERSION) == c["image"]
    assert m["container_id"] and m["user"] == "65532:65532"
    assert lab.status()["state"] == "up" and lab.status()["problems"] == []


def test_derived_cluster_values_match_the_lab(hostonly):
    lab = hostonly
    assert labutil.connect(lab).returncode == 0
    try:
        s = status(lab)["cluster"]
        plan = lab.status()
        assert s["pod_cidrs"] == [plan["pod_cidr"]] and s["service_cidrs"] == [plan["service_cidr"]]
        assert s["domain"] == plan["cluster_domain"] and s["dns"] == plan["cluster_dns"]
        assert s["sources"] == {"pod_cidrs": "derived", "service_cidrs": "derived", "domain": "derived",
                                "dns": "derived", "nodes": "env"}
        assert sorted(s["nodes"]) == sorted(lab.node_ips())
        text = lab.exec([SUBWAY, "status"]).stdout
        assert "pod_cidrs derived" in text and "nodes env" in text
    finally:
        lab.exec([SUBWAY, "quit"])


def manager_log_line(lab, extra_env, args):
    """The `cluster:` line a manager logs when started in the manager's pod
    with the pod's environment, plus extra_env and args (the image's binary)."""
    pid, _ = manager_pid(lab)
    _, cmd, env, _ = proc_info(pid)
    env.update(extra_env)
    vol = "/run/subway-lab/%s/volumes/manager-0/secret" % lab.name
    binary = os.path.join(os.path.dirname(SUBWAY), "image", "subway")
    argv = ["ip", "netns", "exec", lab.ns("manager-0"), "env", "-i", *["%s=%s" % kv for kv in env.items()],
            binary, "manager", "--listen", "127.0.0.1:18443", "--token-file", vol + "/token", "--insecure", *args]
    p = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if "cluster:" in line or not line:
                return line
        return ""
    finally:
        p.kill()
        p.wait(timeout=5)


def test_flags_and_env_override_each_derived_value(hostonly):
    lab = hostonly
    line = manager_log_line(lab, {}, [])
    assert ("pod CIDR 10.42.0.0/16 (derived), service CIDR 10.43.0.0/16 (derived), domain cluster.local "
            "(derived), dns 10.43.0.10 (derived), 3 node(s) (env)") in line, line
    env = {"SUBWAY_POD_CIDR": "10.50.0.0/16", "SUBWAY_SERVICE_CIDR": "10.60.0.0/16",
           "SUBWAY_CLUSTER_DOMAIN": "env.local", "SUBWAY_DNS": "10.60.0.10", "SUBWAY_NODES": "10.1.1.1"}
    line = manager_log_line(lab, env, [])
    assert ("pod CIDR 10.50.0.0/16 (env), service CIDR 10.60.0.0/16 (env), domain env.local (env), "
            "dns 10.60.0.10 (env), 2 node(s) (env)") in line, line
    line = manager_log_line(lab, env, ["--pod-cidr", "10.70.0.0/16", "--service-cidr", "10.80.0.0/16",
                                       "--cluster-domain", "flag.local", "--dns", "10.80.0.10",
                                       "--nodes", "10.2.2.2"])
    assert ("pod CIDR 10.70.0.0/16 (flag), service CIDR 10.80.0.0/16 (flag), domain flag.local (flag), "
            "dns 10.80.0.10 (flag), 2 node(s) (flag)") in line, line


def test_killed_manager_is_restarted_and_reconnected(hostonly):
    """Issue 12: the lab's kubelet restarts the manager's container, as a
    Deployment would, and the daemon reconnects by itself.  Timed."""
    lab = hostonly
    assert labutil.connect(lab).returncode == 0
    try:
        pid, _ = manager_pid(lab)
        before = status(lab)["manager"]["reconnects"]
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: manager_pid(lab)[0] not in (None, pid) and lab.listens("manager-0", 8443), timeout=15,
                 interval=0.01, what="manager restarted")
        t_up = time.monotonic() - t0
        wait_for(lambda: status(lab)["manager"]["reconnects"] > before and status(lab)["connected"], timeout=10,
                 interval=0.05, what="daemon reconnected")
        t_conn = time.monotonic() - t0
        print("\nmanager SIGKILLed: its container listens again after %.2f s, the daemon is connected after %.2f s"
              % (t_up, t_conn))
        m = lab.status(refresh=True)["manager"]
        assert m["running"] and m["restarts"] >= 1 and m["last_exit"] == 137
        assert lab.curl("laptop", "http://web.default/").strip() in ("web-0", "web-1")
    finally:
        lab.exec([SUBWAY, "quit"])


def test_status_degraded_names_what_died_and_restart(hostonly):
    lab = hostonly
    with ManagerAway(lab):
        p = run([SUBWAY, "lab", "status", "--name", lab.name, "--json"])
        st = json.loads(p.stdout)
        assert p.returncode == 1 and st["state"] == "degraded", st["state"]
        assert any(x.startswith("manager-0 (subway manager (container)) is not running") for x in st["problems"])
        text = run([SUBWAY, "lab", "status", "--name", lab.name]).stdout
        assert "degraded" in text and "manager-0" in text.split("problems", 1)[1]
    wait_for(lambda: lab.status(refresh=True)["state"] == "up", timeout=15, what="up again")
    # lab restart: the manager through the kubelet, another pod's server directly
    old, _ = manager_pid(lab)
    p = run([SUBWAY, "lab", "restart", "--name", lab.name, "manager-0"], timeout=30)
    assert p.returncode == 0 and "pod manager-0 restarted" in p.stdout, p
    assert manager_pid(lab)[0] not in (None, old)
    for pid in run(["ip", "netns", "pids", lab.ns("web-0")]).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: lab.status(refresh=True)["state"] == "degraded", timeout=5, what="degraded")
    assert any(x.startswith("web-0 (nginx) is not running") for x in lab.status()["problems"])
    p = run([SUBWAY, "lab", "restart", "--name", lab.name, "web-0"], timeout=30)
    assert p.returncode == 0, p
    assert lab.status(refresh=True)["state"] == "up"
    assert lab.curl("web-1", "http://%s/" % lab.pod_ip("web-0")).strip() == "web-0"
    p = run([SUBWAY, "lab", "restart", "--name", lab.name, "nope-0"])
    assert p.returncode == 2 and "no pod 'nope-0'" in p.stderr


# ---- the lab tells the truth: its sysctls (issue 15) ----

def ns_sysctl(ns, key):
    return int(run(["ip", "netns", "exec", ns, "sysctl", "-n", key]).stdout.split()[0])


def test_bridged_sysctls_are_the_labs_own_and_doctor_is_clean(lab_factory, tmp_path):
    """Every namespace's forwarding and rp_filter are what the lab sets, not
    what the machine has (a new namespace copies the machine's: podman's
    default network, for one, turns forwarding on).  The machine's own are
    never touched: `up` runs here from a namespace of the test's own whose
    forwarding is on, to show that where it runs from does not matter."""
    fwd = labutil.unique_name("f")
    run(["ip", "netns", "add", fwd], check=True)
    try:
        run(["ip", "netns", "exec", fwd, "sysctl", "-qw", "net.ipv4.ip_forward=1",
             "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1"], check=True)
        assert ns_sysctl(fwd, "net.ipv4.ip_forward") == 1
        lab = lab_factory("bridged", up=False)
        before = labutil.root_snapshot()
        # nsenter: only the network namespace (`ip netns exec` remounts /sys,
        # where podman then finds no cgroups)
        p = run(["nsenter", "--net=/run/netns/" + fwd, SUBWAY, "lab", "up", "--name", lab.name,
                 "--topology", "bridged"], timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert labutil.root_snapshot()["sysctls"] == before["sysctls"]
    finally:
        run(["ip", "netns", "del", fwd])
    st = lab.status(refresh=True)
    assert not st["laptop"]["ip_forward"]
    for ns in st["namespaces"]:
        got = (ns_sysctl(ns["name"], "net.ipv4.ip_forward"), ns_sysctl(ns["name"], "net.ipv4.conf.all.rp_filter"),
               ns_sysctl(ns["name"], "net.ipv4.conf.default.rp_filter"))
        assert got == (int(ns["forwards"]), 0, 0), (ns, got)
        assert ns["sysctls"] == {"ip_forward": got[0], "rp_filter": got[1], "rp_filter_default": got[2]}
        assert ns["forwards"] == (ns["role"] in ("router", "internet", "node"))
    p = lab.exec([SUBWAY, "doctor", "--lab", lab.name, "--json"], timeout=30)
    d = json.loads(p.stdout)
    bad = [f for f in d["findings"] if f["severity"] in ("warning", "problem")]
    assert p.returncode == 0 and d["clean"] and not bad, bad
