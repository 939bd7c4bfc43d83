"""The report options on the real CLI (scan, analyze, listen): files written, --fail-on exit codes
for scheduled jobs, one-line errors (exit 2) before any packet is sent or any capture is read."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scanner.report.html import verify
from tests.labfixtures import camsweep
from tests.report.sample import FIXTURES

CAPTURE = str(FIXTURES / "lab72-walkby-watch-120s.pcap")


def test_analyze_writes_json_csv_and_html_and_prints_findings(tmp_path):
    paths = {kind: tmp_path / f"store.{kind}" for kind in ("json", "csv", "html")}
    proc = camsweep("analyze", CAPTURE, "--json", str(paths["json"]), "--csv", str(paths["csv"]),
                    "--html", str(paths["html"]), "--lang", "zh", "--premises", "禹州某售楼处",
                    "--operator", "Inspector Li", "--case-id", "YZ-2022-9")
    doc = json.loads(paths["json"].read_text())
    uploaders = {d["ip"] for d in doc["devices"] for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    flagged = {f["device_ip"] for f in doc["findings"]}
    assert len(uploaders) == 4 and uploaders <= flagged  # the assessment ran on what analyze saw
    assert all(f["legal"] for f in doc["findings"] if f["device_ip"] in uploaders)
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8-sig"))))
    assert {r["device_ip"] for r in rows if r["record"] == "finding"} == flagged
    html = paths["html"].read_text(encoding="utf-8")
    assert "禹州某售楼处" in html and "YZ-2022-9" in html and 'lang="zh-CN"' in html
    assert verify(html)[0] == verify(html)[1]
    assert "发现的问题" in proc.stdout and "cloud destinations" in proc.stdout


def test_fail_on_gives_exit_1_at_or_above_the_level():
    # without a scan the uploaders are unidentified devices: medium findings, none high
    assert camsweep("analyze", CAPTURE, "--fail-on", "high").returncode == 0
    proc = camsweep("analyze", CAPTURE, "--fail-on", "medium", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "at or above --fail-on medium" in proc.stderr and "Traceback" not in proc.stderr
    assert camsweep("analyze", CAPTURE, "--fail-on", "low", "--json", "-", check=False).returncode == 1


def test_json_or_csv_on_stdout():
    doc = json.loads(camsweep("analyze", CAPTURE, "--json", "-").stdout)
    assert doc["findings"] and doc["schema_version"].startswith("1.")
    text = camsweep("analyze", CAPTURE, "--csv", "-").stdout
    assert text.startswith("record,device_ip,") and "snapshot-upload" in text


@pytest.mark.parametrize("command", [["scan", "127.0.0.1"], ["analyze", CAPTURE], ["listen", "--iface", "lo"]])
@pytest.mark.parametrize("args,message", [
    (["--lang", "fr"], "--lang must be one of en, zh, not 'fr'"),
    (["--fail-on", "urgent"], "--fail-on must be one of high, medium, low, not 'urgent'"),
    (["--jurisdiction", "mars"], "--jurisdiction must be one of"),
    (["--html", "/nonexistent-dir/r.html"], "cannot write --html /nonexistent-dir/r.html: no directory"),
    (["--json", "-", "--csv", "-"], "only one output can go to stdout"),
])
def test_bad_report_options_are_one_line_errors_before_any_work(command, args, message):
    # refused before the scan (of loopback, were it to start) or the capture (on lo) begins
    proc = camsweep(*command, *args, check=False, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stdout == ""
