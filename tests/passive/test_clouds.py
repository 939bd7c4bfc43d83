"""Cloud destination signatures (signatures/clouds/*.yaml): every example and counter-example is a test,
most-specific-wins, the lab's names, the clouds.md confidence rules, and validation that reports every
problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.passive.clouds import (
    CATEGORIES,
    CloudSignatureError,
    CloudSignatureSet,
    cloud_root,
    compile_pattern,
    load_cloud_signatures,
    match_host,
    match_ip,
    validate_cloud_signatures,
)

SET = load_cloud_signatures()
SIGNATURES = list(SET.signatures)


def test_shipped_cloud_signatures_have_no_problems():
    problems = validate_cloud_signatures()
    assert problems == [], "\n".join(problems)
    assert cloud_root().name == "clouds" and cloud_root().is_dir()
    assert len(SIGNATURES) >= 40


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_examples_match_their_own_signature_and_win(signature):
    assert 1 <= len(signature.examples) <= 20
    for example in signature.examples:
        assert SET.match_one(signature, example) is not None, example
        best = SET.match(example)
        assert best is not None and best.signature_id == signature.id, (example, best)
        assert best.category == signature.category and best.operator == signature.operator


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_counter_examples_do_not_match_their_signature(signature):
    for counter in signature.counter_examples:
        assert SET.match_one(signature, counter) is None, counter


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_signature_metadata_follows_clouds_md(signature):
    assert signature.category in CATEGORIES
    assert signature.references, "every signature cites its source row"
    refs = " ".join(signature.references)
    if signature.category not in ("web", "payment"):
        assert "clouds.md" in refs
    if "(U:" in refs:  # how the YAML cites a clouds.md "U" (unverified) row
        assert signature.flag is False, "clouds.md U entries must never flag"
    if signature.confidence == "high":
        assert "C1" in refs, "high confidence needs a C1 (device-side) source"
    if signature.flag is False:
        assert signature.confidence == "low"


# The lab's cloud names (scanner/lab/profiles.py CLOUDS) that are real names must match.
LAB_NAMES = [
    ("storeface-pic.oss-cn-hangzhou.aliyuncs.com", "picture-upload", "Alibaba Cloud OSS"),
    ("iai.tencentcloudapi.com", "face-analytics", "Tencent Cloud face recognition"),
    ("entry.device.serv.ulucu.com", "passenger-flow", "ULUCU"),
    ("v0.api.upyun.com", "picture-upload", "ULUCU picture cloud (UpYun)"),
    ("www.easy4ipcloud.com", "video-cloud", "Dahua Easy4IP"),
    ("en.ezcloud.uniview.com", "video-cloud", "Uniview EZCloud"),
    ("pub-cfg.secu100.net", "vendor-management", "XMEye (Xiongmai)"),
    ("access-dss.secu100.net", "video-cloud", "XMEye (Xiongmai)"),
    ("a2.tuyaus.com", "vendor-management", "Tuya Smart"),
    ("m2.tuyaus.com", "vendor-management", "Tuya Smart"),
    ("litedev.hik-connect.com", "vendor-management", "Hik-Connect (Hikvision)"),
    ("www.baidu.com", "web", "Baidu"),
    ("mail.qq.com", "web", "Tencent QQ"),
    ("www.taobao.com", "web", "Taobao"),
    ("openapi.alipay.com", "payment", "Alipay"),
]


@pytest.mark.parametrize(("host", "category", "operator"), LAB_NAMES)
def test_lab_cloud_names_match_with_the_lab_s_category(host, category, operator):
    found = match_host(host)
    assert found is not None, host
    assert (found.category, found.operator) == (category, operator)
    assert found.flag


@pytest.mark.parametrize("host", [
    "snap.anchang-cloud.example",  # the sales-office private cloud: flagged by behaviour alone
    "mqtt.hik-connect.lab", "relay.hik-connect.lab",  # lab-only names for pushed addresses
    "example.com", "localhost", "", "   ", ".", "com",
])
def test_names_no_signature_knows(host):
    assert match_host(host) is None


def test_the_lab_s_own_profiles_agree():
    from scanner.lab.profiles import CLOUDS

    for endpoint in CLOUDS:
        found = match_host(endpoint.host)
        if endpoint.category == "unknown" or endpoint.host.endswith(".lab"):
            assert found is None, endpoint.host
        else:
            assert found is not None and found.category == endpoint.category, endpoint.host


@pytest.mark.parametrize(("host", "signature_id"), [
    ("alarm.eu.s3.amazonaws.com", "ezviz-picture"),  # beats *.s3.amazonaws.com
    ("bucket.s3.amazonaws.com", "aws-s3"),
    ("api.ai.qq.com", "tencent-face"),  # beats *.qq.com
    ("api.mch.weixin.qq.com", "wechat-pay"),
    ("mp.weixin.qq.com", "tencent-qq-web"),
    ("facebody.cn-shanghai.aliyuncs.com", "alibaba-facebody"),  # not OSS
    ("website.huidian.api.ulucu.com", "ulucu-face-api"),  # beats *.ulucu.com
    ("c2-hd-img.upy-img.static.ulucu.com", "ulucu-picture"),
    ("www.ulucu.com", "ulucu-platform"),
    ("litedev.ezvizlife.com", "hik-connect-device"),  # exact beats api*.ezvizlife.com and *.ezvizlife.com
    ("apiieu.ezvizlife.com", "ezviz-cloud"),
    ("iotaccess.easy4ipcloud.com", "imou-device"),  # exact beats *.easy4ipcloud.com
    ("caps.secu100.net", "xiongmai-cloud-storage"),
    ("pub-status.secu100.net", "xiongmai-cloud"),
    ("ds-ctmu-ningbo-g1-001.ovopark.com", "ovopark-stream"),  # ds-*.ovopark.com beats *.ovopark.com
    ("m2.iotcplatform.com", "tutk-kalay-device"),
    ("m3.iotcplatform.com", "tutk-kalay-platform"),
    ("use1-device-tapo-care.i.tplinknbu.com", "tplink-tapo-care"),  # beats *.tplinknbu.com
])
def test_most_specific_signature_wins(host, signature_id):
    found = match_host(host)
    assert found is not None and found.signature_id == signature_id, found


def test_matching_ignores_case_and_the_trailing_dot():
    found = match_host("  IAI.TencentCloudAPI.com.  ")
    assert found is not None and found.signature_id == "tencent-face"
    assert found.matched == "iai.tencentcloudapi.com"


def test_unverified_entries_are_labels_only():
    for host in ("api.clearview.ai", "open.dolynkcloud.com"):
        found = match_host(host)
        assert found is not None and found.flag is False and found.confidence == "low"


def test_confidence_scores():
    assert match_host("entry.device.serv.ulucu.com").score == 0.9  # type: ignore[union-attr]  # C1
    assert match_host("iai.tencentcloudapi.com").score == 0.7  # type: ignore[union-attr]  # C2
    assert match_host("www.easy4ip.com").score == 0.4  # type: ignore[union-attr]  # I


def test_ports_are_checked_when_given():
    assert match_host("entry.device.serv.ulucu.com", 29023).port_expected is True  # type: ignore[union-attr]
    assert match_host("entry.device.serv.ulucu.com", 443).port_expected is False  # type: ignore[union-attr]
    assert match_host("entry.device.serv.ulucu.com").port_expected is None  # type: ignore[union-attr]
    assert match_host("api.clearview.ai", 443).port_expected is None  # type: ignore[union-attr]  # no ports listed


def test_addresses_match_hard_coded_servers_only():
    found = match_ip("50.19.254.134")
    assert found is not None and found.signature_id == "tutk-kalay-device" and found.pattern == "50.19.254.134/32"
    assert match_ip("182.254.156.98") is not None
    assert match_ip("203.0.113.103") is None
    assert match_ip("2001:db8::1") is None
    assert match_ip("not an address") is None


def test_match_names_prefers_a_flagging_confident_name_and_falls_back_to_the_address():
    best = SET.match_names(["www.ulucu.com", "entry.device.serv.ulucu.com", "unknown.example"])
    assert best is not None and best.signature_id == "ulucu-device"
    assert SET.match_names(["api.clearview.ai", "bucket.s3.amazonaws.com"]).signature_id == "aws-s3"  # type: ignore[union-attr]
    fallback = SET.match_names(["unknown.example"], ip="50.19.254.134")
    assert fallback is not None and fallback.signature_id == "tutk-kalay-device"
    assert SET.match_names([], ip="203.0.113.9") is None


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("*.ulucu.com", "a.b.ulucu.com", True),
    ("*.ulucu.com", "ulucu.com", False),
    ("*.ulucu.com", "xulucu.com", False),
    ("api*.ezvizlife.com", "apiieu.ezvizlife.com", True),
    ("api*.ezvizlife.com", "api.x.ezvizlife.com", False),  # an inner * stays within its label
    ("face.*.myhuaweicloud.com", "face.cn-north-4.myhuaweicloud.com", True),
    ("face.*.myhuaweicloud.com", "face.a.b.myhuaweicloud.com", False),
    ("*.oss-cn-*.aliyuncs.com", "storeface-pic.oss-cn-hangzhou.aliyuncs.com", True),
    ("*.oss-cn-*.aliyuncs.com", "oss-cn-hangzhou.aliyuncs.com", False),
    ("*-devmng.myzmodo.com", "us-devmng.myzmodo.com", True),
    ("v0.api.upyun.com", "v0.api.upyun.com", True),
    ("v0.api.upyun.com", "xv0.api.upyun.com", False),
])
def test_pattern_semantics(pattern, name, matches):
    compiled = compile_pattern(pattern)
    assert not isinstance(compiled, str)
    assert compiled.matches(name) is matches


@pytest.mark.parametrize("pattern", ["*", "*.com", "*.*", "a", "bad label.com", "ex*mple.*", "*.c"])
def test_too_broad_or_malformed_patterns_are_refused(pattern):
    assert isinstance(compile_pattern(pattern), str)


# ---- validation reports every problem at once -----------------------------------------------------------
GOOD = """\
id: good-one
info: {name: Good, references: ["shared/reference/clouds.md §1a (C2)"]}
operator: Good Ltd
category: video-cloud
confidence: medium
hosts: [api.good.example, "*.good.example"]
examples: [api.good.example, x.good.example]
counter-examples: [good.example]
"""


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text, encoding="utf-8")


def test_validation_reports_every_problem(tmp_path: Path):
    write(tmp_path, "good-one.yaml", GOOD)
    write(tmp_path, "wrong-name.yaml", GOOD.replace("id: good-one", "id: other-id")
          .replace("api.good.example, \"*.good.example\"", "other.example")
          .replace("[api.good.example, x.good.example]", "[other.example]").replace("good.example]", "x.example]"))
    write(tmp_path, "bad-fields.yaml", """\
