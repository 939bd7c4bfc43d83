"""The matcher engine: run signatures against observations. Never raises on what a device sent.

Observations carry untrusted text (banners, XML, JSON from devices). Every part is cut to
``MAX_PART_CHARS`` before a regex sees it, JSON and XML are parsed only when a signature asks,
at most once per observation and part, only up to ``MAX_PARSE_CHARS``, XML only through
defusedxml, and any parse failure simply means "no match".
"""

from __future__ import annotations

import json
import re
import string
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.observations import Observation
from scanner.signatures.model import MODEL_SOURCE, Extractor, Match, Matcher, Signature

MAX_PART_CHARS = 16 * 1024  # regexes never see more (body is 8 KB by contract); bounds any backtracking
MAX_PARSE_CHARS = 1024 * 1024
MAX_CLAIM_CHARS = 256
MAX_DETAIL_CHARS = 240
SNIPPET_CHARS = 60

_MISSING = object()
_FORMATTER = string.Formatter()
_STATUS_RE = re.compile(r"\s*(\d{3})\b")


class _Context:
    """One observation being matched: resolves parts and caches parsed JSON/XML per part."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        fields = getattr(obs, "fields", None)
        self.fields: dict[str, Any] = fields if isinstance(fields, dict) else {}
        self._json: dict[str, Any] = {}
        self._xml: dict[str, Element | None] = {}

    # ---- parts ---------------------------------------------------------------------------------
    def one_part(self, name: str) -> str | None:
        text = self.resolve(name)
        return text[:MAX_PART_CHARS] if text else None

    def resolve(self, name: str) -> str:
        """The whole text of one part ("" when absent)."""
        if name == "raw":
            value: Any = getattr(self.obs, "raw", "")
        elif name == "port":
            value = getattr(self.obs, "port", None)
        elif name in ("transport", "status", "source", "ip", "error"):
            value = getattr(self.obs, name, None)
        else:
            key = name.removeprefix("fields.")
            if key == "*":
                value = "\n".join(_text(v) for _k, v in sorted(self.fields.items(), key=_key))
            elif key.endswith(".*"):
                prefix = key[:-1]
                value = "\n".join(_text(v) for k, v in sorted(self.fields.items(), key=_key)
                                  if isinstance(k, str) and k.startswith(prefix))
            else:
                value = self.fields.get(key)
        return _text(value)

    def part(self, names: Sequence[str]) -> tuple[str, str] | None:
        """(part name, text) of the first candidate part the observation has."""
        for name in names:
            text = self.one_part(name)
            if text is not None:
                return name, text
        return None

    def json_doc(self, names: Sequence[str]) -> tuple[str, Any] | None:
        found = self.part(names)
        if found is None:
            return None
        name, _ = found
        if name not in self._json:
            self._json[name] = _parse_json(self.resolve(name))
        doc = self._json[name]
        return None if doc is _MISSING else (name, doc)

    def xml_doc(self, names: Sequence[str]) -> tuple[str, Element] | None:
        found = self.part(names)
        if found is None:
            return None
        name, _ = found
        if name not in self._xml:
            self._xml[name] = _parse_xml(self.resolve(name))
        doc = self._xml[name]
        return None if doc is None else (name, doc)


def _key(item: tuple[Any, Any]) -> str:
    return str(item[0])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""  # nested structures are not part text


def _parse_json(text: str) -> Any:
    if not text or len(text) > MAX_PARSE_CHARS:
        return _MISSING
    candidates = [text.strip().strip("\x00").strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])  # JSON after an HTTP head or before a NUL trailer
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except Exception:  # ValueError, RecursionError on hostile nesting, ...
            continue
    return _MISSING


def _parse_xml(text: str) -> Element | None:
    if not text or len(text) > MAX_PARSE_CHARS:
        return None
    start = text.find("<")
    if start < 0:
        return None
    try:
        root = SafeET.fromstring(text[start:].strip().strip("\x00"))
    except Exception:  # ParseError, defusedxml's DTD/entity refusals, ...
        return None
    # A document node above the root, so "{*}DeviceInfo/{*}model" selects from the root element.
    document = Element("document")
    document.append(root)
    return document


def json_path(doc: Any, path: str) -> Any:
    """``a.b.0.c`` into nested dicts/lists; ``_MISSING`` when any step is absent."""
    node = doc
    for step in path.split("."):
        if isinstance(node, dict):
            if step not in node:
                return _MISSING
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return _MISSING
    return node


def scalar_text(value: Any) -> str:
    """A JSON value as text: strings as they are, true/false/null, numbers, compact JSON otherwise."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)[:MAX_PART_CHARS]
    except Exception:
        return ""


