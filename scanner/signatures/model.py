"""The typed signature model: what one ``signatures/**/<id>.yaml`` file becomes after loading.

The format (nuclei's skeleton, recog's example discipline; see ``signatures/README.md``)::

    id: hikvision-http-app-webs           kebab-case, equal to the file name, unique
    info: {name, author, references, tags, description}
    source: [http, https, onvif]          observation sources it applies to
    certainty: 0.8                        0.1-0.95, how strongly one match supports the claims
    matchers-condition: and               and | or
    matchers: [...]                       word | regex | status | xpath | json
    claims: {vendor: Hikvision, ...}      constants, names from identifiers/fields.txt
    extractors: [...]                     regex | json | xpath captures into claims (str claims only)
    examples: [{observation, expect}]     1..20, each must produce exactly ``expect``
    counter-examples: [{observation}]     0..20, each must not match

Everything here is immutable; the loader builds it and the matcher reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scanner.observations import Observation

#: Observation sources a device signature may name (``model`` is the model-knowledge pseudo-source).
SOURCES = (
    "arp", "tcp", "sadp", "dhip", "xm", "wsd", "ssdp", "mdns", "http", "https", "rtsp", "onvif",
    "dahua-rpc2", "upnp", "lapi", "vapix", "oui",
)
MODEL_SOURCE = "model"
MATCHER_TYPES = ("word", "regex", "status", "xpath", "json")
EXTRACTOR_TYPES = ("regex", "json", "xpath")
CONDITIONS = ("and", "or")
#: Parts that read the observation itself rather than one of its fields.
SPECIAL_PARTS = ("raw", "port", "transport", "status", "source", "ip", "error")
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CERTAINTY_MIN = 0.1
CERTAINTY_MAX = 0.95
MAX_EXAMPLES = 20
CLAIM_TYPES = ("str", "bool")


@dataclass(frozen=True)
class Info:
    name: str
    author: str
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Matcher:
    """One test on one part of an observation.

    ``part`` is a list of candidate parts: the first one the observation has (non-empty) is used.
    A part is a field name (``server``, ``sadp.DeviceDescription``; ``fields.`` prefix optional),
    ``prefix.*`` (all fields under a prefix, joined by newlines), ``*`` (all fields), or one of
    ``SPECIAL_PARTS``. An absent part never matches (so a negative matcher on it passes).
    """

    type: str
    part: tuple[str, ...]
    words: tuple[str, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    status: tuple[int, ...] = ()
    xpath: tuple[str, ...] = ()
    json: tuple[str, ...] = ()
    value: str | None = None  # json/xpath: the selected value must equal this
    condition: str = "or"  # across the words/regexes/statuses/paths of this matcher
    negative: bool = False
    case_insensitive: bool = False
    name: str = ""


@dataclass(frozen=True)
class Extractor:
    """Captures one claim: select text (part / JSON path / XPath), then optionally a regex.

    With a regex, the value is ``format`` filled with the named groups when given, else the
    ``group`` (name or number), else the group named like the claim, else group 1 (or the whole
    match when the regex has no group). The first non-empty value wins.
    """

    type: str
    claim: str
    part: tuple[str, ...]
    regex: tuple[re.Pattern[str], ...] = ()
    json: tuple[str, ...] = ()
    xpath: tuple[str, ...] = ()
    group: str | int | None = None
    format: str | None = None
    case_insensitive: bool = False


@dataclass(frozen=True)
class Example:
    observation: Observation
    expect: dict[str, object] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Signature:
    id: str
    info: Info
    source: tuple[str, ...]
    certainty: float
    matchers_condition: str
    matchers: tuple[Matcher, ...]
    claims: dict[str, object]
    extractors: tuple[Extractor, ...] = ()
    examples: tuple[Example, ...] = ()
    counter_examples: tuple[Example, ...] = ()
    path: Path | None = None  # where it was loaded from

    @property
    def claim_names(self) -> tuple[str, ...]:
        """Every claim this signature can make (constants, then extracted)."""
        extracted = tuple(e.claim for e in self.extractors if e.claim not in self.claims)
        return tuple(self.claims) + extracted


@dataclass(frozen=True)
class Match:
    """One signature that matched one observation: its claims and what it saw (for evidence)."""

    signature_id: str
    certainty: float
    claims: dict[str, object]
    source: str  # the observation's source
    detail: str  # a short text of what matched, e.g. 'server~"App-webs/"; realm~"IP Camera(C2183)"'
