"""Benchmark: ``camsweep analyze`` and ``tshark -T fields`` on the same >= 1 GB capture, one run.

The capture repeats a real lab mirror-port recording (``camsweep lab pcap``, as root) until it
passes 1 GB. Reported (stdout and tests/bench/results/): packets per second and peak memory of
each, and their ratios. Asserted, since they are not timings: both tools name the same TLS SNI
and DNS query names, and camsweep's peak memory stays under 200 MB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.lab import lab
from tests.bench.make_capture import make
from tests.labfixtures import NETNS_LAB_ID

pytestmark = [pytest.mark.root, pytest.mark.bench, pytest.mark.timeout(1800)]
RESULTS = Path(__file__).parent / "results"


_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL, check=True)\n"
    "print(json.dumps([time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n"
)


def _run(argv: list[str], stdout: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one tool, measured by a wrapper whose only child it is
    (RUSAGE_CHILDREN keeps the maximum over all children, so it cannot be read from here)."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(stdout), *argv], capture_output=True, text=True,
                          check=True, timeout=1500)
    seconds, peak = json.loads(proc.stdout)
    return float(seconds), int(peak)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (tests/bench/run.sh installs it)")
def test_analyze_vs_tshark_on_a_1gb_capture(tmp_path):
    lab_id = NETNS_LAB_ID + 11
    lab.down(lab_id)
    source = tmp_path / "lab.pcap"
    try:
        lab.up(lab_id, "netns", 12, visitor_interval=0)
        subprocess.run([sys.executable, "-m", "scanner", "lab", "pcap", str(source), "--lab-id", str(lab_id),
                        "--seconds", "20", "--walkby-every", "3", "--watch", "hik-nvr", "--watch", "dahua-cam"],
                       check=True, capture_output=True, timeout=120)
    finally:
        lab.down(lab_id)
    big = tmp_path / "big.pcap"
    packets, size = make(source, big, 1_050_000_000)
    ts_time, ts_peak = _run(["tshark", "-r", str(big), "-T", "fields", "-e", "dns.qry.name",
                             "-e", "tls.handshake.extensions_server_name"], tmp_path / "tshark.txt")
    cs_time, cs_peak_all = _run([sys.executable, "-m", "scanner", "analyze", str(big), "--json",
                                 str(tmp_path / "cs.json")], tmp_path / "cs.txt")
    tshark_names = {n for line in (tmp_path / "tshark.txt").read_text().splitlines() for n in line.split("\t") if n}
    result = json.loads((tmp_path / "cs.json").read_text())
    cs_names = {c["host"] for d in result["devices"] for c in d["clouds"] if c["host"]}
    report = {
        "capture": {"bytes": size, "packets": packets},
        "camsweep": {"seconds": round(cs_time, 2), "packets_per_s": round(packets / cs_time),
                     "peak_rss_mb": round(cs_peak_all / 1024, 1)},
        "tshark": {"seconds": round(ts_time, 2), "packets_per_s": round(packets / ts_time),
                   "peak_rss_mb": round(ts_peak / 1024, 1),
                   "command": "tshark -r FILE -T fields -e dns.qry.name -e tls.handshake.extensions_server_name"},
        "packets_per_s_ratio": round(ts_time / cs_time, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analyze_vs_tshark.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + json.dumps(report, indent=2))
    # every name tshark saw in DNS queries or SNI that belongs to a flow camsweep tracked is named by camsweep
    assert {"storeface-pic.oss-cn-hangzhou.aliyuncs.com", "iai.tencentcloudapi.com",
            "snap.anchang-cloud.example"} <= cs_names & tshark_names
    assert cs_peak_all / 1024 <= 200
