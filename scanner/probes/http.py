"""HTTP identification probe, and the minimal HTTP/1.1 client every HTTP-speaking probe uses.

Sent (one request per connection, ``Connection: close``, never with credentials):

1. ``GET /`` with ``Host``, ``User-Agent: camsweep/0.1``, ``Accept: */*``, ``Connection: close``.
2. At most one same-host redirect: a 3xx ``Location`` or ``<meta http-equiv="Refresh"
   content="0;url=...">`` (Hikvision's ``/`` refreshes to ``/doc/page/login.asp``). Only the same
   scheme, address and port are followed.
3. At most ``MAX_FOLLOW_UPS`` targeted follow-ups, chosen from what the pages showed (or from
   ``hints["vendor"]``), one connection at a time:

   * Hikvision (protocols.md §1.7: Server ``App-webs/``, ``Hikvision-Webs``, ``DNVRS-Webs``,
     ``DVRDVS-Webs``, ``webserver``; ``/doc/page/login.asp``; "Hikvision" in the page; realm
     ``IP Camera(...)``) -> ``GET /ISAPI/System/deviceInfo``, expected to answer 401 with the
     realm ``IP Camera(XXXXX)`` (§1.2);
   * Dahua (§2.3: ``<title>WEB SERVICE</title>`` together with one of its login-page markers, or
     ``/RPC2_Login`` / ``global.login`` in the page, or realm ``Login to ...``) ->
     ``dahua.rpc2_challenge`` (the anonymous challenge step, no password). The title alone is
     not enough: OEM boxes (the lab's ULUCU camera) use it too;
   * Axis (§4.3: title ``AXIS``, realm ``AXIS_...``) -> ``axis.basic_device_info``;
   * Uniview (§3: "Uniview" in the page, ``/LAPI/`` in the page, realm ``UNV`` -- UNCERTAIN)
     -> ``uniview.lapi_device_info``.

Parsed: the status line, headers (bounded to 16 KB), the body (bounded to 64 KB; Content-Length,
chunked and close-delimited bodies). Each page is an Observation (source ``http``, or ``https``
with ``tls``) with fields ``status_code``, ``server``, ``realm`` and ``auth_scheme`` (from
WWW-Authenticate), ``title``, ``body`` (first 8 KB), ``headers`` (the raw header block),
``location`` (Location header, else the meta refresh URL) and ``path``. Any answer is
``success`` (zgrab2's http module does the same): the status code is data. Follow-ups are their
own Observations with a ``path`` field; the ISAPI one keeps this probe's source, the vendor
modules keep theirs (``dahua-rpc2``, ``vapix``, ``lapi``), and a 404 there is ``not-found``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import math
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.net import NetContext, status_of
from scanner.observations import MAX_RAW, Observation, excerpt
from scanner.probes import normalise_mac

USER_AGENT = "camsweep/0.1"
MAX_HEAD = 16 * 1024  # status line + headers
MAX_BODY = 64 * 1024
BODY_FIELD = 8 * 1024  # the ``body`` field keeps the first 8 KB
HEADERS_FIELD = 4 * 1024
MAX_CHUNK_LINE = 1024
READ_CHUNK = 4096
EXCHANGE_READS = 4  # one request/response exchange gets at most 4 read timeouts in total (slow drips end)
LINGER_S = 1.0  # how long a graceful close waits for the device to close its side
CONNECT_RETRY_DELAY_S = 0.25
INTER_REQUEST_DELAY_S = 0.1  # perf_style.md A.2: a small pause between requests to one host
MAX_FOLLOW_UPS = 3
MAX_INTERIM = 3  # 1xx responses skipped before the real one
ISAPI_DEVICE_INFO = "/ISAPI/System/deviceInfo"

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(r"\r?\n")
_STATUS_CODE = re.compile(r"[0-9]{3}")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_META = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([A-Za-z][\w:-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%?"


class ProbeError(Exception):
    """A failed exchange. ``status`` is an Observation status, ``raw`` what the device sent (if anything)."""

    def __init__(self, status: str, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.raw = raw


class _LineTooLong(Exception):
    pass


@dataclass
class HttpResponse:
    """One HTTP (or RTSP) response as received. Header values keep their leading whitespace."""

    protocol: str  # "HTTP/1.1", "RTSP/1.0" as the device wrote it
    status_code: int
    reason: str
    headers: list[tuple[str, str]]
    head: bytes  # status line and header lines, as received
    body: bytes = b""
    complete: bool = True
    note: str | None = None  # why the body is incomplete
    headers_text: str = field(default="", repr=False)

    def header(self, name: str) -> str | None:
        """The first header ``name`` (case-insensitive), stripped; None if absent."""
        raw = self.header_raw(name)
        return raw.strip() if raw is not None else None

    def header_raw(self, name: str) -> str | None:
        """The first header ``name`` exactly as sent after the colon (separator spaces kept)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.rstrip()
        return None

    def headers_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value.strip() for key, value in self.headers if key.lower() == wanted]

    def text(self, limit: int = MAX_BODY) -> str:
        """The body decoded with the Content-Type charset (UTF-8 otherwise), bad bytes replaced."""
        data = self.body[:limit]
        match = _CHARSET.search(self.header("content-type") or "")
        if match:
            try:
                return data.decode(match.group(1), "replace")
            except LookupError:
                pass
        return data.decode("utf-8", "replace")

    def mark_incomplete(self, note: str) -> None:
        self.complete = False
        if self.note is None:
            self.note = note


