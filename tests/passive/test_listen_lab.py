"""camsweep listen on the lab's mirror port: the kernel filters pass whole frames only for DNS,
TLS handshakes and HTTP request lines, headers for the rest, and the uploaders are still found."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep

pytestmark = pytest.mark.root


def test_listen_on_the_mirror_port_finds_every_uploader(netns_lab, tmp_path):
    out = tmp_path / "live.json"
    listener = subprocess.Popen(
        [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m",
         "scanner", "listen", "--iface", "mirror0", "--seconds", "9", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        lab.walkby(NETNS_LAB_ID)
        time.sleep(3)
        lab.walkby(NETNS_LAB_ID)
        _, errors = listener.communicate(timeout=60)
    finally:
        listener.kill()
    assert listener.returncode == 0, errors
    assert "0 dropped" in errors
    result = json.loads(out.read_text())
    assert result["scan"]["iface"] == "mirror0"
    uploaders = {d["ip"] for d in result["devices"] for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    assert uploaders == {d["ip"] for d in netns_lab["devices"] if d["expected"]["uploads_pictures"]}


def test_listen_on_a_missing_interface_is_a_one_line_error(netns_lab):
    proc = camsweep("lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m", "scanner", "listen",
                    "--iface", "nosuch0", "--seconds", "1", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "camsweep: error: cannot listen on 'nosuch0': No such device"


def test_scan_with_listen_merges_uploads_into_the_scanned_devices(netns_lab, tmp_path):
    """`scan --listen` runs the listener beside the scan: the identified devices carry the clouds they
    upload to, and long-lived device channels whose DNS lookup predates listening are named by port."""
    out = tmp_path / "scan.json"
    scanner_proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m",
         "scanner", "scan", "198.51.100.0/24", "--iface", "eth0", "--listen", "22", "--listen-iface", "mirror0",
         "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        lab.walkby(NETNS_LAB_ID)
        time.sleep(6)
        lab.walkby(NETNS_LAB_ID)
        _, errors = scanner_proc.communicate(timeout=120)
    finally:
        scanner_proc.kill()
    assert scanner_proc.returncode == 0, errors
    assert "0 dropped by the kernel" in errors
    result = json.loads(out.read_text())
    assert result["scan"]["options"]["listen_seconds"] == 22
    by_ip = {d["ip"]: d for d in result["devices"]}
    expected_uploaders = {d["ip"] for d in netns_lab["devices"] if d["expected"]["uploads_pictures"]}
    uploaders = {ip for ip, d in by_ip.items() for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    assert uploaders == expected_uploaders
    for truth in netns_lab["devices"]:
        device = by_ip.get(truth["ip"])
        assert device is not None, truth["name"]
        # The scan's identification is kept: the passive side adds clouds, it does not replace devices.
        assert device["mac"] == truth["mac"]
        if truth["ip"] in expected_uploaders:
            assert device["vendor"] == truth["vendor"] or truth["vendor"] is None or device["vendor"] is None
            uploads = [c for c in device["clouds"] if c["behaviour"] == "snapshot-upload"]
            truth_hosts = {c["host"] for c in truth["clouds"] if c["purpose"] == "snapshots"}
            assert {c["host"] for c in uploads} <= truth_hosts, truth["name"]
    # ULUCU's device channel (TCP 29023) is opened at boot: when its DNS lookup predates the listening
    # window there is no name for the address, and the distinctive port names the operator.
    ulucu = next(d for d in netns_lab["devices"] if d["name"] == "ulucu-flow")
    channel = [c for c in by_ip[ulucu["ip"]]["clouds"] if c["port"] == 29023]
    assert channel and channel[0]["operator"] == "ULUCU" and channel[0]["category"] == "passenger-flow"
    if channel[0]["host"] is None:
        assert channel[0]["confidence"] <= 0.5
        assert any("port-only match" in e["detail"] for e in channel[0]["evidence"])
    else:
        assert channel[0]["host"] == "entry.device.serv.ulucu.com"


def test_scan_listen_on_a_missing_interface_fails_before_scanning(netns_lab):
    proc = camsweep("lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m", "scanner", "scan",
                    "198.51.100.0/24", "--iface", "eth0", "--listen", "5", "--listen-iface", "nosuch0", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "camsweep: error: cannot listen on 'nosuch0': No such device"
    assert proc.stdout == ""
