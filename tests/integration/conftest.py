"""Fixtures for integration tests that need a lab (an emulated cluster, see
docs/lab.md).  The helpers they return are in labutil.py.

    subway_bin    path of the binary under test ($SUBWAY, else build/subway);
                  skips when not root, fails when the binary is missing
    lab           a Lab, module-scoped, parametrised over the topologies
                  (labutil.TOPOLOGIES, or $SUBWAY_LAB_TOPOLOGIES="host-only,nat"),
                  so each topology comes up once per module and is torn down
                  after it, even on failure.  Narrow it in a module with
                      pytestmark = pytest.mark.parametrize("lab", ["host-only", "nat"], indirect=True)
    lab_factory   function-scoped: lab_factory(topology="host-only", name=None,
                  args=(), up=True) -> Lab; every lab it made is taken down
                  after the test

Each lab gets a unique short name (t<pid><n>).  $SUBWAY_LAB_KEEP=1 keeps
labs up after the tests, for a look around (take them down by hand).
"""
import os

import pytest

import labutil
from labutil import Lab

_TOPOLOGIES = tuple(t for t in os.environ.get("SUBWAY_LAB_TOPOLOGIES", ",".join(labutil.TOPOLOGIES)).split(",")
                    if t)
_live = {}  # name -> Lab still up; the session's safety net
_checked = set()  # labs whose logs are checked for sanitizer reports at teardown


def _keep():
    return os.environ.get("SUBWAY_LAB_KEEP") == "1"


def _destroy(lab):
    """Takes the lab down; returns the sanitizer reports found in its logs."""
    _live.pop(lab.name, None)
    reports = lab.sanitizer_reports() if lab.name in _checked and not _keep() else []
    if _keep():
        print("\nkeeping lab %s (%s): subway lab down --name %s" % (lab.name, lab.topology, lab.name))
        lab.kill_spawned()
        return reports
    p = lab.down()
    if p.returncode != 0:
        print("\nlab down %s failed: %s%s" % (lab.name, p.stdout, p.stderr))
    return reports


def _destroy_all(labs):
    """Finalizer: every lab down, then a failure if a sanitizer spoke."""
    reports = [r for lab in labs for r in _destroy(lab)]
    if reports:
        pytest.fail("sanitizer reports in the logs:\n" + "\n".join(reports[:40]), pytrace=False)


def _make(topology, name=None, args=()):
    lab = Lab.create(topology, name=name, args=args)
    _live[lab.name] = lab
    _checked.add(lab.name)
    return lab


@pytest.fixture(scope="session")
def subway_bin():
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces)")
    if not os.access(labutil.SUBWAY, os.X_OK):
        pytest.fail("no subway binary at %s (run make, or set SUBWAY)" % labutil.SUBWAY)
    return labutil.SUBWAY


@pytest.fixture(scope="module", params=_TOPOLOGIES)
def lab(request, subway_bin):
    topology = request.param
    if topology not in labutil.TOPOLOGIES:
        pytest.fail("unknown topology %r" % topology)
    made = []
    request.addfinalizer(lambda: _destroy_all(made))
    made.append(_make(topology))
    return made[0]


@pytest.fixture
def lab_factory(subway_bin):
    made = []

    def make(topology="host-only", name=None, args=(), up=True):
        if up:
            lab = _make(topology, name=name, args=args)
        else:
            lab = Lab(name or labutil.unique_name(), topology)
            _live[lab.name] = lab
        made.append(lab)
        return lab

    yield make
    _destroy_all([lab for lab in reversed(made) if lab.name in _live])


def pytest_sessionfinish(session, exitstatus):
    for lab in list(_live.values()):
        _destroy(lab)
