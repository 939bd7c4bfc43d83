"""Cloud destination signatures: which operator and what kind of service a host name or address is.

Data lives in ``signatures/clouds/<id>.yaml`` (shipped as ``scanner/_signatures/clouds``), one
file per operator or endpoint family, seeded from ``shared/reference/clouds.md`` §1::

    id: ulucu-device                      kebab-case, equal to the file name, unique
    info:
      name: ULUCU device entry (Huidian protocol)
      author: camsweep                    optional
      references: ["shared/reference/clouds.md §1a ULUCU device entry (C1)"]   required
      description: ...                    optional
      tags: [ulucu]                       optional
    operator: ULUCU                       who runs it (CloudLink.operator)
    category: passenger-flow              face-analytics | picture-upload | video-cloud |
                                          vendor-management | passenger-flow | web | payment
    confidence: high                      clouds.md tag: C1 -> high, C2 -> medium, I -> low
    flag: true                            optional (default true); false = label only, never
                                          evidence for a finding (clouds.md "U" entries)
    hosts:                                exact names and patterns (see below)
      - entry.device.serv.ulucu.com
      - "*.ulucu.com"
    ports: [29023]                        optional: where the service is known to listen
    ip_ranges: [182.254.156.98/32]        optional: hard-coded server addresses (CIDR)
    examples: [entry.device.serv.ulucu.com]        1-20 names (or addresses) that must match
    counter-examples: [ulucu.com.evil.example]     0-20 names that must not match it

**Host patterns.** A name without ``*`` matches exactly (case-insensitive, trailing dot ignored).
A leading ``*.`` matches one or more whole labels (``*.ulucu.com`` matches ``a.b.ulucu.com``,
not ``ulucu.com``). A ``*`` anywhere else matches within one label (``*.oss-cn-*.aliyuncs.com``,
``api*.ezvizlife.com``, ``face.*.myhuaweicloud.com``).

**Most specific wins.** Exact names beat patterns; among patterns, the one with more literal
characters wins, then the one with more labels, then the earlier file (by path). So
``iai.tencentcloudapi.com`` (face-analytics) beats a ``*.qq.com``-style catch-all, and
``alarm.eu.s3.amazonaws.com`` (EZVIZ pictures) beats ``*.s3.amazonaws.com``. Addresses: the
longest prefix wins.

**Validation** (``validate_cloud_signatures``) reports every problem at once: schema (required
keys, types, no unknown keys), kebab-case id equal to the file name, unique ids, known category
and confidence, valid patterns and CIDRs, no exact host in two files, 1-20 examples that match
this signature *and* win against every other one (no stealing), counter-examples that do not
match it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from scanner.errors import UsageError
from scanner.signatures.loader import default_root

CATEGORIES = (
    "face-analytics",
    "picture-upload",
    "video-cloud",
    "vendor-management",
    "passenger-flow",
    "web",
    "payment",
)
#: clouds.md tag -> confidence word -> score (CloudLink.confidence).
CONFIDENCE_SCORES = {"high": 0.9, "medium": 0.7, "low": 0.4}
TOP_KEYS = {"id", "info", "operator", "category", "confidence", "flag", "hosts", "ports", "ip_ranges",
            "examples", "counter-examples"}
REQUIRED_KEYS = ("id", "info", "operator", "category", "confidence", "hosts", "examples")
INFO_KEYS = {"name", "author", "references", "description", "tags"}
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# One label of a pattern: letters, digits, '-', '_' and '*' (a wildcard inside the label).
PATTERN_LABEL_RE = re.compile(r"^[a-z0-9_*-]+$")
MAX_EXAMPLES = 20
MAX_FILE_BYTES = 128 * 1024
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CloudSignatureError(UsageError):
    """The cloud signature directory has problems; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[str], root: Path | None = None) -> None:
        self.problems = list(problems)
        self.root = root
        where = f" in {root}" if root is not None else ""
        head = f"{len(self.problems)} cloud signature problem{'s' if len(self.problems) != 1 else ''}{where}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True)
class HostPattern:
    """One ``hosts`` entry compiled: exact name or wildcard pattern, with its specificity."""

    text: str
    exact: bool
    regex: re.Pattern[str] | None
    specificity: tuple[int, int, int]  # (exact, literal characters, labels)

    def matches(self, name: str) -> bool:
        if self.exact:
            return name == self.text
        assert self.regex is not None
        return self.regex.fullmatch(name) is not None


