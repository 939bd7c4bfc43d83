"""The HTML report: self-contained, escapes every device string, seals its evidence with a SHA-256
that can be recomputed from the file alone, draws a timeline per uploading device, speaks en/zh."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser

import pytest

from scanner.models import ScanInfo, ScanResult
from scanner.report import i18n
from scanner.report.html import CaseInfo, evidence_block, render_html, verify
from tests.report.sample import HOSTILE_NAME, T0, capture_result, face_camera, sample_result

CASE = CaseInfo(premises="Xpeng store, 100 Huaihai Rd", operator="Inspector Li", case_id="SH-2025-0042")
SIGNATURES = {"device_signatures": "106", "cloud_signatures": "56", "version": "ccd47f76220a"}


class Dom(HTMLParser):
    """Every element with its attributes, the text of each element by id, and all text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self._tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in ("br", "meta", "line", "rect"):
            self._tags.append(tag)

    def handle_endtag(self, tag):
        if self._tags and self._tags[-1] == tag:
            self._tags.pop()

    def handle_data(self, data):
        (self.style if self._tags and self._tags[-1] == "style" else self.text).append(data)

    @classmethod
    def of(cls, html: str) -> Dom:
        dom = cls()
        dom.feed(html)
        dom.close()
        return dom

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def render(result: ScanResult | None = None, lang: str = "en") -> str:
    return render_html(result or sample_result(), lang=lang, case=CASE, signatures=SIGNATURES, generated=T0 + 100)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_report_is_self_contained(lang):
    dom = Dom.of(render(sample_result(), lang))
    assert not dom.tags("script") and not dom.tags("link") and not dom.tags("iframe") and not dom.tags("img")
    for _tag, attrs in dom.elements:
        for name, value in attrs.items():
            assert not (name.startswith("on")), (name, value)  # no event handlers: no script at all
            if name in ("src", "href", "action", "xlink:href", "srcset", "poster", "data"):
                assert value is not None and value.startswith("#"), (name, value)  # in-page anchors only
    css = "".join(dom.style)
    assert "url(" not in css and "@import" not in css
    assert dom.tags("style") and dom.tags("svg")  # styles and plots are inline


def test_hostile_device_strings_are_text_not_markup():
    html = render()
    dom = Dom.of(html)
    assert not dom.tags("script") and not dom.tags("img")
    assert HOSTILE_NAME in dom.all_text  # shown, as text
    assert "<img src=http://evil.example/x.png>" in dom.all_text
    assert "\x1b" not in html and "\\x1b[31mRED" in dom.all_text  # terminal escapes made visible
    assert "\\udcff" in dom.all_text  # a lone surrogate cannot break the UTF-8 file
    html.encode("utf-8")


