"""Load and validate a signature directory: every problem at once (nuclei), examples as tests (recog).

Layout of a signature root (the repo's top-level ``signatures/``, shipped in the wheel as
``scanner/_signatures``)::

    devices/<source>/<id>.yaml   one device signature per file, <source> one of its sources
    models/<id>.yaml             model knowledge (source: [model]) on {vendor, model}
    identifiers/vendors.txt      canonical vendor spellings
    identifiers/device_types.txt canonical device types
    identifiers/fields.txt       claim names and their types (str | bool)
    identifiers/parts.txt        observation parts matchers may read

Checks: schema (required keys and types, no unknown keys, known matcher/extractor types and
parts), kebab-case ids equal to the file name and unique, certainty in 0.1-0.95, canonical claim
names/types, vendor and device_type values, regexes compile and the groups extractors use exist,
1-20 examples and 0-20 counter-examples, every example matches its own signature and yields
exactly its ``expect``, every counter-example does not match, and no other signature for the
same source that matches an example claims a different value for what the example expects
(an earlier one claiming another vendor "steals" it).
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import yaml

from scanner.errors import UsageError
from scanner.observations import STATUSES, Observation
from scanner.signatures import matcher as engine
from scanner.signatures.model import (
    CERTAINTY_MAX,
    CERTAINTY_MIN,
    CLAIM_TYPES,
    CONDITIONS,
    EXTRACTOR_TYPES,
    ID_RE,
    MATCHER_TYPES,
    MAX_EXAMPLES,
    MODEL_SOURCE,
    SOURCES,
    SPECIAL_PARTS,
    Example,
    Extractor,
    Info,
    Matcher,
    Signature,
)

MAX_FILE_BYTES = 256 * 1024
MAX_MATCHERS = 32  # per signature, and as many extractors
# libyaml's safe loader when PyYAML was built with it (10x faster), else the pure-Python one.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
EXAMPLE_IP = "192.0.2.10"  # documentation address (RFC 5737) for examples without one

TOP_KEYS = {"id", "info", "source", "certainty", "matchers-condition", "matchers", "claims", "extractors",
            "examples", "counter-examples"}
INFO_KEYS = {"name", "author", "references", "tags", "description"}
MATCHER_COMMON = {"type", "part", "condition", "negative", "case-insensitive", "name"}
MATCHER_KEYS = {
    "word": MATCHER_COMMON | {"words"},
    "regex": MATCHER_COMMON | {"regex"},
    "status": MATCHER_COMMON | {"status"},
    "xpath": MATCHER_COMMON | {"xpath", "value", "regex"},
    "json": MATCHER_COMMON | {"json", "value", "regex"},
}
EXTRACTOR_COMMON = {"type", "claim", "part", "regex", "group", "format", "case-insensitive"}
EXTRACTOR_KEYS = {
    "regex": EXTRACTOR_COMMON,
    "json": EXTRACTOR_COMMON | {"json"},
    "xpath": EXTRACTOR_COMMON | {"xpath"},
}
EXAMPLE_KEYS = {"observation", "expect", "note"}
OBSERVATION_KEYS = {"ip", "source", "port", "transport", "status", "fields", "raw", "error"}
DEFAULT_PART = {"status": ("status_code",), "json": ("raw",), "xpath": ("raw",)}


class SignatureError(UsageError):
    """The signature directory has problems; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[str], root: Path | None = None) -> None:
        self.problems = list(problems)
        self.root = root
        where = f" in {root}" if root is not None else ""
        head = f"{len(self.problems)} signature problem{'s' if len(self.problems) != 1 else ''}{where}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass
class Identifiers:
    """Canonical names from ``identifiers/``; None when that file is missing (check skipped)."""

    vendors: set[str] | None = None
    device_types: set[str] | None = None
    fields: dict[str, str] | None = None  # claim name -> "str" | "bool"
    parts: set[str] | None = None  # plain part names
    families: set[str] = field(default_factory=set)  # "sadp" for "sadp.*" lines


