"""Tolerant readers for device answers: XML (only through defusedxml), JSON, ``key=value`` text.

Every function here takes untrusted bytes and never raises: a malformed answer yields ``None``
(or an empty result), which the clients treat as "could not read".
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

MAX_DOCUMENT = 1 << 20  # 1 MiB: no configuration document is larger
TRUE_WORDS = {"true", "1", "yes", "on", "enable", "enabled"}
FALSE_WORDS = {"false", "flase", "0", "no", "off", "disable", "disabled"}  # "flase": real Hikvision typo
_HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")


def parse_xml(data: bytes | str | None) -> Element | None:
    """The root element, or None for anything that is not small well-formed (and harmless) XML."""
    if data is None:
        return None
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if not raw.strip() or len(raw) > MAX_DOCUMENT:
        return None
    try:
        root = SafeET.fromstring(raw)
    except Exception:  # ParseError, DefusedXmlException (entities, DTDs), ValueError, ...
        return None
    return root if isinstance(root, Element) else None


def local(tag: str | Any) -> str:
    """``{namespace}name`` -> ``name`` (both Hikvision namespaces look the same)."""
    return str(tag).rsplit("}", 1)[-1]


def child(el: Element | None, name: str) -> Element | None:
    """The first direct child with this local name."""
    if el is None:
        return None
    for sub in el:
        if local(sub.tag) == name:
            return sub
    return None


def children(el: Element | None, name: str) -> list[Element]:
    if el is None:
        return []
    return [sub for sub in el if local(sub.tag) == name]


def descendants(el: Element | None, name: str) -> list[Element]:
    """Every element below ``el`` (inclusive) with this local name."""
    if el is None:
        return []
    return [node for node in el.iter() if local(node.tag) == name]


def text_at(el: Element | None, *path: str) -> str | None:
    """Stripped text at a path of local names (``text_at(root, "serverAddress", "hostName")``)."""
    node = el
    for name in path:
        node = child(node, name)
        if node is None:
            return None
    text = (node.text or "").strip() if node is not None else ""
    return text or None


def find_text(el: Element | None, name: str) -> str | None:
    """Stripped text of the first element anywhere below ``el`` with this local name."""
    for node in descendants(el, name):
        text = (node.text or "").strip()
        if text:
            return text
    return None


def as_bool(value: Any) -> bool | None:
    """Lenient truth: true/1/yes/on (and booleans, non-zero ints); the ``flase`` typo is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def as_port(value: Any) -> int | None:
    """A TCP/UDP port number, or None (0 and out-of-range values are "not set")."""
    if isinstance(value, bool):
        return None
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def clean_host(value: Any) -> str | None:
    """A configured host name or address, or None when unset (empty, 0.0.0.0, ::) or not a host."""
    if not isinstance(value, str):
        return None
    host = value.strip().rstrip(".")
    if "://" in host:  # some firmware stores a URL
        host = host.split("://", 1)[1].split("/", 1)[0]
        if host.count(":") == 1:
            host = host.split(":", 1)[0]
    host = host.strip("[]")
    if not host:
        return None
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() if _HOST_RE.match(host) and any(c.isalpha() for c in host) else None
    return None if addr.is_unspecified else str(addr)


def parse_json(data: bytes | str | None) -> Any:
    """A JSON value (trailing NUL/newlines tolerated), or None."""
    if data is None:
        return None
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_DOCUMENT:
        return None
    raw = raw.split(b"\x00", 1)[0].strip()
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None


def walk_items(value: Any, depth: int = 0) -> list[tuple[str, Any]]:
    """Every (key, value) pair in nested dicts/lists (bounded depth), for flag searches."""
    out: list[tuple[str, Any]] = []
    if depth > 12:
        return out
    if isinstance(value, dict):
        for key, sub in value.items():
            out.append((str(key), sub))
            out.extend(walk_items(sub, depth + 1))
    elif isinstance(value, list):
        for sub in value[:256]:
            out.extend(walk_items(sub, depth + 1))
    return out


def short(text: Any, limit: int = 120) -> str:
    """One printable line for evidence details."""
    line = " ".join(str(text).split())
    line = "".join(ch for ch in line if ch.isprintable())
    return line if len(line) <= limit else line[: limit - 1] + "…"