def test_sealed_evidence_recomputes_from_the_file_and_detects_tampering(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render(), encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    printed, recomputed = verify(text)
    assert len(printed) == 64 and printed == recomputed
    # the block is the canonical JSON of the case and the whole result document
    block = evidence_block(sample_result(), CASE)
    assert hashlib.sha256(block.encode()).hexdigest() == printed
    sealed = json.loads(block)
    assert sealed["case"] == {"premises": CASE.premises, "operator": CASE.operator, "case_id": CASE.case_id}
    assert [d["ip"] for d in sealed["result"]["devices"]] == ["198.51.100.30", "198.51.100.44", "198.51.100.66"]
    assert sealed["result"]["findings"][0]["legal"][0]["article"] == "Art. 26"
    # change one picture count inside the evidence block: the printed digest no longer matches
    tampered = text.replace('"uploads": 31', '"uploads": 3', 1)
    assert tampered != text
    printed2, recomputed2 = verify(tampered)
    assert printed2 == printed and recomputed2 != printed


def test_the_seal_is_stable_and_covers_case_fields():
    assert evidence_block(sample_result(), CASE) == evidence_block(sample_result(), CASE)
    other = CaseInfo(premises=CASE.premises, operator="someone else", case_id=CASE.case_id)
    assert evidence_block(sample_result(), other) != evidence_block(sample_result(), CASE)
    # the time the report was rendered is not evidence: the seal does not change with it
    a = render_html(sample_result(), case=CASE, signatures=SIGNATURES, generated=T0)
    b = render_html(sample_result(), case=CASE, signatures=SIGNATURES, generated=T0 + 3600)
    assert verify(a)[0] == verify(b)[0]


def test_report_sections_carry_case_scan_tool_and_findings():
    dom = Dom.of(render())
    text = dom.all_text
    for value in (CASE.premises, CASE.operator, CASE.case_id, "198.51.100.0/24", "eth0", "254", "ARP as root",
                  "0.1.0", "ccd47f76220a", "106 device signatures", "56 cloud signatures",
                  "iDS-2CD7A46G0-IZHS", "V5.7.3 build 220112", "storeface-pic.oss-cn-hangzhou.aliyuncs.com:443",
                  "Face-capture camera uploads pictures to a third-party cloud", "PIPL) Art. 26", "CRPL art. 29 para 1",
                  "UNCERTAIN: wording as reported",
                  "https://personalinformationprotectionlaw.com/PIPL/article-26/", "SADP Inquiry reply DeviceType"):
        assert value in text, value
    ids = {attrs.get("id") for _, attrs in dom.elements}
    assert {"case", "scan", "tool", "summary", "findings", "devices", "evidence", "sealed-evidence",
            "evidence-sha256"} <= ids
    # findings are worst first and link to their device card
    rows = [attrs.get("class") for attrs in dom.tags("tr") if "finding" in (attrs.get("class") or "")]
    assert rows == ["finding finding-high", "finding finding-medium", "finding finding-low"]
    links = [a["href"] for a in dom.tags("a")]
    assert links[:2] == ["#device-0", "#device-1"]  # the high finding's device is the first card
    cards = [attrs["id"] for attrs in dom.tags("div") if "device" in (attrs.get("class") or "").split()]
    assert cards == ["device-0", "device-1", "device-2"]


def test_a_timeline_bar_per_upload_burst_only_for_devices_with_bursts():
    camera = face_camera()
    html = render(ScanResult(scan=ScanInfo(targets=["x"], started=T0), devices=[camera]))
    dom = Dom.of(html)
    svgs = dom.tags("svg")
    assert len(svgs) == 1
    assert len(dom.tags("rect")) == len(camera.clouds[0].timeline) == 30  # the heartbeat has no bursts: no row
    heights = [float(r["height"] or 0) for r in dom.tags("rect")]
    assert max(heights) > min(heights) > 0  # bar height follows the bytes of the burst
    # the hostile device's malformed timeline entries are skipped, its two good bursts drawn
    hostile = Dom.of(render())
    assert len(hostile.tags("svg")) == 2 and len(hostile.tags("rect")) == 30 + 2
    # a device without uploads gets no plot
    camera.clouds = []
    assert not Dom.of(render(ScanResult(scan=ScanInfo(targets=["x"], started=T0), devices=[camera]))).tags("svg")


def test_chinese_report_uses_chinese_labels():
    dom = Dom.of(render(lang="zh"))
    assert dom.tags("html")[0]["lang"] == "zh-CN"
    for label in ("现场检查报告", "检查场所", "扫描参数", "发现的问题", "法律依据", "上传时间线", "证据固定", "高"):
        assert label in dom.all_text, label
    assert "Scan parameters" not in dom.all_text


def test_every_label_exists_in_both_languages():
    missing = [(lang, key) for key in i18n.keys() for lang in i18n.LANGS if not i18n.has(lang, key)]
    assert missing == []


def test_unknown_language_is_refused():
    with pytest.raises(ValueError):
        render_html(sample_result(), lang="fr", signatures=SIGNATURES)


def test_a_capture_analysed_by_camsweep_renders_with_its_measured_uploads():
    result = capture_result()
    uploaders = [d for d in result.devices if any(c.behaviour == "snapshot-upload" for c in d.clouds)]
    assert len(uploaders) == 4
    html = render(result)
    printed, recomputed = verify(html)
    assert printed == recomputed
    dom = Dom.of(html)
    for device in uploaders:
        link = next(c for c in device.clouds if c.behaviour == "snapshot-upload")
        assert f"{link.host or link.ip}:{link.port}" in dom.all_text
    # every uploading device gets a timeline of its bursts, as measured on the wire
    assert len(dom.tags("svg")) >= len(uploaders)


def test_empty_result_and_result_read_from_a_broken_file_still_render():
    empty = ScanResult(scan=ScanInfo(targets=[], started=0.0))
    assert verify(render(empty))[0] == verify(render(empty))[1]
    doc = sample_result().to_dict()
    doc["devices"][1]["clouds"][0]["timeline"] = "not a list"
    doc["devices"][1]["clouds"][0]["first_seen"] = "yesterday"
    doc["findings"][0]["legal"] = ["PIPL", None, {"law": 7}]
    doc["findings"][0]["confidence"] = "high"
    doc["scan"]["finished"] = float("nan")
    html = render(ScanResult.from_dict(doc))
    assert verify(html)[0] == verify(html)[1]
