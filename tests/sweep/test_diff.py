"""Semantic diffs between result documents: one behaviour per test, documents built inline."""

from __future__ import annotations

import copy
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.models import Device
from scanner.sweep.diff import (
    CHANGE_KINDS,
    LEVELS,
    alertable,
    check_level,
    diff_documents,
    highest_level,
    level_at_least,
)
from tests.sweep.docs import camera, cloud, document, finding

MAC_A = "44:19:b6:00:00:0a"
MAC_B = "3c:ef:8c:00:00:0b"
OSS = "storeface-pic.oss-cn-hangzhou.aliyuncs.com"


def kinds(changes: list) -> list[tuple[str, str]]:
    return [(c.kind, c.identity) for c in changes]


def test_the_same_document_has_no_change():
    doc = document([camera("198.51.100.10", MAC_A, clouds=[cloud(OSS, "203.0.113.103", "picture-upload")])],
                   [finding("198.51.100.10", "face-upload", "high")])
    assert diff_documents(doc, copy.deepcopy(doc)) == []


def test_a_new_face_camera_is_high_a_new_camera_medium_a_new_device_low():
    old = document([])
    new = document([camera("198.51.100.10", MAC_A, face_capable=True),
                    camera("198.51.100.11", MAC_B),
                    Device(ip="198.51.100.12", mac="3c:d9:2b:00:00:0c", vendor="HP", device_type="printer")])
    changes = diff_documents(old, new)
    assert [(c.kind, c.level, c.ip) for c in changes] == [
        ("face-camera-appeared", "high", "198.51.100.10"),
        ("camera-appeared", "medium", "198.51.100.11"),
        ("device-appeared", "low", "198.51.100.12"),
    ]
    assert changes[0].after["face_capable"] is True


def test_a_device_that_is_gone_is_reported_with_what_it_was():
    old = document([camera("198.51.100.10", MAC_A), Device(ip="198.51.100.12", mac="3c:d9:2b:00:00:0c")])
    changes = diff_documents(old, document([]))
    assert [(c.kind, c.level) for c in changes] == [("camera-disappeared", "low"), ("device-disappeared", "low")]
    assert changes[0].before["model"] == "DS-2CD2386G2-IU"


def test_a_dhcp_address_change_is_the_same_device_matched_by_mac():
    old = document([camera("198.51.100.10", MAC_A)])
    new = document([camera("198.51.100.77", MAC_A.upper())])
    changes = diff_documents(old, new)
    assert [(c.kind, c.before, c.after, c.level) for c in changes] == [
        ("address-changed", "198.51.100.10", "198.51.100.77", "info")]


def test_without_a_mac_devices_are_matched_by_address():
    old = document([camera("127.77.3.10", None, firmware="V5.7.18")])
    new = document([camera("127.77.3.10", None, firmware="V5.7.19")])
    assert kinds(diff_documents(old, new)) == [("firmware-changed", "ip:127.77.3.10")]


def test_a_different_mac_at_the_same_address_is_another_device():
    old = document([camera("198.51.100.10", MAC_A)])
    new = document([camera("198.51.100.10", MAC_B)])
    assert kinds(diff_documents(old, new)) == [("camera-appeared", MAC_B), ("camera-disappeared", MAC_A)]


def test_a_mac_learned_later_still_matches_by_address():
    old = document([camera("198.51.100.10", None)])
    new = document([camera("198.51.100.10", MAC_A)])
    assert diff_documents(old, new) == []


def test_firmware_model_and_vendor_changes():
    old = document([camera("198.51.100.10", MAC_A)])
    new = document([camera("198.51.100.10", MAC_A, firmware="V5.7.19 build 250101", model="DS-2CD2387G2-LU")])
    changes = diff_documents(old, new)
    assert [(c.kind, c.subject, c.before, c.after, c.level) for c in changes] == [
        ("identity-changed", "model", "DS-2CD2386G2-IU", "DS-2CD2387G2-LU", "medium"),
        ("firmware-changed", "firmware", "V5.7.18 build 240826", "V5.7.19 build 250101", "low"),
    ]


def test_unknown_is_not_different():
    old = document([camera("198.51.100.10", MAC_A)])
    new = document([camera("198.51.100.10", MAC_A, firmware=None, vendor=None, face_capable=None)])
    assert diff_documents(old, new) == []


