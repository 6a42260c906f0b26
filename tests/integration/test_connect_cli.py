"""`subway connect` as a user meets it (issue 15, "CLI polish"): bad
arguments exit 2 with one line that says what is wrong, a second connect
with other options names them, concurrent connects share one outcome, and
messages say a path once and cut what is long.  Host-only lab; each
message is checked as the one line it must be."""
import os
import re
import subprocess
import time

import pytest

from labutil import SUBWAY, netns_run, run, status, wait_for

pytestmark = pytest.mark.parametrize("lab", ["host-only"], indirect=True)

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def connect(lab, *args, timeout=30):
    return lab.exec([SUBWAY, "connect", *args], timeout=timeout)


def one_line(p):
    """The command's stderr is one line; returns it."""
    assert p.stderr.count("\n") == 1 and p.stderr.endswith("\n"), repr(p.stderr)
    return p.stderr.strip()


def quit(lab):
    p = lab.exec([SUBWAY, "quit"], timeout=20)
    assert p.returncode == 0, p.stderr


def daemons(lab):
    """Daemons in the laptop namespace."""
    pids = run(["ip", "netns", "pids", lab.laptop]).stdout.split()
    found = []
    for pid in pids:
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if len(cmd) > 1 and cmd[1] == b"daemon":
            found.append(int(pid))
    return found


def wrong_token(lab, tmp_path):
    good = open(lab.status()["manager"]["token_file"]).read()
    f = tmp_path / "wrong-token"
    f.write_text(re.sub(r"token=[0-9a-f]+", "token=" + "ab" * 32, good))
    os.chmod(f, 0o600)
    return str(f)


def test_bad_manager_exits_2_naming_what_is_wrong(lab):
    tok = lab.status()["manager"]["token_file"]
    cases = (("", "--manager: empty"),
             ("abc", "--manager: 'abc' has no port"),
             ("1.2.3.4:99999", "--manager: the port '99999' of '1.2.3.4:99999' is not a number 1..65535"),
             ("1.2.3.4:", "--manager: the port '' of '1.2.3.4:' is not a number"),
             (":30443", "--manager: ':30443' has no host name"))
    for value, want in cases:
        p = connect(lab, "--manager", value, "--token-file", tok)
        assert p.returncode == 2, (value, p.stdout, p.stderr)
        line = one_line(p)
        assert want in line, (value, line)
        assert "resolve" not in line
    assert daemons(lab) == []  # nothing was started for a bad argument


def test_manager_that_does_not_resolve_is_named(lab):
    tok = lab.status()["manager"]["token_file"]
    p = connect(lab, "--manager", "no-such-host.invalid:30443", "--token-file", tok)
    assert p.returncode == 1
    assert "cannot resolve the manager's host 'no-such-host.invalid'" in one_line(p)


def test_lab_names_only(lab):
    for name, want in (("../../etc", "use a-z, 0-9 and '-'"), ("Web", "use a-z, 0-9 and '-'"),
                       ("_x", "use a-z, 0-9 and '-'"), ("abc-", "must not end with '-'"),
                       ("a" * 21, "1 to 20 characters"), ("a/b", "use a-z, 0-9 and '-'")):
        p = connect(lab, "--lab", name)
        assert p.returncode == 2, (name, p.stderr)
        line = one_line(p)
        assert line.startswith("subway connect: --lab: bad lab name") and want in line, (name, line)
    p = connect(lab, "--lab", "nosuchlab")
    assert p.returncode == 1
    assert one_line(p) == ("subway connect: no lab named 'nosuchlab' is up (no /run/subway-lab/nosuchlab/token)")
    p = lab.exec([SUBWAY, "doctor", "--lab", "../x"], timeout=20)
    assert p.returncode == 2 and "bad lab name" in one_line(p)


