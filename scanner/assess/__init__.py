"""Assessment: evidence -> findings with severity, confidence, the evidence behind them and legal references.

    result.findings = assess(result, jurisdiction="cn")

``assess`` is pure and deterministic: it reads the devices (their identification, cloud links
and audit evidence), never mutates its input, and returns findings sorted by severity
(high, medium, low, info), then device address, then kind. The rules live in
``scanner.assess.rules`` (one function per kind, each with the reason for its severity); the
legal provisions per jurisdiction in ``scanner.assess.legal``; the comparison with a lab
manifest's expected verdicts in ``scanner.assess.verdicts``.

Finding kinds: face-upload, snapshot-upload-unknown, picture-upload, face-api-non-camera,
face-cloud-enabled, video-cloud, cloud-unknown (traffic); face-upload-configured,
picture-upload-configured, cloud-registered, face-library (self-audit). One device may get
several findings.
"""

from __future__ import annotations

import ipaddress

from scanner.assess.legal import JURISDICTIONS, check_jurisdiction, legal_refs
from scanner.assess.rules import RULES, build_view, make_label_only_test, make_local_test
from scanner.errors import UsageError
from scanner.models import SEVERITIES, Finding, ScanResult

__all__ = ["JURISDICTIONS", "SEVERITIES", "assess", "severity_at_least", "severity_rank"]

_RANK = {name: index for index, name in enumerate(SEVERITIES)}  # high=0 ... info=3


def severity_rank(severity: str) -> int:
    """0 for high ... 3 for info; UsageError for anything else."""
    if severity not in _RANK:
        raise UsageError(f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)}")
    return _RANK[severity]


def severity_at_least(severity: str, threshold: str) -> bool:
    """Is ``severity`` at or above ``threshold`` (``--fail-on high|medium|low``)? high > medium > low > info."""
    return severity_rank(severity) <= severity_rank(threshold)


def assess(result: ScanResult, *, jurisdiction: str = "cn") -> list[Finding]:
    """Every finding the rules raise for ``result``'s devices, with legal references for ``jurisdiction``."""
    check_jurisdiction(jurisdiction)
    recorded = result.scan.options.get("local_networks")
    is_local = make_local_test(result.scan.targets, recorded if isinstance(recorded, list) else None)
    label_only = make_label_only_test()
    findings: list[Finding] = []
    for device in result.devices:
        view = build_view(device, is_local, label_only)
        for rule in RULES:
            for finding in rule(view):
                finding.legal = legal_refs(finding.kind, jurisdiction)
                findings.append(finding)
    findings.sort(key=_order)
    return findings


def _order(finding: Finding) -> tuple[int, int, int, str, str, str]:
    where: tuple[int, int, str]
    try:
        address = ipaddress.ip_address(finding.device_ip)
        where = (address.version, int(address), "")
    except ValueError:
        where = (9, 0, finding.device_ip)
    return (_RANK.get(finding.severity, len(_RANK)), where[0], where[1], where[2], finding.kind, finding.title)
