"""The README's main command: camsweep demo builds the lab, scans and listens while visitors walk by,
prints the findings, writes the HTML report, and cleans up."""

from __future__ import annotations

import json
import re

import pytest

from scanner.lab import lab, topology
from tests.labfixtures import NETNS_LAB_ID, camsweep


def _check_demo(proc_stdout: str, result: dict, manifest_devices: list[dict], html: str) -> None:
    assert "the lab is down" in proc_stdout
    findings = result["findings"]
    high = {f["device_ip"] for f in findings if f["severity"] == "high"}
    uploaders = {d["ip"] for d in manifest_devices if d["expected"]["uploads_pictures"]}
    assert high == uploaders  # every face uploader high, no false high
    local_only = {d["ip"] for d in manifest_devices if d["expected"]["severity"] is None}
    assert not {f["device_ip"] for f in findings} & local_only
    for ip in uploaders:  # the report names the uploader and the ground truth line its cloud
        assert ip in html
    assert re.search(r"\d+ pictures -> storeface-pic\.oss-cn-hangzhou\.aliyuncs\.com", proc_stdout)
    assert "PIPL" in proc_stdout and "HTML report:" in proc_stdout


@pytest.mark.root
def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path):
    lab_id = NETNS_LAB_ID + 10
    result_path, html_path = tmp_path / "demo.json", tmp_path / "report.html"
    proc = camsweep("demo", "--lab-id", str(lab_id), "--seed", "4", "--json", str(result_path), "--html",
                    str(html_path), timeout=240)
    assert "listening to the switch's mirror port" in proc.stdout
    result = json.loads(result_path.read_text())
    assert sum(d["is_camera"] for d in result["devices"]) >= 10
    from scanner.lab.plan import make_plan, manifest

    truth = manifest(make_plan(lab_id, "netns", 4), features={}, statedir="")["devices"]
    _check_demo(proc.stdout, result, truth, html_path.read_text())
    assert not lab.statedir(lab_id).exists()
    assert topology.list_namespaces(f"csw{lab_id}-") == []


@pytest.mark.root
def test_demo_in_loopback_mode_listens_on_lo(tmp_path):
    lab_id = NETNS_LAB_ID + 10
    result_path, html_path = tmp_path / "demo.json", tmp_path / "report.html"
    proc = camsweep("demo", "--lab-id", str(lab_id), "--mode", "loopback", "--seed", "6", "--json",
                    str(result_path), "--html", str(html_path), "--lang", "zh", timeout=240)
    from scanner.lab.plan import make_plan, manifest

    truth = manifest(make_plan(lab_id, "loopback", 6), features={}, statedir="")["devices"]
    _check_demo(proc.stdout, json.loads(result_path.read_text()), truth, html_path.read_text())
    assert 'lang="zh' in html_path.read_text()
    assert not lab.statedir(lab_id).exists()


def test_demo_with_an_unwritable_report_path_fails_before_the_lab_comes_up(tmp_path):
    proc = camsweep("demo", "--lab-id", str(NETNS_LAB_ID + 10), "--html", str(tmp_path / "no" / "such" / "r.html"),
                    check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("camsweep: error: cannot write --html")
    assert not lab.statedir(NETNS_LAB_ID + 10).exists()