def test_long_arguments_are_cut(lab):
    long = "a" * 5000
    for args in (["--namespace", long], ["--also-proxy", long + ".example"], ["--tos", long],
                 ["--manager", long], ["--lab", long], ["--" + long], ["--lab", lab.name, long]):
        p = connect(lab, *args)
        assert p.returncode == 2, (args[0], p.stderr[:200])
        line = one_line(p)
        assert len(line) < 300 and "a" * 49 not in line and "aaa..." in line, line
    p = connect(lab, "--token-file", "/tmp/" + "x" * 3000)
    assert p.returncode == 1
    line = one_line(p)
    assert len(line) < 300 and "xxx..." in line and line.endswith(": File name too long"), line


def test_token_file_path_said_once(lab, tmp_path):
    missing = str(tmp_path / "no-such-token")
    p = connect(lab, "--token-file", missing)
    assert p.returncode == 1
    line = one_line(p)
    assert line == "subway connect: token file %s: No such file or directory" % missing, line
    bad = tmp_path / "bad-token"
    bad.write_text("token=zz\n")
    p = connect(lab, "--token-file", str(bad))
    assert p.returncode == 1
    assert one_line(p).count(str(bad)) == 1, p.stderr


def test_not_root_connect_needs_root(lab):
    for args in (["--lab", lab.name], ["--lab", "nosuchlab"], ["--token-file", "/nonexistent"]):
        p = netns_run(lab.laptop, NOBODY + [SUBWAY, "connect", *args], timeout=20)
        assert p.returncode == 1, (args, p.stderr)
        assert one_line(p) == "subway connect: must run as root: it creates a network interface (try sudo)"


def test_authentication_refused_said_once(lab, tmp_path):
    p = connect(lab, "--manager", lab.status()["manager"]["endpoint"], "--token-file", wrong_token(lab, tmp_path))
    assert p.returncode == 1
    line = one_line(p)
    assert line.count("authentication refused") == 1, line
    assert line == "subway connect: authentication refused by the manager", line


def test_second_connect_with_other_options_names_them(lab):
    p = connect(lab, "--lab", lab.name)
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        p = connect(lab, "--lab", lab.name)
        assert p.returncode == 0 and p.stderr == ""
        assert p.stdout.strip() == "already connected to %s" % lab.status()["manager"]["endpoint"], p.stdout
        p = connect(lab, "--lab", lab.name, "--namespace", "kube-system", "--no-dns")
        assert p.returncode == 1, p.stdout
        line = one_line(p)
        assert "already connected to" in line and "with other options" in line, line
        assert "--namespace (asked: kube-system, running: default)" in line, line
        assert "--no-dns (asked: yes, running: no)" in line, line
        assert "subway quit" in line and "--tos" not in line, line
        p = connect(lab, "--lab", lab.name, "--tos", "0x08")
        assert p.returncode == 1 and "--tos (asked: 8, running: the manager's)" in one_line(p)
        assert status(lab)["dns"]["namespace"] == "default"  # the session is as it was
    finally:
        quit(lab)


def test_concurrent_connects_share_one_outcome(lab, tmp_path):
    """Four connects at once: one daemon, one session, and each says so."""
    quit(lab)
    argv = [SUBWAY, "lab", "exec", "--name", lab.name, "--", SUBWAY, "connect", "--lab", lab.name]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=60)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    try:
        assert [o[0] for o in outs] == [0] * 4, outs
        assert sum(o[1].count("daemon started") for o in outs) == 1, outs
        for _, out, _ in outs:
            last = out.strip().splitlines()[-1]
            assert last.startswith("connected: ") or last.startswith("already connected to"), out
            if last.startswith("connected: "):  # it heard the whole connect, as the first did
                assert "manager %s reached" % lab.status()["manager"]["endpoint"] in out, out
        assert len(daemons(lab)) == 1
        assert status(lab)["connected"]
    finally:
        quit(lab)
    # and a failure, told to every one of them
    argv = argv[:6] + [SUBWAY, "connect", "--manager", lab.status()["manager"]["endpoint"],
                       "--token-file", wrong_token(lab, tmp_path)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=60)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [o[0] for o in outs] == [1] * 4, outs
    assert {o[2] for o in outs} == {"subway connect: authentication refused by the manager\n"}, outs
    wait_for(lambda: daemons(lab) == [], timeout=5, what="the failed daemon gone")
