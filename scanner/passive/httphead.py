"""HTTP/1.x request heads of plain-HTTP uploads (RFC 7230 §3: request line §3.1.1, header fields §3.2).

Cameras that upload snapshots over plain HTTP say a lot in the head: the method and path of the
upload API, the cloud's Host, ``Content-Type: image/jpeg`` or ``multipart/form-data``, the
upload size and the firmware's User-Agent. Only the head is read (at most ``MAX_HEAD`` bytes, up
to the empty line that ends it); the body -- the picture -- is never copied or kept.

A head cut short (the first TCP segment of a long request) still gives what it holds:
``complete`` says whether the empty line was seen, ``version`` is "" when even the request line
was cut. Values are bounded (``MAX_PATH``, ``MAX_VALUE``) and unprintable bytes escaped
(``\\xNN``). Bare LF line ends are accepted (§3.5). Never raises: anything that does not start
with ``token SP target`` gives ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD = 8192  # bytes of the head looked at
MAX_PATH = 1024  # characters of the request target kept
MAX_VALUE = 256  # characters of a header value kept
MAX_HEADER_LINES = 100  # header lines looked at

_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}\Z")  # token (§3.2.6), bounded
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]\Z")  # §2.6
_PRINTABLE = bytes(range(0x20, 0x7F))


@dataclass(slots=True)
class HttpHead:
    method: str
    path: str  # the request target as sent (origin form "/upload?x=1", or absolute form via a proxy)
    path_truncated: bool  # longer than MAX_PATH (or the request line was cut in the capture)
    version: str  # "HTTP/1.1"; "" when the request line was cut short
    host: str = ""
    content_type: str = ""
    content_length: int | None = None  # None when absent, invalid or given twice with different values
    user_agent: str = ""
    chunked: bool = False  # Transfer-Encoding ends in chunked (§3.3.1): the size is not known up front
    complete: bool = False  # the empty line ending the head was seen


def parse_request_head(data: bytes) -> HttpHead | None:
    """The request head at the start of ``data`` (a TCP payload), or ``None`` if it is not one."""
    try:
        return _parse(data[:MAX_HEAD])
    except (ValueError, IndexError):  # pragma: no cover - nothing below raises on any input
        return None


def _parse(data: bytes) -> HttpHead | None:
    nl = data.find(b"\n")
    line = data if nl < 0 else data[:nl]
    if line.endswith(b"\r"):
        line = line[:-1]
    # §3.1.1: request-line = method SP request-target SP HTTP-version CRLF
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not _METHOD.match(parts[0]) or not parts[1]:
        return None
    method, target = parts[0], parts[1]
    version = b""
    if len(parts) == 3:
        version = parts[2].strip(b" ")
        if not _VERSION.match(version):
            if nl >= 0:
                return None
            version = b""  # the request line was cut inside the version
    elif nl >= 0:
        return None  # a complete request line without an HTTP version is not HTTP/1.x
    head = HttpHead(
        method=method.decode("ascii"),
        path=_text(target, MAX_PATH),
        path_truncated=len(target) > MAX_PATH or nl < 0,
        version=version.decode("ascii"),
    )
    if nl < 0:
        return head
    # §3.2: header-field = field-name ":" OWS field-value OWS, one per line, until an empty line
    lengths: set[bytes] = set()
    pos = nl + 1
    for _ in range(MAX_HEADER_LINES):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # cut short: keep what we have
        line = data[pos:nl]
        pos = nl + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            head.complete = True
            break
        colon = line.find(b":")
        if colon <= 0 or line[0] in b" \t":  # no name, or obsolete line folding (§3.2.4): ignored
            continue
        name = line[:colon].lower()
        value = line[colon + 1 :].strip(b" \t")
        if name == b"host":
            if not head.host:
                head.host = _text(value, MAX_VALUE).lower()
        elif name == b"content-type":
            if not head.content_type:
                head.content_type = _text(value, MAX_VALUE)
        elif name == b"content-length":
            lengths.update(v.strip(b" \t") for v in value.split(b",")[:8])  # "10, 10" is one length (§3.3.2)
        elif name == b"user-agent":
            if not head.user_agent:
                head.user_agent = _text(value, MAX_VALUE)
        elif name == b"transfer-encoding":
            head.chunked = value.lower().rstrip(b" \t").endswith(b"chunked")
    if len(lengths) == 1:
        (length,) = lengths
        if length.isdigit() and len(length) <= 18:
            head.content_length = int(length)
    return head


def _text(raw: bytes, bound: int) -> str:
    raw = raw[:bound]
    if not raw.translate(None, _PRINTABLE):
        return raw.decode("ascii")
    return "".join(chr(c) if 0x20 <= c <= 0x7E else f"\\x{c:02x}" for c in raw)
