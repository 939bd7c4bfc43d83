"""Benchmark: does ``camsweep listen`` keep up with a busy mirror port? (issue 4: 10,000 packets/s
without drops), side by side with ``tshark -i`` on the same port in the same run.

A sender inside one lab device's namespace paces UDP datagrams (1,000 bytes, bulk: the kernel
filter truncates them to headers) to a cloud address at a fixed rate, with one DNS query per 100
packets (the full-frame path). The listener runs in the inspector on ``mirror0``. Reported: packets
sent, packets the listener counted for that flow, and kernel drops, for camsweep and tshark, at
each rate. Asserted (counts, not timings): at 10,000 packets/s camsweep drops nothing and counts
every datagram of the flow.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID

pytestmark = [pytest.mark.root, pytest.mark.bench, pytest.mark.timeout(900)]
RESULTS = Path(__file__).parent / "results"
RATES = (10_000, 30_000, 60_000)
SECONDS = 8.0
SINK = ("203.0.113.200", 40000)  # routed to the fake internet; nothing needs to answer

_SENDER = """
import socket, sys, time
rate, seconds, host, port, resolver = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
bulk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = bytes.fromhex("abcd01000001000000000000") + b"\\x05bench\\x07example\\x00\\x00\\x01\\x00\\x01"
payload = bytes(1000)
sent = 0
start = time.monotonic()
total = int(rate * seconds)
while sent < total:
    due = start + sent / rate
    now = time.monotonic()
    if due > now:
        time.sleep(min(due - now, 0.001))
        continue
    bulk.sendto(payload, (host, port))
    sent += 1
    if sent % 100 == 0:
        dns.sendto(query, (resolver, 53))
print(sent, time.monotonic() - start)
"""


def _sender(namespace: str, rate: int, resolver: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c", _SENDER, str(rate),
                             str(SECONDS), SINK[0], str(SINK[1]), resolver],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _camsweep_at(lab_id: int, namespace: str, rate: int, resolver: str, out: Path) -> dict[str, float]:
    listener = subprocess.Popen(
        [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(lab_id), "--", sys.executable, "-m",
         "scanner", "listen", "--iface", "mirror0", "--seconds", str(SECONDS + 3), "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # the listener is up (it opens its sockets at start)
    sender = _sender(namespace, rate, resolver)
    sent_text, _ = sender.communicate(timeout=SECONDS * 4)
    _, errors = listener.communicate(timeout=120)
    assert listener.returncode == 0, errors
    sent, took = sent_text.split()
    kernel = re.search(r"kernel: (\d+) packets passed the filters, (\d+) dropped", errors)
    assert kernel, errors
    doc = json.loads(out.read_text())
    counted = sum(c["packets_up"] for d in doc["devices"] for c in d["clouds"]
                  if c["ip"] == SINK[0] and c["port"] == SINK[1])
    return {"rate": rate, "sent": int(sent), "send_seconds": round(float(took), 2), "counted": counted,
            "kernel_packets": int(kernel.group(1)), "kernel_drops": int(kernel.group(2))}


def _tshark_at(lab_id: int, namespace: str, rate: int, resolver: str) -> dict[str, float]:
    """tshark dissecting live on the same mirror port (the fields the issue's file benchmark asks for)."""
    inspector = lab.load_manifest(lab_id)["inspector"]["namespace"]
    capture = subprocess.Popen(
        ["ip", "netns", "exec", inspector, "tshark", "-i", "mirror0", "-a", f"duration:{SECONDS + 3:.0f}", "-n",
         "-T", "fields", "-e", "dns.qry.name", "-e", "tls.handshake.extensions_server_name"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    sender = _sender(namespace, rate, resolver)
    sent_text, _ = sender.communicate(timeout=SECONDS * 4)
    _, errors = capture.communicate(timeout=120)
    captured = re.search(r"(\d+) packets? captured", errors)
    dropped = re.search(r"(\d+) packets? dropped", errors)
    return {"rate": rate, "sent": int(sent_text.split()[0]),
            "captured": int(captured.group(1)) if captured else -1,
            "dropped": int(dropped.group(1)) if dropped else 0}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (tests/bench/run.sh installs it)")
def test_listen_keeps_up_with_a_busy_mirror_port(tmp_path):
    lab_id = NETNS_LAB_ID + 18
    lab.down(lab_id)
    rows: list[dict[str, object]] = []
    try:
        doc = lab.up(lab_id, "netns", 5, visitor_interval=0)
        sender_ns = next(d["namespace"] for d in doc["devices"] if d["name"] == "staff-pc")
        resolver = doc["resolver"]
        for rate in RATES:
            ours = _camsweep_at(lab_id, sender_ns, rate, resolver, tmp_path / f"listen-{rate}.json")
            theirs = _tshark_at(lab_id, sender_ns, rate, resolver)
            rows.append({"rate": rate, "camsweep": ours, "tshark": theirs})
            print(f"\n{rate} pkt/s for {SECONDS:.0f}s: camsweep counted {ours['counted']}/{ours['sent']}, "
                  f"kernel drops {ours['kernel_drops']}; tshark captured {theirs['captured']}, "
                  f"dropped {theirs['dropped']}")
    finally:
        lab.down(lab_id)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "listen_rate.json").write_text(json.dumps(rows, indent=2) + "\n")
    first = rows[0]["camsweep"]
    assert isinstance(first, dict)
    assert first["kernel_drops"] == 0
    assert first["counted"] == first["sent"]
