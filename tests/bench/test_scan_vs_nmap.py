"""Benchmark: ``camsweep scan`` and ``nmap -sV`` on the same lab /24, same ports, one run.

Both run inside the lab's inspector namespace. Reported (stdout and tests/bench/results/):
wall time of each and their ratio, how many devices each identified correctly (vendor and
model where the device shows them without a login), and whether the fragile camera survived.
The test asserts only what is not timing: camsweep identifies at least as many devices as
nmap and leaves the fragile camera answering.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as StdET
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID
from tests.scan.accuracy import score

pytestmark = [pytest.mark.root, pytest.mark.bench, pytest.mark.timeout(2400)]

RESULTS = Path(__file__).parent / "results"
PORTS = "80,443,554,8000,8080,8443,8554,2020,37777,34567,5000,8899,9000,6668,631,9100,445,135,5001"


def _in_inspector(lab_id: int, argv: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(lab_id), "--", *argv],
                          capture_output=True, text=True, timeout=timeout)
    return time.monotonic() - started, proc


def _nmap_identified(manifest: dict, xml_text: str) -> tuple[int, int]:
    """(vendor right, vendor+model right) for nmap: MAC vendor or service product/version strings."""
    root: StdET.Element = SafeET.fromstring(xml_text)
    seen: dict[str, str] = {}
    for host in root.iter("host"):
        ip = next((a.get("addr") for a in host.iter("address") if a.get("addrtype") == "ipv4"), None)
        if ip is None:
            continue
        texts = [a.get("vendor") or "" for a in host.iter("address")]
        for svc in host.iter("service"):
            texts.extend(svc.get(k) or "" for k in ("product", "version", "extrainfo", "devicetype"))
        seen[ip] = " ".join(texts).lower()
    vendor_right = model_right = 0
    for d in manifest["devices"]:
        text = seen.get(d["ip"], "")
        vendor_ok = d["vendor"].split()[0].lower() in text
        vendor_right += vendor_ok
        model_visible = d["observable_without_login"].get("model", True)
        if vendor_ok and (not model_visible or re.sub(r"\s+", " ", d["model"].lower()) in text):
            model_right += 1
    return vendor_right, model_right


def _camsweep_identified(manifest: dict, result: dict) -> tuple[int, int]:
    by_ip = {d["ip"]: d for d in result["devices"]}
    vendor_right = model_right = 0
    for d in manifest["devices"]:
        got = by_ip.get(d["ip"], {})
        observable = d["observable_without_login"]
        vendor_ok = (got.get("vendor") or "").lower() == d["vendor"].lower() if observable.get("vendor", True) \
            else got.get("vendor") is None
        vendor_right += vendor_ok
        model_ok = (got.get("model") or "").lower() == d["model"].lower() if observable.get("model", True) \
            else got.get("model") is None
        model_right += vendor_ok and model_ok
    return vendor_right, model_right


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed (tests/bench/run.sh installs it)")
def test_camsweep_vs_nmap_on_the_lab(tmp_path):
    lab_id = NETNS_LAB_ID + 8
    lab.down(lab_id)
    try:
        manifest = lab.up(lab_id, "netns", 5, visitor_interval=0)
        out = tmp_path / "camsweep.json"
        cs_time, cs = _in_inspector(lab_id, ["python3", "-m", "scanner", "scan", "198.51.100.0/24", "--iface", "eth0",
                                             "--json", str(out)], timeout=300)
        assert cs.returncode == 0, cs.stderr
        cs_fragile = lab.node_command(lab_id, "fragile-cam", {"cmd": "fragile"})["hung"]
        result = json.loads(out.read_text())
        nmap_xml = tmp_path / "nmap.xml"
        nm_time, nm = _in_inspector(lab_id, ["nmap", "-n", "-sV", "-p", PORTS, "-oX", str(nmap_xml),
                                             "198.51.100.0/24"], timeout=2000)
        assert nm.returncode == 0, nm.stderr
        nm_fragile = lab.node_command(lab_id, "fragile-cam", {"cmd": "fragile"})["hung"]
    finally:
        lab.down(lab_id)
    cs_vendor, cs_model = _camsweep_identified(manifest, result)
    nm_vendor, nm_model = _nmap_identified(manifest, nmap_xml.read_text())
    full = score(manifest, result)
    report = {
        "devices": len(manifest["devices"]),
        "camsweep": {"seconds": round(cs_time, 2), "vendor_right": cs_vendor, "vendor_and_model_right": cs_model,
                     "fully_identified": full.identified, "fragile_camera_hung": cs_fragile},
        "nmap": {"seconds": round(nm_time, 2), "vendor_right": nm_vendor, "vendor_and_model_right": nm_model,
                 "fragile_camera_hung": nm_fragile, "command": f"nmap -n -sV -p {PORTS} 198.51.100.0/24"},
        "speedup": round(nm_time / cs_time, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scan_vs_nmap.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + json.dumps(report, indent=2))
    assert cs_fragile is None
    assert cs_model >= nm_model and cs_vendor >= nm_vendor