def default_root() -> Path:
    """The signature data: ``scanner/_signatures`` in an installed wheel, else the repo's ``signatures/``."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_signatures", package.parent / "signatures"):
        if (candidate / "identifiers").is_dir():
            return candidate
    return package.parent / "signatures"


# ---- small typed readers --------------------------------------------------------------------------
class _Where:
    """Collects problems prefixed with a location (``devices/http/x.yaml: matcher 2: ...``)."""

    def __init__(self, problems: list[str], prefix: str) -> None:
        self.problems = problems
        self.prefix = prefix

    def sub(self, label: str) -> _Where:
        return _Where(self.problems, f"{self.prefix}: {label}")

    def add(self, message: str) -> None:
        self.problems.append(f"{self.prefix}: {message}")


def _keys(data: Mapping[Any, Any], allowed: set[str], where: _Where) -> None:
    for key in data:
        if key not in allowed:
            where.add(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _string(data: Mapping[Any, Any], key: str, where: _Where, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            where.add(f"missing required key {key!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        where.add(f"{key!r} must be a non-empty string")
        return None
    return value


def _strings(value: Any, key: str, where: _Where, *, required: bool = True) -> tuple[str, ...] | None:
    """A string or a list of non-empty strings."""
    if value is None:
        if required:
            where.add(f"missing required key {key!r}")
        return None if required else ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        where.add(f"{key!r} must be a non-empty string or a list of non-empty strings")
        return None
    return tuple(items)


def _bool(data: Mapping[Any, Any], key: str, where: _Where) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        where.add(f"{key!r} must be true or false")
        return False
    return value


def _condition(data: Mapping[Any, Any], key: str, where: _Where) -> str:
    value = data.get(key, "or")
    if value not in CONDITIONS:
        where.add(f"{key!r} must be 'and' or 'or', not {value!r}")
        return "or"
    return str(value)


def _compile(patterns: tuple[str, ...], case_insensitive: bool, where: _Where) -> tuple[re.Pattern[str], ...] | None:
    compiled: list[re.Pattern[str]] = []
    ok = True
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE if case_insensitive else 0))
        except re.error as exc:
            where.add(f"regex {pattern!r} does not compile: {exc}")
            ok = False
    return tuple(compiled) if ok else None


def _check_parts(parts: tuple[str, ...], ids: Identifiers, where: _Where) -> None:
    for part in parts:
        name = part.removeprefix("fields.")
        if name in SPECIAL_PARTS or name == "*":
            continue
        base, dot, rest = name.partition(".")
        if dot and base in ids.families:
            if not rest:
                where.add(f"part {part!r} needs a key after {base!r}. (or {base}.*)")
            continue
        if ids.parts is not None and name not in ids.parts:
            where.add(f"unknown part {part!r} (see identifiers/parts.txt)")


def _check_xpath(expr: str, where: _Where) -> bool:
    if expr.startswith("/"):
        where.add(f"xpath {expr!r} must be relative (start with '{{*}}Root/...', './/' or a tag)")
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Element("document").findall(expr)
    except Exception as exc:
        where.add(f"xpath {expr!r} is not a supported ElementPath expression: {exc}")
        return False
    return True


def _check_json_path(path: str, where: _Where) -> bool:
    if not all(path.split(".")):
        where.add(f"json path {path!r} has an empty step")
        return False
    return True


def _scalar_value(value: Any, where: _Where) -> str | None:
    if isinstance(value, str | bool | int) and not (isinstance(value, str) and not value):
        return engine.scalar_text(value)
    where.add("'value' must be a non-empty string, a number or true/false")
    return None


# ---- matchers and extractors ----------------------------------------------------------------------
def _matcher(data: Any, ids: Identifiers, where: _Where) -> Matcher | None:
    if not isinstance(data, dict):
        where.add("must be a mapping")
        return None
    mtype = data.get("type")
    if mtype not in MATCHER_TYPES:
        where.add(f"unknown matcher type {mtype!r} (known: {', '.join(MATCHER_TYPES)})")
        return None
    start = len(where.problems)
    _keys(data, MATCHER_KEYS[mtype], where)
    ci = _bool(data, "case-insensitive", where)
    negative = _bool(data, "negative", where)
    condition = _condition(data, "condition", where)
    name = data.get("name", "")
    if not isinstance(name, str):
        where.add("'name' must be a string")
        name = ""
    part = _strings(data.get("part"), "part", where, required=mtype not in DEFAULT_PART)
    if part is not None and not part:
        part = DEFAULT_PART[mtype]
    if part is not None:
        _check_parts(part, ids, where)
    words: tuple[str, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    status: tuple[int, ...] = ()
    xpath: tuple[str, ...] = ()
    jpaths: tuple[str, ...] = ()
    value: str | None = None
    if mtype == "word":
        words = _strings(data.get("words"), "words", where) or ()
    elif mtype == "regex":
        regex = _compile(_strings(data.get("regex"), "regex", where) or (), ci, where) or ()
    elif mtype == "status":
        raw = data.get("status")
        items: list[Any] = raw if isinstance(raw, list) else [raw]
        codes = [s for s in items if isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599]
        if not items or len(codes) != len(items):
            where.add("'status' must be a list of HTTP/RTSP status codes (100-599)")
        else:
            status = tuple(codes)
    else:
        key = "xpath" if mtype == "xpath" else "json"
        selectors = _strings(data.get(key), key, where) or ()
        check = _check_xpath if mtype == "xpath" else _check_json_path
        selectors = tuple(s for s in selectors if check(s, where))
        if mtype == "xpath":
            xpath = selectors
        else:
            jpaths = selectors
        if "value" in data and "regex" in data:
            where.add("use either 'value' or 'regex', not both")
        if "value" in data:
            value = _scalar_value(data["value"], where)
        if "regex" in data:
            regex = _compile(_strings(data.get("regex"), "regex", where) or (), ci, where) or ()
    if len(where.problems) > start or part is None:
        return None
    return Matcher(type=mtype, part=part, words=words, regex=regex, status=status, xpath=xpath, json=jpaths,
                   value=value, condition=condition, negative=negative, case_insensitive=ci, name=name)


def _extractor(data: Any, ids: Identifiers, where: _Where) -> Extractor | None:
    if not isinstance(data, dict):
        where.add("must be a mapping")
        return None
    etype = data.get("type")
    if etype not in EXTRACTOR_TYPES:
        where.add(f"unknown extractor type {etype!r} (known: {', '.join(EXTRACTOR_TYPES)})")
        return None
    start = len(where.problems)
    _keys(data, EXTRACTOR_KEYS[etype], where)
    ci = _bool(data, "case-insensitive", where)
    claim = _string(data, "claim", where)
    if claim is not None and ids.fields is not None:
        if claim not in ids.fields:
            where.add(f"claim {claim!r} is not in identifiers/fields.txt")
        elif ids.fields[claim] != "str":
            where.add(f"claim {claim!r} is {ids.fields[claim]}; extractors capture text, so claim it as a constant")
    part = _strings(data.get("part"), "part", where, required=etype == "regex")
    if part is not None and not part:
        part = DEFAULT_PART[etype]
    if part is not None:
        _check_parts(part, ids, where)
    regex: tuple[re.Pattern[str], ...] = ()
    if etype == "regex" or "regex" in data:
        regex = _compile(_strings(data.get("regex"), "regex", where) or (), ci, where) or ()
    xpath: tuple[str, ...] = ()
    jpaths: tuple[str, ...] = ()
    if etype == "xpath":
        xpath = tuple(x for x in (_strings(data.get("xpath"), "xpath", where) or ()) if _check_xpath(x, where))
    elif etype == "json":
        jpaths = tuple(p for p in (_strings(data.get("json"), "json", where) or ()) if _check_json_path(p, where))
    group = data.get("group")
    fmt = data.get("format")
    if group is not None and fmt is not None:
        where.add("use either 'group' or 'format', not both")
    if (group is not None or fmt is not None) and not regex:
        where.add("'group' and 'format' need a 'regex'")
    if group is not None:
        if isinstance(group, bool) or not isinstance(group, str | int):
            where.add("'group' must be a group name or number")
        for rx in regex:
            if isinstance(group, str) and group not in rx.groupindex:
                where.add(f"group {group!r} is not a named group of regex {rx.pattern!r}")
            elif isinstance(group, int) and not isinstance(group, bool) and not 0 <= group <= rx.groups:
                where.add(f"group {group} does not exist in regex {rx.pattern!r} ({rx.groups} groups)")
    if fmt is not None:
        names = engine.format_fields(fmt) if isinstance(fmt, str) else None
        if names is None:
            where.add("'format' must be a string using only {name} placeholders")
        else:
            for rx in regex:
                missing = [n for n in names if n not in rx.groupindex]
                if missing:
                    where.add(f"format uses {', '.join(missing)}, not named groups of regex {rx.pattern!r}")
    if len(where.problems) > start or claim is None or part is None:
        return None
    return Extractor(type=etype, claim=claim, part=part, regex=regex, json=jpaths, xpath=xpath,
                     group=group if isinstance(group, str | int) and not isinstance(group, bool) else None,
                     format=fmt if isinstance(fmt, str) else None, case_insensitive=ci)


# ---- claims, observations, examples ---------------------------------------------------------------
def check_claims(claims: Mapping[Any, Any], ids: Identifiers, where: _Where) -> bool:
    ok = True
    for name, value in claims.items():
        if ids.fields is not None and name not in ids.fields:
            where.add(f"claim {name!r} is not in identifiers/fields.txt")
            ok = False
            continue
        kind = ids.fields.get(str(name), "str") if ids.fields is not None else "str"
        if kind == "bool" and not isinstance(value, bool):
            where.add(f"claim {name!r} must be true or false, not {value!r}")
            ok = False
        elif kind == "str" and (not isinstance(value, str) or not value):
            where.add(f"claim {name!r} must be a non-empty string, not {value!r}")
            ok = False
        elif name == "vendor" and ids.vendors is not None and value not in ids.vendors:
            where.add(f"vendor {value!r} is not in identifiers/vendors.txt")
            ok = False
        elif name == "device_type" and ids.device_types is not None and value not in ids.device_types:
            where.add(f"device_type {value!r} is not in identifiers/device_types.txt")
            ok = False
    return ok


def observation_from_dict(data: Any, problems: list[str] | None = None, *, label: str = "observation",
                          default_source: str | None = None) -> Observation | None:
    """An Observation from a mapping (``camsweep signatures test``); None with problems when it is not one."""
    return _observation(data, _Where(problems if problems is not None else [], label), default_source)


def _observation(data: Any, where: _Where, default_source: str | None = None) -> Observation | None:
    if not isinstance(data, dict):
        where.add("observation must be a mapping")
        return None
    start = len(where.problems)
    _keys(data, OBSERVATION_KEYS, where)
    source = data.get("source", default_source)
    if not isinstance(source, str) or not source:
        where.add("observation needs a 'source'")
    ip = data.get("ip", EXAMPLE_IP)
    port = data.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        where.add("'port' must be a port number")
    status = data.get("status", "success")
    if status not in STATUSES:
        where.add(f"'status' must be one of {', '.join(STATUSES)}")
    fields_in = data.get("fields", {})
    fields: dict[str, str] = {}
    if not isinstance(fields_in, dict):
        where.add("'fields' must be a mapping of field name to text")
    else:
        for key, value in fields_in.items():
            if not isinstance(key, str) or (value is not None and not isinstance(value, str | int | float | bool)):
                where.add(f"field {key!r} must map a name to text")
                continue
            fields[key] = engine.scalar_text(value) if value is not None else ""
    for key in ("ip", "transport", "raw", "error"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            where.add(f"{key!r} must be a string")
    if len(where.problems) > start:
        return None
    return Observation(ip=str(ip), source=str(source), port=port, transport=str(data.get("transport", "tcp")),
                       status=str(status), fields=fields, raw=str(data.get("raw") or ""), error=data.get("error"))


def _examples(value: Any, key: str, sources: tuple[str, ...], ids: Identifiers, where: _Where, *,
              minimum: int) -> tuple[Example, ...]:
    if value is None:
        value = []
    if not isinstance(value, list):
        where.add(f"{key!r} must be a list")
        return ()
    if not minimum <= len(value) <= MAX_EXAMPLES:
        where.add(f"{key!r} needs {minimum}-{MAX_EXAMPLES} entries, has {len(value)}")
    examples: list[Example] = []
    seen: set[str] = set()
    for index, item in enumerate(value[:MAX_EXAMPLES], 1):
        here = where.sub(f"{key[:-1]} {index}")
        if not isinstance(item, dict):
            here.add("must be a mapping with 'observation'" + (" and 'expect'" if key == "examples" else ""))
            continue
        _keys(item, EXAMPLE_KEYS if key == "examples" else EXAMPLE_KEYS - {"expect"}, here)
        obs = _observation(item.get("observation"), here, sources[0] if sources else None)
        if obs is None:
            continue
        if obs.source not in sources:
            here.add(f"observation source {obs.source!r} is not one of the signature's sources")
            continue
        fingerprint = repr((obs.source, obs.port, obs.status, sorted(obs.fields.items()), obs.raw))
        if fingerprint in seen:
            here.add("duplicates an earlier one")
        seen.add(fingerprint)
        expect: dict[str, object] = {}
        if key == "examples":
            raw_expect = item.get("expect")
            if not isinstance(raw_expect, dict):
                here.add("'expect' must be a mapping of claim to value")
                continue
            if not check_claims(raw_expect, ids, here.sub("expect")):
                continue
            expect = {str(k): v for k, v in raw_expect.items()}
        note = item.get("note", "")
        examples.append(Example(observation=obs, expect=expect, note=note if isinstance(note, str) else ""))
    return tuple(examples)


# ---- one signature --------------------------------------------------------------------------------
def parse_signature(data: Any, ids: Identifiers, where: _Where, path: Path | None = None) -> Signature | None:
    """A Signature from one parsed YAML document, or None (with problems added) when it is invalid."""
    if not isinstance(data, dict):
        where.add("must be a YAML mapping (one signature per file)")
        return None
    start = len(where.problems)
    _keys(data, TOP_KEYS, where)
    sig_id = _string(data, "id", where)
    if sig_id is not None and not ID_RE.match(sig_id):
        where.add(f"id {sig_id!r} is not kebab-case (lower-case letters, digits, single dashes)")
    info_data = data.get("info")
    info: Info | None = None
    if not isinstance(info_data, dict):
        where.add("missing required mapping 'info' (name, author)")
    else:
        iw = where.sub("info")
        _keys(info_data, INFO_KEYS, iw)
        name = _string(info_data, "name", iw)
        author = _string(info_data, "author", iw)
        refs = _strings(info_data.get("references"), "references", iw, required=False)
        tags = _strings(info_data.get("tags") or None, "tags", iw, required=False)
        desc = info_data.get("description", "")
        if not isinstance(desc, str):
            iw.add("'description' must be a string")
        if name and author:
            info = Info(name=name, author=author, references=refs or (), tags=tags or (),
                        description=desc if isinstance(desc, str) else "")
    sources = _strings(data.get("source"), "source", where) or ()
    for source in sources:
        if source not in SOURCES and source != MODEL_SOURCE:
            where.add(f"unknown source {source!r} (known: {', '.join(SOURCES + (MODEL_SOURCE,))})")
    if MODEL_SOURCE in sources and len(sources) > 1:
        where.add(f"source {MODEL_SOURCE!r} (model knowledge) cannot be mixed with observation sources")
    certainty = data.get("certainty")
    if isinstance(certainty, bool) or not isinstance(certainty, int | float) or not math.isfinite(certainty):
        where.add("missing or non-numeric 'certainty'")
        certainty = 0.0
    elif not CERTAINTY_MIN <= certainty <= CERTAINTY_MAX:
        where.add(f"certainty {certainty} is outside {CERTAINTY_MIN}-{CERTAINTY_MAX}")
    condition = _condition(data, "matchers-condition", where)
    matchers: list[Matcher] = []
    raw_matchers = data.get("matchers")
    if not isinstance(raw_matchers, list) or not raw_matchers:
        where.add("'matchers' must be a non-empty list")
    else:
        if len(raw_matchers) > MAX_MATCHERS:
            where.add(f"more than {MAX_MATCHERS} matchers")
        for index, item in enumerate(raw_matchers[:MAX_MATCHERS], 1):
            m = _matcher(item, ids, where.sub(f"matcher {index}"))
            if m is not None:
                matchers.append(m)
        if matchers and all(m.negative for m in matchers):
            where.add("every matcher is negative: the signature would match almost anything")
    claims_data = data.get("claims", {})
    claims: dict[str, object] = {}
    if not isinstance(claims_data, dict):
        where.add("'claims' must be a mapping")
    elif check_claims(claims_data, ids, where.sub("claims")):
        claims = {str(k): v for k, v in claims_data.items()}
    extractors: list[Extractor] = []
    raw_extractors = data.get("extractors", [])
    if not isinstance(raw_extractors, list):
        where.add("'extractors' must be a list")
    else:
        if len(raw_extractors) > MAX_MATCHERS:
            where.add(f"more than {MAX_MATCHERS} extractors")
        for index, item in enumerate(raw_extractors[:MAX_MATCHERS], 1):
            ex = _extractor(item, ids, where.sub(f"extractor {index}"))
            if ex is not None:
                if ex.claim in claims:
                    where.add(f"extractor {index}: claim {ex.claim!r} is also a constant claim")
                extractors.append(ex)
    if not claims_data and not raw_extractors:
        where.add("claims nothing: give 'claims' or 'extractors'")
    if "face_capable" in claims and info is not None and not info.references:
        where.add("claims face_capable without a basis: add info.references")
    examples = _examples(data.get("examples"), "examples", sources, ids, where, minimum=1)
    counter = _examples(data.get("counter-examples"), "counter-examples", sources, ids, where, minimum=0)
    if len(where.problems) > start or sig_id is None or info is None:
        return None
    return Signature(id=sig_id, info=info, source=sources, certainty=float(certainty), matchers_condition=condition,
                     matchers=tuple(matchers), claims=claims, extractors=tuple(extractors), examples=examples,
                     counter_examples=counter, path=path)


# ---- identifiers ----------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def read_identifiers(root: Path, problems: list[str]) -> Identifiers:
    ids = Identifiers()
    base = root / "identifiers"

    def load(name: str) -> list[str] | None:
        path = base / name
        try:
            return _lines(path)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"identifiers/{name}: cannot read ({exc.__class__.__name__}); its check is skipped")
            return None

    vendors = load("vendors.txt")
    if vendors is not None:
        ids.vendors = set(vendors)
    types = load("device_types.txt")
    if types is not None:
        ids.device_types = set(types)
    fields = load("fields.txt")
    if fields is not None:
        ids.fields = {}
        for line in fields:
            name, _, kind = line.partition(" ")
            kind = kind.strip().split()[0] if kind.strip() else "str"
            if kind not in CLAIM_TYPES:
                problems.append(f"identifiers/fields.txt: {name}: type {kind!r} is not one of {', '.join(CLAIM_TYPES)}")
            ids.fields[name] = kind
    parts = load("parts.txt")
    if parts is not None:
        ids.parts = set()
        for line in parts:
            name = line.split()[0]
            if name.endswith(".*"):
                ids.families.add(name[:-2])
            else:
                ids.parts.add(name)
    return ids


# ---- a whole directory ----------------------------------------------------------------------------
def _files(root: Path, problems: list[str]) -> list[Path]:
    """Signature files in load order: devices/ by path, then models/ by path."""
    ordered: list[Path] = []
    for sub in ("devices", "models"):
        base = root / sub
        if base.is_dir():
            ordered.extend(sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")))
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.suffix in (".yaml", ".yml") and rel.parts[0] not in ("devices", "models", "clouds"):
            problems.append(f"{rel}: signature files belong under devices/<source>/ or models/")
    if not ordered:
        problems.append("no signature files under devices/ or models/")
    return ordered


def _check_location(sig: Signature, rel: Path, where: _Where) -> None:
    if rel.suffix != ".yaml":
        where.add("use the .yaml extension")
    if rel.stem != sig.id:
        where.add(f"file name must be the id: {sig.id}.yaml")
    if rel.parts[0] == "models":
        if sig.source != (MODEL_SOURCE,) or len(rel.parts) != 2:
            where.add(f"models/<id>.yaml signatures must have source: [{MODEL_SOURCE}]")
    elif len(rel.parts) != 3 or rel.parts[1] not in sig.source:
        where.add("device signatures live in devices/<source>/<id>.yaml, <source> one of the signature's sources")
    elif MODEL_SOURCE in sig.source:
        where.add(f"source {MODEL_SOURCE!r} belongs in models/")


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def check_examples(signatures: Sequence[Signature], labels: Mapping[str, str]) -> list[str]:
    """Examples as tests: own match exact, counter-examples silent, no conflicting or stealing signature."""
    problems: list[str] = []
    sigset = engine.SignatureSet(signatures)
    position = {sig.id: index for index, sig in enumerate(signatures)}
    for sig in signatures:
        where = _Where(problems, labels.get(sig.id, sig.id))
        for index, ex in enumerate(sig.examples, 1):
            here = where.sub(f"example {index}")
            found = engine.match_one(sig, ex.observation)
            if found is None:
                here.add("does not match its own signature")
                continue
            if found.claims != ex.expect or not all(_same(found.claims[k], ex.expect[k]) for k in ex.expect):
                extra = {k: v for k, v in found.claims.items() if k not in ex.expect}
                missing = {k: v for k, v in ex.expect.items() if k not in found.claims}
                wrong = {k: (found.claims[k], v) for k, v in ex.expect.items()
                         if k in found.claims and not _same(found.claims[k], v)}
                parts = []
                if extra:
                    parts.append(f"extra claims {extra}")
                if missing:
                    parts.append(f"missing claims {missing}")
                for k, (got, want) in wrong.items():
                    parts.append(f"{k} is {got!r}, expected {want!r}")
                here.add("extracts " + "; ".join(parts))
            for other in sigset.for_source(ex.observation.source):
                if other.id == sig.id:
                    continue
                theirs = engine.match_one(other, ex.observation)
                if theirs is None:
                    continue
                for key, want in ex.expect.items():
                    if key in theirs.claims and not _same(theirs.claims[key], want):
                        got = theirs.claims[key]
                        if key == "vendor" and position[other.id] < position[sig.id]:
                            here.add(f"stolen by earlier signature {other.id!r} (vendor {got!r}, expected {want!r})")
                        else:
                            here.add(f"signature {other.id!r} also matches and claims {key}={got!r} "
                                     f"(expected {want!r})")
        for index, ex in enumerate(sig.counter_examples, 1):
            found = engine.match_one(sig, ex.observation)
            if found is not None:
                where.sub(f"counter-example {index}").add(f"matches ({found.detail or 'no detail'})")
    return problems


def _load(root: Path, *, check: bool = True) -> tuple[list[Signature], list[str]]:
    problems: list[str] = []
    if not root.is_dir():
        return [], [f"{root}: not a directory"]
    ids = read_identifiers(root, problems)
    signatures: list[Signature] = []
    labels: dict[str, str] = {}
    seen: dict[str, str] = {}
    for path in _files(root, problems):
        rel = path.relative_to(root)
        where = _Where(problems, str(rel))
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                where.add(f"larger than {MAX_FILE_BYTES // 1024} KiB")
                continue
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
        except (OSError, UnicodeDecodeError) as exc:
            where.add(f"cannot read: {exc}")
            continue
        except yaml.YAMLError as exc:
            where.add(f"not valid YAML: {' '.join(str(exc).split())}")
            continue
        sig = parse_signature(data, ids, where, path)
        if sig is None:
            continue
        _check_location(sig, rel, where)
        if sig.id in seen:
            where.add(f"duplicate id {sig.id!r} (also {seen[sig.id]})")
            continue
        seen[sig.id] = str(rel)
        labels[sig.id] = str(rel)
        signatures.append(sig)
    if check:
        problems.extend(check_examples(signatures, labels))
    return signatures, problems


def content_version(root: Path) -> str:
    """A short hash of the signature files and identifiers: which knowledge a scan used."""
    digest = hashlib.sha256()
    files = [p for sub in ("devices", "models", "clouds", "identifiers") if (root / sub).is_dir()
             for p in (root / sub).rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".txt")]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:12]


def validate(root: Path | str | None = None) -> list[str]:
    """Every problem of a signature directory, as ``<file>: <what>`` lines; never raises."""
    try:
        return _load(Path(root) if root is not None else default_root())[1]
    except Exception as exc:  # a checker bug must still come out as a problem, not a traceback
        return [f"internal error while validating: {exc.__class__.__name__}: {exc}"]


def load_signatures(root: Path | str | None = None, *, check_examples: bool = True) -> engine.SignatureSet:
    """Load and validate a signature directory (default: the shipped one); SignatureError lists all problems."""
    path = Path(root) if root is not None else default_root()
    signatures, problems = _load(path, check=check_examples)
    if problems:
        raise SignatureError(problems, path)
    return engine.SignatureSet(signatures, path, version=content_version(path))
