"""``camsweep demo``: the whole job on the built-in lab, start to finish.

Brings the lab up (netns as root, loopback otherwise), runs ``camsweep scan`` from where an
inspector's laptop sits (the inspector namespace, or here with the lab's port map in loopback),
lets a simulated visitor walk past the face-capture cameras and reports their uploads as the
fake clouds counted them, then takes the lab down -- also when something fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from scanner.errors import LabError
from scanner.lab import lab
from scanner.models import ScanResult
from scanner.report.table import print_devices


def _scan_argv(manifest: dict[str, object], json_path: Path) -> list[str]:
    argv = [sys.executable, "-m", "scanner", "scan", str(manifest["subnet"]), "--json", str(json_path)]
    if manifest["mode"] == "netns":
        inspector = manifest["inspector"]
        assert isinstance(inspector, dict)
        return ["ip", "netns", "exec", str(inspector["namespace"]), *argv, "--iface", str(inspector["iface"])]
    offset = int(str(manifest["port_offset"]))
    if offset:
        argv += ["--port-map", ",".join(f"{p}={p + offset}" for p in (80, 443, 554, 135, 445, 631))]
    return argv


def run(out: Console, err: Console, *, lab_id: int, mode: str, seed: int, json_out: Path | None) -> int:
    started = time.monotonic()
    manifest = lab.up(lab_id, mode, seed, visitor_interval=0)
    try:
        out.print(f"lab {lab_id} up ({manifest['mode']} mode): a store network {manifest['subnet']} with "
                  f"{len(manifest['devices'])} devices; scanning it as an inspector would…")
        json_path = Path(lab.statedir(lab_id)) / "demo-scan.json"
        proc = subprocess.run(_scan_argv(manifest, json_path), capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise LabError(f"the scan failed: {last}")
        result = ScanResult.from_dict(json.loads(json_path.read_text()))
        print_devices(out, result)
        if json_out is not None:
            json_out.write_text(json_path.read_text())
        fired = lab.walkby(lab_id)
        out.print(f"a visitor walks past {len(fired)} face-capture devices; their uploads, as the clouds saw them:")
        time.sleep(4)
        counted = lab.node_command(lab_id, "clouds", {"cmd": "clouds"}).get("clouds", {})
        for host, stats in sorted(counted.items()):
            if stats.get("pictures"):
                out.print(f"  {stats['pictures']:3d} pictures -> {host}")
    finally:
        lab.down(lab_id)
    out.print(f"demo done in {time.monotonic() - started:.1f}s; the lab is down "
              "(passive upload detection and findings come with issues 4 and 5)")
    return 0
