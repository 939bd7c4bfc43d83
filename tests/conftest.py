"""Test-suite policy.

* ``@pytest.mark.root`` tests need root (network namespaces, raw sockets). Without root they
  are skipped with the reason; with ``CAMSWEEP_REQUIRE_ROOT_TESTS=1`` (set by tests/run.sh, and
  so by CI) a skipped root test fails the run.
* No test may leave a lab namespace or node process behind (checked at session end).
* tests/run.sh runs the suite in two pytest-xdist workers (``--dist loadfile``: a file's module
  fixtures are set up once); each worker has its own lab ids (``tests.labfixtures``). The checks
  above run in the controller, which sees every worker's reports.
"""

from __future__ import annotations

import os
import subprocess

import pytest

IS_ROOT = os.geteuid() == 0
_skipped_root: list[str] = []


def _lab_namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines() if line.startswith("csw")}


_namespaces_at_start = _lab_namespaces() if IS_ROOT else set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces / raw sockets); CI runs it as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "root" in report.keywords:
        _skipped_root.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller gets every report and checks once, after all workers
    if _skipped_root and os.environ.get("CAMSWEEP_REQUIRE_ROOT_TESTS") == "1":
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: {len(_skipped_root)} root tests were skipped, and this run requires them "
                                "(CAMSWEEP_REQUIRE_ROOT_TESTS=1): run as root", red=True)
    if IS_ROOT:
        ours = sorted(_lab_namespaces() - _namespaces_at_start)
        if ours:
            session.exitstatus = 1
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"FAILED: tests left lab namespaces behind: {' '.join(ours)}", red=True)


@pytest.fixture(autouse=True, scope="session")
def _no_scapy_neighbour_lookups():
    """Safety: scapy fills a frame's missing Ethernet destination by ARP/ND on the host's own
    network. No test may do that: every frame a test builds names its MACs."""
    from scapy.all import conf

    def refuse(l2: object, l3: object) -> None:
        raise AssertionError("a test frame without an explicit destination MAC would make scapy send ARP/ND")

    saved = conf.neighbor.resolve
    conf.neighbor.resolve = refuse
    yield
    conf.neighbor.resolve = saved


# The session netns lab and CLI helpers, for every test directory.
from tests.labfixtures import netns_lab  # noqa: E402,F401
