"""Whatever a device puts in its name, model or cloud host (any code point, lone surrogates, control
characters, markup), every renderer finishes, the HTML seal verifies and stays escaped, and the CSV
parses back with no formula cell."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from scanner.models import CloudLink, Device, Finding, ScanInfo, ScanResult
from scanner.report.csv import csv_text
from scanner.report.html import render_html, verify
from scanner.report.output import print_tables
from tests.report.test_html import Dom

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)  # surrogates and controls too
MARKUP = st.sampled_from(["<script>x</script>", "</pre><b>", "&amp;", "\"'><svg onload=1>", "=cmd|'/c'!A1",
                          "[bold]x[/]", "\x1b[2J", "\x00", "\ud800"])
HOSTILE = st.one_of(ANY_TEXT, MARKUP, st.tuples(MARKUP, ANY_TEXT).map("".join))


@settings(max_examples=60, deadline=None)
@given(name=HOSTILE, model=HOSTILE, host=HOSTILE, title=HOSTILE, law=HOSTILE)
def test_any_device_string_renders_safely(name, model, host, title, law):
    device = Device(ip="198.51.100.9", vendor=name, model=model, hostname=name, is_camera=True,
                    clouds=[CloudLink(host=host, ip="203.0.113.9", port=443, operator=name, category="unknown",
                                      source="observed", behaviour="snapshot-upload", uploads=3,
                                      timeline=[[1.0e9, 5000.0], [1.0e9 + 5, 7000.0]])])
    finding = Finding("198.51.100.9", "high", "face-upload", title, legal=[{"law": law, "article": model}])
    result = ScanResult(scan=ScanInfo(targets=[host], started=1.0e9), devices=[device], findings=[finding])

    html = render_html(result, lang="zh", signatures={})
    html.encode("utf-8")
    printed, recomputed = verify(html)
    assert printed == recomputed
    dom = Dom.of(html)
    assert not dom.tags("script") and not any(k.startswith("on") for _, attrs in dom.elements for k in attrs)

    rows = list(csv.DictReader(io.StringIO(csv_text(result))))
    assert [r["record"] for r in rows] == ["cloud", "finding"]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row.values())

    buffer = io.StringIO()
    print_tables(result, Console(file=buffer, width=200, force_terminal=True), "en")
    assert "\x1b[2J" not in buffer.getvalue() and "\x00" not in buffer.getvalue()
