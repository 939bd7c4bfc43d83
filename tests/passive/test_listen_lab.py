"""camsweep listen on the lab's mirror port: the kernel filters pass whole frames only for DNS,
TLS handshakes and HTTP request lines, headers for the rest, and the uploaders are still found."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep

pytestmark = pytest.mark.root


def test_listen_on_the_mirror_port_finds_every_uploader(netns_lab, tmp_path):
    out = tmp_path / "live.json"
    listener = subprocess.Popen(
        [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m",
         "scanner", "listen", "--iface", "mirror0", "--seconds", "9", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        lab.walkby(NETNS_LAB_ID)
        time.sleep(3)
        lab.walkby(NETNS_LAB_ID)
        _, errors = listener.communicate(timeout=60)
    finally:
        listener.kill()
    assert listener.returncode == 0, errors
    assert "0 dropped" in errors
    result = json.loads(out.read_text())
    assert result["scan"]["iface"] == "mirror0"
    uploaders = {d["ip"] for d in result["devices"] for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    assert uploaders == {d["ip"] for d in netns_lab["devices"] if d["expected"]["uploads_pictures"]}


def test_listen_on_a_missing_interface_is_a_one_line_error(netns_lab):
    proc = camsweep("lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-m", "scanner", "listen",
                    "--iface", "nosuch0", "--seconds", "1", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "camsweep: error: cannot listen on 'nosuch0': No such device"