# ---- the connection ------------------------------------------------------------------------
class Stream:
    """A connection with a read buffer, a per-read timeout and a per-exchange deadline."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, read_timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.read_timeout = read_timeout
        self.buffer = bytearray()
        self.eof = False
        self.clean = True  # False after an error or an unread body: close without lingering
        self.deadline = math.inf

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), self.read_timeout)
        self.deadline = time.monotonic() + self.read_timeout * EXCHANGE_READS

    async def fill(self) -> bool:
        """Read more bytes into the buffer; False at EOF. Raises TimeoutError past the deadline."""
        if self.eof:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the exchange took longer than its budget")
        data = await asyncio.wait_for(self.reader.read(READ_CHUNK), min(self.read_timeout, remaining))
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def take(self, count: int) -> bytes:
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    async def read_line(self, limit: int) -> bytes | None:
        """One line including its newline (a partial line at EOF); None at EOF with nothing buffered."""
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                if index > limit:
                    raise _LineTooLong
                return self.take(index + 1)
            if len(self.buffer) > limit:
                raise _LineTooLong
            if not await self.fill():
                return self.take(len(self.buffer)) if self.buffer else None

    async def read_exact(self, count: int) -> bytes:
        """``count`` bytes, or fewer if the peer closed first."""
        while len(self.buffer) < count:
            if not await self.fill():
                break
        return self.take(min(count, len(self.buffer)))

    async def read_to_eof(self, limit: int) -> tuple[bytes, bool]:
        """Up to ``limit`` bytes until the peer closes; (data, reached EOF)."""
        while len(self.buffer) < limit:
            if not await self.fill():
                return self.take(len(self.buffer)), True
        return self.take(limit), False

    async def close(self) -> None:
        """Close; after a clean exchange, half-close and wait (bounded) until the device closes too.

        Waiting for the device's FIN means the device has finished with the connection before our
        host slot is released, so it never sees more simultaneous connections than we hold slots
        (the fragile camera in the lab counts exactly that).
        """
        writer = self.writer
        try:
            if self.clean and not self.eof:
                if writer.can_write_eof():
                    writer.write_eof()
                self.deadline = time.monotonic() + min(LINGER_S, self.read_timeout)
                drained = 0
                while drained < MAX_BODY and await self.fill():
                    drained += len(self.buffer)
                    self.buffer.clear()
        except (OSError, TimeoutError, RuntimeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), LINGER_S)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def connect(ctx: NetContext, ip: str, port: int, *, tls: bool) -> Stream:
    """Open one connection (caller holds the host slot); one retry, only after a connect timeout."""
    last: ProbeError | None = None
    for attempt in (1, 2):
        if attempt == 2:
            await asyncio.sleep(CONNECT_RETRY_DELAY_S)
        try:
            reader, writer = await ctx.open(ip, port, tls=tls)
            return Stream(reader, writer, ctx.options.read_timeout)
        except TimeoutError:
            last = ProbeError("connection-timeout", f"connecting to port {port} timed out")
        except ssl.SSLError as exc:
            raise ProbeError("handshake-error", describe(exc)) from None
        except OSError as exc:
            status = status_of(exc)
            if status != "connection-timeout":
                raise ProbeError(status, describe(exc)) from None
            last = ProbeError(status, describe(exc))
    assert last is not None
    raise last


@contextlib.asynccontextmanager
async def session(ctx: NetContext, ip: str, port: int, *, tls: bool) -> AsyncIterator[Stream]:
    """Hold one of the host's connection slots for one connection, and close it properly."""
    async with ctx.host_slot(ip):
        stream = await connect(ctx, ip, port, tls=tls)
        try:
            yield stream
        except BaseException:  # an error or a cancelled scan: close at once, no lingering
            stream.clean = False
            raise
        finally:
            await stream.close()