@dataclass(frozen=True)
class CloudSignature:
    id: str
    name: str
    references: tuple[str, ...]
    operator: str
    category: str
    confidence: str  # high | medium | low
    flag: bool
    hosts: tuple[HostPattern, ...]
    ports: tuple[int, ...] = ()
    ip_ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()
    description: str = ""
    path: str = ""

    @property
    def score(self) -> float:
        return CONFIDENCE_SCORES[self.confidence]


@dataclass(frozen=True)
class CloudMatch:
    """What a name or address is, by which signature and which of its patterns."""

    signature_id: str
    operator: str
    category: str
    confidence: str  # high | medium | low
    score: float  # 0.9 / 0.7 / 0.4 (CloudLink.confidence)
    flag: bool  # False: label only, never evidence for a finding
    matched: str  # the name or address that matched
    pattern: str  # the host pattern or CIDR that matched it
    name: str  # the signature's info.name
    references: tuple[str, ...] = ()
    port_expected: bool | None = None  # the observed port is one the signature lists (None: not checked)
    by_port: bool = False  # named by a distinctive server port alone (no name or address matched)

    @property
    def evidence_detail(self) -> str:
        if self.by_port:
            return (f"no name was seen for this address (its DNS lookup may predate the capture); {self.matched} "
                    f"is a distinctive port of {self.name} ({self.signature_id}); port-only match, {self.confidence}")
        return f"{self.matched} matches {self.pattern} ({self.signature_id}: {self.name}; {self.confidence})"


#: Ports many services share: never enough on their own to name a destination (``match_port``).
GENERIC_PORTS = frozenset({
    1080, 1194, 1433, 1521, 1723, 1882, 1883, 1935, 2022, 3128, 3306, 3389, 3478, 5000, 5001, 5060, 5061, 5222,
    5223, 5228, 5353, 5432, 5683, 6379, 7777, 8000, 8008, 8080, 8081, 8088, 8443, 8554, 8883, 8888, 9000, 9090,
    10000, 10001,
})


def normalize_host(name: str) -> str:
    """Lower-case, strip whitespace and one trailing dot."""
    return name.strip().lower().rstrip(".")


def compile_pattern(text: str) -> HostPattern | str:
    """A ``hosts`` entry compiled, or the problem with it (a string)."""
    norm = normalize_host(text)
    if not norm or len(norm) > 253:
        return f"host pattern {text!r}: empty or too long"
    labels = norm.split(".")
    if len(labels) < 2:
        return f"host pattern {text!r}: needs at least two labels"
    for label in labels:
        if not label or not PATTERN_LABEL_RE.match(label):
            return f"host pattern {text!r}: bad label {label!r}"
    literal = sum(1 for ch in norm if ch not in "*.")
    if "*" not in norm:
        return HostPattern(norm, True, None, (1, literal, len(labels)))
    if literal < 4 or labels[-1] == "*" or labels[-2].strip("*") == "":
        return f"host pattern {text!r}: too broad (needs a literal domain at the end)"
    parts: list[str] = []
    rest = labels
    if labels[0] == "*":
        parts.append(r"(?:[^.]+\.)+")
        rest = labels[1:]
    body = r"\.".join("[^.]*".join(re.escape(piece) for piece in label.split("*")) for label in rest)
    regex = re.compile("".join(parts) + body)
    return HostPattern(norm, False, regex, (0, literal, len(labels)))


# ---- loading and validation ---------------------------------------------------------------------------
def cloud_root(root: Path | str | None = None) -> Path:
    """``root`` if given, else ``<signature root>/clouds`` (repo ``signatures/clouds`` or the wheel's copy)."""
    if root is not None:
        return Path(root)
    return default_root() / "clouds"


class _Problems:
    def __init__(self, sink: list[str], where: str) -> None:
        self.sink = sink
        self.where = where

    def add(self, what: str) -> None:
        self.sink.append(f"{self.where}: {what}")


def _str_list(value: object, key: str, where: _Problems, *, required: bool = False) -> list[str]:
    if value is None:
        if required:
            where.add(f"{key} is required")
        return []
    if isinstance(value, str) or not isinstance(value, list):
        where.add(f"{key} must be a list of strings")
        return []
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and item.strip():
            out.append(item)
        else:
            where.add(f"{key}: {item!r} is not a non-empty string")
    return out


