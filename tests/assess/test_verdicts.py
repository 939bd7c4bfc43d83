"""The comparison of findings with a lab manifest's expected verdicts (scanner.assess.verdicts)."""

from __future__ import annotations

from scanner.assess.verdicts import compare, highest, mismatches
from scanner.models import Finding

MANIFEST = {"devices": [
    {"name": "hik-face", "ip": "198.51.100.92", "expected": {"severity": "high", "finding_kinds": ["face-upload"]}},
    {"name": "hik-face-idle", "ip": "198.51.100.48",
     "expected": {"severity": "medium", "finding_kinds": ["face-cloud-enabled"]}},
    {"name": "axis-cam", "ip": "198.51.100.159", "expected": {"severity": None, "finding_kinds": []}},
]}


def finding(ip: str, severity: str, kind: str) -> Finding:
    return Finding(device_ip=ip, severity=severity, kind=kind, title=kind)


def test_highest_severity_decides_and_extra_kinds_are_allowed():
    findings = [finding("198.51.100.92", "medium", "face-cloud-enabled"),
                finding("198.51.100.92", "high", "face-upload"),
                finding("198.51.100.92", "info", "cloud-unknown"),
                finding("198.51.100.48", "medium", "face-cloud-enabled")]
    assert mismatches(findings, MANIFEST) == []
    verdicts = {v.name: v for v in compare(findings, MANIFEST)}
    assert verdicts["hik-face"].severity == "high" and verdicts["axis-cam"].severity is None
    assert highest([]) is None


def test_a_missing_upload_a_false_high_and_any_finding_on_a_local_device_are_mismatches():
    findings = [finding("198.51.100.92", "medium", "face-cloud-enabled"),  # uploader not high
                finding("198.51.100.48", "high", "face-cloud-enabled"),  # false high
                finding("198.51.100.159", "info", "cloud-unknown")]  # local-only device with a finding
    wrong = {v.name: v for v in mismatches(findings, MANIFEST)}
    assert set(wrong) == {"hik-face", "hik-face-idle", "axis-cam"}
    assert "missing face-upload" in wrong["hik-face"].line()
    assert wrong["axis-cam"].line().startswith("MISMATCH: axis-cam (198.51.100.159) expected no finding")


def test_right_severity_but_missing_kind_is_a_mismatch():
    findings = [finding("198.51.100.92", "high", "snapshot-upload-unknown"),
                finding("198.51.100.48", "medium", "face-cloud-enabled")]
    assert [v.name for v in mismatches(findings, MANIFEST)] == ["hik-face"]


def test_findings_for_addresses_outside_the_lab_are_mismatches():
    findings = [finding("198.51.100.92", "high", "face-upload"), finding("198.51.100.48", "medium",
                                                                         "face-cloud-enabled"),
                finding("198.51.100.1", "low", "video-cloud")]
    wrong = mismatches(findings, MANIFEST)
    assert [(v.name, v.ip) for v in wrong] == [("(not a lab device)", "198.51.100.1")]
