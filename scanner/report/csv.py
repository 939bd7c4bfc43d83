"""The result as one flat CSV table an inspector can open in a spreadsheet (``--csv PATH|-``).

Shape: one header row (``CSV_COLUMNS``), then for each device, in the result's order:

* one ``cloud`` row per cloud destination of the device (observed, configured or discovered),
* one ``finding`` row per finding about the device,
* a single ``device`` row when the device has neither (so every device found is listed).

Every row repeats the device's identity (ip, mac, vendor, model, ...), so the sheet can be
filtered or sorted by any column. Cloud columns are empty on finding rows and vice versa.
Findings about an address that is not among the devices come last. Times are ISO 8601 UTC;
byte and picture counts are plain integers; ``face_capable`` is yes, no or unknown; ``legal``
lists ``law article`` references separated by ``; ``.

Cells are formula-injection safe: any text cell that starts with ``= + - @``, a tab or a
carriage return (or their full-width forms) is prefixed with ``'`` so no spreadsheet evaluates
what a device put in its name (OWASP "CSV Injection"). Files are written as UTF-8 with a BOM so
spreadsheet programs read Chinese text correctly; ``-`` (stdout) gets no BOM.
"""

from __future__ import annotations

import csv
import io
from typing import Any, TextIO

from scanner.models import CloudLink, Device, Finding, ScanResult
from scanner.report.fmt import clean, iso_utc, number

CSV_COLUMNS = (
    "record", "device_ip", "device_mac", "vendor", "brand", "model", "firmware", "serial", "device_type",
    "is_camera", "face_capable",
    "destination_host", "destination_ip", "destination_port", "protocol", "cloud_operator", "cloud_category",
    "cloud_source", "behaviour", "pictures", "bytes_up", "bytes_down", "first_seen", "last_seen",
    "severity", "finding_kind", "finding_title", "confidence", "legal",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

Cell = str | int | float


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will show as text, never evaluate as a formula."""
    text = clean(cell)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "unknown"
    return "yes" if value else "no"


def _count(value: object) -> Cell:
    amount = number(value)
    if amount is None:
        return ""
    return int(amount) if amount == int(amount) else amount


def _device_cells(device: Device | None, ip: str) -> dict[str, Cell]:
    if device is None:
        return {"device_ip": ip}
    return {
        "device_ip": device.ip, "device_mac": device.mac or "", "vendor": device.vendor or "",
        "brand": device.brand or "", "model": device.model or "", "firmware": device.firmware or "",
        "serial": device.serial or "", "device_type": device.device_type or "",
        "is_camera": _yes_no(bool(device.is_camera)), "face_capable": _yes_no(device.face_capable),
    }


def _cloud_cells(link: CloudLink) -> dict[str, Cell]:
    return {
        "destination_host": link.host or "", "destination_ip": link.ip or "", "destination_port": _count(link.port),
        "protocol": link.protocol or "", "cloud_operator": link.operator or "", "cloud_category": link.category or "",
        "cloud_source": link.source or "", "behaviour": link.behaviour or "", "pictures": _count(link.uploads),
        "bytes_up": _count(link.bytes_up), "bytes_down": _count(link.bytes_down),
        "first_seen": iso_utc(link.first_seen), "last_seen": iso_utc(link.last_seen),
    }


def legal_text(finding: Finding) -> str:
    """``PIPL Art. 26; CRPL Art. 29`` from a finding's legal references (``art.`` added to a bare number)."""
    parts = []
    refs: list[Any] = list(finding.legal)  # a result file read from disk may hold anything here
    for ref in refs:
        if isinstance(ref, dict):
            parts.append(legal_reference(ref))
    return "; ".join(p for p in parts if p)


def legal_reference(ref: dict[Any, Any]) -> str:
    """``law article`` of one legal reference."""
    law = str(ref.get("law") or "").strip()
    article = str(ref.get("article") or "").strip()
    if article[:1].isdigit():
        article = f"art. {article}"
    return " ".join(x for x in (law, article) if x)


def _finding_cells(finding: Finding) -> dict[str, Cell]:
    return {"severity": finding.severity, "finding_kind": finding.kind, "finding_title": finding.title,
            "confidence": _count(finding.confidence), "legal": legal_text(finding)}


def rows(result: ScanResult) -> list[dict[str, Cell]]:
    """The CSV records (before neutralising), in the documented order."""
    findings_by_ip: dict[str, list[Finding]] = {}
    for finding in result.findings:
        findings_by_ip.setdefault(str(finding.device_ip), []).append(finding)
    records: list[dict[str, Cell]] = []
    for device in result.devices:
        ident = _device_cells(device, device.ip)
        for link in device.clouds:
            records.append({"record": "cloud", **ident, **_cloud_cells(link)})
        own = findings_by_ip.pop(str(device.ip), [])
        for finding in own:
            records.append({"record": "finding", **ident, **_finding_cells(finding)})
        if not device.clouds and not own:
            records.append({"record": "device", **ident})
    for ip, findings in findings_by_ip.items():
        for finding in findings:
            records.append({"record": "finding", **_device_cells(None, ip), **_finding_cells(finding)})
    return records


def write_csv(result: ScanResult, stream: TextIO) -> int:
    """Write the header and every record to ``stream``; returns the number of records."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    records = rows(result)
    for record in records:
        writer.writerow([_cell(record.get(column, "")) for column in CSV_COLUMNS])
    return len(records)


def _cell(value: Cell) -> Cell:
    return neutralise(value) if isinstance(value, str) else value


def csv_text(result: ScanResult) -> str:
    buffer = io.StringIO()
    write_csv(result, buffer)
    return buffer.getvalue()