id: bad-fields
info: {name: Bad}
operator: ""
category: face-stuff
confidence: certain
flag: maybe
surprise: 1
hosts: ["*", "bad label.example", ok.example]
ports: [0, http]
ip_ranges: [10.0.0.1/8]
examples: [nope.example]
counter-examples: [ok.example]
""")
    write(tmp_path, "steals.yaml", """\
id: steals
info: {name: Thief, references: [x]}
operator: Thief
category: web
confidence: low
hosts: ["*x.good.example", api.good.example]
examples: [api.good.example]
""")
    write(tmp_path, "broken.yaml", "id: [unclosed\n")
    write(tmp_path, "list.yaml", "- a\n- b\n")
    write(tmp_path, "old.yml", GOOD)
    problems = validate_cloud_signatures(tmp_path)
    text = "\n".join(problems)
    expected = [
        "wrong-name.yaml: file name must be the id: other-id.yaml",
        "bad-fields.yaml: unknown key 'surprise'",
        "bad-fields.yaml: info.references is required",
        "bad-fields.yaml: operator must be a non-empty string",
        "bad-fields.yaml: category 'face-stuff' must be one of",
        "bad-fields.yaml: confidence 'certain' must be one of",
        "bad-fields.yaml: flag must be true or false",
        "bad-fields.yaml: host pattern '*': needs at least two labels",
        "bad-fields.yaml: host pattern 'bad label.example': bad label",
        "bad-fields.yaml: ports: 0 is not a port number",
        "bad-fields.yaml: ports: 'http' is not a port number",
        "bad-fields.yaml: ip_ranges: 10.0.0.1/8 has host bits set",
        "steals.yaml: host 'api.good.example' is also listed in good-one.yaml",
        "good-one.yaml: example 'x.good.example' is taken by steals (*x.good.example)",
        "steals.yaml: example 'api.good.example' is taken by good-one",
        "broken.yaml: cannot read",
        "list.yaml: the file must hold one mapping",
        "old.yml: use the .yaml extension",
    ]
    for line in expected:
        assert line in text, f"missing problem: {line}\n--- got:\n{text}"
    with pytest.raises(CloudSignatureError) as raised:
        load_cloud_signatures(tmp_path)
    assert raised.value.problems == problems
    assert f"{len(problems)} cloud signature problems" in str(raised.value)


def test_example_and_counter_example_failures_are_reported(tmp_path: Path):
    write(tmp_path, "good-one.yaml", GOOD.replace("[api.good.example, x.good.example]", "[api.good.example, nope.test]")
          .replace("counter-examples: [good.example]", "counter-examples: [y.good.example]"))
    problems = validate_cloud_signatures(tmp_path)
    assert problems == [
        "good-one.yaml: example 'nope.test' does not match its own signature",
        "good-one.yaml: counter-example 'y.good.example' matches",
    ]


def test_a_missing_or_empty_directory_is_a_problem(tmp_path: Path):
    assert validate_cloud_signatures(tmp_path / "absent")[0].endswith("no such directory")
    assert validate_cloud_signatures(tmp_path) == [f"{tmp_path}: no cloud signature files"]


def test_a_set_built_from_signatures_directly():
    subset = CloudSignatureSet([s for s in SIGNATURES if s.id in ("aws-s3", "ezviz-picture")])
    assert subset.match_host("alarm.eu.s3.amazonaws.com").signature_id == "ezviz-picture"  # type: ignore[union-attr]
    assert subset.match_host("iai.tencentcloudapi.com") is None
    assert len(subset) == 2 and subset.by_id("aws-s3") is not None


@pytest.mark.parametrize(("port", "signature_id", "operator", "category"), [
    (29023, "ulucu-device", "ULUCU", "passenger-flow"),  # clouds.md §1a: ULUCU load balancer, TCP 29023
    (8800, "dahua-p2p", "Dahua Easy4IP or Dahua P2P", "video-cloud"),  # two operators, one category
    (8666, "hik-connect-device", "EZVIZ (Hikvision) or Hik-Connect (Hikvision)", "vendor-management"),
])
def test_distinctive_ports_name_a_destination_with_low_confidence(port, signature_id, operator, category):
    found = SET.match_port(port)
    assert found is not None
    assert (found.signature_id, found.operator, found.category) == (signature_id, operator, category)
    assert found.by_port and found.confidence == "low" and found.score == 0.4
    assert found.matched == f"port {port}" and "port-only match" in found.evidence_detail


@pytest.mark.parametrize("port", [443, 80, 53, 8080, 8000, 1883, 8883, 5060, 12345])
def test_general_purpose_and_unknown_ports_name_nothing(port):
    assert SET.match_port(port) is None


def test_a_port_shared_by_operators_of_different_categories_names_nothing():
    # 29023 is ULUCU's alone; listing it for an unrelated operator in another category makes it ambiguous.
    other = next(s for s in SIGNATURES if s.id == "tencent-face")
    ulucu = [s for s in SIGNATURES if 29023 in s.ports]
    from dataclasses import replace

    mixed = CloudSignatureSet([*ulucu, replace(other, ports=(29023,))])
    assert mixed.match_port(29023) is None
    assert CloudSignatureSet(ulucu).match_port(29023) is not None