def _parse(data: object, rel: str, where: _Problems) -> CloudSignature | None:
    if not isinstance(data, dict):
        where.add("the file must hold one mapping")
        return None
    for key in sorted(set(map(str, data)) - TOP_KEYS):
        where.add(f"unknown key {key!r}")
    for key in REQUIRED_KEYS:
        if key not in data:
            where.add(f"missing key {key!r}")
    sig_id = data.get("id")
    if not isinstance(sig_id, str) or not ID_RE.match(sig_id):
        where.add(f"id {sig_id!r} must be kebab-case")
        sig_id = None
    elif Path(rel).stem != sig_id:
        where.add(f"file name must be the id: {sig_id}.yaml")
    info = data.get("info")
    name = ""
    references: list[str] = []
    description = ""
    if not isinstance(info, dict):
        where.add("info must be a mapping with name and references")
    else:
        for key in sorted(set(map(str, info)) - INFO_KEYS):
            where.add(f"info: unknown key {key!r}")
        raw_name = info.get("name")
        if isinstance(raw_name, str) and raw_name.strip():
            name = raw_name.strip()
        else:
            where.add("info.name is required")
        references = _str_list(info.get("references"), "info.references", where, required=True)
        if "references" in info and not references:
            where.add("info.references must not be empty")
        raw_desc = info.get("description", "")
        description = raw_desc if isinstance(raw_desc, str) else ""
        _str_list(info.get("tags"), "info.tags", where)
    operator = data.get("operator")
    if not isinstance(operator, str) or not operator.strip():
        where.add("operator must be a non-empty string")
        operator = ""
    category = data.get("category")
    if category not in CATEGORIES:
        where.add(f"category {category!r} must be one of {', '.join(CATEGORIES)}")
    confidence = data.get("confidence")
    if confidence not in CONFIDENCE_SCORES:
        where.add(f"confidence {confidence!r} must be one of {', '.join(CONFIDENCE_SCORES)}")
    flag = data.get("flag", True)
    if not isinstance(flag, bool):
        where.add("flag must be true or false")
        flag = True
    hosts: list[HostPattern] = []
    for text in _str_list(data.get("hosts"), "hosts", where, required=True):
        compiled = compile_pattern(text)
        if isinstance(compiled, str):
            where.add(compiled)
        else:
            hosts.append(compiled)
    if "hosts" in data and not hosts and not data.get("ip_ranges"):
        where.add("hosts must not be empty")
    ports: list[int] = []
    raw_ports = data.get("ports", [])
    if not isinstance(raw_ports, list):
        where.add("ports must be a list of integers")
    else:
        for port in raw_ports:
            if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
                ports.append(port)
            else:
                where.add(f"ports: {port!r} is not a port number")
    ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in _str_list(data.get("ip_ranges"), "ip_ranges", where):
        try:
            ranges.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            where.add(f"ip_ranges: {exc}")
    examples = _str_list(data.get("examples"), "examples", where, required=True)
    if "examples" in data and not 1 <= len(examples) <= MAX_EXAMPLES:
        where.add(f"examples: give 1-{MAX_EXAMPLES}")
    counters = _str_list(data.get("counter-examples"), "counter-examples", where)
    if len(counters) > MAX_EXAMPLES:
        where.add(f"counter-examples: give at most {MAX_EXAMPLES}")
    if sig_id is None or category not in CATEGORIES or confidence not in CONFIDENCE_SCORES:
        return None
    return CloudSignature(
        id=sig_id, name=name, references=tuple(references), operator=operator, category=str(category),
        confidence=str(confidence), flag=flag, hosts=tuple(hosts), ports=tuple(ports), ip_ranges=tuple(ranges),
        examples=tuple(examples), counter_examples=tuple(counters), description=description, path=rel,
    )


