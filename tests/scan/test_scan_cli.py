"""camsweep scan as a user meets it: Ctrl-C keeps the partial result, target files, one-line
errors with exit 2 before any packet is sent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep


def test_ctrl_c_keeps_and_writes_what_was_found(tmp_path):
    lab_id = NETNS_LAB_ID + 9
    lab.down(lab_id)
    out = tmp_path / "partial.json"
    try:
        manifest = lab.up(lab_id, "loopback", 5, visitor_interval=0)
        args = [sys.executable, "-m", "scanner", "scan", f"127.77.{lab_id}.0/24", "--json", str(out), "--rate", "200"]
        if manifest["port_offset"]:
            args += ["--port-map", f"80={80 + manifest['port_offset']},554={554 + manifest['port_offset']}"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4.0)  # at 200 connections/s the /24 port sweep is under way
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        lab.down(lab_id)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    result = json.loads(out.read_text())
    assert result["scan"]["interrupted"] is True
    assert result["scan"]["finished"] >= result["scan"]["started"]
    assert "interrupted: partial" in stdout


def test_target_file_and_bad_inputs_are_one_line_errors(tmp_path):
    targets = tmp_path / "t.txt"
    targets.write_text("# nothing but a bad entry\n999.1.1.1\n")
    for args, message in [
        (["scan", "-iL", str(targets)], "bad target '999.1.1.1'"),
        (["scan", "-iL", str(tmp_path / "missing.txt")], "cannot read target list"),
        (["scan", "127.0.0.1", "--ports", "80,http"], "bad port 'http'"),
        (["scan", "127.0.0.1", "--port-map", "80:8080"], "bad --port-map entry"),
        (["scan"], "no targets"),
    ]:
        proc = camsweep(*args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_debug_shows_the_traceback():
    proc = camsweep("--debug", "scan", "auto", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
