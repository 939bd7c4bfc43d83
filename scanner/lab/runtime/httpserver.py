"""A small asyncio HTTP/1.1 and RTSP/1.0 server for the lab's emulated devices and clouds.

Real camera firmware answers in ways general-purpose servers never would (upper-case header
names on Dahua, no ``Server:`` header, a ``Date:`` with two spaces in Hikvision RTSP), so the
lab writes its own responses byte for byte. Requests are parsed leniently; anything malformed
closes the connection (or, for a fragile device, hangs it -- see ``ConnectionPolicy``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: str
    local_port: int
    sni: str | None = None

    @property
    def path(self) -> str:
        """Path without query; RTSP absolute URLs are reduced to their path."""
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    reason: str | None = None
    close: bool = False

    def payload(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    454: "Session Not Found",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    599: "Network Connect Timeout Error",
}

Handler = Callable[[Request], Awaitable[Response] | Response]


@dataclass
class ServerStyle:
    """How a firmware's responses look on the wire."""

    protocol: str = "HTTP/1.1"  # or "RTSP/1.0"
    server: str | None = None  # None: no Server header at all
    header_case: str = "title"  # "title" (Content-Length) or "upper" (CONTENT-LENGTH, Dahua)
    date: bool = True
    date_double_space: bool = False  # Hikvision RTSP: "Date:  Thu, May 14 2020 ..."
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ConnectionPolicy:
    """Per-server limits; a fragile device hangs instead of refusing."""

    max_concurrent: int | None = None
    on_overload: Callable[[str], None] | None = None  # called with a reason; the device decides
    max_body: int = 1 << 20
    idle_timeout: float = 30.0


class DigestAuth:
    """RFC 2617 Digest (MD5, qop=auth) and optional Basic, with per-user failure counting.

    ``lock_after`` failed attempts lock the user (Hikvision-style lockout): later attempts fail
    even with the right password until ``unlock()``.
    """

    def __init__(
        self,
        realm: str,
        users: dict[str, str],
        *,
        allow_basic: bool = False,
        basic_only: bool = False,
        lock_after: int | None = None,
        stale_header: bool = True,
    ) -> None:
        self.realm = realm
        self.users = dict(users)
        self.allow_basic = allow_basic or basic_only
        self.basic_only = basic_only
        self.lock_after = lock_after
        self.stale_header = stale_header
        self.failures: dict[str, int] = {}
        self.locked: set[str] = set()
        self.attempts: list[tuple[float, str, bool]] = []  # (time, user, ok)
        self._nonce_key = os.urandom(8).hex()

    def nonce(self) -> str:
        return hashlib.md5(f"{time.time()}:{self._nonce_key}".encode()).hexdigest()

    def challenge_headers(self) -> list[tuple[str, str]]:
        if self.basic_only:
            return [("WWW-Authenticate", f'Basic realm="{self.realm}"')]
        digest = f'Digest qop="auth", realm="{self.realm}", nonce="{self.nonce()}"'
        if self.stale_header:
            digest += ', stale="FALSE"'
        return [("WWW-Authenticate", digest)]

    def check(self, req: Request) -> tuple[bool, str | None]:
        """(authorised, username). Records the attempt when credentials were offered."""
        value = req.header("authorization")
        if not value:
            return False, None
        scheme, _, rest = value.partition(" ")
        user: str | None = None
        ok = False
        if scheme.lower() == "basic" and self.allow_basic:
            try:
                user, _, password = base64.b64decode(rest.strip()).decode("utf-8", "replace").partition(":")
            except ValueError:
                return False, None
            ok = user in self.users and self.users[user] == password
        elif scheme.lower() == "digest" and not self.basic_only:
            params = parse_auth_params(rest)
            user = params.get("username")
            if user is not None and user in self.users:
                ok = verify_digest(params, req.method, self.users[user])
        else:
            return False, None
        if user is None:
            return False, None
        return self.record(user, ok), user

    def record(self, user: str, ok: bool) -> bool:
        """Count one login attempt; returns whether it is accepted (False when locked)."""
        if user in self.locked:
            self.attempts.append((time.time(), user, False))
            return False
        self.attempts.append((time.time(), user, ok))
        if ok:
            self.failures[user] = 0
            return True
        self.failures[user] = self.failures.get(user, 0) + 1
        if self.lock_after is not None and self.failures[user] >= self.lock_after:
            self.locked.add(user)
        return False

    def is_locked(self, user: str | None) -> bool:
        return user is not None and user in self.locked