# ---- reading a response ----------------------------------------------------------------------
async def read_response(stream: Stream, *, protocol: str = "HTTP", method: str = "GET") -> HttpResponse:
    """Read one response (``protocol`` "HTTP" or "RTSP"); raises ProbeError when there is none."""
    try:
        for _ in range(MAX_INTERIM + 1):
            head = await _read_head(stream, protocol)
            response = parse_head(head, protocol)
            if protocol == "HTTP" and 100 <= response.status_code < 200 and response.status_code != 101:
                continue  # 100 Continue and friends: the real answer follows
            await _read_body(stream, response, protocol, method)
            return response
    except ProbeError:
        stream.clean = False
        raise
    except (OSError, EOFError) as exc:
        stream.clean = False
        raise ProbeError(status_of(exc), describe(exc), bytes(stream.buffer[:MAX_RAW])) from None
    stream.clean = False
    raise ProbeError("protocol-error", "too many interim (1xx) responses")


async def _read_head(stream: Stream, protocol: str) -> bytes:
    prefix = protocol.encode() + b"/"
    try:
        while True:
            stripped = stream.buffer.lstrip(b"\r\n")
            if len(stripped) != len(stream.buffer):
                del stream.buffer[: len(stream.buffer) - len(stripped)]
            start = min(len(prefix), len(stream.buffer))
            if start and bytes(stream.buffer[:start]).upper() != prefix[:start]:
                raise ProbeError("protocol-error", f"not an {protocol} reply", bytes(stream.buffer[:MAX_RAW]))
            match = _HEAD_END.search(stream.buffer)
            if match is not None and match.start() <= MAX_HEAD:
                return stream.take(match.end())
            if len(stream.buffer) > MAX_HEAD:
                raise ProbeError("protocol-error", f"header block larger than {MAX_HEAD // 1024} KB",
                                 bytes(stream.buffer[:MAX_RAW]))
            if not await stream.fill():
                if not stream.buffer:
                    raise ProbeError("connection-closed", "the connection closed without a reply")
                raise ProbeError("protocol-error", "the connection closed inside the header block",
                                 bytes(stream.buffer[:MAX_RAW]))
    except TimeoutError:
        raw = bytes(stream.buffer[:MAX_RAW])
        raise ProbeError("io-timeout", "no complete reply in time" if raw else "no reply in time", raw) from None


def parse_head(head: bytes, protocol: str = "HTTP") -> HttpResponse:
    """Status line and headers; obsolete line folding joined; lines without a colon skipped."""
    text = head.decode("latin-1")
    lines = _LINE_SPLIT.split(text.strip("\r\n"))
    status_line = lines[0]
    parts = status_line.split(None, 2)
    if (len(parts) < 2 or not parts[0].upper().startswith(protocol + "/")
            or not _STATUS_CODE.fullmatch(parts[1])):
        raise ProbeError("protocol-error", f"bad status line: {status_line[:80]!r}", head[:MAX_RAW])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value.rstrip()} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.append((name.strip(), value))
    block = "\n".join(lines[1:])
    return HttpResponse(parts[0], int(parts[1]), parts[2].strip() if len(parts) > 2 else "", headers, head,
                        headers_text=block)


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return int(first) if first.isascii() and first.isdigit() else None


