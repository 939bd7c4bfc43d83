"""camsweep analyze on real lab captures: every uploading device gets its destinations and
categories, no other device is accused, the private cloud is flagged by behaviour alone, and the
picture estimate is close to what the fake clouds actually received."""

from __future__ import annotations

import json

import pytest

from scanner.lab import lab
from scanner.passive.analyze import analyze_captures
from tests.labfixtures import NETNS_LAB_ID, camsweep
from tests.passive.test_fastpath import table_state, verdicts

pytestmark = pytest.mark.root


def test_analyze_lab_capture_names_uploaders_and_their_clouds(netns_lab, tmp_path):
    pcap = tmp_path / "store.pcap"
    before = lab.node_command(NETNS_LAB_ID, "clouds", {"cmd": "clouds"})["clouds"]
    camsweep("lab", "pcap", str(pcap), "--lab-id", str(NETNS_LAB_ID), "--seconds", "14", "--walkby-every", "4",
             "--watch", "dahua-cam", timeout=120)
    after = lab.node_command(NETNS_LAB_ID, "clouds", {"cmd": "clouds"})["clouds"]
    proc = camsweep("analyze", str(pcap), "--json", "-")
    result = json.loads(proc.stdout)
    # what the CLI ran (the bulk path) leaves exactly the table the frame-by-frame path leaves
    frames_table, frames_summary = analyze_captures([pcap], bulk=False)
    bulk_table, bulk_summary = analyze_captures([pcap])
    assert table_state(bulk_table, bulk_summary) == table_state(frames_table, frames_summary)
    assert verdicts(bulk_table) == verdicts(frames_table)
    assert bulk_summary.client_hellos and bulk_summary.http_heads  # a capture with payloads, not headers only
    by_ip = {d["ip"]: d for d in result["devices"]}
    uploaders = {d["ip"] for d in result["devices"] for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    expected = {d["ip"]: d for d in netns_lab["devices"] if d["expected"]["uploads_pictures"]}
    assert uploaders == set(expected)  # every uploader, and nobody else (staff PC, POS, video-only cameras)
    for ip, truth in expected.items():
        for cloud in (c for c in truth["clouds"] if c["purpose"] == "snapshots"):
            got = [c for c in by_ip[ip]["clouds"] if c["ip"] == cloud["ip"] and c["port"] == cloud["port"]]
            assert got, (truth["name"], cloud["host"])
            link = got[0]
            assert link["behaviour"] == "snapshot-upload"
            assert link["host"] == cloud["host"]
            assert link["category"] == cloud["category"]  # "unknown" for the private cloud: behaviour alone
            received = after[cloud["host"]]["pictures"] - before.get(cloud["host"], {}).get("pictures", 0)
            assert received > 0
            # pictures in flight when the capture started or stopped may be cut off: allow a margin
            assert abs(link["uploads"] - received) <= max(2, received // 4), (truth["name"], link["uploads"], received)
    video = [c for c in by_ip[next(d["ip"] for d in netns_lab["devices"] if d["name"] == "dahua-cam")]["clouds"]
             if c["port"] == 8800]
    assert video and video[0]["behaviour"] == "video-relay"


def test_hostile_capture_is_counted_not_fatal(tmp_path):
    from scapy.all import IP, TCP, Ether, wrpcap

    good = tmp_path / "good.pcap"
    wrpcap(str(good), [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="198.51.100.9",
                       dst="203.0.113.9") / TCP(sport=40000, dport=443, flags="S")] * 3)
    data = good.read_bytes()
    broken = tmp_path / "broken.pcap"
    # a record header claiming a 1 GB packet, then garbage, then the file cut mid-record
    broken.write_bytes(data[:24] + b"\x00" * 8 + b"\x00\x00\x00\x40" * 2 + b"\xff" * 100 + data[24:-10])
    proc = camsweep("analyze", str(broken), "--json", "-")
    assert json.loads(proc.stdout)["scan"]["notes"]
    assert "skipped" in proc.stderr
    bad = camsweep("analyze", str(tmp_path / "missing.pcap"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
