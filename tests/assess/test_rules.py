"""One test (or a few) per assessment rule, each with its negative cases, on records built inline."""

from __future__ import annotations

from scanner.assess import assess
from scanner.models import Evidence, Finding
from tests.assess.helpers import camera, configured, hik_connect_flag, observed, office, result

FACE_API = dict(host="iai.tencentcloudapi.com", category="face-analytics", operator="Tencent Cloud face recognition",
                signature="tencent-face")
OSS = dict(host="storeface-pic.oss-cn-hangzhou.aliyuncs.com", category="picture-upload", operator="Alibaba Cloud OSS",
           signature="aliyun-oss", confidence=0.4)
UPYUN = dict(host="v0.api.upyun.com", category="picture-upload", operator="ULUCU picture cloud (UpYun)",
             signature="ulucu-picture", port=80, confidence=0.9)
P2P = dict(host="www.easy4ipcloud.com", category="video-cloud", operator="Dahua Easy4IP", signature="dahua-p2p",
           port=8800)
TUYA = dict(host="a2.tuyaus.com", category="vendor-management", operator="Tuya Smart", signature="tuya")


def kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.kind) for f in findings]


# ---- face-upload ---------------------------------------------------------------------------------------
def test_face_camera_uploading_to_a_face_api_is_high_with_the_evidence_behind_it():
    link = observed(behaviour="snapshot-upload", uploads=12, **FACE_API)
    findings = assess(result(camera(clouds=[link])))
    assert kinds(findings) == [("high", "face-upload")]
    f = findings[0]
    assert f.device_ip == "198.51.100.20"
    assert "iai.tencentcloudapi.com" in f.title and "12 pictures" in f.title
    sources = [e.source for e in f.evidence]
    # the destination summary, the link's own evidence (behaviour, signature), the device's face capability
    assert sources[:3] == ["cloud:observed", "passive:flow", "cloud-signature:tencent-face"]
    assert "model:hikvision-model-ids-2cd7" in sources
    assert 0 < f.confidence <= 1


def test_face_camera_uploading_to_a_picture_store_is_high():
    findings = assess(result(camera(clouds=[observed(behaviour="snapshot-upload", uploads=10, **OSS)])))
    assert kinds(findings) == [("high", "face-upload")]


def test_camera_of_unknown_face_capability_uploading_pictures_is_high():
    """The ULUCU box: the scan cannot see face capability, the pictures going to UpYun can be seen."""
    findings = assess(result(camera(face=None, clouds=[observed(behaviour="snapshot-upload", uploads=9, **UPYUN)])))
    assert kinds(findings) == [("high", "face-upload")]


def test_camera_known_not_face_capable_uploading_pictures_is_medium_not_high():
    findings = assess(result(camera(face=False, clouds=[observed(behaviour="snapshot-upload", uploads=4, **OSS)])))
    assert kinds(findings) == [("medium", "picture-upload")]


def test_pictures_to_a_face_api_are_high_even_from_a_camera_without_face_capability():
    findings = assess(result(camera(face=False, clouds=[observed(behaviour="snapshot-upload", uploads=4,
                                                                 **FACE_API)])))
    assert kinds(findings) == [("high", "face-upload")]


def test_heartbeat_to_a_picture_store_is_not_an_upload():
    findings = assess(result(camera(face=False, clouds=[observed(behaviour="heartbeat", **OSS)])))
    assert [f.kind for f in findings if f.severity in ("high", "medium")] == []


# ---- snapshot-upload-unknown ---------------------------------------------------------------------------
def test_camera_sending_clear_snapshot_bursts_to_an_unknown_host_is_high():
    link = observed("snap.anchang-cloud.example", "unknown", "snapshot-upload", uploads=10, certainty=0.8)
    findings = assess(result(camera(face=None, clouds=[link])))
    assert kinds(findings) == [("high", "snapshot-upload-unknown")]
    assert "snap.anchang-cloud.example" in findings[0].title
    assert findings[0].confidence == 0.8


def test_weaker_snapshot_shape_or_unknown_device_type_is_medium():
    two = observed("snap.anchang-cloud.example", "unknown", "snapshot-upload", uploads=2, certainty=0.65)
    assert kinds(assess(result(camera(face=None, clouds=[two])))) == [("medium", "snapshot-upload-unknown")]
    clear = observed("snap.anchang-cloud.example", "unknown", "snapshot-upload", uploads=10, certainty=0.8)
    unknown_type = camera(face=None, clouds=[clear])
    unknown_type.device_type, unknown_type.is_camera = None, False
    assert kinds(assess(result(unknown_type))) == [("medium", "snapshot-upload-unknown")]
    not_face = camera(face=False, clouds=[clear])
    assert kinds(assess(result(not_face))) == [("medium", "snapshot-upload-unknown")]


