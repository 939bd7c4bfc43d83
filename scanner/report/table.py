"""The rich terminal tables of a result: devices, cloud destinations, findings.

Device-provided strings are cleaned (control characters such as ESC shown as ``\\x1b``, so a
hostile name cannot drive the terminal) and markup-escaped (``[bold]`` in a name is text).
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.models import SEVERITIES, CloudLink, Device, Finding, ScanResult
from scanner.report.fmt import clean
from scanner.report.i18n import severity_label, text


def _t(value: object) -> str:
    """A device- or file-provided value as safe rich markup text."""
    return "" if value is None else escape(clean(value))


def _face(device: Device) -> str:
    if device.face_capable is True:
        return "[bold red]yes[/]"
    if device.face_capable is False:
        return "no"
    return "[dim]unknown[/]"


def print_devices(console: Console, result: ScanResult) -> None:
    scan = result.scan
    duration = (scan.finished or scan.started) - scan.started
    table = Table(title=f"camsweep: {len(result.devices)} devices on {_t(', '.join(scan.targets))} ({duration:.1f}s)")
    for column in ("ip", "mac", "vendor", "model", "firmware", "type", "camera", "face", "evidence"):
        table.add_column(column, overflow="fold")
    cameras = 0
    for d in result.devices:
        cameras += d.is_camera
        sources = sorted({e.source.split(":", 1)[0] for e in d.evidence})
        table.add_row(_t(d.ip), _t(d.mac), _t(d.vendor), _t(d.model), _t(d.firmware), _t(d.device_type),
                      "yes" if d.is_camera else "", _face(d), _t(", ".join(sources)))
    console.print(table)
    face = sum(1 for d in result.devices if d.face_capable)
    console.print(f"{cameras} cameras, {face} can capture faces" + (" (interrupted: partial)" if scan.interrupted
                                                                    else ""))


def print_clouds(console: Console, result: ScanResult) -> None:
    """One row per (device, destination) observed: who sends what to which cloud."""
    table = Table(title="cloud destinations")
    for column in ("device", "mac", "vendor / model", "destination", "operator", "category", "behaviour",
                   "pictures", "up", "down"):
        table.add_column(column, overflow="fold")
    rows = 0
    for d in result.devices:
        for c in sorted(d.clouds, key=lambda c: -c.bytes_up):
            dest = _destination(c)
            # configured (self-audit) and discovery (e.g. SADP's platform flag) entries have no traffic
            behaviour = _t(c.behaviour) if c.source == "observed" else f"({_t(c.source)})"
            if behaviour == "snapshot-upload":
                behaviour = "[bold red]snapshot-upload[/]"
            table.add_row(_t(d.ip), _t(d.mac), _t(" ".join(x for x in (d.vendor, d.model) if x)), _t(dest),
                          _t(c.operator or "?"), _t(c.category), behaviour, str(c.uploads or ""), _bytes(c.bytes_up),
                          _bytes(c.bytes_down))
            rows += 1
    console.print(table)
    uploaders = {d.ip for d in result.devices for c in d.clouds if c.behaviour == "snapshot-upload"}
    console.print(f"{rows} destinations; {len(uploaders)} devices sending picture-sized upload bursts")


def _destination(link: CloudLink) -> str:
    """host:port, address:port, or what is known of a destination no name or address is known for."""
    where = link.host or link.ip
    if where:
        return f"{where}:{link.port}" if link.port else where
    return f"port {link.port}" if link.port else "(address not known)"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _short_law(law: str) -> str:
    """``PIPL`` for "Personal Information Protection Law of the PRC (PIPL, in force ...)"; else the name."""
    match = re.search(r"\(([A-Z][A-Z0-9-]{1,9})[,)]", law)
    if match:
        return match.group(1)
    name = law.split(" (", 1)[0].strip()
    return name if len(name) <= 40 else name[:39] + "…"


def short_legal(finding: Finding) -> str:
    """Legal references grouped by law, for a terminal cell: ``PIPL Art. 26, Art. 28; CRPL Art. 29``."""
    grouped: dict[str, list[str]] = {}
    refs: list[object] = list(finding.legal)  # a result file read from disk may hold anything here
    for ref in refs:
        if isinstance(ref, dict):
            law = _short_law(str(ref.get("law") or "").strip())
            grouped.setdefault(law, []).append(str(ref.get("article") or "").strip())
    return "; ".join(f"{law} {', '.join(a for a in articles if a)}".strip() for law, articles in grouped.items())


def print_findings(console: Console, findings: list[Finding], lang: str = "en") -> None:
    """One row per finding, worst first, with its legal references grouped by law."""
    if not findings:
        console.print(text(lang, "no_findings"))
        return
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    table = Table(title=text(lang, "findings"))
    for key in ("severity", "device", "title", "kind", "confidence", "legal"):
        table.add_column(text(lang, key), overflow="fold")
    for f in sorted(findings, key=lambda f: (rank.get(f.severity, len(rank)), str(f.device_ip))):
        style = _SEVERITY_STYLE.get(f.severity, "")
        severity = _t(severity_label(lang, f.severity))
        table.add_row(f"[{style}]{severity}[/]" if style else severity, _t(f.device_ip), _t(f.title), _t(f.kind),
                      f"{f.confidence:.2f}" if isinstance(f.confidence, int | float) else _t(f.confidence),
                      _t(short_legal(f)))
    console.print(table)
    counts = ", ".join(f"{sum(1 for f in findings if f.severity == s)} {severity_label(lang, s)}" for s in SEVERITIES
                       if any(f.severity == s for f in findings))
    console.print(f"{len(findings)} {text(lang, 'findings').lower()}: {counts}")
