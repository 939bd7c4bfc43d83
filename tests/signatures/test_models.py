"""Model knowledge (signatures/models/) and the cross-source facts the engine relies on."""

from __future__ import annotations

import pytest

from scanner.lab.profiles import PROFILE_BY_KEY
from scanner.signatures import Match, load_signatures
from tests.signatures.helpers import obs

SIGS = load_signatures()


def merged(matches: list[Match]) -> dict[str, object]:
    """Claims of all matches, the most certain first (what an engine would conclude)."""
    claims: dict[str, object] = {}
    for m in sorted(matches, key=lambda m: -m.certainty):
        for key, value in m.claims.items():
            claims.setdefault(key, value)
    return claims


@pytest.mark.parametrize("vendor,model,expected", [
    # protocols.md §1.9 [S28]: iDS-2CD7 DeepinView cameras document face capture
    ("Hikvision", "iDS-2CD7A46G0-IZHS", {"device_type": "camera", "is_camera": True, "face_capable": True}),
    ("Hikvision", "iDS-2CD7146G0-IZS", {"device_type": "camera", "is_camera": True, "face_capable": True}),
    # protocols.md §1.3 [S5]: the fixture reports isSupportFaceSnap=false
    ("Hikvision", "DS-2CD2386G2-IU", {"device_type": "camera", "is_camera": True, "face_capable": False}),
    # protocols.md §1.9: DS-76xx/77xx are NVRs
    ("Hikvision", "DS-7608NI-K2/8P", {"device_type": "nvr", "is_camera": False}),
    ("Hikvision", "DS-7716NI-I4", {"device_type": "nvr", "is_camera": False}),
    # the lab models the WizMind camera as face-capable (naming rules UNCERTAIN, protocols.md §2.5)
    ("Dahua", "IPC-HDW5442TM-AS", {"device_type": "camera", "is_camera": True, "face_capable": True}),
    ("Uniview", "IPC3614SB-ADF28KM-I0", {"device_type": "camera", "is_camera": True}),
    ("Axis", "AXIS P3245-LV", {"device_type": "camera", "is_camera": True}),
    ("HP", "HP LaserJet Pro M404dn", {"device_type": "printer", "is_camera": False}),
    ("Synology", "DS220+", {"device_type": "nas", "is_camera": False}),
    ("Xiongmai", "HI3516EV300_85H50AI", {"device_type": "camera", "is_camera": True}),
    ("Generic (HiSilicon reference)", "HI3518E-IPC", {"device_type": "camera", "is_camera": True}),
])
def test_model_knowledge(vendor, model, expected):
    assert merged(SIGS.match_model(vendor, model)) == expected


@pytest.mark.parametrize("vendor,model", [
    ("Hikvision", "DS-2CD7A26G0-IZHS"),  # DS-2CD7 without the i: UNCERTAIN, no claim
    ("Hikvision", "DS-2CD1021FD-IW1"),
    ("Dahua", "IPC-HFW2431S-S-S2"),  # no basis either way in the notes
    ("Uniview", "IPC3614SB-ADF28KM-I0"),
    ("Hikvision", "totally-unknown"),
])
def test_face_capability_is_never_guessed(vendor, model):
    assert "face_capable" not in merged(SIGS.match_model(vendor, model))


def test_model_knowledge_needs_the_right_vendor_and_a_model():
    assert SIGS.match_model("Dahua", "iDS-2CD7A46G0-IZHS") == []
    assert SIGS.match_model("Hikvision", "") == []
    assert SIGS.match_model(None, "iDS-2CD7A46G0-IZHS") == []
    ids = {m.signature_id for m in SIGS.match_model("Hikvision", "iDS-2CD7A46G0-IZHS")}
    assert ids == {"hikvision-model-ds-2cd", "hikvision-model-ids-2cd7"}
    # the case of vendor and model is not significant
    assert {m.signature_id for m in SIGS.match_model("HIKVISION", "ids-2cd7a46g0-izhs")} == ids


def test_model_signatures_do_not_apply_to_observations():
    assert SIGS.match(obs("http", vendor="Hikvision", model="iDS-2CD7A46G0-IZHS")) == []