def test_a_pc_uploading_picture_sized_files_is_not_accused():
    link = observed("files.example.net", "unknown", "snapshot-upload", uploads=6, certainty=0.8)
    assert assess(result(office(clouds=[link]))) == []


def test_label_only_signature_counts_as_an_unknown_destination():
    """clouds.md "U" entries (flag: false) name a host but are never evidence: behaviour decides."""
    link = observed("api.clearview.ai", "face-analytics", "snapshot-upload", uploads=5, operator="Clearview AI",
                    signature="clearview-ai", confidence=0.4)
    findings = assess(result(camera(clouds=[link])))
    assert kinds(findings) == [("high", "snapshot-upload-unknown")]


# ---- face-cloud-enabled ---------------------------------------------------------------------------------
def test_face_camera_with_hik_connect_enabled_and_no_upload_is_medium():
    findings = assess(result(camera(clouds=[hik_connect_flag()])))
    assert kinds(findings) == [("medium", "face-cloud-enabled")]
    assert "Hik-Connect (Hikvision)" in findings[0].title
    assert any(e.source == "sadp" and e.field == "cloud" for e in findings[0].evidence)


def test_face_camera_relaying_video_to_an_unknown_host_is_medium():
    relay = observed("relay.example.net", "unknown", "video-relay", port=7760)
    assert kinds(assess(result(camera(clouds=[relay])))) == [("medium", "face-cloud-enabled")]


def test_face_cloud_enabled_gives_way_to_an_observed_upload():
    cam = camera(clouds=[hik_connect_flag(), observed(behaviour="snapshot-upload", uploads=8, **OSS)])
    assert kinds(assess(result(cam))) == [("high", "face-upload")]


def test_camera_of_unknown_capability_on_a_passenger_flow_platform_is_medium():
    link = observed("entry.device.serv.ulucu.com", "passenger-flow", "heartbeat", port=29023, operator="ULUCU",
                    signature="ulucu-device", confidence=0.9)
    assert kinds(assess(result(camera(face=None, clouds=[link])))) == [("medium", "face-cloud-enabled")]


# ---- video-cloud ----------------------------------------------------------------------------------------
def test_camera_with_p2p_video_cloud_only_is_low():
    findings = assess(result(camera(face=None, clouds=[observed(behaviour="video-relay", **P2P)])))
    assert kinds(findings) == [("low", "video-cloud")]
    assert "Dahua Easy4IP" in findings[0].title


def test_nvr_with_hik_connect_is_low_and_a_relay_to_an_unknown_host_counts_as_video():
    nvr = camera(face=None, device_type="nvr", clouds=[hik_connect_flag()])
    assert kinds(assess(result(nvr))) == [("low", "video-cloud")]
    relay = camera(face=False, clouds=[observed("relay.example.net", "unknown", "video-relay", port=7760)])
    assert kinds(assess(result(relay))) == [("low", "video-cloud")]


# ---- face-api-non-camera and other non-cameras -----------------------------------------------------------
def test_non_camera_talking_to_a_face_api_is_medium():
    findings = assess(result(office(clouds=[observed(behaviour="other", **FACE_API)])))
    assert kinds(findings) == [("medium", "face-api-non-camera")]
    assert "not a camera" in findings[0].title


def test_non_camera_with_heartbeat_to_a_vendor_cloud_gets_no_face_finding():
    assert assess(result(office(device_type="nas", clouds=[observed(behaviour="heartbeat", **TUYA)]))) == []


def test_staff_pc_browsing_and_pos_paying_make_no_finding():
    pc = office(clouds=[observed("www.baidu.com", "web", "other", operator="Baidu", signature="baidu-web")])
    pos = office("198.51.100.31", "pos", clouds=[observed("openapi.alipay.com", "payment", "heartbeat",
                                                          operator="Alipay", signature="alipay")])
    assert assess(result(pc, pos)) == []


# ---- devices that stay local ------------------------------------------------------------------------------
def test_devices_that_stay_local_get_no_finding():
    plain = camera("198.51.100.21", face=False)
    idle = camera("198.51.100.22", face=True)
    # pictures pushed to the store's own NVR / platform server: same LAN, RFC 1918, a .local name
    lan_push = camera("198.51.100.23", clouds=[
        observed(None, "unknown", "snapshot-upload", ip="198.51.100.200", port=6011, uploads=9),
        observed(None, "unknown", "snapshot-upload", ip="10.20.30.40", port=80, uploads=9),
        configured("10.1.2.3", "unknown", "pictures"),
        configured("isup-server.local", "unknown", "pictures"),
    ])
    lan_push.face_capture_enabled = True
    assert assess(result(plain, idle, lan_push)) == []


