"""``camsweep signatures validate | list | test`` (the typer sub-app, run with CliRunner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scanner.signatures.commands import sig_app
from scanner.status import ExitStatus
from tests.signatures.helpers import scratch_root, write

BROKEN = """\
    id: Broken_One
    info: {name: t, author: t}
    source: [http]
    certainty: 0.8
    matchers: [{type: regex, part: server, regex: ['(']}]
    claims: {vendor: Hikvision}
    examples: [{observation: {fields: {server: x}}, expect: {vendor: Hikvision}}]
"""


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("CAMSWEEP_SIGNATURES", raising=False)
    return CliRunner()


@pytest.fixture
def broken(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/Broken_One.yaml", BROKEN)
    return root


def test_validate_clean(runner):
    result = runner.invoke(sig_app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "signatures" in result.output and "all pass" in result.output


def test_validate_broken_prints_every_problem_and_exits_2(runner, broken):
    result = runner.invoke(sig_app, ["validate", "--path", str(broken)])
    assert result.exit_code == ExitStatus.USAGE
    assert "devices/http/Broken_One.yaml: id 'Broken_One' is not kebab-case" in result.output
    assert "devices/http/Broken_One.yaml: matcher 1: regex '(' does not compile" in result.output
    assert "2 problems in" in result.output


def test_validate_path_from_environment(runner, broken, monkeypatch):
    monkeypatch.setenv("CAMSWEEP_SIGNATURES", str(broken))
    assert runner.invoke(sig_app, ["validate"]).exit_code == ExitStatus.USAGE


def test_list_json_and_source_filter(runner):
    result = runner.invoke(sig_app, ["list", "--json", "--source", "sadp"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    ids = [r["id"] for r in rows]
    assert {"hikvision-sadp", "hikvision-sadp-hik-connect"} <= set(ids)
    assert all("sadp" in r["source"] for r in rows)
    first = rows[ids.index("hikvision-sadp")]
    assert first["claims"] == {"vendor": "Hikvision"} and set(first["extracts"]) == {"model", "serial", "firmware"}
    everything = json.loads(runner.invoke(sig_app, ["list", "--json"]).output)
    assert len(everything) > len(rows) and {"model", "oui", "http"} <= {s for r in everything for s in r["source"]}


def test_list_table(runner):
    result = runner.invoke(sig_app, ["list", "--source", "rtsp"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "hikvision-rtsp-realm" in result.output and 'vendor="Hikvision"' in result.output


def test_list_errors(runner, broken):
    assert runner.invoke(sig_app, ["list", "--source", "telnet"]).exit_code == ExitStatus.USAGE
    result = runner.invoke(sig_app, ["list", "--path", str(broken)])
    assert result.exit_code == ExitStatus.USAGE
    assert "2 signature problems" in result.output


def test_test_command_from_file_and_stdin(runner, tmp_path):
    path = tmp_path / "obs.json"
    path.write_text(json.dumps({"source": "http", "port": 80,
                                "fields": {"server": "App-webs/", "realm": "IP Camera(C2183)"}}))
    result = runner.invoke(sig_app, ["test", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [m["signature_id"] for m in doc[0]["matches"]] == ["hikvision-http-app-webs", "hikvision-http-realm"]
    assert doc[0]["matches"][0]["claims"] == {"vendor": "Hikvision", "device_type": "camera", "is_camera": True}
    observations = [{"source": "model", "fields": {"vendor": "Hikvision", "model": "iDS-2CD7A46G0-IZHS"}},
                    {"source": "rtsp", "fields": {"server": "nothing known"}}]
    table = runner.invoke(sig_app, ["test", "-"], input=json.dumps(observations), env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "hikvision-model-ids-2cd7" in table.output and "face_capable=true" in table.output
    assert "observation 2 (rtsp): no signature matched" in table.output


@pytest.mark.parametrize("payload,message", [
    ("{not json", "not JSON"),
    ("[]", "no observation"),
    ('{"fields": {"server": "x"}}', "observation 1: observation needs a 'source'"),
    ('{"source": "http", "fields": ["x"]}', "'fields' must be a mapping"),
    ('{"source": "http", "port": "eighty"}', "'port' must be a port number"),
])
def test_test_command_rejects_bad_input(runner, payload, message):
    result = runner.invoke(sig_app, ["test", "-"], input=payload)
    assert result.exit_code == ExitStatus.USAGE
    assert message in result.output


def test_test_command_missing_file(runner, tmp_path):
    result = runner.invoke(sig_app, ["test", str(tmp_path / "missing.json")])
    assert result.exit_code == ExitStatus.USAGE and "cannot read" in result.output
