"""``camsweep lab pcap``: record the lab's traffic while visitors walk by and someone watches.

netns mode: the capture runs in the inspector namespace on ``mirror0`` (the switch's mirror
port), exactly where an inspector's laptop would listen. loopback mode: it runs here on ``lo``
with a BPF filter for the lab's 127.77.N.0/24 and 127.78.N.0/24 (needs root, like any live
capture). One packet socket with a large receive buffer writes the file as frames arrive, so memory
stays flat; frames the host itself sent are skipped, so ``lo`` does not record every packet twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from scanner.errors import PrivilegeError, UsageError
from scanner.lab import lab, topology

_CAPTURE = r"""
import sys
from scanner.passive.live import record_pcap
print(record_pcap(sys.argv[2], float(sys.argv[3]), sys.argv[1], sys.argv[4]))
"""


def record(lab_id: int, output: Path, seconds: float, *, walkby_every: float = 8.0,
           watch: list[str] | None = None, watch_seconds: float = 10.0) -> int:
    """Capture ``seconds`` of lab traffic into ``output``; returns the packet count."""
    state = lab.require_state(lab_id)
    if seconds <= 0:
        raise UsageError("--seconds must be positive")
    if not topology.have_netns_privileges():
        raise PrivilegeError("capturing lab traffic needs root (a live capture), in either lab mode")
    output = output.resolve()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.touch()
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if state.mode == "netns":
        assert state.inspector_namespace
        cmd = ["ip", "netns", "exec", state.inspector_namespace, sys.executable, "-c", _CAPTURE,
               str(output), "mirror0", str(seconds), ""]
    else:
        bpf = f"net 127.77.{lab_id}.0/24 or net 127.78.{lab_id}.0/24"
        cmd = [sys.executable, "-c", _CAPTURE, str(output), "lo", str(seconds), bpf]
    capture = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(min(1.5, seconds / 4))  # let the capture start before the activity
        started = time.monotonic()
        next_walkby = started
        watched = False
        while capture.poll() is None and time.monotonic() - started < seconds:
            now = time.monotonic()
            if walkby_every > 0 and now >= next_walkby:
                lab.walkby(lab_id)
                next_walkby = now + walkby_every
            if watch and not watched and now - started >= 1.0:
                for device in watch:
                    lab.watch(lab_id, device, watch_seconds)
                watched = True
            time.sleep(0.2)
        out, err = capture.communicate(timeout=seconds + 30)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    if capture.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {capture.returncode}"
        raise UsageError(f"the capture failed: {last}")
    return int(out.strip() or 0)