def _load(root: Path) -> tuple[list[CloudSignature], list[str]]:
    problems: list[str] = []
    if not root.is_dir():
        return [], [f"{root}: no such directory"]
    files = sorted(p for p in root.rglob("*") if p.is_file())
    signatures: list[CloudSignature] = []
    seen: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        where = _Problems(problems, rel)
        if path.suffix != ".yaml":
            if path.suffix == ".yml":
                where.add("use the .yaml extension")
            continue
        if len(path.relative_to(root).parts) != 1:
            where.add("cloud signatures live directly in clouds/<id>.yaml")
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                where.add(f"file larger than {MAX_FILE_BYTES} bytes")
                continue
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 (safe loader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            where.add(f"cannot read: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        sig = _parse(data, rel, where)
        if sig is None:
            continue
        if sig.id in seen:
            where.add(f"duplicate id {sig.id!r} (also {seen[sig.id]})")
            continue
        seen[sig.id] = rel
        signatures.append(sig)
    if not files:
        problems.append(f"{root}: no cloud signature files")
    problems.extend(check_cloud_signatures(signatures))
    return signatures, problems


def check_cloud_signatures(signatures: Sequence[CloudSignature]) -> list[str]:
    """Cross-file checks: exact hosts unique; examples match their own signature and win; counters silent."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for sig in signatures:
        for pattern in sig.hosts:
            other = owners.setdefault(pattern.text, sig.path)
            if other != sig.path:
                problems.append(f"{sig.path}: host {pattern.text!r} is also listed in {other}")
    sigset = CloudSignatureSet(signatures)
    for sig in signatures:
        for example in sig.examples:
            own = sigset.match_one(sig, example)
            if own is None:
                problems.append(f"{sig.path}: example {example!r} does not match its own signature")
                continue
            best = sigset.match(example)
            if best is not None and best.signature_id != sig.id:
                problems.append(f"{sig.path}: example {example!r} is taken by {best.signature_id} "
                                f"({best.pattern}); make the pattern more specific")
        for counter in sig.counter_examples:
            if sigset.match_one(sig, counter) is not None:
                problems.append(f"{sig.path}: counter-example {counter!r} matches")
    return problems


def validate_cloud_signatures(root: Path | str | None = None) -> list[str]:
    """Every problem of a cloud signature directory as ``<file>: <what>`` lines; never raises."""
    try:
        return _load(cloud_root(root))[1]
    except Exception as exc:  # a checker bug must still come out as a problem, not a traceback
        return [f"internal error while validating cloud signatures: {exc.__class__.__name__}: {exc}"]


def load_cloud_signatures(root: Path | str | None = None) -> CloudSignatureSet:
    """Load and validate (default: the shipped ``clouds/``); CloudSignatureError lists every problem."""
    path = cloud_root(root)
    signatures, problems = _load(path)
    if problems:
        raise CloudSignatureError(problems, path)
    return CloudSignatureSet(signatures, path)


# ---- matching -----------------------------------------------------------------------------------------
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


@dataclass
class CloudSignatureSet:
    """Loaded signatures with an exact-name index, patterns by specificity, and CIDRs by prefix length."""

    signatures: Sequence[CloudSignature]
    root: Path | None = None
    _exact: dict[str, tuple[CloudSignature, HostPattern]] = field(init=False, repr=False)
    _patterns: list[tuple[CloudSignature, HostPattern]] = field(init=False, repr=False)
    _ranges: list[tuple[CloudSignature, ipaddress.IPv4Network | ipaddress.IPv6Network]] = field(
        init=False, repr=False)
    _cache: dict[str, CloudMatch | None] = field(init=False, repr=False)
    _by_id: dict[str, CloudSignature] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {}
        for sig in self.signatures:
            self._by_id.setdefault(sig.id, sig)
        self._exact = {}
        patterns: list[tuple[int, CloudSignature, HostPattern]] = []
        for index, sig in enumerate(self.signatures):
            for pattern in sig.hosts:
                if pattern.exact:
                    self._exact.setdefault(pattern.text, (sig, pattern))
                else:
                    patterns.append((index, sig, pattern))
        patterns.sort(key=lambda item: (-item[2].specificity[1], -item[2].specificity[2], item[0]))
        self._patterns = [(sig, pattern) for _, sig, pattern in patterns]
        ranges = [(sig, net) for sig in self.signatures for net in sig.ip_ranges]
        ranges.sort(key=lambda item: -item[1].prefixlen)
        self._ranges = ranges
        self._cache = {}

    def __len__(self) -> int:
        return len(self.signatures)

    def by_id(self, sig_id: str) -> CloudSignature | None:
        return self._by_id.get(sig_id)

    @staticmethod
    def _result(sig: CloudSignature, matched: str, pattern: str, port: int | None) -> CloudMatch:
        expected = None if port is None or not sig.ports else port in sig.ports
        return CloudMatch(sig.id, sig.operator, sig.category, sig.confidence, sig.score, sig.flag, matched,
                          pattern, sig.name, sig.references, expected)

    def match_host(self, name: str, port: int | None = None) -> CloudMatch | None:
        """The most specific signature for a host name (exact beats pattern), or None."""
        norm = normalize_host(name)
        if not norm:
            return None
        if norm in self._cache:
            found = self._cache[norm]
        else:
            found = None
            hit = self._exact.get(norm)
            if hit is not None:
                found = self._result(hit[0], norm, hit[1].text, None)
            else:
                for sig, pattern in self._patterns:
                    if pattern.matches(norm):
                        found = self._result(sig, norm, pattern.text, None)
                        break
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[norm] = found
        if found is None or port is None:
            return found
        owner = self._by_id[found.signature_id]
        return self._result(owner, found.matched, found.pattern, port)

    def match_ip(self, ip: str, port: int | None = None) -> CloudMatch | None:
        """The signature whose ``ip_ranges`` hold ``ip`` (longest prefix wins), or None."""
        addr = _parse_ip(ip)
        if addr is None:
            return None
        for sig, net in self._ranges:
            if addr.version == net.version and addr in net:
                return self._result(sig, str(addr), str(net), port)
        return None

    def match(self, target: str, port: int | None = None) -> CloudMatch | None:
        """A host name or an address (as written in ``examples``)."""
        if _parse_ip(target) is not None:
            return self.match_ip(target, port)
        return self.match_host(target, port)

    def match_names(self, names: Iterable[str], ip: str | None = None, port: int | None = None) -> CloudMatch | None:
        """Best match over several names seen for one destination (higher confidence, then more specific),
        falling back to the address."""
        best: tuple[tuple[int, float], CloudMatch] | None = None
        for name in names:
            found = self.match_host(name, port)
            if found is None:
                continue
            owner = self._by_id[found.signature_id]
            pattern = next((p for p in owner.hosts if p.text == found.pattern), None)
            spec = pattern.specificity[0] * 1000 + pattern.specificity[1] if pattern is not None else 0
            rank = (int(found.flag), found.score + spec / 1e6)
            if best is None or rank > best[0]:
                best = (rank, found)
        if best is not None:
            return best[1]
        return self.match_ip(ip, port) if ip else None

    def match_port(self, port: int) -> CloudMatch | None:
        """A destination no name or address identifies, named by its server port when that port is
        distinctive: listed by signatures of one operator (or of one category), and not a general-purpose port
        (``GENERIC_PORTS``, anything below 1024). Long-lived device channels (ULUCU's 29023,
        Dahua P2P's 8800, EZVIZ/Hik-Connect's 8666) are opened at boot, so a capture that starts
        later sees their packets but never their DNS lookup. Always low confidence."""
        if port < 1024 or port in GENERIC_PORTS:
            return None
        owners = [sig for sig in self.signatures if port in sig.ports]
        operators = sorted({sig.operator for sig in owners})
        if not owners or (len(operators) > 1 and len({sig.category for sig in owners}) > 1):
            return None
        # The most confident signature, then the one with the fewest ports, names the category.
        owners.sort(key=lambda sig: (-sig.score, len(sig.ports)))
        first = owners[0]
        return CloudMatch(first.id, " or ".join(operators), first.category, "low", CONFIDENCE_SCORES["low"],
                          any(sig.flag for sig in owners), f"port {port}", "ports",
                          " / ".join(sig.name for sig in owners), first.references, True, by_port=True)

    @staticmethod
    def match_one(sig: CloudSignature, target: str) -> CloudMatch | None:
        """Does ``target`` (name or address) match this one signature? (validation, tests)"""
        addr = _parse_ip(target)
        if addr is not None:
            for net in sig.ip_ranges:
                if addr.version == net.version and addr in net:
                    return CloudSignatureSet._result(sig, str(addr), str(net), None)
            return None
        norm = normalize_host(target)
        for pattern in sorted(sig.hosts, key=lambda p: p.specificity, reverse=True):
            if pattern.matches(norm):
                return CloudSignatureSet._result(sig, norm, pattern.text, None)
        return None


# ---- the shipped set, loaded once -----------------------------------------------------------------------
@lru_cache(maxsize=1)
def shipped() -> CloudSignatureSet:
    """The shipped cloud signatures (loaded and validated once per process)."""
    return load_cloud_signatures()


def match_host(name: str, port: int | None = None) -> CloudMatch | None:
    """The shipped set's most specific match for a host name, or None."""
    return shipped().match_host(name, port)


def match_ip(ip: str, port: int | None = None) -> CloudMatch | None:
    """The shipped set's match for an address (hard-coded server ranges), or None."""
    return shipped().match_ip(ip, port)
