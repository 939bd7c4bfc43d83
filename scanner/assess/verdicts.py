"""Findings against a lab manifest's expected verdicts (``expected.severity`` / ``expected.finding_kinds``).

How the comparison works (one device may have several findings):

* the device's **verdict** is the highest severity among its findings (None when it has none);
* it must **equal** the manifest's ``expected.severity`` exactly: so every face-uploading device
  is high, no other device is high, and a device expected to stay local (None) has no finding at
  all (not even info);
* every kind in ``expected.finding_kinds`` must be among the device's finding kinds (extra kinds
  are allowed: a face camera that uploads may also have its cloud platform reported);
* a finding for an address that is not a lab device (the gateway, the inspector) is a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scanner.models import SEVERITIES, Finding

_RANK = {name: index for index, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Verdict:
    """What the findings conclude about one device, next to what the manifest expects."""

    name: str
    ip: str
    expected_severity: str | None
    expected_kinds: tuple[str, ...]
    severity: str | None
    kinds: tuple[str, ...]
    titles: tuple[str, ...] = field(default=())

    @property
    def missing_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.expected_kinds if k not in self.kinds)

    @property
    def ok(self) -> bool:
        return self.severity == self.expected_severity and not self.missing_kinds

    def line(self) -> str:
        status = "ok" if self.ok else "MISMATCH"
        missing = f", missing {', '.join(self.missing_kinds)}" if self.missing_kinds else ""
        return (f"{status}: {self.name} ({self.ip}) expected {self.expected_severity or 'no finding'} "
                f"{list(self.expected_kinds)}, got {self.severity or 'no finding'} {list(self.kinds)}{missing}")


def highest(findings: Iterable[Finding]) -> str | None:
    """The highest severity among ``findings`` (None when there are none)."""
    ranks = [_RANK[f.severity] for f in findings if f.severity in _RANK]
    return SEVERITIES[min(ranks)] if ranks else None


def compare(findings: Iterable[Finding], manifest: dict[str, Any]) -> list[Verdict]:
    """One verdict per manifest device, plus one per address with findings that is not a lab device
    (name ``"(not a lab device)"``, expected no finding)."""
    by_ip: dict[str, list[Finding]] = {}
    for f in findings:
        by_ip.setdefault(f.device_ip, []).append(f)
    verdicts = []
    known = set()
    for device in manifest.get("devices", []):
        ip = str(device.get("ip"))
        known.add(ip)
        expected = device.get("expected") or {}
        got = by_ip.get(ip, [])
        verdicts.append(Verdict(
            name=str(device.get("name")), ip=ip, expected_severity=expected.get("severity"),
            expected_kinds=tuple(expected.get("finding_kinds") or ()), severity=highest(got),
            kinds=tuple(sorted({f.kind for f in got})), titles=tuple(f.title for f in got)))
    for ip, got in sorted(by_ip.items()):
        if ip not in known:
            verdicts.append(Verdict("(not a lab device)", ip, None, (), highest(got),
                                    tuple(sorted({f.kind for f in got})), tuple(f.title for f in got)))
    return verdicts


def mismatches(findings: Iterable[Finding], manifest: dict[str, Any]) -> list[Verdict]:
    """The verdicts that differ from the manifest (empty when the findings match it)."""
    return [v for v in compare(findings, manifest) if not v.ok]
