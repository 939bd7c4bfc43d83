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


def print_clouds(console: Console, result: ScanResult) -> None:
    """One row per (device, destination) observed: who sends what to which cloud."""
    table = Table(title="cloud destinations observed")
    for column in ("device", "mac", "vendor / model", "destination", "operator", "category", "behaviour",
                   "pictures", "up", "down"):
        table.add_column(column, overflow="fold")
    rows = 0
    for d in result.devices:
        for c in sorted(d.clouds, key=lambda c: -c.bytes_up):
            dest = f"{c.host or c.ip}:{c.port}"
            behaviour = c.behaviour or ""
            if behaviour == "snapshot-upload":
                behaviour = "[bold red]snapshot-upload[/]"
            table.add_row(d.ip, d.mac or "", " ".join(x for x in (d.vendor, d.model) if x), dest, c.operator or "?",
                          c.category, behaviour, str(c.uploads or ""), _bytes(c.bytes_up), _bytes(c.bytes_down))
            rows += 1
    console.print(table)
    uploaders = {d.ip for d in result.devices for c in d.clouds if c.behaviour == "snapshot-upload"}
    console.print(f"{rows} destinations; {len(uploaders)} devices sending picture-sized upload bursts")


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
