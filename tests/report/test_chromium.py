"""The HTML report in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright;
no browser is ever downloaded): it loads from file:// without a single other request, renders
(full-page screenshot), and shows the premises, device cards, a high finding with its legal
reference, the upload timeline and the SHA-256 of the evidence, in English and in Chinese (with
a CJK font actually used for the Chinese text).

Chromium missing is a failure, not a skip: tests/run.sh installs it (root, apt-get).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from scanner.report.html import CaseInfo, render_html, verify
from tests.report.sample import capture_result

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CJK_FONTS = re.compile(r"CJK|Source Han|WenQuanYi|YaHei|PingFang|Droid Sans Fallback|AR PL|Hei|Song|Kai", re.I)
CASES = {
    "en": CaseInfo(premises="Xpeng showroom, 100 Huaihai Road, Shanghai", operator="Inspector Li",
                   case_id="SH-XH-2021-117"),
    "zh": CaseInfo(premises="上海市徐汇区某汽车展厅", operator="李检查员", case_id="沪徐市监案〔2021〕117号"),
}
HEADINGS = {"en": "camsweep inspection report", "zh": "现场检查报告"}
LEGAL_LABEL = {"en": "Legal references", "zh": "法律依据"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (tests/run.sh does, as root); "
                    "the HTML report must be checked in a real browser")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (PNG spec 11.2.2)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def open_report(browser: Browser, html: str, path) -> tuple[Page, list[str]]:
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests


def fonts_for(page: Page, selector: str) -> list[dict[str, object]]:
    """The platform fonts Chromium used to draw the text of ``selector`` (DevTools CSS domain)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return list(cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_renders_in_chromium_with_its_key_content_visible(browser, tmp_path, lang):
    result = capture_result()
    case = CASES[lang]
    html = render_html(result, lang=lang, case=case)
    page, requests = open_report(browser, html, tmp_path / f"report-{lang}.html")
    try:
        # nothing but the file itself was requested: no font, image, style or script from anywhere
        assert requests == [(tmp_path / f"report-{lang}.html").as_uri()]

        shot = page.screenshot(path=str(tmp_path / f"report-{lang}.png"), full_page=True)
        width, height = png_size(shot)
        assert width >= 1280 and height > 2000 and len(shot) > 100_000, (width, height, len(shot))

        assert HEADINGS[lang] in page.locator("h1").inner_text()
        assert page.locator("#case").get_by_text(case.premises or "").is_visible()
        assert page.locator("#case").get_by_text(case.case_id or "").is_visible()

        # the worst finding: high, visible, with its legal references and a link to its device card
        high = page.locator("tr.finding-high").first
        assert high.is_visible()
        assert LEGAL_LABEL[lang] in page.locator("#findings").inner_text()
        assert "Art. 26" in high.inner_text() and "personalinformationprotectionlaw.com" in high.inner_text()
        target = high.locator("a").get_attribute("href")
        card = page.locator(target or "#missing")
        assert card.is_visible()
        finding_ip = high.locator("a").inner_text()
        assert finding_ip in card.locator("h3").inner_text()

        # the device's upload timeline is drawn: a visible SVG with one bar per burst
        timeline = card.locator("svg.timeline")
        assert timeline.is_visible()
        box = timeline.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 40
        device = next(d for d in result.devices if d.ip == finding_ip)
        bursts = sum(len(c.timeline) for c in device.clouds)
        assert bursts > 0 and timeline.locator("rect").count() == bursts

        # the seal: printed, visible, and the browser's own text of the evidence block hashes to it
        printed = page.locator("#evidence-sha256")
        assert printed.is_visible()
        digest = printed.inner_text().strip()
        assert digest == verify(html)[0] == verify(html)[1]
        block = page.evaluate("document.getElementById('sealed-evidence').textContent")
        assert hashlib.sha256(block.encode("utf-8")).hexdigest() == digest

        if lang == "zh":
            used = fonts_for(page, "h1")
            assert any(CJK_FONTS.search(str(f["familyName"])) and int(str(f["glyphCount"])) > 0 for f in used), used
    finally:
        page.close()
