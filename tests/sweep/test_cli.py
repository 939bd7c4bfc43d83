"""camsweep sweep / history / diff / baseline through the real CLI.

The end-to-end sweep here runs against the unprivileged loopback lab (127.77.N.x, no root); the
netns lab scenarios are in test_sweep_lab.py.
"""

from __future__ import annotations

import json

import pytest

from scanner.lab import lab
from scanner.lab.plan import LabChanges
from scanner.sweep.diff import diff_documents
from scanner.sweep.store import SweepStore
from tests.labfixtures import NETNS_LAB_ID, camsweep
from tests.sweep.docs import camera, cloud, document
from tests.sweep.receiver import Receiver

LOOPBACK_LAB_ID = NETNS_LAB_ID + 15
MAC_A = "44:19:b6:00:00:0a"
MAC_B = "3c:ef:8c:00:00:0b"
OSS = "storeface-pic.oss-cn-hangzhou.aliyuncs.com"


def record(store: SweepStore, site: str, doc: dict) -> int:
    sweep, _ = store.record_sweep(site, doc, listen_seconds=0.0, compare=lambda prev, known: [] if prev is None
                                  else diff_documents(prev, doc, known=known))
    return sweep.id


@pytest.fixture
def populated(db_url):
    """Two sites; store-001 has three sweeps: baseline, a camera added with a picture cloud, a firmware change."""
    plain = camera("198.51.100.10", MAC_A)
    uploader = camera("198.51.100.11", MAC_B, vendor="Dahua", model="IPC-HDW5442TM-AS", face_capable=True,
                      clouds=[cloud(OSS, "203.0.113.103", "picture-upload", uploads=6, behaviour="snapshot-upload")])
    with SweepStore.open(db_url) as store:
        ids = [record(store, "store-001", document([plain], at=1000.0))]
        store.accept_baseline("store-001", note="reviewed")
        ids.append(record(store, "store-001", document([plain, uploader], at=2000.0)))
        ids.append(record(store, "store-001", document([camera("198.51.100.10", MAC_A, firmware="V5.7.19"), uploader],
                                                       at=3000.0)))
        ids.append(record(store, "store-002", document([], at=1500.0)))
    return db_url, ids


def test_history_lists_the_sweeps_of_a_site_newest_first(populated):
    db, ids = populated
    proc = camsweep("history", "--db", db, "--site", "store-001", "--json")
    data = json.loads(proc.stdout)
    assert [s["id"] for s in data["sweeps"]] == [ids[2], ids[1], ids[0]]
    assert [s["baseline"] for s in data["sweeps"]] == [False, False, True]
    assert [s["changes"] for s in data["sweeps"]] == [1, 2, 0]
    table = camsweep("history", "--db", db, "--site", "store-001").stdout
    assert f"{ids[0]} (baseline)" in table and "store-002" not in table


def test_history_of_all_sites_has_a_summary_per_site(populated):
    db, ids = populated
    data = json.loads(camsweep("history", "--db", db, "--all-sites", "--json").stdout)
    sites = {s["site"]: s for s in data["sites"]}
    assert (sites["store-001"]["sweeps"], sites["store-002"]["sweeps"]) == (3, 1)
    assert sites["store-001"]["last"]["face_capable"] == 1
    assert sites["store-001"]["baseline"]["sweep_id"] == ids[0] and sites["store-002"]["baseline"] is None
    text = camsweep("history", "--db", db, "--all-sites").stdout
    assert "sites" in text and "store-002" in text


def test_history_of_an_empty_site_names_the_others(populated):
    db, _ = populated
    text = camsweep("history", "--db", db).stdout
    assert "no sweeps of site default" in text and "store-001, store-002" in text


def test_diff_defaults_to_the_newest_sweep_and_the_one_before(populated):
    db, ids = populated
    data = json.loads(camsweep("diff", "--db", db, "--site", "store-001", "--json").stdout)
    assert (data["from"]["id"], data["to"]["id"]) == (ids[1], ids[2])
    assert [(c["kind"], c["before"], c["after"]) for c in data["changes"]] == [
        ("firmware-changed", "V5.7.18 build 240826", "V5.7.19")]


def test_diff_between_two_named_sweeps_and_against_the_baseline(populated):
    db, ids = populated
    explicit = json.loads(camsweep("diff", str(ids[0]), str(ids[2]), "--db", db, "--json").stdout)
    kinds = sorted(c["kind"] for c in explicit["changes"])
    assert kinds == ["face-camera-appeared", "firmware-changed", "picture-cloud-added"]
    against = json.loads(camsweep("diff", "--baseline", "--db", db, "--site", "store-001", "--json").stdout)
    assert (against["from"]["id"], sorted(c["kind"] for c in against["changes"])) == (ids[0], kinds)
    table = camsweep("diff", str(ids[0]), "--db", db).stdout  # one sweep: from it to the site's newest
    assert "picture-cloud-added" in table and "storeface-pic.oss-cn-hangzhou.aliyuncs.com" in table