def parse_auth_params(text: str) -> dict[str, str]:
    """Parse ``k="v", k2=v2`` lists (quoted values may contain commas)."""
    out: dict[str, str] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq].strip().lower()
        i = eq + 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                end = n
            out[key] = text[i + 1 : end]
            i = end + 1
        else:
            end = text.find(",", i)
            if end < 0:
                end = n
            out[key] = text[i:end].strip()
            i = end
    return out


def verify_digest(params: dict[str, str], method: str, password: str) -> bool:
    """Check an RFC 2617 digest response (MD5; qop=auth or none)."""
    try:
        ha1 = md5_hex(f"{params['username']}:{params['realm']}:{password}")
        ha2 = md5_hex(f"{method}:{params['uri']}")
        if params.get("qop"):
            expected = md5_hex(
                f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
            )
        else:
            expected = md5_hex(f"{ha1}:{params['nonce']}:{ha2}")
    except KeyError:
        return False
    return expected == params.get("response", "").lower()


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Router:
    """Exact-path and prefix routes; first match wins."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefix: list[tuple[str, str, Handler]] = []
        self.fallback: Handler | None = None

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._exact[(method.upper(), path)] = handler

    def get(self, path: str, handler: Handler) -> None:
        self.add("GET", path, handler)

    def prefix(self, method: str, prefix: str, handler: Handler) -> None:
        self._prefix.append((method.upper(), prefix, handler))

    def resolve(self, req: Request) -> Handler | None:
        handler = self._exact.get((req.method, req.path))
        if handler is None and req.method == "HEAD":
            handler = self._exact.get(("GET", req.path))
        if handler is not None:
            return handler
        for method, prefix, h in self._prefix:
            if (method in ("*", req.method)) and req.path.startswith(prefix):
                return h
        return self.fallback


class TextProtocolServer:
    """Serves HTTP/1.1 or RTSP/1.0 with a ``Router`` and a ``ServerStyle``."""

    def __init__(
        self,
        router: Router,
        style: ServerStyle | None = None,
        policy: ConnectionPolicy | None = None,
        *,
        name: str = "http",
    ) -> None:
        self.router = router
        self.style = style or ServerStyle()
        self.policy = policy or ConnectionPolicy()
        self.name = name
        self.active = 0
        self.hung = asyncio.Event()
        self.requests_served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        peer = _peer(writer)
        local_port = _local_port(writer)
        sni = _sni(writer)
        try:
            if self.policy.max_concurrent is not None and self.active > self.policy.max_concurrent:
                if self.policy.on_overload:
                    self.policy.on_overload(f"{self.active} concurrent connections on {self.name}")
            while True:
                if self.hung.is_set():
                    await _hang(reader)
                    return
                try:
                    req = await asyncio.wait_for(
                        self._read_request(reader, peer, local_port, sni), self.policy.idle_timeout
                    )
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except _BadRequest as bad:
                    if self.policy.on_overload and self.policy.on_overload is not None:
                        self.policy.on_overload(f"non-protocol bytes on {self.name}: {bad}")
                    if self.hung.is_set():
                        await _hang(reader)
                        return
                    await self._write(writer, Response(400, close=True), None)
                    return
                if req is None:
                    return
                if self.hung.is_set():
                    await _hang(reader)
                    return
                resp = await self._dispatch(req)
                self.requests_served += 1
                await self._write(writer, resp, req)
                if resp.close or req.header("connection").lower() == "close" or req.version == "HTTP/1.0":
                    return
        except (ConnectionError, ssl.SSLError, OSError):
            return
        finally:
            self.active -= 1
            try:
                writer.close()
            except (ConnectionError, OSError, RuntimeError):
                pass

    async def _dispatch(self, req: Request) -> Response:
        handler = self.router.resolve(req)
        if handler is None:
            return Response(404, "Not Found")
        try:
            result = handler(req)
            if isinstance(result, Response):
                return result
            return await result
        except Exception:  # a handler bug must not kill the emulated device
            log.exception("handler failed for %s %s", req.method, req.target)
            return Response(500, "Internal Server Error")

    async def _read_request(
        self, reader: asyncio.StreamReader, peer: str, local_port: int, sni: str | None
    ) -> Request | None:
        head = bytearray()
        # Skip blank lines between pipelined requests.
        while True:
            line = await reader.readline()
            if not line:
                return None
            if line.strip():
                head += line
                break
        first = head.decode("latin-1").strip()
        parts = first.split(" ")
        if len(parts) != 3 or not parts[2].startswith(("HTTP/", "RTSP/")) or not parts[0].isalpha():
            raise _BadRequest(first[:40])
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(bytes(head), None)
            if line in (b"\r\n", b"\n"):
                break
            head += line
            if len(head) > MAX_HEAD:
                raise _BadRequest("head too large")
        headers: dict[str, str] = {}
        for raw in head.decode("latin-1").split("\n")[1:]:
            name, sep, value = raw.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError as exc:
                raise _BadRequest("bad content-length") from exc
            if length < 0 or length > self.policy.max_body:
                raise _BadRequest("body too large")
            body = await reader.readexactly(length)
        return Request(parts[0].upper(), parts[1], parts[2], headers, body, peer, local_port, sni)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError as exc:
                raise _BadRequest("bad chunk size") from exc
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            if len(body) + size > self.policy.max_body:
                raise _BadRequest("body too large")
            body += await reader.readexactly(size)
            await reader.readline()

    async def _write(self, writer: asyncio.StreamWriter, resp: Response, req: Request | None) -> None:
        style = self.style
        payload = resp.payload()
        reason = resp.reason or REASONS.get(resp.status, "OK")
        lines = [f"{style.protocol} {resp.status} {reason}"]
        headers: list[tuple[str, str]] = []
        if req is not None and "cseq" in req.headers:
            headers.append(("CSeq", req.headers["cseq"]))
        if style.date:
            date = formatdate(usegmt=True)
            if style.date_double_space:
                # Hikvision RTSP: "Date:  Thu, May 14 2020 10:01:02 GMT"
                t = time.gmtime()
                date = " " + time.strftime("%a, %b %d %Y %H:%M:%S GMT", t)
            headers.append(("Date", date))
        if style.server is not None:
            headers.append(("Server", style.server))
        headers.extend(style.extra_headers)
        headers.extend(resp.headers)
        if resp.content_type:
            headers.append(("Content-Type", resp.content_type))
        if style.protocol.startswith("HTTP") or payload:
            headers.append(("Content-Length", str(len(payload))))
        if resp.close and style.protocol.startswith("HTTP"):
            headers.append(("Connection", "close"))
        for name, value in headers:
            if style.header_case == "upper":
                name = name.upper()
            lines.append(f"{name}: {value}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if req is None or req.method != "HEAD":
            data += payload
        writer.write(data)
        await writer.drain()


class _BadRequest(Exception):
    pass


async def _hang(reader: asyncio.StreamReader) -> None:
    """Keep the connection open and never answer (a hung embedded web server)."""
    try:
        while await reader.read(4096):
            pass
    except (ConnectionError, OSError):
        pass


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    return str(info[0]) if info else "?"


def _local_port(writer: asyncio.StreamWriter) -> int:
    info = writer.get_extra_info("sockname")
    return int(info[1]) if info else 0


def _sni(writer: asyncio.StreamWriter) -> str | None:
    obj = writer.get_extra_info("ssl_object")
    if obj is None:
        return None
    name = getattr(obj, "camsweep_sni", None)
    return str(name) if name else None


def sni_recording_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server TLS context that remembers the client's SNI on the SSLObject."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)

    def remember(obj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        obj.camsweep_sni = name  # type: ignore[union-attr]

    ctx.sni_callback = remember
    return ctx


def xml_response(body: str, status: int = 200) -> Response:
    return Response(status, body, content_type='application/xml; charset="UTF-8"')


def json_response(body: str, status: int = 200) -> Response:
    return Response(status, body, content_type="application/json")
