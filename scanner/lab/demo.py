"""``camsweep demo``: the whole job on the built-in lab, start to finish.

1. The lab comes up (netns as root, loopback otherwise).
2. ``camsweep scan --listen`` runs where an inspector's laptop sits -- in the inspector namespace,
   listening on the switch's mirror port (netns), or here on ``lo`` (loopback as root) -- while
   simulated visitors walk past the face-capture cameras, which upload their pictures.
3. The result is assessed: findings with severity, evidence and legal references are printed and
   written, with the device cards and upload timelines, to a self-contained HTML report.
4. What the fake clouds themselves counted is printed beside it (the ground truth), and the lab
   goes down -- also when something fails.

Without root there is no live capture (loopback mode, scan only): the demo says so and shows the
clouds' counters instead of observed uploads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from scanner.errors import LabError
from scanner.lab import lab
from scanner.models import ScanResult
from scanner.report.output import OutputOptions, emit

LISTEN_SECONDS = 14.0
WALKBYS_AT = (2.5, 7.5)  # seconds after the scan starts: both inside the listening window
SCAN_TIMEOUT = 120.0


def _scan_argv(manifest: dict[str, object], json_path: Path, listen: bool) -> list[str]:
    argv = [sys.executable, "-m", "scanner", "scan", str(manifest["subnet"]), "--json", str(json_path)]
    if manifest["mode"] == "netns":
        inspector = manifest["inspector"]
        assert isinstance(inspector, dict)
        argv += ["--iface", str(inspector["iface"])]
        if listen:
            argv += ["--listen", str(LISTEN_SECONDS), "--listen-iface", str(inspector["mirror_iface"])]
        return ["ip", "netns", "exec", str(inspector["namespace"]), *argv]
    offset = int(str(manifest["port_offset"]))
    if offset:
        argv += ["--port-map", ",".join(f"{p}={p + offset}" for p in (80, 443, 554, 135, 445, 631))]
    if listen:
        argv += ["--listen", str(LISTEN_SECONDS), "--listen-iface", "lo"]
    return argv


def _scan_with_visitors(lab_id: int, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the scan and let visitors walk by while it listens."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        for at in WALKBYS_AT:
            while proc.poll() is None and time.monotonic() - started < at:
                time.sleep(0.1)
            if proc.poll() is None:
                lab.walkby(lab_id)
        out, err = proc.communicate(timeout=SCAN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run(out: Console, err: Console, *, lab_id: int, mode: str, seed: int, json_out: Path | None,
        html_out: Path, lang: str = "en", jurisdiction: str = "cn") -> int:
    started = time.monotonic()
    options = OutputOptions(json_path=str(json_out) if json_out else None, html_path=str(html_out), lang=lang,
                            jurisdiction=jurisdiction, premises="camsweep lab: an emulated store network",
                            operator="camsweep demo", case_id=f"demo-{seed}")
    options.check()  # bad paths or values before the lab comes up
    manifest = lab.up(lab_id, mode, seed, visitor_interval=0)
    try:
        listen = manifest["mode"] == "netns" or os.geteuid() == 0
        where = "to the switch's mirror port" if manifest["mode"] == "netns" else "on lo"
        out.print(f"lab {lab_id} up ({manifest['mode']} mode): a store network {manifest['subnet']} with "
                  f"{len(manifest['devices'])} devices. Scanning it as an inspector would"
                  + (f", listening {where} for {LISTEN_SECONDS:.0f}s while visitors walk by…"
                     if listen else " (no live capture without root: scan only)…"))
        before = lab.node_command(lab_id, "clouds", {"cmd": "clouds"}).get("clouds", {})
        json_path = Path(lab.statedir(lab_id)) / "demo-scan.json"
        if listen:
            proc = _scan_with_visitors(lab_id, _scan_argv(manifest, json_path, listen=True))
        else:
            proc = subprocess.run(_scan_argv(manifest, json_path, listen=False), capture_output=True, text=True,
                                  timeout=SCAN_TIMEOUT)
            lab.walkby(lab_id)
            time.sleep(4)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise LabError(f"the scan failed: {last}")
        result = ScanResult.from_dict(json.loads(json_path.read_text()))
        emit(result, options, out, err)
        after = lab.node_command(lab_id, "clouds", {"cmd": "clouds"}).get("clouds", {})
        received = {host: int(stats.get("pictures", 0)) - int(before.get(host, {}).get("pictures", 0))
                    for host, stats in after.items()}
        out.print("ground truth, as the lab's fake clouds counted the pictures they received meanwhile:")
        for host, count in sorted(received.items()):
            if count > 0:
                out.print(f"  {count:3d} pictures -> {host}")
    finally:
        lab.down(lab_id)
    high = sum(1 for f in result.findings if f.severity == "high")
    out.print(f"{len(result.findings)} findings ({high} high); HTML report: {html_out}")
    out.print(f"demo done in {time.monotonic() - started:.1f}s; the lab is down")
    return 0
