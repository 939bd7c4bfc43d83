"""A self-contained HTML report an inspector can attach to a case file (``--html PATH``).

One file, inline CSS, inline SVG, no JavaScript and no external URL (legal references print
their address as text, never as a link). Sections: case fields (premises, operator, case id),
scan parameters, tool and signature versions, a summary, the findings with their legal
references, one card per device (identity, services, clouds, an SVG timeline of its upload
bursts, the evidence each claim rests on), and the sealed evidence.

The sealed evidence is the canonical JSON (sorted keys, one-space indent, UTF-8) of
``{"case": ..., "result": <result document>}`` inside ``<pre id="sealed-evidence">``; its SHA-256
over the UTF-8 bytes of that text is printed in the report (``id="evidence-sha256"``) and can be
recomputed from the file alone (``verify``). Every string that came from a device or a file is
HTML-escaped: a device named ``<script>`` shows as that text.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from typing import Any

import scanner
from scanner.models import SEVERITIES, CloudLink, Device, Evidence, Finding, ScanResult
from scanner.report.csv import legal_reference
from scanner.report.fmt import clean, clean_tree, human_bytes, number, signature_info, when
from scanner.report.i18n import LANGS, severity_label, text

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class CaseInfo:
    """What the inspector types in: where, who, which case (all optional)."""

    premises: str | None = None
    operator: str | None = None
    case_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"premises": self.premises, "operator": self.operator, "case_id": self.case_id}


# ---- the sealed evidence -----------------------------------------------------------------------
def evidence_block(result: ScanResult, case: CaseInfo | None = None) -> str:
    """The canonical evidence text: stable for the same result and case fields."""
    doc = clean_tree({"case": (case or CaseInfo()).as_dict(), "result": result.to_dict()})
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def digest(block: str) -> str:
    return hashlib.sha256(block.encode("utf-8")).hexdigest()


class _SealReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.block: list[str] = []
        self.printed: list[str] = []
        self._into: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if self._into is not None:
            self._depth += 1
        elif ident == "sealed-evidence":
            self._into, self._depth = self.block, 0
        elif ident == "evidence-sha256":
            self._into, self._depth = self.printed, 0

    def handle_endtag(self, tag: str) -> None:
        if self._into is None:
            return
        if self._depth == 0:
            self._into = None
        else:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            self._into.append(data)


def verify(html_text: str) -> tuple[str, str]:
    """(the SHA-256 printed in a report, the SHA-256 recomputed from its evidence block)."""
    reader = _SealReader()
    reader.feed(html_text)
    reader.close()
    return "".join(reader.printed).strip(), digest("".join(reader.block))


# ---- rendering -----------------------------------------------------------------------------------
_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei","Helvetica Neue",Arial,sans-serif;margin:0;color:#1d2230;background:#f4f5f7;font-size:14px}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid #d0d4dc;
padding-bottom:4px}h3{font-size:16px;margin:0 0 8px}h4{font-size:14px;margin:14px 0 6px}
section,.card{background:#fff;border:1px solid #d0d4dc;border-radius:6px;padding:14px 18px;margin:12px 0}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;vertical-align:top;
padding:4px 8px;border-bottom:1px solid #e3e6eb;overflow-wrap:break-word}td.dest{overflow-wrap:anywhere}
th{background:#eef0f4;font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.kv dt{color:#5a6172}
dl.kv dd{margin:0;word-break:break-word}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.sev-high{background:#c0262d}.sev-medium{background:#d9822b}.sev-low{background:#3d7cc9}.sev-info{background:#7a8190}
.card.worst-high{border-left:6px solid #c0262d}.card.worst-medium{border-left:6px solid #d9822b}
.card.worst-low{border-left:6px solid #3d7cc9}
td.ip{white-space:nowrap}.face{color:#c0262d;font-weight:600}.muted{color:#5a6172}.digest{font-family:monospace;font-size:13px;
background:#fff7d6;border:1px solid #e6cf6e;padding:6px 10px;border-radius:4px;word-break:break-all}
pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#f7f7f9;padding:8px;margin:0}
.legal li{margin-bottom:4px}.note{color:#8a5a00;font-size:12px}.url{color:#5a6172;font-size:12px;word-break:break-all}
.summary span{display:inline-block;margin-right:22px;font-size:15px}.summary b{font-size:20px}
svg.timeline{background:#fbfbfc;border:1px solid #e3e6eb;max-width:100%;height:auto}
@media print{body{background:#fff}section,.card{break-inside:avoid}}
"""


