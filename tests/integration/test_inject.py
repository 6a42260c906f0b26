"""Issue 13's injection and the lab around it: `subway inject` and
`uninject` (docs/install.md, "Agents"), the workloads the lab holds, `lab
inject` and `uninject`, the client pod and the second laptop (docs/lab.md).

    subway inject web --from-file F ──► the JSON patch (RFC 6902) and its kubectl line
    lab inject web:  workloads/default/web.json + that patch ──► web-0, web-1 restarted,
                     each with the agent's container (podman, from the lab's registry),
                     which the lab's kubelet keeps running
    lab up --laptops 2:  NAME-laptop2 on the first laptop's network, lab exec --laptop 2
"""
import copy
import json
import os
import re
import shlex
import stat
import time

import pytest

import labutil
from labutil import SUBWAY, run, wait_for

IMAGE = "192.168.56.10:5000/subway:0.1.0"
MANAGER = "10.43.0.50:443"  # the lab's service manager in namespace subway: ClusterIP and port
POD_SPEC = "/spec/template/spec"

# An app's environment, with what breaks naive quoting: a quote, an
# apostrophe, a newline, '=', '$', a $(VAR) reference (the kubelet's, to
# be kept as written), a backslash, UTF-8.
ODD = "it's \"quoted\"\nline 2: a=b, $HOME, $(POD_NAME), \\n, caf\u00e9"
APP = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "shop", "namespace": "team-a", "labels": {"app": "shop"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}}, "template": {
        "metadata": {"labels": {"app": "shop"}},
        "spec": {"containers": [{
            "name": "app", "image": "shop:1",
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "GREETING", "value": ODD},
                    {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}],
            "envFrom": [{"configMapRef": {"name": "shop-config"}}]}]}}}}