def test_baseline_accept_and_show(populated):
    db, ids = populated
    proc = camsweep("baseline", "accept", "--db", db, "--site", "store-001", "--note", "new Dahua approved")
    assert f"sweep {ids[2]} accepted" in proc.stdout
    shown = json.loads(camsweep("baseline", "show", "--db", db, "--site", "store-001", "--json").stdout)
    assert (shown["baseline"]["sweep_id"], shown["baseline"]["note"]) == (ids[2], "new Dahua approved")
    data = json.loads(camsweep("diff", "--db", db, "--site", "store-001", "--json").stdout)
    assert data["changes"][0]["suppressed"] is True  # the accepted state now includes the new firmware


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", "127.77.1.0/28", "--every", "1x"], "bad --every '1x'"),
    (["sweep", "127.77.1.0/28", "--every", "1h", "--cron", "0 2 * * *"], "--every and --cron exclude each other"),
    (["sweep", "127.77.1.0/28", "--cron", "0 25 * * *"], "bad --cron expression"),
    (["sweep", "127.77.1.0/28", "--fail-on", "severe"], "--fail-on: unknown level 'severe'"),
    (["sweep", "127.77.1.0/28", "--alert-webhook", "ftp://x/y"], "--alert-webhook needs an http:// or https://"),
    (["sweep", "127.77.1.0/28", "--db", "mysql://u@h/d"], "unsupported database 'mysql'"),
    (["sweep", "127.77.1.0/28", "--every", "1h", "--fail-on", "low"], "--fail-on is for single sweeps"),
    (["sweep", "8.8.8.0/30"], "public address"),
    (["sweep"], "no targets"),
    (["diff", "--db", "sqlite:///{tmp}/empty.db"], "site 'default' has no sweep"),
    (["diff", "banana", "--db", "sqlite:///{tmp}/empty.db"], "bad sweep 'banana'"),
    (["baseline", "accept", "--db", "sqlite:///{tmp}/empty.db"], "site 'default' has no sweep yet"),
])
def test_bad_input_is_a_one_line_usage_error(args, message, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--db" not in args:
        args += ["--db", f"sqlite:///{tmp_path}/sweeps.db"]
    proc = camsweep(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("camsweep: error: ") and message in lines[0], proc.stderr


def test_sweeps_of_the_loopback_lab_report_changes_alert_and_fail_for_cron(tmp_path):
    """No root needed: two self-audit sweeps (--creds) of the loopback lab; between them a firmware
    changes and face capture is switched on in a face-capable camera."""
    db = f"sqlite:///{tmp_path}/sweeps.db"
    target = f"127.77.{LOOPBACK_LAB_ID}.0/24"
    creds = tmp_path / "creds.yaml"
    lab.down(LOOPBACK_LAB_ID)
    try:
        doc = lab.up(LOOPBACK_LAB_ID, "loopback", 5, visitor_interval=0)
        creds.write_text(json.dumps({"credentials": [
            {"match": d["ip"], "username": d["credentials"]["username"], "password": d["credentials"]["password"]}
            for d in doc["devices"]]}))  # JSON is YAML
        extra = ["--creds", str(creds)]
        if doc["port_offset"]:  # not root: privileged ports are shifted
            extra += ["--port-map", ",".join(f"{p}={p + doc['port_offset']}" for p in (80, 443, 554))]
        first = camsweep("sweep", target, "--db", db, "--site", "loop", *extra, timeout=180)
        assert "first sweep of site loop" in first.stdout
        lab.down(LOOPBACK_LAB_ID)
        lab.up(LOOPBACK_LAB_ID, "loopback", 5, visitor_interval=0, changes=LabChanges.build(
            firmware={"axis-cam": "10.12.200"}, face_capture={"hik-face-idle": True}))
        ips = {d["name"]: d["ip"] for d in doc["devices"]}
        with Receiver() as receiver:
            second = camsweep("sweep", target, "--db", db, "--site", "loop", "--alert-webhook", receiver.url,
                              "--fail-on", "low", "-q", *extra, timeout=180, check=False)
        assert second.returncode == 1, second.stderr  # a change at or above --fail-on: cron mails it
        assert "firmware-changed" in second.stdout and "face-capture-enabled" in second.stdout
        [message] = receiver.messages()
        changed = {(c["kind"], c["ip"], c["before"], c["after"]) for c in message["changes"]
                   if c["kind"] != "finding-raised"}
        assert changed == {("firmware-changed", ips["axis-cam"], "10.12.114", "10.12.200"),
                           ("face-capture-enabled", ips["hik-face-idle"], False, True)}
        assert {c["ip"] for c in message["changes"] if c["kind"] == "finding-raised"} <= {ips["hik-face-idle"]}
        assert message["site"] == "loop" and message["previous_sweep_id"] == message["sweep_id"] - 1
        assert message["level"] == "high"
    finally:
        lab.down(LOOPBACK_LAB_ID)