def test_unknown_non_picture_traffic_from_a_camera_is_only_info():
    link = observed(None, "unknown", "other", ip="203.0.113.104", port=8800)
    assert kinds(assess(result(camera(face=False, clouds=[link])))) == [("info", "cloud-unknown")]


# ---- self-audit evidence -----------------------------------------------------------------------------------
def test_face_capture_enabled_with_pictures_configured_to_a_cloud_is_high():
    cam = camera(clouds=[configured("storeface-pic.oss-cn-hangzhou.aliyuncs.com", "picture-upload", "pictures",
                                    operator="Alibaba Cloud OSS")])
    cam.face_capture_enabled = True
    cam.evidence.append(Evidence(source="audit:isapi:/ISAPI/Smart/FaceDetect", field="face_capture_enabled",
                                 value=True, confidence=0.95))
    findings = assess(result(cam))
    assert kinds(findings) == [("high", "face-upload-configured")]
    assert any(e.source.startswith("audit:isapi") and e.field == "face_capture_enabled" for e in findings[0].evidence)


def test_pictures_configured_without_face_capture_on_are_medium():
    cam = camera(clouds=[configured(None, "unknown", "pictures", ip="203.0.113.77", port=6011)])
    cam.face_capture_enabled = False
    assert kinds(assess(result(cam))) == [("medium", "picture-upload-configured")]


def test_cloud_registration_is_medium_or_low_by_category():
    flow = camera(face=False, clouds=[configured("entry.device.serv.ulucu.com", "passenger-flow", "status",
                                                 port=29023, operator="ULUCU")])
    video = camera("198.51.100.21", face=False,
                   clouds=[configured("www.easy4ipcloud.com", "video-cloud", "status", port=8800,
                                      operator="Dahua Easy4IP")])
    events = camera("198.51.100.22", face=True, clouds=[configured("push.example.net", "unknown", "events")])
    events.face_capture_enabled = True
    assert kinds(assess(result(flow, video, events))) == [
        ("medium", "cloud-registered"), ("medium", "cloud-registered"), ("low", "cloud-registered")]


def test_face_library_on_the_device_is_medium_and_an_empty_one_is_nothing():
    cam = camera(face=True)
    cam.evidence.append(Evidence(source="audit:isapi:/ISAPI/Intelligent/FDLib", field="face_library", value=3,
                                 confidence=0.9, detail="3 face libraries"))
    findings = assess(result(cam))
    assert kinds(findings) == [("medium", "face-library")]
    assert findings[0].title.endswith("3 face libraries")
    empty = camera(face=True)
    empty.evidence.append(Evidence(source="audit:isapi:/ISAPI/Intelligent/FDLib", field="face_library", value=0,
                                   confidence=0.9))
    assert assess(result(empty)) == []


def test_one_device_may_get_several_findings():
    cam = camera(clouds=[observed(behaviour="snapshot-upload", uploads=8, **OSS),
                         configured("litedev.hik-connect.com", "vendor-management", "status", port=8666,
                                    operator="Hik-Connect (Hikvision)")])
    cam.evidence.append(Evidence(source="audit:isapi:/ISAPI/Intelligent/FDLib", field="face_library", value="2",
                                 confidence=0.9))
    assert kinds(assess(result(cam))) == [("high", "face-upload"), ("medium", "face-library"),
                                          ("low", "cloud-registered")]


def test_observed_links_are_judged_by_the_networks_the_passive_side_used():
    """The loopback lab's clouds live on 127.78.N.x, and a user's --local may leave 10.x outside the
    store: when the result records the passive side's local networks, those decide, not a guess."""
    upload = observed("storeface-pic.oss-cn-hangzhou.aliyuncs.com", "picture-upload", "snapshot-upload",
                      ip="127.78.44.103", uploads=6)
    cam = camera("127.77.44.213", face=True, clouds=[upload])
    doc = result(cam)
    assert assess(doc) == []  # no record: loopback is local
    doc.scan.options["local_networks"] = ["127.77.0.0/16", "127.0.0.1/32"]
    assert kinds(assess(doc)) == [("high", "face-upload")]
    doc.scan.options["local_networks"] = ["127.0.0.0/8"]
    assert assess(doc) == []