def test_every_lab_face_model_with_a_known_vendor_is_covered():
    """The lab's face-capable profiles whose model is observable get face_capable=true from model knowledge."""
    for key in ("hik-face", "hik-face-idle", "dahua-face"):
        p = PROFILE_BY_KEY[key]
        assert merged(SIGS.match_model(p.vendor, p.model)).get("face_capable") is True, key
    for key in ("hik-cam", "hik-nvr"):
        p = PROFILE_BY_KEY[key]
        assert merged(SIGS.match_model(p.vendor, p.model)).get("face_capable") in (False, None), key


# ---- facts that span sources ---------------------------------------------------------------------
def test_sadp_and_isapi_firmware_normalise_to_the_same_string():
    """SADP "V5.5.800build 210628" and ISAPI firmwareVersion + firmwareReleasedDate give one firmware."""
    sadp = merged(SIGS.match(obs("sadp", **{"sadp.DeviceDescription": "iDS-2CD7A46G0-IZHS",
                                             "sadp.SoftwareVersion": "V5.5.800build 210628"})))
    isapi = merged(SIGS.match(obs("http", raw=(
        '<DeviceInfo version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><model>iDS-2CD7A46G0-IZHS</model>'
        "<firmwareVersion>V5.5.800</firmwareVersion><firmwareReleasedDate>build 210628</firmwareReleasedDate>"
        "</DeviceInfo>"))))
    assert sadp["firmware"] == isapi["firmware"] == PROFILE_BY_KEY["hik-face"].firmware == "V5.5.800 build 210628"


@pytest.mark.parametrize("value,enabled", [("true", True), ("TRUE", True), (" true ", True), ("flase", False),
                                           ("false", False), ("", False), ("truee", False)])
def test_hik_connect_flag_and_the_flase_typo(value, enabled):
    claims = merged(SIGS.match(obs("sadp", **{"sadp.DeviceDescription": "DS-2CD2386G2-IU",
                                               "sadp.HCPlatformEnable": value})))
    assert (claims.get("cloud_platform") == "Hik-Connect") is enabled
    assert claims["vendor"] == "Hikvision"
    hint = [m for m in SIGS.match(obs("sadp", **{"sadp.HCPlatformEnable": "true"}))
            if "cloud_platform" in m.claims]
    assert hint and all(m.certainty <= 0.6 for m in hint)  # the mapping is UNCERTAIN (protocols.md §1.1)


def test_face_hint_needs_analytics_fields():
    face = merged(SIGS.match(obs("onvif", **{"analytics.rules": "tt:CellMotionDetector hikxsd:FaceDetection"})))
    assert face == {"face_capable": True}
    assert [m.certainty for m in SIGS.match(obs("onvif", **{"analytics.rules": "tt:FaceRecognition"}))] == [0.7]
    plain = merged(SIGS.match(obs("onvif", **{"analytics.rules": "tt:CellMotionDetector tt:LineDetector"})))
    assert "face_capable" not in plain
    assert "face_capable" not in merged(SIGS.match(obs("onvif", scopes="onvif://www.onvif.org/name/FaceCam")))


def test_oui_hints_are_weak_and_odm_ouis_name_no_vendor():
    hik = SIGS.match(obs("oui", mac="44:19:b6:00:00:01", oui_org="Hangzhou Hikvision Digital Technology Co.,Ltd."))
    assert [(m.claims, m.certainty) for m in hik] == [({"vendor": "Hikvision"}, 0.3)]
    for org in ("Ingenic Semiconductor Co.,Ltd", "Hisilicon Technologies Co., Ltd",
                "HUNAN GOKE MICROELECTRONICS CO.,LTD", "Jovision Technology Co., Ltd.",
                "Zhuhai Raysharp Technology Co.,Ltd", "TVT CO.,LTD"):
        claims = merged(SIGS.match(obs("oui", oui_org=org)))
        assert "vendor" not in claims and claims["odm"] == org
    assert SIGS.match(obs("oui", oui_org="Hangzhou Hikrobot Technology Co., Ltd")) == []


def test_the_ulucu_box_title_is_not_dahua():
    """The lab's ULUCU box serves <title>WEB SERVICE</title> from Boa: the title alone says nothing."""
    ulucu = obs(server="Boa/0.94.14rc21", title="WEB SERVICE",
                body="<html><head><title>WEB SERVICE</title></head><body><form action=\"/login.cgi\"></form></body>")
    assert SIGS.match(ulucu) == []