def xpath_select(doc: Element, expr: str) -> list[Element]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(doc.findall(expr))
    except Exception:  # SyntaxError/KeyError on a path ElementPath does not support
        return []


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def _combine(results: Iterable[bool], condition: str) -> bool:
    return all(results) if condition == "and" else any(results)


# ---- matchers -------------------------------------------------------------------------------------
def run_matcher(m: Matcher, ctx: _Context) -> tuple[bool, str]:
    """(passed, detail) with ``negative`` applied; detail only for a positive matcher that passed."""
    try:
        hit, detail = _run_matcher(m, ctx)
    except Exception:  # a bug here must not stop a scan: treat as no match
        hit, detail = False, ""
    if m.negative:
        return (not hit), ""
    return hit, detail if hit else ""


def _run_matcher(m: Matcher, ctx: _Context) -> tuple[bool, str]:
    if m.type in ("word", "regex", "status"):
        found = ctx.part(m.part)
        if found is None:
            return False, ""
        name, text = found
        if m.type == "word":
            return _words(m, name, text)
        if m.type == "regex":
            return _regexes(m, name, text)
        return _status(m, name, text)
    if m.type == "json":
        doc = ctx.json_doc(m.part)
        if doc is None:
            return False, ""
        values = [(p, json_path(doc[1], p)) for p in m.json]
        selected = [(p, [scalar_text(v)]) if v is not _MISSING else (p, []) for p, v in values]
        return _selected(m, selected)
    if m.type == "xpath":
        xdoc = ctx.xml_doc(m.part)
        if xdoc is None:
            return False, ""
        selected = [(expr, [(el.text or "").strip() for el in xpath_select(xdoc[1], expr)]) for expr in m.xpath]
        return _selected(m, selected)
    return False, ""


def _words(m: Matcher, name: str, text: str) -> tuple[bool, str]:
    hay = text.casefold() if m.case_insensitive else text
    hits = [w for w in m.words if (w.casefold() if m.case_insensitive else w) in hay]
    ok = len(hits) == len(m.words) if m.condition == "and" else bool(hits)
    return ok, f'{name}~"{_snippet(" + ".join(hits))}"' if ok else ""


def _regexes(m: Matcher, name: str, text: str) -> tuple[bool, str]:
    hits: list[str] = []
    for rx in m.regex:
        found = rx.search(text)
        if found is not None:
            hits.append(found.group(0))
        elif m.condition == "and":
            return False, ""
    ok = bool(hits)
    return ok, f'{name}~"{_snippet(" + ".join(hits))}"' if ok else ""


def _status(m: Matcher, name: str, text: str) -> tuple[bool, str]:
    found = _STATUS_RE.match(text)
    if found is None:
        return False, ""
    code = int(found.group(1))
    return (code in m.status), f"{name}={code}"


def _selected(m: Matcher, selected: list[tuple[str, list[str]]]) -> tuple[bool, str]:
    """json/xpath: each path/expression selects values; test presence, ``value`` or ``regex``."""
    results: list[bool] = []
    details: list[str] = []
    for where, values in selected:
        hit: str | None = None
        for value in values:
            if _value_ok(m, value):
                hit = value
                break
        results.append(hit is not None)
        if hit is not None:
            details.append(f'{where}="{_snippet(hit)}"')
    ok = _combine(results, m.condition)
    return ok, "; ".join(details) if ok else ""


def _value_ok(m: Matcher, value: str) -> bool:
    if m.value is not None:
        return value.casefold() == m.value.casefold() if m.case_insensitive else value == m.value
    if m.regex:
        return any(rx.search(value[:MAX_PART_CHARS]) for rx in m.regex)
    return True


# ---- extractors -----------------------------------------------------------------------------------
def run_extractor(ex: Extractor, ctx: _Context) -> str | None:
    try:
        for candidate in _candidates(ex, ctx):
            value = _refine(ex, candidate[:MAX_PART_CHARS])
            if value:
                return value[:MAX_CLAIM_CHARS]
    except Exception:
        return None
    return None