def _e(value: object) -> str:
    """Escaped, cleaned text of any value (None -> empty)."""
    if value is None:
        return ""
    return escape(clean(value), quote=True)


def _display(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(clean_tree(value), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _yes_no(lang: str, value: bool | None) -> str:
    if value is None:
        return text(lang, "unknown")
    return text(lang, "yes") if value else text(lang, "no")


def _sev(lang: str, severity: str) -> str:
    css = severity if severity in _SEVERITY_RANK else "info"
    return f'<span class="sev sev-{css}">{_e(severity_label(lang, severity))}</span>'


def _kv(lang: str, pairs: list[tuple[str, str]]) -> str:
    """A definition list; values are already-escaped HTML."""
    rows = "".join(f"<dt>{_e(text(lang, key))}</dt><dd>{value}</dd>" for key, value in pairs)
    return f'<dl class="kv">{rows}</dl>'


def _legal(refs: list[Any]) -> str:
    """The legal references (dicts from the assessment, or anything a result file holds) as a list."""
    items = []
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        head = clean(legal_reference(ref))
        juris = f' <span class="muted">[{_e(ref.get("jurisdiction"))}]</span>' if ref.get("jurisdiction") else ""
        summary = f" — {_e(ref.get('summary'))}" if ref.get("summary") else ""
        note = f'<div class="note">{_e(ref.get("note"))}</div>' if ref.get("note") else ""
        url = f'<div class="url">{_e(ref.get("url"))}</div>' if ref.get("url") else ""  # text, never a link
        items.append(f"<li><b>{escape(head)}</b>{juris}{summary}{note}{url}</li>")
    return f'<ul class="legal">{"".join(items)}</ul>' if items else ""


def _worst(findings: list[Finding]) -> str | None:
    ranked = sorted((_SEVERITY_RANK.get(f.severity, len(SEVERITIES)), f.severity) for f in findings)
    return ranked[0][1] if ranked and ranked[0][1] in _SEVERITY_RANK else None


def _dest(link: CloudLink) -> str:
    target = link.host or link.ip or "?"
    return f"{target}:{link.port}" if link.port is not None else str(target)


def _bursts(link: CloudLink) -> list[tuple[float, float]]:
    """The link's timeline as (time, bytes) pairs; malformed entries (files from elsewhere) are skipped."""
    points = []
    for entry in link.timeline if isinstance(link.timeline, list) else []:
        if not isinstance(entry, list | tuple) or len(entry) < 2:
            continue
        at, size = number(entry[0]), number(entry[1])
        if at is not None and size is not None and size >= 0:
            points.append((at, size))
    return sorted(points)


def timeline_svg(device: Device, lang: str) -> str:
    """One inline SVG per device: a row per cloud destination with upload bursts, a bar per burst."""
    rows = [(link, _bursts(link)) for link in device.clouds]
    rows = [(link, points) for link, points in rows if points]
    if not rows:
        return ""
    start = min(p[0][0] for _, p in rows)
    end = max(p[-1][0] for _, p in rows)
    span = max(end - start, 1.0)
    biggest = max(size for _, points in rows for _, size in points) or 1.0
    left, plot_w, row_h, top = 10, 860, 64, 4
    width = left + plot_w + 10
    height = top + row_h * len(rows) + 30
    parts = [f'<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_e(text(lang, "timeline"))} {_e(device.ip)}">']
    for index, (link, points) in enumerate(rows):
        base = top + row_h * (index + 1) - 4
        total = human_bytes(sum(size for _, size in points))
        parts.append(f'<text x="{left}" y="{base - row_h + 18}" font-size="12" fill="#1d2230">{_e(_dest(link))} '
                     f'<tspan fill="#5a6172">· {_e(link.behaviour or "")} · {len(points)} · {_e(total)}</tspan></text>')
        parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#9aa1ad"/>')
        colour = "#c0262d" if link.behaviour == "snapshot-upload" else "#3d7cc9"
        for at, size in points:
            x = left + (at - start) / span * (plot_w - 3)
            h = max(2.0, size / biggest * (row_h - 28))
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="3" height="{h:.1f}" fill="{colour}">'
                         f"<title>{_e(when(at))} · {_e(human_bytes(size))}</title></rect>")
    axis = top + row_h * len(rows) + 16
    parts.append(f'<text x="{left}" y="{axis}" font-size="11" fill="#5a6172">{_e(when(start))}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{axis}" font-size="11" fill="#5a6172" text-anchor="end">'
                 f"{_e(when(end))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _evidence_table(lang: str, items: list[Evidence]) -> str:
    if not items:
        return ""
    head = "".join(f"<th>{_e(text(lang, k))}</th>" for k in ("source", "field", "value", "confidence", "detail"))
    body = []
    for ev in items:
        where = f" ({_e(ev.protocol or '')}{'/' if ev.protocol and ev.port else ''}{_e(ev.port or '')})" \
            if ev.port or ev.protocol else ""
        conf = number(ev.confidence)
        body.append(f"<tr><td>{_e(ev.source)}{where}</td><td>{_e(ev.field)}</td><td>{_e(_display(ev.value))}</td>"
                    f"<td>{'' if conf is None else f'{conf:.2f}'}</td><td>{_e(ev.detail)}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _seen(link: CloudLink) -> str:
    """``2025-03-01 14:03:07 +0800 – 14:05:10`` (the date and offset of the end only when they differ)."""
    first, last = when(link.first_seen), when(link.last_seen)
    if not first or not last or first == last:
        return first or last
    if first[:10] == last[:10] and first[-5:] == last[-5:]:
        last = last[11:19]
    return f"{first} – {last}"


def _clouds_table(lang: str, device: Device) -> str:
    if not device.clouds:
        return ""
    keys = ("destination", "cloud_operator", "category", "source", "behaviour", "pictures", "bytes_up",
            "bytes_down", "seen")
    head = "".join(f"<th>{_e(text(lang, k))}</th>" for k in keys)
    body = []
    for link in sorted(device.clouds, key=lambda c: -(number(c.bytes_up) or 0)):
        behaviour = _e(link.behaviour or "")
        if link.behaviour == "snapshot-upload":
            behaviour = f'<span class="face">{behaviour}</span>'
        cells = [_e(_dest(link)), _e(link.operator or "?"), _e(link.category), _e(link.source), behaviour,
                 _e(link.uploads or ""), _e(human_bytes(link.bytes_up)), _e(human_bytes(link.bytes_down)),
                 _e(_seen(link))]
        body.append(f'<tr><td class="dest">{cells[0]}</td>' + "".join(f"<td>{c}</td>" for c in cells[1:]) + "</tr>")
    return f"<h4>{_e(text(lang, 'clouds'))}</h4><table><tr>{head}</tr>{''.join(body)}</table>"


def _findings_table(lang: str, findings: list[Finding], anchors: dict[str, str]) -> str:
    if not findings:
        return f"<p>{_e(text(lang, 'no_findings'))}</p>"
    head = "".join(f"<th>{_e(text(lang, k))}</th>" for k in ("severity", "device", "title", "confidence", "legal"))
    body = []
    ordered = sorted(findings, key=lambda f: (_SEVERITY_RANK.get(f.severity, len(SEVERITIES)), str(f.device_ip)))
    for finding in ordered:
        anchor = anchors.get(str(finding.device_ip))
        device = (f'<a href="#{anchor}">{_e(finding.device_ip)}</a>' if anchor else _e(finding.device_ip))
        conf = number(finding.confidence)
        body.append(f'<tr class="finding finding-{_e(finding.severity)}"><td>{_sev(lang, finding.severity)}</td>'
                    f'<td class="ip">{device}</td><td><b>{_e(finding.title)}</b>'
                    f'<div class="muted">{_e(finding.kind)}</div>'
                    f"</td><td>{'' if conf is None else f'{conf:.2f}'}</td><td>{_legal(finding.legal)}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _device_card(lang: str, device: Device, anchor: str, findings: list[Finding]) -> str:
    worst = _worst(findings)
    face = _e(_yes_no(lang, device.face_capable))
    if device.face_capable:
        face = f'<span class="face">{face}</span>'
    pairs = [("ip", _e(device.ip)), ("mac", _e(device.mac)), ("vendor", _e(device.vendor)),
             ("brand", _e(device.brand)), ("model", _e(device.model)), ("firmware", _e(device.firmware)),
             ("serial", _e(device.serial)), ("hostname", _e(device.hostname)),
             ("device_type", _e(device.device_type)), ("is_camera", _e(_yes_no(lang, bool(device.is_camera)))),
             ("face_capable", face)]
    if device.face_capture_enabled is not None:
        pairs.append(("face_capture_enabled", _e(_yes_no(lang, device.face_capture_enabled))))
    pairs = [(k, v) for k, v in pairs if v]
    services = ", ".join(f"{_e(s.port)}/{_e(s.transport)} {_e(s.protocol)}" for s in device.services)
    if services:
        pairs.append(("services", services))
    name = " ".join(clean(x) for x in (device.vendor, device.model) if x)
    title = f"{_e(device.ip)}" + (f" — {escape(name)}" if name else "")
    parts = [f'<div class="card device{f" worst-{worst}" if worst else ""}" id="{anchor}">', f"<h3>{title}</h3>",
             _kv(lang, pairs)]
    if findings:
        parts.append(f"<h4>{_e(text(lang, 'findings'))}</h4><ul>")
        for finding in findings:
            parts.append(f"<li>{_sev(lang, finding.severity)} {_e(finding.title)}</li>")
        parts.append("</ul>")
    parts.append(_clouds_table(lang, device))
    svg = timeline_svg(device, lang)
    if svg:
        parts.append(f"<h4>{_e(text(lang, 'timeline'))}</h4>{svg}"
                     f'<div class="muted">{_e(text(lang, "timeline_caption"))}</div>')
    if device.evidence:
        parts.append(f"<h4>{_e(text(lang, 'evidence'))}</h4>{_evidence_table(lang, device.evidence)}")
    parts.append("</div>")
    return "".join(parts)


def _tool_section(lang: str, result: ScanResult, signatures: dict[str, str]) -> str:
    produced = " ".join(clean(result.tool.get(k, "")) for k in ("name", "version") if result.tool.get(k))
    installed = []
    if "device_signatures" in signatures:
        installed.append(f"{signatures['device_signatures']} {text(lang, 'device_signatures')}")
    if "cloud_signatures" in signatures:
        installed.append(f"{signatures['cloud_signatures']} {text(lang, 'cloud_signatures')}")
    if signatures.get("version"):
        installed.append(f"{text(lang, 'version')} {signatures['version']}")
    errors = [v for k, v in signatures.items() if k.endswith("_error")]
    if errors:
        installed.append(f"{text(lang, 'unavailable')}: {'; '.join(errors)}")
    pairs = [("tool_version", _e(scanner.__version__)), ("result_tool", _e(produced)),
             ("signatures_used", _e(result.tool.get("signatures_version") or text(lang, "unknown"))),
             ("signatures_installed", _e(", ".join(installed)))]
    return f'<section id="tool"><h2>{_e(text(lang, "tool"))}</h2>{_kv(lang, pairs)}</section>'


def _scan_section(lang: str, result: ScanResult) -> str:
    scan = result.scan
    started, finished = number(scan.started), number(scan.finished)
    pairs = [("targets", _e(", ".join(clean(t) for t in scan.targets))), ("started", _e(when(scan.started)))]
    if finished is not None:
        pairs.append(("finished", _e(when(finished))))
        if started is not None:
            pairs.append(("duration", _e(f"{finished - started:.1f} s")))
    if scan.iface:
        pairs.append(("interface", _e(scan.iface)))
    if scan.hosts_scanned:
        pairs.append(("hosts_scanned", _e(scan.hosts_scanned)))
    if scan.options:
        pairs.append(("options", "<br>".join(f"{_e(k)} = {_e(_display(v))}" for k, v in sorted(scan.options.items()))))
    if scan.notes:
        pairs.append(("notes", "<br>".join(_e(n) for n in scan.notes)))
    warn = f'<p class="face">{_e(text(lang, "interrupted"))}</p>' if scan.interrupted else ""
    return f'<section id="scan"><h2>{_e(text(lang, "scan_parameters"))}</h2>{warn}{_kv(lang, pairs)}</section>'


def render_html(result: ScanResult, *, lang: str = "en", case: CaseInfo | None = None,
                signatures: dict[str, str] | None = None, generated: float | None = None) -> str:
    """The whole report as one HTML document (``lang``: en or zh; ``signatures``: default the installed sets)."""
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}")
    case = case or CaseInfo()
    signatures = signature_info() if signatures is None else signatures
    block = evidence_block(result, case)
    sealed = digest(block)

    by_ip: dict[str, list[Finding]] = {}
    for finding in result.findings:
        by_ip.setdefault(str(finding.device_ip), []).append(finding)
    ordered = sorted(result.devices, key=lambda d: (
        _SEVERITY_RANK.get(_worst(by_ip.get(str(d.ip), [])) or "", len(SEVERITIES)), not d.is_camera))
    anchors: dict[str, str] = {}
    for index, device in enumerate(ordered):
        anchors.setdefault(str(device.ip), f"device-{index}")

    cameras = sum(1 for d in result.devices if d.is_camera)
    face = sum(1 for d in result.devices if d.face_capable)
    uploaders = sum(1 for d in result.devices if any(c.behaviour == "snapshot-upload" for c in d.clouds))
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in SEVERITIES}
    summary = (f'<p class="summary"><span><b>{len(result.devices)}</b> {_e(text(lang, "devices_found"))}</span>'
               f'<span><b>{cameras}</b> {_e(text(lang, "cameras"))}</span>'
               f'<span><b>{face}</b> {_e(text(lang, "face_capable_count"))}</span>'
               f'<span><b>{uploaders}</b> {_e(text(lang, "uploaders"))}</span></p>'
               '<p class="summary">' + "".join(f"<span>{_sev(lang, s)} <b>{n}</b></span>" for s, n in counts.items())
               + "</p>")
    not_given = f'<span class="muted">{_e(text(lang, "not_given"))}</span>'
    case_pairs = [("premises", _e(case.premises) or not_given), ("operator", _e(case.operator) or not_given),
                  ("case_id", _e(case.case_id) or not_given)]
    cards = "".join(_device_card(lang, d, f"device-{i}", by_ip.get(str(d.ip), [])) for i, d in enumerate(ordered))
    html_lang = "zh-CN" if lang == "zh" else "en"
    title = text(lang, "report_title")
    heading = f"{title}: {clean(case.premises)}" if case.premises else title
    return "".join([
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(heading)}</title><style>{_CSS}</style></head><body><main>",
        f"<header><h1>{escape(heading)}</h1><div class=\"muted\">{_e(text(lang, 'generated'))}: "
        f"{_e(when(generated if generated is not None else time.time()))} · SHA-256 {sealed[:16]}…</div></header>",
        f'<section id="case"><h2>{_e(text(lang, "case"))}</h2>{_kv(lang, case_pairs)}</section>',
        _scan_section(lang, result),
        _tool_section(lang, result, signatures),
        f'<section id="summary"><h2>{_e(text(lang, "summary"))}</h2>{summary}</section>',
        f'<section id="findings"><h2>{_e(text(lang, "findings"))}</h2>'
        f"{_findings_table(lang, result.findings, anchors)}</section>",
        f'<h2>{_e(text(lang, "devices"))}</h2><div id="devices">{cards}</div>',
        f'<section id="evidence"><h2>{_e(text(lang, "sealed_evidence"))}</h2>'
        f"<p>{_e(text(lang, 'sealed_explain'))}</p>"
        f'<p class="digest">SHA-256: <span id="evidence-sha256">{sealed}</span></p>'
        f"<details><summary>{_e(text(lang, 'show_evidence'))}</summary>"
        f'<pre id="sealed-evidence">{escape(block, quote=False)}</pre></details></section>',
        f'<footer class="muted"><p>{_e(text(lang, "footer"))}</p></footer>',
        "</main></body></html>\n",
    ])
