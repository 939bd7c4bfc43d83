"""The whole pipeline against the lab's ground truth, for two seeds: scan from the inspector while
listening to the mirror port as visitors walk by (`scan --listen`), assess, and
compare with the manifest's expected verdicts (scanner.assess.verdicts: the highest severity per
device must equal the expected one and the expected kinds must be present): every
face-uploading device high, no false high, no finding for devices that stay local."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import jsonschema
import pytest

from scanner.assess import assess
from scanner.assess.verdicts import compare
from scanner.lab import lab
from scanner.models import ScanResult
from tests.labfixtures import NETNS_LAB_ID

pytestmark = pytest.mark.root

SCHEMA = json.loads(resources.files("scanner").joinpath("schema/result.schema.json").read_text())
# Long enough to hold every periodic cloud exchange of the lab at least once: the longest period a
# scan-plus-capture depends on is the XMEye camera's config poll to pub-cfg.secu100.net, every 60 s
# (+-10 % jitter; its 120 s DSS keep-alive is not needed). A 25 s capture misses it about 2 times in 3.
CAPTURE_S = 70
WALKBY_EVERY_S = 6

# Verdicts a scan plus a capture cannot reach, and why. Pinned so the test fails both when anything
# else goes wrong and when a gap closes (then delete the entry).
EVIDENCE_GAPS = {
    # The lab's Tuya camera answers nothing that says "camera" without a login (the manifest itself
    # marks observable_without_login.is_camera = false): TCP 6668 stays silent, the 6667 beacon
    # carries a productKey only Tuya's cloud can map to a product category, and its cloud traffic
    # (HTTPS polls, MQTT keep-alives) is the same for a Tuya plug or bulb. Calling it a camera with a
    # video cloud would be a guess, so it gets no finding where the manifest expects low video-cloud.
    "tuya-cam": "expected low ['video-cloud'], got no finding [], missing video-cloud",
}


def _pipeline(lab_id: int, tmp_path) -> ScanResult:
    """`camsweep scan --listen` from the inspector (the mirror port) while visitors walk by."""
    out = tmp_path / "scan.json"
    argv = [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(lab_id), "--", sys.executable, "-m",
            "scanner", "scan", "198.51.100.0/24", "--iface", "eth0", "--listen", str(CAPTURE_S),
            "--listen-iface", "mirror0", "--json", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < CAPTURE_S - WALKBY_EVERY_S:
            time.sleep(WALKBY_EVERY_S)
            lab.walkby(lab_id)
        _, errors = proc.communicate(timeout=CAPTURE_S + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, errors
    return ScanResult.from_dict(json.loads(out.read_text()))


SEEDS = {12: 11, 13: 29}  # lab id offset -> seed


@pytest.fixture(scope="module")
def two_labs(tmp_path_factory):
    """Both seeds' labs up at once and their pipelines run side by side (the capture is the long part)."""
    labs = {NETNS_LAB_ID + offset: seed for offset, seed in SEEDS.items()}
    manifests, results = {}, {}
    try:
        for lab_id, seed in labs.items():
            lab.down(lab_id)
            manifests[lab_id] = lab.up(lab_id, "netns", seed, visitor_interval=0)
        with ThreadPoolExecutor(len(labs)) as pool:
            jobs = {lab_id: pool.submit(_pipeline, lab_id, tmp_path_factory.mktemp(f"lab{lab_id}")) for lab_id in labs}
            results = {lab_id: job.result() for lab_id, job in jobs.items()}
    finally:
        for lab_id in labs:
            lab.down(lab_id)
    return {labs[lab_id]: (manifests[lab_id], results[lab_id]) for lab_id in labs}


@pytest.mark.parametrize("seed", sorted(SEEDS.values()))
def test_findings_equal_the_manifest_verdicts(two_labs, seed):
    manifest, result = two_labs[seed]
    result.findings = assess(result)
    jsonschema.validate(result.to_dict(), SCHEMA)

    verdicts = compare(result.findings, manifest)
    report = "\n".join(v.line() for v in verdicts)
    wrong = {v.name: v.line().split(") ", 1)[1] for v in verdicts if not v.ok}
    assert wrong == EVIDENCE_GAPS, report
    by_name = {v.name: v for v in verdicts}
    uploaders = [d["name"] for d in manifest["devices"] if d["expected"]["uploads_pictures"]]
    assert len(uploaders) == 4 and all(by_name[name].severity == "high" for name in uploaders), report
    assert [v.name for v in verdicts if v.severity == "high"] == uploaders, report  # no false high
    local = [d["name"] for d in manifest["devices"] if d["expected"]["severity"] is None]
    assert local and all(by_name[name].severity is None for name in local), report
