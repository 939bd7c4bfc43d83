"""The rich terminal table of a scan result."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from scanner.models import Device, ScanResult


def _face(device: Device) -> str:
    if device.face_capable is True:
        return "[bold red]yes[/]"
    if device.face_capable is False:
        return "no"
    return "[dim]unknown[/]"


def print_devices(console: Console, result: ScanResult) -> None:
    scan = result.scan
    duration = (scan.finished or scan.started) - scan.started
    table = Table(title=f"camsweep: {len(result.devices)} devices on {', '.join(scan.targets)} ({duration:.1f}s)")
    for column in ("ip", "mac", "vendor", "model", "firmware", "type", "camera", "face", "evidence"):
        table.add_column(column, overflow="fold")
    cameras = 0
    for d in result.devices:
        cameras += d.is_camera
        sources = sorted({e.source.split(":", 1)[0] for e in d.evidence})
        table.add_row(d.ip, d.mac or "", d.vendor or "", d.model or "", d.firmware or "", d.device_type or "",
                      "yes" if d.is_camera else "", _face(d), ", ".join(sources))
    console.print(table)
    face = sum(1 for d in result.devices if d.face_capable)
    console.print(f"{cameras} cameras, {face} can capture faces" + (" (interrupted: partial)" if scan.interrupted
                                                                    else ""))
