"""emit(): assess when needed, write JSON/CSV/HTML, print the tables, exit 1 at --fail-on; bad
options are one-line usage errors before any work."""

from __future__ import annotations

import io
import json
import os

import pytest
from rich.console import Console

from scanner.errors import UsageError
from scanner.models import Finding, ScanInfo, ScanResult
from scanner.report.html import verify
from scanner.report.output import OutputOptions, emit
from scanner.status import ExitStatus
from tests.report.sample import capture_result, sample_result


def consoles() -> tuple[Console, io.StringIO, Console, io.StringIO]:
    out_buf, err_buf = io.StringIO(), io.StringIO()
    return (Console(file=out_buf, width=400, color_system=None), out_buf,
            Console(file=err_buf, width=200, color_system=None), err_buf)


def test_writes_every_output_and_prints_the_tables(tmp_path):
    out, out_buf, err, _ = consoles()
    options = OutputOptions(json_path=str(tmp_path / "r.json"), csv_path=str(tmp_path / "r.csv"),
                            html_path=str(tmp_path / "r.html"), lang="zh", premises="某门店", operator="王")
    assert emit(sample_result(), options, out, err) == ExitStatus.OK  # no --fail-on: never 1
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [f["severity"] for f in doc["findings"]] == ["high", "medium", "low"]  # the caller's findings kept
    raw = (tmp_path / "r.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"198.51.100.44" in raw  # BOM: spreadsheets read UTF-8
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "某门店" in html and verify(html)[0] == verify(html)[1]
    printed = out_buf.getvalue()
    assert "198.51.100.44" in printed and "storeface-pic.oss-cn-hangzhou.aliyuncs.com" in printed  # devices, clouds
    assert "发现的问题" in printed and "PIPL Art. 26, Art. 28; CRPL 29 para 1" in printed  # findings, short legal


@pytest.mark.parametrize("fail_on,expected", [("high", 1), ("medium", 1), ("low", 1), (None, 0)])
def test_fail_on_threshold(fail_on, expected):
    out, _, err, err_buf = consoles()
    result = sample_result()
    result.findings = [f for f in result.findings if f.severity == "low"]
    status = emit(result, OutputOptions(fail_on=fail_on), out, err)
    assert status == (ExitStatus.FINDINGS if fail_on == "low" else ExitStatus.OK)
    result = sample_result()
    status = emit(result, OutputOptions(fail_on=fail_on), out, err)
    assert status == expected
    if expected:
        assert "at or above --fail-on" in err_buf.getvalue()


def test_info_findings_never_fail_and_unknown_severities_from_files_are_ignored():
    out, _, err, _ = consoles()
    result = ScanResult(scan=ScanInfo(targets=["x"], started=0.0),
                        findings=[Finding("198.51.100.9", "info", "note", "fyi"),
                                  Finding("198.51.100.9", "urgent", "odd", "from a hand-edited file")])
    assert emit(result, OutputOptions(fail_on="low", assess=False), out, err) == ExitStatus.OK


def test_assesses_unless_the_caller_set_findings():
    out, _, err, _ = consoles()
    result = capture_result()
    assessed = list(result.findings)
    assert any(f.severity == "high" for f in assessed)
    result.findings = []
    assert emit(result, OutputOptions(fail_on="high"), out, err) == ExitStatus.FINDINGS
    assert [(f.device_ip, f.kind) for f in result.findings] == [(f.device_ip, f.kind) for f in assessed]
    mine = [Finding("198.51.100.44", "low", "note", "set by the caller")]
    result.findings = list(mine)
    emit(result, OutputOptions(), out, err)
    assert result.findings == mine
    emit(result, OutputOptions(assess=True, jurisdiction="eu"), out, err)
    assert result.findings != mine and all(ref["jurisdiction"] == "eu" for f in result.findings for ref in f.legal)


def test_json_to_stdout_replaces_the_tables():
    out, out_buf, err, _ = consoles()
    emit(sample_result(), OutputOptions(json_path="-"), out, err)
    doc = json.loads(out_buf.getvalue())
    assert len(doc["devices"]) == 3
    out, out_buf, err, _ = consoles()
    emit(sample_result(), OutputOptions(csv_path="-"), out, err)
    text = out_buf.getvalue()
    assert text.startswith("record,device_ip,") and "\ufeff" not in text


@pytest.mark.parametrize("options,message", [
    (OutputOptions(lang="fr"), "--lang must be one of en, zh, not 'fr'"),
    (OutputOptions(fail_on="urgent"), "--fail-on must be one of high, medium, low, not 'urgent'"),
    (OutputOptions(fail_on="info"), "--fail-on must be one of high, medium, low"),
    (OutputOptions(jurisdiction="mars"), "--jurisdiction must be one of"),
    (OutputOptions(json_path="-", csv_path="-"), "only one output can go to stdout"),
    (OutputOptions(json_path="/nonexistent-dir/r.json"), "cannot write --json /nonexistent-dir/r.json"),
    (OutputOptions(html_path="/"), "cannot write --html /: it is a directory"),
    (OutputOptions(csv_path=""), "--csv needs a file path"),
])
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError) as caught:
        options.check()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_same_file_twice_and_a_file_as_directory(tmp_path):
    target = tmp_path / "x"
    with pytest.raises(UsageError, match="--csv and --html name the same file"):
        OutputOptions(csv_path=str(target), html_path=str(tmp_path / "." / "x")).check()
    target.write_text("a file")
    with pytest.raises(UsageError, match="no directory"):
        OutputOptions(json_path=str(target / "r.json")).check()


def test_a_write_that_fails_late_is_a_usage_error(tmp_path):
    out, _, err, _ = consoles()
    # /proc/version: the check may pass (root may write anywhere) but the kernel refuses the write
    with pytest.raises(UsageError, match="cannot write --json /proc/version"):
        emit(sample_result(), OutputOptions(json_path="/proc/version"), out, err)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UsageError, match="permission denied"):
            OutputOptions(html_path=str(locked / "r.html")).check()