def agent_container(env_app, ports, image=IMAGE, env_from=None, workload="shop"):
    """The agent's container as the patch must add it (written out here, not
    derived from the code)."""
    c = {"name": "subway-agent", "image": image, "imagePullPolicy": "IfNotPresent", "args": ["agent"],
         "env": env_app + [
             {"name": "SUBWAY_MANAGER", "value": MANAGER},
             {"name": "SUBWAY_WORKLOAD", "value": workload},
             {"name": "SUBWAY_PORTS", "value": ports},
             {"name": "SUBWAY_AGENT_DIR", "value": "/var/run/secrets/subway-agent"},
             {"name": "SUBWAY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
             {"name": "SUBWAY_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
             {"name": "SUBWAY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    if env_from is not None:
        c["envFrom"] = env_from
    c.update({
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "subway-agent", "mountPath": "/var/run/secrets/subway-agent", "readOnly": True}]})
    return c


VOLUME = {"name": "subway-agent", "secret": {"secretName": "subway-agent", "defaultMode": 0o444, "items": [
    {"key": "agent-token", "path": "agent-token"}, {"key": "cert.pem", "path": "cert.pem"}]}}


def pointer(doc, path):
    """(parent, key) of an RFC 6901 pointer."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def apply_patch(doc, patch):
    """The operations the agent's patches use (RFC 6902: add, test, replace,
    remove), as the API server applies them."""
    doc = copy.deepcopy(doc)
    for op in patch:
        parent, key = pointer(doc, op["path"])
        if isinstance(parent, list):
            key = len(parent) if key == "-" else int(key)
        if op["op"] == "add" and isinstance(parent, list):
            parent.insert(key, op["value"])
        elif op["op"] in ("add", "replace"):
            assert op["op"] == "add" or (key in parent if isinstance(parent, dict) else key < len(parent))
            parent[key] = op["value"]
        elif op["op"] == "test":
            assert parent[key] == op["value"], op
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise AssertionError(op)
    return doc


def inject(tmp_path, doc, *args, cmd="inject", yaml=False):
    f = tmp_path / ("w.yaml" if yaml else "w.json")
    if yaml:
        import yaml as y
        f.write_text("# a manifest\n---\n" + y.safe_dump(doc, allow_unicode=True, sort_keys=False))
    else:
        f.write_text(json.dumps(doc))
    extra = ("--manager", MANAGER, "--image", IMAGE) if cmd == "inject" else ()
    return run([SUBWAY, cmd, doc["metadata"]["name"], "--from-file", str(f), *extra, *args])


# ---- subway inject / uninject, from a file ----

def test_inject_from_file_exact(tmp_path, subway_bin):
    p = inject(tmp_path, APP, "--json")
    assert p.returncode == 0 and p.stderr == "", p
    out = json.loads(p.stdout)
    env = copy.deepcopy(APP["spec"]["template"]["spec"]["containers"][0]["env"])
    env[2]["valueFrom"]["resourceFieldRef"]["containerName"] = "app"  # the app's limits, not the agent's
    patch = [{"op": "add", "path": POD_SPEC + "/containers/-",
              "value": agent_container(env, "http:8080,dns:53/udp", env_from=[{"configMapRef": {"name": "shop-config"}}])},
             {"op": "add", "path": POD_SPEC + "/volumes", "value": [VOLUME]}]
    assert out == {"kind": "Deployment", "name": "shop", "namespace": "team-a", "container": "app",
                   "ports": "http:8080,dns:53/udp", "image": IMAGE, "manager": MANAGER, "had_agent": False,
                   "secret": "subway-agent", "patch": patch, "command": out["command"]}
    # the shell line gives kubectl exactly this patch (quotes and newlines survive the shell)
    argv = shlex.split(out["command"])
    assert argv[:9] == ["kubectl", "patch", "deployment", "shop", "-n", "team-a", "--type", "json", "-p"]
    assert json.loads(argv[9]) == patch and len(argv) == 10
    assert ODD in json.loads(argv[9])[0]["value"]["env"][0]["value"]
    # the human form: the same patch and line; YAML in, the same patch out
    p = inject(tmp_path, APP, yaml=True)
    assert p.returncode == 0, p
    assert p.stdout.rstrip("\n").splitlines()[-1] == out["command"]
    assert "Secret subway-agent in namespace team-a" in p.stdout
    injected = apply_patch(APP, patch)
    # again on the injected workload: replaced in place, guarded by tests
    p = inject(tmp_path, injected, "--json", "--port", "http")
    again = json.loads(p.stdout)
    assert again["had_agent"] and [(o["op"], o["path"]) for o in again["patch"]] == [
        ("test", POD_SPEC + "/containers/1/name"), ("replace", POD_SPEC + "/containers/1"),
        ("test", POD_SPEC + "/volumes/0/name"), ("replace", POD_SPEC + "/volumes/0")]
    assert apply_patch(injected, again["patch"])["spec"]["template"]["spec"]["containers"][1]["env"][5]["value"] == \
        "http:8080"
    # uninject: back to the workload as it was
    p = inject(tmp_path, injected, "--json", cmd="uninject")
    un = json.loads(p.stdout)
    assert un["had_agent"] and un["patch"] == [
        {"op": "test", "path": POD_SPEC + "/containers/1/name", "value": "subway-agent"},
        {"op": "remove", "path": POD_SPEC + "/containers/1"},
        {"op": "test", "path": POD_SPEC + "/volumes/0/name", "value": "subway-agent"},
        {"op": "remove", "path": POD_SPEC + "/volumes"}]
    assert apply_patch(injected, un["patch"]) == APP
    p = inject(tmp_path, APP, cmd="uninject")
    assert p.returncode == 0 and "has no agent: nothing to remove" in p.stdout


def fake_kubectl(tmp_path, fail_on=None):
    """A kubectl that records each call (argv, one JSON line) and fails
    the one whose arguments contain fail_on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    script = bin_dir / "kubectl"
    script.write_text("#!/usr/bin/python3\nimport json, sys\n"
                      "open(%r, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                      "if %r and %r in ' '.join(sys.argv): sys.exit(1)\n"
                      "print('done')\n" % (str(log), fail_on, fail_on))
    script.chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"])), log


def test_inject_apply_uses_kubectl(tmp_path, subway_bin):
    env, log = fake_kubectl(tmp_path)
    f = tmp_path / "w.json"
    f.write_text(json.dumps(APP))
    p = run([SUBWAY, "inject", "shop", "--from-file", str(f), "--manager", MANAGER, "--apply", "--context", "k3s",
             "--kubeconfig", "/k c"], env=env)
    assert p.returncode == 0, p
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["--context", "k3s", "--kubeconfig", "/k c", "get", "secret/subway-agent", "-n", "team-a",
                        "-o", "name"]
    assert calls[1][:11] == ["--context", "k3s", "--kubeconfig", "/k c", "patch", "deployment", "shop", "-n", "team-a",
                             "--type", "json"]
    patch = json.loads(calls[1][12])
    assert patch[0]["value"]["image"] == "subway:0.1.0"  # no kubectl asked for the manager: the default
    assert "kubectl --context k3s --kubeconfig '/k c' patch deployment shop" in p.stdout
    # a namespace without the Secret: nothing patched, and what to do
    (tmp_path / "b").mkdir()
    env, log = fake_kubectl(tmp_path / "b", fail_on="secret")
    p = run([SUBWAY, "inject", "shop", "--from-file", str(f), "--manager", MANAGER, "--apply"], env=env)
    assert p.returncode == 1 and "kubectl apply -n team-a -f DIR/subway-agent.yaml" in p.stderr, p
    assert len(log.read_text().splitlines()) == 1
    # from kubectl: the workload, then the manager's service and image
    (tmp_path / "c").mkdir()
    env, log = fake_kubectl(tmp_path / "c")
    p = run([SUBWAY, "inject", "shop", "-n", "team-a"], env=env)
    assert p.returncode == 1  # the fake's "done" is no JSON
    assert json.loads(log.read_text().splitlines()[0]) == ["get", "-n", "subway", "service/manager",
                                                           "deployment/subway-manager", "-o", "json"]
    assert "cannot find subway's manager with kubectl" in p.stderr


@pytest.mark.parametrize("args,code,message", [
    (("inject",), 2, "which workload?"),
    (("inject", "Web"), 2, "workload 'Web': not a Kubernetes name"),
    (("inject", "web", "--kind", "daemonset"), 2, "--kind 'daemonset': deployment or statefulset"),
    (("inject", "web", "--manager", "manager:443"), 2, "--manager 'manager:443': not IP:PORT"),
    (("inject", "web", "--frob"), 2, "unknown option '--frob'"),
    (("uninject", "web", "--port", "80"), 2, "unknown option '--port'"),
    (("inject", "web", "--from-file", "/nonexistent", "--manager", MANAGER), 1, "cannot read /nonexistent"),
    (("inject", "web", "--from-file", "/etc/hostname"), 1, "--manager IP:PORT is needed with --from-file"),
])
def test_inject_errors(args, code, message, subway_bin):
    p = run([SUBWAY, *args])
    assert p.returncode == code and message in p.stderr and len(p.stderr.splitlines()) == 1, p


def test_inject_without_kubectl_or_file(subway_bin):
    """Without --from-file the workload comes from kubectl: none here, and
    the message says what else would do."""
    p = run([SUBWAY, "inject", "web", "--manager", MANAGER, "--image", IMAGE],
            env=dict(os.environ, PATH="/nonexistent"))
    assert p.returncode == 1 and "kubectl is not installed" in p.stderr and "--from-file FILE" in p.stderr, p


def test_inject_port_choice_and_refusals(tmp_path, subway_bin):
    def ports(*args):
        p = inject(tmp_path, APP, "--json", *args)
        return json.loads(p.stdout)["ports"] if p.returncode == 0 else p.stderr.strip()
    assert ports("--port", "dns") == "dns:53/udp"
    assert ports("--port", "9090", "--port", "metrics:9100", "--port", "8080") == ":9090,metrics:9100,http:8080"
    assert "container app has no port of that name (its ports: http:8080,dns:53/udp)" in ports("--port", "grpc")
    p = inject(tmp_path, APP, "--container", "sidecar")
    assert p.returncode == 1 and "has no container sidecar (it has app)" in p.stderr
    p = inject(tmp_path, APP, "-n", "team-b")
    assert p.returncode == 1 and "no Deployment or StatefulSet shop in namespace team-b" in p.stderr


# ---- subway install: the agents' Secret ----

def test_install_writes_the_agents_secret(tmp_path, subway_bin):
    import yaml
    out = tmp_path / "i"
    p = run([SUBWAY, "install", "--out", str(out), "--manager-address", "192.168.56.10"])
    assert p.returncode == 0, p
    docs = [d for d in yaml.safe_load_all(open(out / "subway.yaml")) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    agent = [d for d in yaml.safe_load_all(open(out / "subway-agent.yaml")) if d]
    assert len(agent) == 1 and agent[0]["kind"] == "Secret" and agent[0]["metadata"]["name"] == "subway-agent"
    assert "namespace" not in agent[0]["metadata"]  # applied with -n in each namespace
    assert agent[0]["stringData"] == {"agent-token": secret["agent-token"], "cert.pem": secret["cert.pem"]}
    assert re.fullmatch(r"token=[0-9a-f]{64}\n", secret["agent-token"]) and secret["agent-token"] != secret["token"]
    assert os.stat(out / "subway-agent.yaml").st_mode & 0o777 == 0o600
    assert secret["agent-token"].strip() not in p.stdout + p.stderr
    c = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    i = c["args"].index("--agent-token-file")
    assert c["args"][i + 1] == "/etc/subway/agent-token"
    items = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]
    assert {"key": "agent-token", "path": "agent-token"} in items["items"]


# ---- the lab: its workloads, lab inject and uninject ----

@pytest.fixture(scope="module")
def hostonly(subway_bin):
    lab = labutil.Lab.create("host-only", args=("--laptops", "2"))
    yield lab
    lab.down()


def held(lab):
    return "/run/subway-lab/%s/workloads/default/web.json" % lab.name


def proc_env(pid):
    return dict(e.decode().split("=", 1) for e in open("/proc/%d/environ" % pid, "rb").read().split(b"\0") if b"=" in e)


def test_lab_holds_web_as_a_deployment(hostonly):
    """The web pods' nginx runs what the held Deployment says: its env
    (resolved as a kubelet does) and its port."""
    lab = hostonly
    w = json.load(open(held(lab)))
    assert (w["kind"], w["metadata"]["name"], w["spec"]["replicas"]) == ("Deployment", "web", 2)
    c = w["spec"]["template"]["spec"]["containers"][0]
    assert c["ports"] == [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
    names = [e["name"] for e in c["env"]]
    assert names == ["APP_ENV", "LOG_LEVEL", "DATABASE_URL", "GREETING", "POD_NAME", "SELF_URL"]
    greeting = next(e["value"] for e in c["env"] if e["name"] == "GREETING")
    assert all(ch in greeting for ch in ("\"", "'", "\n", "=", "$"))
    for pod in ("web-0", "web-1"):
        pid = int(open("/run/subway-lab/%s/pids/%s.pid" % (lab.name, pod)).read())
        env = proc_env(pid)
        assert "nginx" in open("/proc/%d/cmdline" % pid).read()
        assert env == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": pod,
                       "KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443",
                       "APP_ENV": "staging", "LOG_LEVEL": "info",
                       "DATABASE_URL": "postgres://web@db.default.svc.cluster.local:5432/shop?sslmode=disable",
                       "GREETING": greeting, "POD_NAME": pod, "SELF_URL": "http://%s.web.default:80/" % pod}
        assert "$(NOT_SET)" in env["GREETING"]  # a reference to nothing stays as written


def manager_agent_token(lab):
    vol = "/run/subway-lab/%s/volumes/manager-0/secret" % lab.name
    return open(vol + "/agent-token").read(), open(vol + "/tls/cert.pem").read()


def test_lab_inject_runs_the_agent_from_the_patched_spec(hostonly, tmp_path):
    lab = hostonly
    before = open(held(lab)).read()
    m = lab.status(refresh=True)["manager"]
    # what `subway inject` makes of the same workload
    p = run([SUBWAY, "inject", "web", "--from-file", held(lab), "--manager", MANAGER, "--image", m["image"], "--json"])
    assert p.returncode == 0, p
    patch = json.loads(p.stdout)["patch"]
    t0 = time.monotonic()
    p = labutil.subway("lab", "inject", "--name", lab.name, "web")
    took = time.monotonic() - t0
    print("\nlab inject web: %.2f s" % took)
    assert p.returncode == 0, p
    assert re.search(r"^pod web-0 restarted with container subway-agent \([0-9a-f]{12}\)", p.stdout, re.M), p.stdout
    assert re.search(r"^pod web-1 restarted with container subway-agent", p.stdout, re.M)
    assert took < 10
    # the held Deployment is the original with that patch applied
    assert json.load(open(held(lab))) == apply_patch(json.loads(before), patch)
    spec = json.load(open(held(lab)))["spec"]["template"]["spec"]
    want_env = {e["name"]: e.get("value") for e in spec["containers"][1]["env"]}

    names = lab.containers()
    token, cert = manager_agent_token(lab)
    for pod, ip in (("web-0", "10.42.1.2"), ("web-1", "10.42.2.2")):
        name = "%s-%s.subway-agent" % (lab.name, pod)
        assert name in names, names
        c = lab.inspect(name)
        assert c["ImageName"] == m["image"] == IMAGE
        assert c["Config"]["User"] == "0:0"
        assert c["Config"]["Entrypoint"] in ("/subway", ["/subway"]) and c["Config"]["Cmd"] == ["agent"]
        assert c["HostConfig"]["NetworkMode"] == "ns:/run/netns/%s-%s" % (lab.name, pod)
        assert c["HostConfig"]["ReadonlyRootfs"] is True
        assert "no-new-privileges" in c["HostConfig"]["SecurityOpt"]
        assert c["HostConfig"]["CapAdd"] == ["CAP_NET_ADMIN"]
        env = dict(e.split("=", 1) for e in c["Config"]["Env"])
        resolved = {"POD_NAME": pod, "SUBWAY_POD_NAME": pod, "SUBWAY_POD_NAMESPACE": "default", "SUBWAY_POD_IP": ip,
                    "SELF_URL": "http://%s.web.default:80/" % pod}
        for k, v in want_env.items():
            assert env[k] == resolved.get(k, v), k
        assert (env["SUBWAY_MANAGER"], env["SUBWAY_WORKLOAD"], env["SUBWAY_PORTS"], env["SUBWAY_AGENT_DIR"]) == \
            (MANAGER, "web", "http:80", "/var/run/secrets/subway-agent")
        assert "GREETING" in env and "\n" in env["GREETING"] and "$(NOT_SET)" in env["GREETING"]
        assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["HOSTNAME"] == pod
        assert "container" not in env and "TERM" not in env  # podman's, not a kubelet's
        # uid 0 with NET_ADMIN alone, the one way a kubelet's container gets
        # a capability (a non-root one keeps none across its execve: no
        # ambient ones, and no_new_privs ignores file capabilities)
        oci = json.load(open(c["OCIConfigPath"]))["process"]
        assert oci["user"]["uid"] == 0 and oci["user"]["gid"] == 0 and oci["noNewPrivileges"]
        caps = oci["capabilities"]
        assert caps["bounding"] == ["CAP_NET_ADMIN"] and not caps.get("ambient") and not caps.get("inheritable")
        # the Secret subway-agent, read-only where the spec mounts it: the
        # agents' token the manager takes and its certificate, never its key
        mounts = {x["Destination"]: x for x in c["Mounts"]}
        sec = mounts["/var/run/secrets/subway-agent"]
        assert sec["RW"] is False and sec["Source"] == "/run/subway-lab/%s/volumes/%s/subway-agent" % (lab.name, pod)
        assert sorted(os.listdir(sec["Source"])) == ["agent-token", "cert.pem"]
        assert open(sec["Source"] + "/agent-token").read() == token and open(sec["Source"] + "/cert.pem").read() == cert
        for f in ("agent-token", "cert.pem"):
            st = os.stat(os.path.join(sec["Source"], f))
            assert stat.S_IMODE(st.st_mode) == 0o444 and (st.st_uid, st.st_gid) == (0, 0)
        assert mounts["/etc/resolv.conf"]["Source"] == "/etc/netns/%s-%s/resolv.conf" % (lab.name, pod)

    # the lab's kubelet runs each one, and it stays up (it has what it needs)
    def kept():
        pods = {p["name"]: p for p in lab.status(refresh=True)["pods"]}
        agents = [pods[n]["agent"] for n in ("web-0", "web-1")]
        return all(a and a["running"] for a in agents) and agents
    agents = wait_for(kept, timeout=15, interval=0.2, what="the kubelet to run the agents")
    time.sleep(1)
    agents = kept()
    assert agents and all(a["restarts"] == 0 for a in agents), agents
    for pod, a in zip(("web-0", "web-1"), agents):
        assert a["container_id"] == lab.inspect("%s-%s.subway-agent" % (lab.name, pod))["Id"]
        assert (a["container"], a["image"], a["user"]) == ("subway-agent", IMAGE, "0:0")
    assert lab.status()["workloads"][0]["injected"] is True
    text = labutil.subway("lab", "status", "--name", lab.name).stdout
    assert re.search(r"web-0 .* nginx; agent [0-9a-f]{12} (running|not running)", text)
    # each agent's process, as the kubelet started it: NET_ADMIN and nothing else
    for a in agents:
        st = dict(line.split(":", 1) for line in open("/proc/%d/status" % a["pid"]) if ":" in line)
        assert st["Uid"].split()[0] == "0" and int(st["CapAmb"], 16) == 0 and st["NoNewPrivs"].strip() == "1"
        assert [int(st[k], 16) for k in ("CapBnd", "CapPrm", "CapEff")] == [1 << 12] * 3, st
    # and each registered with the manager (subway list on a laptop shows them ready)
    assert labutil.connect(lab).returncode == 0
    wait_for(lambda: "web-0 (ready), web-1 (ready)" in lab.exec([SUBWAY, "list"], timeout=10).stdout, timeout=10,
             what="both agents ready in subway list")
    lab.exec([SUBWAY, "quit"], timeout=20)
    # the app still serves, from another service's pod
    assert {lab.curl("client", "http://web/").strip() for _ in range(16)} == {"web-0", "web-1"}


def test_lab_uninject_and_down_leave_nothing(hostonly):
    lab = hostonly
    p = labutil.subway("lab", "uninject", "--name", lab.name, "web")
    assert p.returncode == 0, p
    assert "pod web-0 restarted without the agent" in p.stdout
    assert not any(".subway-agent" in n for n in lab.containers())
    w = json.load(open(held(lab)))
    assert [c["name"] for c in w["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert "volumes" not in w["spec"]["template"]["spec"]
    st = lab.status(refresh=True)
    assert all(p["agent"] is None for p in st["pods"]) and st["problems"] == [] and st["state"] == "up"
    assert os.listdir("/run/subway-lab/%s/kubelet" % lab.name) == ["manager-0"]
    assert not os.path.exists("/run/subway-lab/%s/volumes/web-0" % lab.name)
    p = labutil.subway("lab", "uninject", "--name", lab.name, "web")
    assert p.returncode == 0 and "nothing to remove" in p.stdout
    # inject again, then down: no container, namespace or file stays
    assert labutil.subway("lab", "inject", "--name", lab.name, "web").returncode == 0
    inodes = lab.inodes()
    assert lab.down().returncode == 0
    assert labutil.leftovers(lab.name, inodes) == []


def test_lab_inject_refusals(lab_factory):
    lab = lab_factory("host-only", args=("--no-manager",))
    p = labutil.subway("lab", "inject", "--name", lab.name, "echo")
    assert p.returncode == 1 and "the lab holds no workload echo in namespace default (it holds default/web)" in p.stderr
    p = labutil.subway("lab", "inject", "--name", lab.name, "web")
    assert p.returncode == 1 and "runs no manager" in p.stderr
    p = labutil.subway("lab", "inject", "--name", lab.name + "x", "web")
    assert p.returncode == 1 and "is not up" in p.stderr


# ---- two laptops ----

@pytest.mark.parametrize("topology", labutil.TOPOLOGIES)
def test_two_laptops(lab_factory, topology):
    """A second laptop on the first one's network (another port of the
    host-only bridge, another host on the router's LAN), with its own
    resolv.conf (and DNS forwarder where the first has one); both connect."""
    t0 = time.monotonic()
    lab = lab_factory(topology, args=("--laptops", "2"))
    print("\nlab up --laptops 2 (%s): %.2f s" % (topology, time.monotonic() - t0))
    st = lab.status()
    assert st["up_seconds"] < 5 and st["state"] == "up", st["problems"]
    first, second = st["laptops"]
    assert first == st["laptop"] and second["index"] == 2 and second["namespace"] == lab.ns("laptop2")
    net = "192.168.56" if topology in ("host-only", "nat") else "192.168.1"
    assert second["addresses"] == [{"interface": "eth0", "address": net + (".2/24" if net.endswith("56") else ".101/24")}]
    assert second["ip_forward"] is False
    assert second["resolv_conf"] == "/etc/netns/%s/resolv.conf" % lab.ns("laptop2")
    assert (second["dns_forwarder"] is not None) == (first["dns_forwarder"] is not None) == (topology == "host-only")
    p = lab.exec(["ip", "-4", "-o", "addr", "show", "eth0"], laptop=2)
    assert p.returncode == 0 and second["addresses"][0]["address"] in p.stdout
    assert lab.exec(["sh", "-c", "exit 5"], laptop=2).returncode == 5
    assert lab.exec(["cat", "/etc/resolv.conf"], laptop=2).stdout.strip().endswith("nameserver 203.0.113.53")
    assert lab.exec(["dig", "+short", "+time=2", "example.com"], laptop=2).stdout.split() == ["203.0.113.80"]
    if second["dns_forwarder"]:
        assert lab.listens("laptop2", 53, "udp")
        assert lab.run("laptop2", ["dig", "+short", "+time=2", "@" + second["dns_forwarder"].split(":")[0],
                                   "example.com"]).stdout.split() == ["203.0.113.80"]
    # both laptops connect, and reach the cluster by name and ClusterIP
    try:
        for i in (1, 2):
            p = labutil.connect(lab, laptop=i)
            assert p.returncode == 0, (i, p.stdout, p.stderr)
        for i in (1, 2):
            assert lab.exec(["curl", "-sS", "--max-time", "10", "http://web.default/"], laptop=i).stdout.strip() \
                in ("web-0", "web-1")
            assert labutil.status(lab, laptop=i)["connected"]
    finally:
        for i in (1, 2):
            lab.exec([SUBWAY, "quit"], laptop=i, timeout=20)
    assert "203.0.113.53" in open(second["resolv_conf"]).read()
    p = labutil.subway("lab", "exec", "--name", lab.name, "--laptop", "2", "--", "true")
    assert p.returncode == 0


def test_exec_second_laptop_of_a_one_laptop_lab(lab_factory):
    lab = lab_factory("host-only", args=("--no-manager",))
    p = lab.exec(["true"], laptop=2)
    assert p.returncode == 1 and "has one laptop ('lab up --laptops 2' makes two)" in p.stderr