def test_face_capability_and_face_capture_switched_on():
    old = document([camera("198.51.100.10", MAC_A, face_capable=False, face_capture_enabled=False)])
    new = document([camera("198.51.100.10", MAC_A, face_capable=True, face_capture_enabled=True)])
    assert [(c.kind, c.level) for c in diff_documents(old, new)] == [
        ("face-capability-gained", "high"), ("face-capture-enabled", "high")]
    assert [(c.kind, c.level) for c in diff_documents(new, old)] == [
        ("face-capture-disabled", "low"), ("face-capability-lost", "info")]


@pytest.mark.parametrize(("category", "behaviour", "uploads", "kind", "level"), [
    ("picture-upload", "other", 0, "picture-cloud-added", "high"),
    ("face-analytics", "heartbeat", 0, "picture-cloud-added", "high"),
    ("passenger-flow", "heartbeat", 0, "picture-cloud-added", "high"),
    ("unknown", "snapshot-upload", 6, "picture-cloud-added", "high"),
    ("video-cloud", "heartbeat", 0, "cloud-added", "medium"),
    ("vendor-management", "other", 0, "cloud-added", "medium"),
    ("web", "snapshot-upload", 1, "web-destination-added", "info"),
    ("payment", "heartbeat", 0, "web-destination-added", "info"),
])
def test_a_new_destination_is_as_serious_as_what_it_receives(category, behaviour, uploads, kind, level):
    old = document([camera("198.51.100.10", MAC_A)])
    new = document([camera("198.51.100.10", MAC_A, clouds=[
        cloud("new.example", "203.0.113.9", category, behaviour=behaviour, uploads=uploads)])])
    changes = diff_documents(old, new)
    assert [(c.kind, c.level, c.subject) for c in changes] == [(kind, level, "new.example")]


def test_a_destination_seen_by_name_once_and_by_address_once_is_the_same():
    old = document([camera("198.51.100.10", MAC_A, clouds=[cloud(OSS, "203.0.113.103", "picture-upload")])])
    new = document([camera("198.51.100.10", MAC_A, clouds=[cloud(None, "203.0.113.103", "picture-upload")])])
    assert diff_documents(old, new) == []


def test_platforms_known_only_by_operator_match_by_operator():
    platform = cloud(None, None, "vendor-management", port=None, operator="Hik-Connect (Hikvision)",
                     source="discovery", behaviour=None)
    old = document([camera("198.51.100.10", MAC_A, clouds=[platform])])
    assert diff_documents(old, copy.deepcopy(old)) == []
    other = cloud(None, None, "video-cloud", port=None, operator="EZVIZ", source="discovery", behaviour=None)
    new = document([camera("198.51.100.10", MAC_A, clouds=[platform, other])])
    changes = diff_documents(old, new)
    assert [(c.kind, c.subject) for c in changes] == [("cloud-added", "ezviz (video-cloud)")]
    assert "no address" in changes[0].text


def test_a_destination_not_seen_this_time_is_info_only():
    old = document([camera("198.51.100.10", MAC_A, clouds=[cloud("en.ezcloud.uniview.com", None, "video-cloud")])])
    new = document([camera("198.51.100.10", MAC_A)])
    assert [(c.kind, c.level) for c in diff_documents(old, new)] == [("cloud-vanished", "info")]


def test_upload_volume_jump_compares_pictures_per_hour():
    def with_uploads(n: int, listen: float) -> dict:
        return document([camera("198.51.100.10", MAC_A, clouds=[
            cloud(OSS, None, "picture-upload", uploads=n, behaviour="snapshot-upload")])], listen=listen)

    jump = diff_documents(with_uploads(4, 60), with_uploads(40, 60))
    assert [(c.kind, c.level, c.before, c.after) for c in jump] == [("upload-volume-jump", "medium", 240.0, 2400.0)]
    # Ten times the pictures in ten times the listening: the same rate, no jump.
    assert diff_documents(with_uploads(4, 60), with_uploads(40, 600)) == []
    # From nothing to a burst: the camera started uploading to a destination it only talked to.
    assert [c.kind for c in diff_documents(with_uploads(0, 60), with_uploads(5, 60))] == ["upload-volume-jump"]
    # Noise: a couple more pictures is not a jump.
    assert diff_documents(with_uploads(1, 60), with_uploads(3, 60)) == []


def test_findings_raised_and_cleared_follow_the_device_across_an_address_change():
    old = document([camera("198.51.100.10", MAC_A)], [finding("198.51.100.10", "video-cloud", "low")])
    new = document([camera("198.51.100.20", MAC_A)], [finding("198.51.100.20", "face-upload", "high")])
    changes = diff_documents(old, new)
    assert [(c.kind, c.subject, c.level, c.identity) for c in changes] == [
        ("finding-raised", "face-upload", "high", MAC_A),
        ("address-changed", "ip", "info", MAC_A),
        ("finding-cleared", "video-cloud", "info", MAC_A),
    ]


