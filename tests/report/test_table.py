"""The terminal tables: a hostile device name can neither style the output nor drive the terminal."""

from __future__ import annotations

import io

from rich.console import Console

from scanner.models import Finding
from scanner.report.table import print_clouds, print_devices, print_findings, short_legal
from tests.report.sample import PIPL_26, PIPL_28, sample_result


def render(fn, *args, colour: bool = True) -> str:
    buffer = io.StringIO()
    # a colour terminal: any markup a device smuggled in would come out as escape sequences
    console = Console(file=buffer, width=400, force_terminal=colour, color_system="standard" if colour else None)
    fn(console, *args)
    return buffer.getvalue()


def test_device_strings_are_shown_literally_and_inert():
    result = sample_result()
    for text in (render(print_devices, result), render(print_clouds, result),
                 render(print_findings, result.findings)):
        assert "\x1b]" not in text  # no OSC (hyperlink/title) sequence
    devices = render(print_devices, result)
    assert "<script>alert('x')</script>" in devices
    assert '=HYPERLINK("http://evil.example/","click")' in devices
    clouds = render(print_clouds, result)
    assert "<script>alert('x')</script>" in clouds  # the hostile operator name, as text
    findings = render(print_findings, result.findings)
    assert "<script>alert('x')</script>" in findings


def test_markup_and_escape_sequences_in_a_name_do_not_reach_the_terminal():
    result = sample_result()
    hostile = result.devices[2]
    hostile.model = "\x1b[2J\x1b]0;pwned\x07[red]RED[/red]"
    text = render(print_devices, result)
    assert "\x1b[2J" not in text and "\x07" not in text
    assert "\\x1b[2J\\x1b]0;pwned\\x07[red]RED[/red]" in text  # visible, escaped, markup left as text


def test_findings_worst_first_with_legal_references_grouped_by_law():
    result = sample_result()
    text = render(print_findings, list(reversed(result.findings)), "en", colour=False)
    high, medium, low = (text.index(ip) for ip in ("198.51.100.44", "198.51.100.66", "198.51.100.250"))
    assert high < medium < low
    assert "3 findings: 1 high, 1 medium, 1 low" in text
    assert short_legal(Finding("x", "high", "k", "t", legal=[PIPL_26, PIPL_28])) == "PIPL Art. 26, Art. 28"
    assert render(print_findings, [], "zh").strip() == "未发现问题。"


def test_destinations_without_traffic_say_where_they_come_from_not_none():
    from rich.console import Console

    from scanner.models import CloudLink, Device, ScanInfo, ScanResult
    from scanner.report.table import print_clouds

    platform = CloudLink(host=None, ip=None, port=None, operator="Hik-Connect (Hikvision)",
                         category="vendor-management", source="discovery")
    channel = CloudLink(host=None, ip="203.0.113.106", port=29023, operator="ULUCU", category="passenger-flow",
                        source="observed", behaviour="heartbeat")
    device = Device(ip="198.51.100.44", clouds=[platform, channel])
    console = Console(width=200, record=True)
    print_clouds(console, ScanResult(scan=ScanInfo(targets=[], started=0.0), devices=[device]))
    text = console.export_text()
    assert "None" not in text
    assert "(address not known)" in text and "(discovery)" in text
    assert "203.0.113.106:29023" in text and "heartbeat" in text
