"""The inspector's whole job on the netns lab, as a user runs it: scan from the inspector
namespace, record the mirror port while visitors walk by, analyze the capture merged with the
scan, and get the case-file outputs with a --fail-on exit code for scheduled jobs."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scanner.report.html import verify
from tests.labfixtures import NETNS_LAB_ID, camsweep

pytestmark = pytest.mark.root


def test_scan_capture_analyze_reports_every_picture_uploader_as_high(netns_lab, tmp_path):
    inspector = netns_lab["inspector"]
    scan_json, scan_csv = tmp_path / "scan.json", tmp_path / "scan.csv"
    camsweep("lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", "python3", "-m", "scanner", "scan",
             netns_lab["subnet"], "--iface", inspector["iface"], "--json", str(scan_json), "--csv", str(scan_csv),
             timeout=180)
    scanned = json.loads(scan_json.read_text())
    scan_rows = list(csv.DictReader(io.StringIO(scan_csv.read_text(encoding="utf-8-sig"))))
    assert {r["device_ip"] for r in scan_rows} >= {d["ip"] for d in scanned["devices"]}

    pcap = tmp_path / "store.pcap"
    camsweep("lab", "pcap", str(pcap), "--lab-id", str(NETNS_LAB_ID), "--seconds", "12", "--walkby-every", "4",
             timeout=120)
    report, merged = tmp_path / "report.html", tmp_path / "merged.json"
    proc = camsweep("analyze", str(pcap), "--scan", str(scan_json), "--json", str(merged), "--html", str(report),
                    "--lang", "zh", "--premises", "实验门店", "--operator", "CI", "--fail-on", "high", check=False)
    assert proc.returncode == 1, proc.stderr  # picture uploads are high findings: the scheduled job fails
    assert "at or above --fail-on high" in proc.stderr

    doc = json.loads(merged.read_text())
    uploaders = {d["ip"] for d in netns_lab["devices"] if d["expected"]["uploads_pictures"]}
    high = {f["device_ip"] for f in doc["findings"] if f["severity"] == "high"}
    assert uploaders <= high, (uploaders, high)
    quiet = {d["ip"] for d in netns_lab["devices"] if not d["clouds"]}
    assert not quiet & {f["device_ip"] for f in doc["findings"]}  # no cloud, no finding

    html = report.read_text(encoding="utf-8")
    printed, recomputed = verify(html)
    assert printed == recomputed and printed in html
    by_ip = {d["ip"]: d for d in doc["devices"]}
    for ip in uploaders:
        device = by_ip[ip]
        assert device["vendor"] is None or device["vendor"] in html  # identity from the scan, in the card
        assert any(c["timeline"] for c in device["clouds"] if c["behaviour"] == "snapshot-upload")
    assert html.count('<svg class="timeline"') >= len(uploaders)
    assert "实验门店" in html and 'class="card device worst-high"' in html
