"""The login guard and the HTTP seam every audit client uses.

``LoginGuard`` enforces the lockout rule for one device: the first request that carries the
credential is the login attempt; if the device refuses it (a 401 *after* credentials were sent,
a SOAP ``NotAuthorized``, a DVRIP bad-password code) or says the account is locked, no further
credential leaves camsweep for that device in this run, over any protocol. A digest 401
*challenge* (no credentials sent yet) is not a failed login.

``DeviceHttp`` is one ``requests.Session`` per device and port: digest auth only (never Basic,
which would send the password in clear), no proxies or environment settings (``trust_env`` off,
so nothing is ever sent to a proxy), optionally bound to the scan interface's address, bounded
response sizes, and read-only (it has no method that sends anything but GET/POST of a query).
Unit tests replace the session's transport adapter; lab tests use the real thing.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPDigestAuth
from urllib3.exceptions import InsecureRequestWarning

from scanner.audit.creds import Credential

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
_TLS_WARNINGS = threading.Lock()
UNTRIED, OK, FAILED, LOCKED = "untried", "ok", "failed", "locked"


@dataclass
class LoginGuard:
    """The login state of one device in this run (shared by every protocol)."""

    state: str = UNTRIED
    detail: str = ""
    attempts: int = 0  # requests that carried the credential and were refused
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def stopped(self) -> bool:
        """True once a login failed or the account is locked: send no credential again."""
        return self.state in (FAILED, LOCKED)

    def succeeded(self) -> None:
        with self._lock:
            if self.state == UNTRIED:
                self.state = OK

    def failed(self, detail: str) -> None:
        with self._lock:
            self.attempts += 1
            if self.state != LOCKED:
                self.state = FAILED
                self.detail = detail

    def locked(self, detail: str, *, attempted: bool = True) -> None:
        with self._lock:
            if attempted:
                self.attempts += 1
            self.state = LOCKED
            self.detail = detail


_STALE_RE = re.compile(r'stale\s*=\s*"?true', re.IGNORECASE)


class OneAttemptDigestAuth(HTTPDigestAuth):
    """Digest auth that never re-sends a refused credential.

    requests answers a 401 by retrying once with the new challenge. For the first request that is
    the login itself (the first try carried no credential). Later requests carry the digest up
    front; a 401 to one of those is retried only when the challenge says ``stale=true``
    (RFC 2617 §3.2.1: the credential was right, only the nonce expired) -- otherwise it is a
    refusal, and a retry would be a second failed login towards the device's lockout.
    """

    def handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if "Authorization" in r.request.headers and not _STALE_RE.search(r.headers.get("www-authenticate", "")):
            return r
        retried: requests.Response = super().handle_401(r, **kwargs)  # type: ignore[no-untyped-call]
        return retried


@dataclass
class HttpReply:
    status: int
    body: bytes
    headers: dict[str, str]
    sent_credentials: bool  # the final request carried an Authorization header

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class SourceAddressAdapter(HTTPAdapter):
    """Connections leave from the scan interface's address (a multi-homed inspector)."""

    def __init__(self, source_ip: str | None, **kwargs: Any) -> None:
        self.source_ip = source_ip
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        if self.source_ip:
            kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(connections, maxsize, block=block, **kwargs)


@dataclass
class NetSettings:
    """Where and how the audit connects (from the scan options)."""

    source_ip: str | None = None
    port_map: dict[int, int] = field(default_factory=dict)
    connect_timeout: float = 2.0
    read_timeout: float = 6.0
    adapter: HTTPAdapter | None = None  # unit tests: a canned transport

    def port(self, port: int) -> int:
        return self.port_map.get(port, port)


class DeviceHttp:
    """HTTP to one device port, with the device's credential under digest auth."""

    def __init__(self, ip: str, port: int, *, tls: bool, credential: Credential | None, guard: LoginGuard,
                 net: NetSettings) -> None:
        self.ip = ip
        self.port = port
        self.tls = tls
        self.guard = guard
        self.net = net
        self.session = requests.Session()
        self.session.trust_env = False  # never a proxy, never ~/.netrc credentials
        self.session.proxies = {}
        self.session.headers["User-Agent"] = "camsweep-audit"
        adapter = net.adapter if net.adapter is not None else SourceAddressAdapter(net.source_ip, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.auth = (OneAttemptDigestAuth(credential.username, credential.password.reveal())
                     if credential is not None else None)
        host = f"[{ip}]" if ":" in ip else ip
        self.base = f"{'https' if tls else 'http'}://{host}:{net.port(port)}"

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                authenticated: bool = True) -> HttpReply | None:
        """One request; None on a network error. Refuses to send credentials after a failed login."""
        if method not in ("GET", "POST"):
            raise ValueError("the audit only reads")  # a programming error, never a device's doing
        auth = self.auth if authenticated else None
        if auth is not None and self.guard.stopped:
            return None
        headers = {"Content-Type": content_type} if content_type else None
        try:
            if self.tls:
                # Device HTTPS uses self-signed certificates (the digest never reveals the password).
                # Warning filters are process-global, so TLS requests take turns while silenced.
                with _TLS_WARNINGS, warnings.catch_warnings():
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                    resp, content = self._send(method, path, body, headers, auth)
            else:
                resp, content = self._send(method, path, body, headers, auth)
        except (requests.RequestException, OSError, ValueError) as exc:
            log.debug("audit %s %s%s: %s", method, self.base, path, exc.__class__.__name__)
            return None
        sent = "Authorization" in resp.request.headers
        return HttpReply(resp.status_code, content[:MAX_BODY], {k.lower(): v for k, v in resp.headers.items()},
                         sent)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None,
              auth: HTTPDigestAuth | None) -> tuple[requests.Response, bytes]:
        resp = self.session.request(method, self.base + path, data=body, headers=headers, auth=auth,
                                    timeout=(self.net.connect_timeout, self.net.read_timeout),
                                    verify=False, allow_redirects=False, stream=True)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(chunk_size=65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY:  # no configuration document is this large: stop reading
                    break
        finally:
            resp.close()
        return resp, b"".join(chunks)

    def get(self, path: str, *, authenticated: bool = True) -> HttpReply | None:
        return self.request("GET", path, authenticated=authenticated)

    def post(self, path: str, body: bytes, content_type: str, *, authenticated: bool = True) -> HttpReply | None:
        return self.request("POST", path, body=body, content_type=content_type, authenticated=authenticated)
