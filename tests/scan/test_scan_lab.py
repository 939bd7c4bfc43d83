"""camsweep scan against the lab: every device found and identified as the manifest says,
with real output validated against the published JSON Schema, and the fragile camera still
answering afterwards."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep
from tests.scan.accuracy import score

SCHEMA = json.loads(resources.files("scanner").joinpath("schema/result.schema.json").read_text())


def _scan_in_inspector(lab_id: int, *args: str) -> dict:
    proc = camsweep("lab", "exec", "--lab-id", str(lab_id), "--", "python3", "-m", "scanner", "scan",
                    "198.51.100.0/24", "--iface", "eth0", "--json", "-", *args, timeout=120)
    return json.loads(proc.stdout)


def _assert_gentle(lab_id: int) -> None:
    fragile = lab.node_command(lab_id, "fragile-cam", {"cmd": "fragile"})
    assert fragile["hung"] is None, fragile
    assert fragile["max_concurrent_seen"] <= 2
    for node in lab.status(lab_id)["nodes"]:
        assert node["answering"], node["name"]


@pytest.mark.root
def test_netns_scan_finds_and_identifies_every_device(netns_lab):
    result = _scan_in_inspector(NETNS_LAB_ID)
    jsonschema.validate(result, SCHEMA)
    s = score(netns_lab, result)
    assert s.wrong == [], s.line()
    assert s.identified == s.devices
    _assert_gentle(NETNS_LAB_ID)


@pytest.mark.root
def test_netns_scan_without_multicast_still_finds_everyone(netns_lab):
    """Multicast loss is the top complaint about existing tools: unicast fallbacks must cover it."""
    result = _scan_in_inspector(NETNS_LAB_ID, "--no-multicast")
    s = score(netns_lab, result)
    assert s.wrong == [], s.line()
    _assert_gentle(NETNS_LAB_ID)


@pytest.mark.root
@pytest.mark.parametrize("seed", [23])
def test_netns_scan_other_seed(seed):
    lab_id = NETNS_LAB_ID + 6
    lab.down(lab_id)
    try:
        manifest = lab.up(lab_id, "netns", seed, visitor_interval=0)
        result = _scan_in_inspector(lab_id)
        s = score(manifest, result)
        assert s.wrong == [], s.line()
        _assert_gentle(lab_id)
    finally:
        lab.down(lab_id)


def test_loopback_scan_identifies_what_unicast_can_see(tmp_path):
    lab_id = NETNS_LAB_ID + 7
    lab.down(lab_id)
    try:
        manifest = lab.up(lab_id, "loopback", 31, visitor_interval=0)
        args = ["scan", f"127.77.{lab_id}.0/24", "--json", str(tmp_path / "r.json")]
        if manifest["port_offset"]:
            off = manifest["port_offset"]
            args += ["--port-map", ",".join(f"{p}={p + off}" for p in (80, 443, 554, 135, 445, 631))]
        camsweep(*args, timeout=120)
        result = json.loads((tmp_path / "r.json").read_text())
        jsonschema.validate(result, SCHEMA)
        s = score(manifest, result, check_mac=False)
        assert s.wrong == [], s.line()
        _assert_gentle(lab_id)
    finally:
        lab.down(lab_id)


def test_scan_never_sends_to_public_addresses_without_allow_public():
    proc = camsweep("scan", "8.8.8.0/30", check=False)
    assert proc.returncode == 2 and "public address" in proc.stderr