def _candidates(ex: Extractor, ctx: _Context) -> Iterator[str]:
    if ex.type == "regex":
        found = ctx.part(ex.part)
        if found is not None:
            yield found[1]
    elif ex.type == "json":
        doc = ctx.json_doc(ex.part)
        if doc is not None:
            for path in ex.json:
                value = json_path(doc[1], path)
                if value is not _MISSING and value is not None:
                    yield scalar_text(value)
    elif ex.type == "xpath":
        xdoc = ctx.xml_doc(ex.part)
        if xdoc is not None:
            for expr in ex.xpath:
                for el in xpath_select(xdoc[1], expr):
                    yield (el.text or "").strip()


def _refine(ex: Extractor, text: str) -> str | None:
    if not ex.regex:
        return text.strip() or None
    for rx in ex.regex:
        found = rx.search(text)
        if found is None:
            continue
        if ex.format is not None:
            groups = {k: (v or "") for k, v in found.groupdict().items()}
            value = ex.format.format(**groups)
        elif ex.group is not None:
            value = found.group(ex.group) or ""
        elif ex.claim in rx.groupindex:
            value = found.group(ex.claim) or ""
        elif rx.groups >= 1:
            value = found.group(1) or ""
        else:
            value = found.group(0)
        value = value.strip()
        if value:
            return value
    return None


def format_fields(fmt: str) -> list[str] | None:
    """The field names of a ``format`` string, or None when it uses anything but plain ``{name}``."""
    names: list[str] = []
    try:
        for _literal, name, spec, conversion in _FORMATTER.parse(fmt):
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                return None
            names.append(name)
    except ValueError:
        return None
    return names


# ---- signatures -----------------------------------------------------------------------------------
def evaluate(sig: Signature, ctx: _Context) -> Match | None:
    details: list[str] = []
    if sig.matchers_condition == "and":
        for m in sig.matchers:
            ok, detail = run_matcher(m, ctx)
            if not ok:
                return None
            if detail:
                details.append(detail)
    else:
        passed = False
        for m in sig.matchers:
            ok, detail = run_matcher(m, ctx)
            passed = passed or ok
            if ok and detail:
                details.append(detail)
        if not passed:
            return None
    claims: dict[str, object] = dict(sig.claims)
    for ex in sig.extractors:
        if ex.claim in claims:
            continue
        value = run_extractor(ex, ctx)
        if value is not None:
            claims[ex.claim] = value
    detail = "; ".join(details)
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    return Match(signature_id=sig.id, certainty=sig.certainty, claims=claims, source=str(ctx.obs.source),
                 detail=detail)


def match_one(sig: Signature, obs: Observation) -> Match | None:
    """Run one signature on one observation (source not checked)."""
    return evaluate(sig, _Context(obs))


class SignatureSet:
    """A loaded, validated set of signatures, indexed by source, in file order."""

    def __init__(self, signatures: Sequence[Signature], root: Path | None = None, version: str = "") -> None:
        self.signatures: tuple[Signature, ...] = tuple(signatures)
        self.root = root
        self.version = version  # content hash of the files it was loaded from ("" when built in memory)
        by_source: dict[str, list[Signature]] = {}
        for sig in self.signatures:
            for source in sig.source:
                by_source.setdefault(source, []).append(sig)
        self._by_source = {k: tuple(v) for k, v in by_source.items()}
        self._by_id = {s.id: s for s in self.signatures}

    def __len__(self) -> int:
        return len(self.signatures)

    def __iter__(self) -> Iterator[Signature]:
        return iter(self.signatures)

    def get(self, signature_id: str) -> Signature | None:
        return self._by_id.get(signature_id)

    def for_source(self, source: str) -> tuple[Signature, ...]:
        return self._by_source.get(source, ())

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_source))

    def match(self, observation: Observation) -> list[Match]:
        """Every signature for the observation's source whose matchers pass, in file order."""
        source = getattr(observation, "source", None)
        if not isinstance(source, str):
            return []
        ctx = _Context(observation)
        matches: list[Match] = []
        for sig in self._by_source.get(source, ()):
            found = evaluate(sig, ctx)
            if found is not None:
                matches.append(found)
        return matches

    def match_model(self, vendor: str | None, model: str | None) -> list[Match]:
        """Model knowledge: signatures with ``source: [model]`` on the pseudo-observation {vendor, model}."""
        if not model:
            return []
        fields = {"vendor": vendor or "", "model": model}
        return self.match(Observation(ip="", source=MODEL_SOURCE, transport="", fields=fields))
