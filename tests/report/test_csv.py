"""The CSV export: the documented shape, and cells no spreadsheet will evaluate as formulas."""

from __future__ import annotations

import csv
import io

import pytest

from scanner.models import Finding, ScanInfo, ScanResult
from scanner.report.csv import CSV_COLUMNS, csv_text, neutralise
from tests.report.sample import HOSTILE_FORMULA, HOSTILE_NAME, PIPL, sample_result


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_cloud_and_finding_and_one_for_a_quiet_device():
    rows = parse(csv_text(sample_result()))
    assert list(rows[0]) == list(CSV_COLUMNS)
    shape = [(r["record"], r["device_ip"]) for r in rows]
    assert shape == [
        ("device", "198.51.100.30"),  # the printer: no clouds, no findings
        ("cloud", "198.51.100.44"), ("cloud", "198.51.100.44"), ("finding", "198.51.100.44"),
        ("cloud", "198.51.100.66"), ("finding", "198.51.100.66"),
        ("finding", "198.51.100.250"),  # a finding about an address that is not a device comes last
    ]
    upload = rows[1]
    assert upload["vendor"] == "Hikvision" and upload["face_capable"] == "yes" and upload["is_camera"] == "yes"
    assert upload["destination_host"] == "storeface-pic.oss-cn-hangzhou.aliyuncs.com"
    assert upload["destination_port"] == "443" and upload["behaviour"] == "snapshot-upload"
    assert upload["pictures"] == "31" and upload["bytes_up"] == str(31 * 98_000)
    assert upload["first_seen"] == "2023-11-14T22:13:20Z" and upload["severity"] == ""
    finding = rows[3]
    assert finding["severity"] == "high" and finding["finding_kind"] == "face-upload"
    assert finding["legal"] == f"{PIPL} Art. 26; {PIPL} Art. 28; CRPL art. 29 para 1"
    assert finding["model"] == "iDS-2CD7A46G0-IZHS" and finding["destination_host"] == ""
    assert rows[6]["vendor"] == "" and rows[0]["face_capable"] == "unknown"


def test_device_strings_cannot_become_formulas():
    rows = parse(csv_text(sample_result()))
    hostile = [r for r in rows if r["device_ip"] == "198.51.100.66"]
    for row in hostile:
        assert row["model"] == "'" + HOSTILE_FORMULA
        assert row["firmware"].startswith("'@SUM")
        assert row["vendor"] == HOSTILE_NAME  # not a formula: left as it is
    assert hostile[0]["destination_host"] == "'-2+3.evil.example"
    assert hostile[1]["finding_title"] == HOSTILE_NAME
    # no cell of the whole file starts with a formula trigger
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)


@pytest.mark.parametrize("cell,expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\t=1", "'\t=1"),
    ("\r=1", "\\x0d=1"), ("＝1+1", "'＝1+1"), ("ok=1", "ok=1"), ("", ""), ("摄像机", "摄像机"),
])
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


def test_numbers_stay_numbers_and_text_round_trips():
    result = ScanResult(scan=ScanInfo(targets=["x"], started=0.0),
                        findings=[Finding("198.51.100.9", "info", "note", "门店 \"摄像机\", line\nbreak", 0.25)])
    rows = parse(csv_text(result))
    assert rows[0]["finding_title"] == "门店 \"摄像机\", line\nbreak" and rows[0]["confidence"] == "0.25"