def test_a_finding_whose_severity_rises_is_raised_and_one_that_falls_is_not():
    low = document([camera("198.51.100.10", MAC_A)], [finding("198.51.100.10", "face-cloud-enabled", "medium")])
    high = document([camera("198.51.100.10", MAC_A)], [finding("198.51.100.10", "face-cloud-enabled", "high")])
    raised = diff_documents(low, high)
    assert [(c.kind, c.before, c.after, c.level) for c in raised] == [("finding-raised", "medium", "high", "high")]
    assert diff_documents(high, low) == []


def test_the_baseline_marks_changes_back_to_an_accepted_state():
    known = camera("198.51.100.10", MAC_A)
    baseline = document([known, camera("198.51.100.11", MAC_B)])
    previous = document([known])  # MAC_B was off during the previous sweep
    stranger = camera("198.51.100.12", "c0:56:e3:00:00:0c")
    new = document([known, camera("198.51.100.11", MAC_B), stranger])
    changes = diff_documents(previous, new, baseline=baseline)
    assert [(c.identity, c.suppressed, c.known_from) for c in changes] == [
        (MAC_B, True, "baseline"), ("c0:56:e3:00:00:0c", False, "")]
    assert [c.identity for c in alertable(changes, "info")] == ["c0:56:e3:00:00:0c"]


def test_a_destination_seen_in_a_recent_sweep_is_not_news():
    hc = cloud("litedev.hik-connect.com", "203.0.113.100", "vendor-management")
    with_hc = document([camera("198.51.100.10", MAC_A, clouds=[hc])])
    without = document([camera("198.51.100.10", MAC_A)])
    changes = diff_documents(without, with_hc, known=[("sweep 3", with_hc)])
    assert [(c.kind, c.suppressed, c.known_from) for c in changes] == [("cloud-added", True, "sweep 3")]
    fresh = diff_documents(without, with_hc, known=[("sweep 3", without)])
    assert [(c.kind, c.suppressed) for c in fresh] == [("cloud-added", False)]


def test_levels_order_and_threshold():
    assert level_at_least("high", "low") and level_at_least("low", "low") and not level_at_least("info", "low")
    assert check_level(" Medium ") == "medium"
    with pytest.raises(ValueError):
        check_level("critical")
    assert highest_level([]) is None


def test_the_change_table_is_complete():
    for kind in CHANGE_KINDS.values():
        assert kind.level in (*LEVELS, None)
        assert kind.meaning
    assert CHANGE_KINDS["finding-raised"].level is None  # the finding's own severity


_text = st.text(alphabet=string.printable + "\x00\x1b\u202e\udcff", max_size=12)


@st.composite
def hostile_device(draw: st.DrawFn) -> Device:
    return Device(ip=f"198.51.100.{draw(st.integers(1, 6))}", mac=draw(st.none() | st.sampled_from([MAC_A, MAC_B])),
                  vendor=draw(st.none() | _text), model=draw(st.none() | _text), firmware=draw(st.none() | _text),
                  is_camera=draw(st.booleans()), face_capable=draw(st.none() | st.booleans()),
                  clouds=draw(st.lists(st.builds(cloud, st.none() | _text, st.none() | _text,
                                                 st.sampled_from(["web", "unknown", "picture-upload"]),
                                                 uploads=st.integers(0, 50)), max_size=3)))


@settings(max_examples=150, deadline=None)
@given(st.lists(hostile_device(), max_size=5), st.lists(hostile_device(), max_size=5))
def test_any_two_documents_diff_without_error_and_a_document_never_differs_from_itself(old, new):
    a, b = document(old), document(new)
    changes = diff_documents(a, b, baseline=a)
    assert all(c.kind in CHANGE_KINDS and c.level in LEVELS for c in changes)
    assert not any(c.suppressed for c in changes)  # a baseline equal to the old state accepts nothing new
    assert all(c.suppressed for c in diff_documents(a, b, baseline=b))  # ... equal to the new state: everything
    assert diff_documents(b, copy.deepcopy(b)) == []


def test_the_readme_table_names_every_change_kind():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Scheduled sweeps"):]
    for name in CHANGE_KINDS:
        stem = name.rsplit("-", 1)[0]
        assert f"`{name}`" in section or f"`{stem}-" in section, name