async def _read_body(stream: Stream, response: HttpResponse, protocol: str, method: str) -> None:
    """Fill ``response.body`` (bounded); problems after the head make the body incomplete, not the reply."""
    code = response.status_code
    if method == "HEAD" or code in (204, 304) or code < 200:
        return
    length = _content_length(response.header("content-length"))
    chunked = protocol == "HTTP" and "chunked" in (response.header("transfer-encoding") or "").lower()
    try:
        if chunked:
            await _read_chunked(stream, response)
        elif length is not None:
            wanted = min(length, MAX_BODY)
            response.body = await stream.read_exact(wanted)
            if len(response.body) < wanted:
                response.mark_incomplete(f"the connection closed after {len(response.body)} of {length} body bytes")
            elif length > MAX_BODY:
                response.mark_incomplete(f"body of {length} bytes cut at {MAX_BODY // 1024} KB")
        elif protocol == "HTTP":  # close-delimited
            response.body, at_eof = await stream.read_to_eof(MAX_BODY)
            if not at_eof:
                response.mark_incomplete(f"body cut at {MAX_BODY // 1024} KB")
        # RTSP without Content-Length has no body.
    except TimeoutError:
        if not chunked:
            response.body += stream.take(min(len(stream.buffer), MAX_BODY - len(response.body)))
        response.mark_incomplete(f"body read timed out after {len(response.body)} bytes")
    except _LineTooLong:
        response.mark_incomplete("chunk size line too long")
    except OSError as exc:
        response.mark_incomplete(f"body read failed: {describe(exc)}")
    if not response.complete:
        stream.clean = False


async def _read_chunked(stream: Stream, response: HttpResponse) -> None:
    body = bytearray()
    while True:
        line = await stream.read_line(MAX_CHUNK_LINE)
        if line is None:
            response.mark_incomplete("the connection closed inside the chunked body")
            break
        size_text = line.split(b";", 1)[0].strip()
        if not size_text:
            continue
        if not _CHUNK_SIZE.fullmatch(size_text):
            response.mark_incomplete(f"bad chunk size {size_text[:16]!r}")
            break
        size = int(size_text, 16)
        if size == 0:
            break  # trailers are not needed
        room = MAX_BODY - len(body)
        try:
            data = await stream.read_exact(min(size, room))
        except TimeoutError:  # keep the part of the chunk that did arrive
            response.body = bytes(body + stream.take(min(size, room, len(stream.buffer))))
            raise
        body += data
        response.body = bytes(body)
        if len(data) < min(size, room):
            response.mark_incomplete("the connection closed inside a chunk")
            break
        if size > room:
            response.mark_incomplete(f"body cut at {MAX_BODY // 1024} KB")
            break
        await stream.read_line(MAX_CHUNK_LINE)  # the CRLF after the chunk data
    response.body = bytes(body)


# ---- requests ---------------------------------------------------------------------------------
def host_header(ip: str, port: int, tls: bool) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return host if port == (443 if tls else 80) else f"{host}:{port}"


def request_target(path: str) -> str:
    """A request target without fragment, spaces or control characters."""
    target = quote(path.split("#", 1)[0], safe=_TARGET_SAFE)
    return target if target.startswith("/") else "/" + target


