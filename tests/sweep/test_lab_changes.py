"""A lab that changes between runs (LabChanges): the same store, minus, plus or with another firmware."""

from __future__ import annotations

import pytest

from scanner.errors import UsageError
from scanner.lab.plan import LabChanges, make_plan, manifest
from tests.labfixtures import camsweep

OSS = "storeface-pic.oss-cn-hangzhou.aliyuncs.com"


def by_name(plan):
    return {d.name: d for d in plan.devices}


def test_devices_that_stay_keep_their_addresses_macs_serials_and_passwords():
    standard = by_name(make_plan(90, "netns", 7))
    changes = LabChanges.build(without=["printer", "pos"], firmware={"axis-cam": "10.12.200"}, uploads={"hik-cam": OSS})
    changed = by_name(make_plan(90, "netns", 7, changes=changes))
    assert set(standard) - set(changed) == {"printer", "pos"}
    for name, device in changed.items():
        same = standard[name]
        assert (device.ip, device.mac, device.serial, device.password, device.namespace) == (
            same.ip, same.mac, same.serial, same.password, same.namespace)


def test_firmware_and_uploads_change_the_device_and_its_ground_truth():
    changes = LabChanges.build(firmware={"axis-cam": "10.12.200"}, uploads={"hik-cam": OSS})
    plan = make_plan(90, "netns", 7, changes=changes)
    devices = {d["name"]: d for d in manifest(plan, features={}, statedir="/x")["devices"]}
    assert devices["axis-cam"]["firmware"] == "10.12.200"
    hik = devices["hik-cam"]
    assert [(c["host"], c["purpose"], c["category"]) for c in hik["clouds"]] == [(OSS, "snapshots", "picture-upload")]
    assert hik["expected"]["uploads_pictures"] is True
    doc = manifest(plan, features={}, statedir="/x")
    assert doc["changes"] == {"without": [], "firmware": {"axis-cam": "10.12.200"}, "uploads": {"hik-cam": OSS},
                              "face_capture": {}}
    untouched = manifest(make_plan(90, "netns", 7), features={}, statedir="/x")
    assert untouched["changes"] == {"without": [], "firmware": {}, "uploads": {}, "face_capture": {}}
    assert {d["name"]: d["firmware"] for d in untouched["devices"]}["axis-cam"] == "10.12.114"


def test_an_upload_the_device_already_has_is_not_doubled():
    changes = LabChanges.build(uploads={"hik-face": OSS})
    hik = by_name(make_plan(90, "netns", 7, changes=changes))["hik-face"]
    assert [u.host for u in hik.profile.clouds].count(OSS) == 1


def test_the_gateway_keeps_its_mac_for_a_seed():
    assert make_plan(90, "netns", 7).gateway_mac == make_plan(91, "netns", 7).gateway_mac
    assert make_plan(90, "netns", 7).gateway_mac != make_plan(90, "netns", 8).gateway_mac
    assert int(make_plan(90, "netns", 7).gateway_mac.split(":")[0], 16) & 0b10  # locally administered


@pytest.mark.parametrize(("changes", "message"), [
    (LabChanges.build(without=["nosuch"]), "the lab has no device 'nosuch'"),
    (LabChanges.build(firmware={"axis-cam": ""}), "bad firmware string"),
    (LabChanges.build(firmware={"axis-cam": "1.0\x1b[2J"}), "bad firmware string"),
    (LabChanges.build(uploads={"hik-cam": "www.baidu.com"}), "only be made to upload to a picture destination"),
])
def test_impossible_changes_are_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message):
        make_plan(90, "netns", 7, changes=changes)


@pytest.mark.parametrize(("args", "message"), [
    (["--firmware", "axis-cam"], "--firmware wants DEVICE=VALUE"),
    (["--upload", "hik-cam=mail.qq.com"], "only be made to upload to a picture destination"),
    (["--without", "nosuch"], "the lab has no device 'nosuch'"),
    (["--face-capture", "hik-face-idle=maybe"], "--face-capture wants DEVICE=on or DEVICE=off"),
])
def test_lab_up_refuses_impossible_changes_before_building_anything(args, message):
    proc = camsweep("lab", "up", "--lab-id", "99", "--mode", "loopback", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_face_capture_can_be_switched_on_only_where_faces_can_be_captured():
    changes = LabChanges.build(face_capture={"hik-face-idle": True, "hik-face": False})
    devices = {d.name: d.profile for d in make_plan(90, "netns", 7, changes=changes).devices}
    assert devices["hik-face-idle"].face_capture_enabled is True
    assert devices["hik-face"].face_capture_enabled is False
    with pytest.raises(UsageError, match="hik-cam cannot capture faces"):
        make_plan(90, "netns", 7, changes=LabChanges.build(face_capture={"hik-cam": True}))