def build_request(method: str, path: str, host: str, *, body: bytes | None = None, content_type: str | None = None,
                  headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [f"{method} {request_target(path)} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}",
             "Accept: */*", "Connection: close"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body is not None:
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def fetch(ctx: NetContext, ip: str, port: int, method: str, path: str, *, tls: bool = False,
                body: bytes | None = None, content_type: str | None = None,
                headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """One request on its own connection (host slot held throughout); raises ProbeError."""
    request = build_request(method, path, host_header(ip, port, tls), body=body, content_type=content_type,
                            headers=headers)
    async with session(ctx, ip, port, tls=tls) as stream:
        try:
            await stream.send(request)
        except (OSError, TimeoutError) as exc:
            stream.clean = False
            raise ProbeError(status_of(exc), f"sending the request failed: {describe(exc)}") from None
        return await read_response(stream, method=method)


# ---- parsing helpers (never raise) ----------------------------------------------------------------
def parse_auth_params(text: str) -> dict[str, str]:
    """``k="v", k2=v2`` (quoted values may hold commas and escaped quotes); keys lower-cased."""
    params: dict[str, str] = {}
    index, end = 0, len(text)
    while index < end:
        while index < end and text[index] in " ,\t":
            index += 1
        equals = text.find("=", index)
        if equals < 0:
            break
        key = text[index:equals].strip().lower()
        index = equals + 1
        while index < end and text[index] == " ":
            index += 1
        if index < end and text[index] == '"':
            index += 1
            value = []
            while index < end and text[index] != '"':
                if text[index] == "\\" and index + 1 < end:
                    index += 1
                value.append(text[index])
                index += 1
            index += 1
            params.setdefault(key, "".join(value))
        else:
            comma = text.find(",", index)
            comma = end if comma < 0 else comma
            params.setdefault(key, text[index:comma].strip())
            index = comma
    return params


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Digest qop="auth", realm="IP Camera(C2183)", ...`` -> ("Digest", {"qop": ..., "realm": ...})."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if "=" in scheme:  # no scheme at all, just parameters
        return "", parse_auth_params(value)
    return scheme, parse_auth_params(rest)


def auth_fields(response: HttpResponse) -> dict[str, str]:
    """``auth_scheme`` and ``realm`` of the first challenge; ``auth_schemes`` when there are several."""
    challenges = [parse_challenge(v) for v in response.headers_all("www-authenticate") if v]
    fields: dict[str, str] = {}
    if not challenges:
        return fields
    scheme, params = challenges[0]
    if scheme:
        fields["auth_scheme"] = scheme
    realm = params.get("realm") or next((p["realm"] for _, p in challenges if p.get("realm")), None)
    if realm is not None:
        fields["realm"] = realm
    if len(challenges) > 1:
        fields["auth_schemes"] = ", ".join(s for s, _ in challenges if s)
    return fields


def html_title(text: str) -> str | None:
    match = _TITLE.search(text)
    if match is None:
        return None
    return _SPACES.sub(" ", html.unescape(match.group(1))).strip()[:256]


def meta_refresh_url(text: str) -> str | None:
    """The URL of ``<meta http-equiv="Refresh" content="0;url=...">``, if the page has one."""
    for tag in _META.findall(text[:MAX_BODY]):
        attrs = {k.lower(): v.strip("\"'") for k, v in _ATTR.findall(tag)}
        if attrs.get("http-equiv", "").lower() != "refresh":
            continue
        for part in html.unescape(attrs.get("content", "")).split(";")[1:]:
            key, sep, url = part.strip().partition("=")
            if sep and key.strip().lower() == "url":
                return url.strip().strip("\"'") or None
    return None


def same_host_target(location: str, ip: str, port: int, tls: bool) -> str | None:
    """The path (+query) of ``location`` when it points at the same scheme, address and port."""
    try:
        parts = urlsplit(location.strip())
        scheme = parts.scheme.lower() or ("https" if tls else "http")
        if scheme != ("https" if tls else "http"):
            return None
        if parts.netloc:
            if (parts.hostname or "").lower() != ip.lower():
                return None
            if (parts.port or (443 if tls else 80)) != port:
                return None
    except ValueError:
        return None
    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path  # a relative Location, resolved against "/"
    return path + (f"?{parts.query}" if parts.query else "")


def response_fields(response: HttpResponse, path: str) -> dict[str, str]:
    """Fields every HTTP answer gives: status_code, server, realm/auth_scheme, location, headers, path."""
    fields = {"status_code": str(response.status_code), "path": path}
    server = response.header("server")
    if server:
        fields["server"] = server
    fields.update(auth_fields(response))
    location = response.header("location")
    if location:
        fields["location"] = location
    if response.headers_text:
        fields["headers"] = response.headers_text[:HEADERS_FIELD]
    return fields


def raw_excerpt(response: HttpResponse, body_bytes: int = 512) -> str:
    return excerpt(response.head + response.body[:body_bytes])


def failure(ip: str, source: str, port: int, error: ProbeError, path: str | None = None) -> Observation:
    """A failed probe as data: the status, what went wrong, what the device sent (if anything)."""
    fields = {"path": path} if path else {}
    return Observation(ip, source, port, status=error.status, fields=fields,
                       raw=excerpt(error.raw) if error.raw else "", error=error.message)


def parse_xml(data: bytes) -> Element | None:
    """Untrusted XML through defusedxml; None for anything that is not a well-formed document."""
    try:
        root: Element = SafeET.fromstring(data.strip(b"\x00 \t\r\n"))
    except Exception:  # defusedxml raises ParseError, DTD/entity errors, ValueError ...
        return None
    return root


def parse_json_object(data: bytes) -> dict[str, Any] | None:
    """A JSON object from untrusted bytes (trailing NUL/whitespace tolerated, §9); None otherwise."""
    try:
        value = json.loads(data.strip(b"\x00 \t\r\n").decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def local_name(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def find_local(element: Element, name: str) -> Element | None:
    """The first descendant (or ``element`` itself) whose local tag name is ``name``."""
    for node in element.iter():
        if local_name(node.tag) == name:
            return node
    return None


def child_text(element: Element, name: str) -> str | None:
    """The stripped text of the first child with local name ``name`` (None if absent or empty)."""
    for child in element:
        if local_name(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


# ---- the probe --------------------------------------------------------------------------------------
@dataclass
class Page:
    path: str
    response: HttpResponse
    text: str


async def _get_page(ctx: NetContext, ip: str, port: int, path: str, tls: bool,
                    source: str) -> tuple[Observation, Page | None]:
    try:
        response = await fetch(ctx, ip, port, "GET", path, tls=tls)
    except ProbeError as err:
        return failure(ip, source, port, err, path), None
    text = response.text()
    fields = response_fields(response, path)
    title = html_title(text)
    if title:
        fields["title"] = title
    if response.body:
        fields["body"] = response.text(BODY_FIELD)
    if "location" not in fields:
        refresh = meta_refresh_url(text)
        if refresh:
            fields["location"] = refresh
    observation = Observation(ip, source, port, status="success", fields=fields, raw=raw_excerpt(response),
                              error=response.note)
    return observation, Page(path, response, text)


HIKVISION_SERVERS = ("app-webs", "hikvision-webs", "dnvrs-webs", "dvrdvs-webs")
DAHUA_LOGIN_MARKERS = ("ui-dialog-content", "t_username", "ui-video-wrap-icon", "@webversion@", "slct_usertype")
FOLLOW_UP_ORDER = ("hikvision", "dahua", "axis", "uniview")


def vendor_markers(pages: Iterable[Page], hints: dict[str, str] | None = None) -> list[str]:
    """Vendors whose follow-up the pages (or ``hints["vendor"]``) call for, in FOLLOW_UP_ORDER."""
    wanted: set[str] = set()
    hinted = (hints or {}).get("vendor", "").lower()
    wanted.update(v for v in FOLLOW_UP_ORDER if v in hinted)
    for page in pages:
        response = page.response
        server = (response.header("server") or "").lower()
        realm = auth_fields(response).get("realm", "")
        body = page.text.lower()
        title = (html_title(page.text) or "").lower()
        location = (response.header("location") or meta_refresh_url(page.text) or "").lower()
        if (server.startswith(HIKVISION_SERVERS) or server == "webserver" or "/doc/page/login.asp" in location
                or "/doc/page/login.asp" in body or "hikvision" in body
                or realm.startswith("IP Camera(") or realm.lower() == "hikvision"):
            wanted.add("hikvision")
        if ((title == "web service" and any(marker in body for marker in DAHUA_LOGIN_MARKERS))
                or "/rpc2_login" in body or '"global.login"' in body or realm.startswith("Login to ")):
            wanted.add("dahua")
        if title.startswith("axis") or realm.startswith("AXIS_"):
            wanted.add("axis")
        if "uniview" in body or "/lapi/" in body or realm == "UNV":
            wanted.add("uniview")
    return [v for v in FOLLOW_UP_ORDER if v in wanted][:MAX_FOLLOW_UPS]


def parse_isapi_device_info(data: bytes) -> dict[str, str]:
    """ISAPI ``DeviceInfo`` (§1.2, either namespace) -> model, serial, mac, firmware, device_type, name."""
    root = parse_xml(data)
    if root is None or local_name(root.tag) != "DeviceInfo":
        return {}
    fields: dict[str, str] = {}
    for tag, name in (("model", "model"), ("serialNumber", "serial"), ("deviceType", "device_type"),
                      ("deviceName", "name"), ("manufacturer", "manufacturer")):
        value = child_text(root, tag)
        if value:
            fields[name] = value[:256]
    firmware = child_text(root, "firmwareVersion")
    if firmware:
        build = child_text(root, "firmwareReleasedDate")
        fields["firmware"] = f"{firmware} {build}" if build else firmware
    mac = normalise_mac(child_text(root, "macAddress") or "")
    if mac:
        fields["mac"] = mac
    return fields


async def isapi_device_info(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                            source: str = "http") -> Observation:
    """``GET /ISAPI/System/deviceInfo`` without credentials: the 401 realm ``IP Camera(...)`` (§1.2)."""
    try:
        response = await fetch(ctx, ip, port, "GET", ISAPI_DEVICE_INFO, tls=tls)
    except ProbeError as err:
        return failure(ip, source, port, err, ISAPI_DEVICE_INFO)
    fields = response_fields(response, ISAPI_DEVICE_INFO)
    if response.status_code == 200:
        fields.update(parse_isapi_device_info(response.body))
    status = "not-found" if response.status_code == 404 else "success"
    return Observation(ip, source, port, status=status, fields=fields, raw=raw_excerpt(response),
                       error=response.note)


async def _follow_up(vendor: str, ctx: NetContext, ip: str, port: int, tls: bool, source: str) -> Observation:
    # Imported here: these modules use this one's client, so a module-level import would be circular.
    from scanner.probes import axis, dahua, uniview

    if vendor == "hikvision":
        return await isapi_device_info(ctx, ip, port, tls=tls, source=source)
    if vendor == "dahua":
        return await dahua.rpc2_challenge(ctx, ip, port, tls=tls)
    if vendor == "axis":
        return await axis.basic_device_info(ctx, ip, port, tls=tls)
    return await uniview.lapi_device_info(ctx, ip, port, tls=tls)


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """GET /, at most one same-host redirect, then at most MAX_FOLLOW_UPS vendor follow-ups."""
    source = "https" if tls else "http"
    try:
        return await _probe(ctx, ip, port, tls, source, hints)
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, source, port, status="unknown-error", error=describe(exc))]


async def _probe(ctx: NetContext, ip: str, port: int, tls: bool, source: str,
                 hints: dict[str, str] | None) -> list[Observation]:
    observation, page = await _get_page(ctx, ip, port, "/", tls, source)
    observations = [observation]
    if page is None:
        return observations
    pages = [page]
    location = page.response.header("location") if 300 <= page.response.status_code < 400 else None
    location = location or meta_refresh_url(page.text)
    target = same_host_target(location, ip, port, tls) if location else None
    if target is not None and target != "/":
        await asyncio.sleep(INTER_REQUEST_DELAY_S)
        observation, redirected = await _get_page(ctx, ip, port, target, tls, source)
        observations.append(observation)
        if redirected is not None:
            pages.append(redirected)
    for vendor in vendor_markers(pages, hints):
        await asyncio.sleep(INTER_REQUEST_DELAY_S)
        observations.append(await _follow_up(vendor, ctx, ip, port, tls, source))
    return observations
