"""ONVIF audit with WS-UsernameToken on the device's own clock -- protocols.md §5.2-§5.4.

1. ``GetSystemDateAndTime`` (PRE_AUTH, no credential) measures the camera's clock: cameras are
   often hours off, and a UsernameToken whose ``Created`` is outside the device's window is
   refused -- the most common ONVIF login failure. The token is built on *device* time.
2. ``GetCapabilities`` (PRE_AUTH) gives the media, analytics and events service addresses; they
   are only ever contacted on this device's own address (a different host in an XAddr is
   replaced by the device's address, so the credential goes nowhere else).
3. With the token (PasswordDigest = Base64(SHA-1(nonce ‖ created ‖ password))):
   ``GetDeviceInformation`` (the login attempt), ``GetScopes``, media ``GetProfiles`` (for the
   analytics configuration token), analytics ``GetSupportedRules`` and
   ``GetSupportedAnalyticsModules``, events ``GetEventProperties``.

Face conclusions: a rule, module or event topic whose name contains "Face" means the device can
capture faces (§5.4: face detection is a vendor extension, face recognition is
``tns1:RuleEngine/Recognition/Face``); analytics without any face item is weak evidence against.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import os
import time
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from scanner.audit.context import DeviceAudit
from scanner.audit.parsing import (
    as_port,
    child,
    descendants,
    find_text,
    local,
    parse_xml,
    short,
    text_at,
)

PROTOCOL = "onvif"
DEVICE_PATH = "/onvif/device_service"
SOAP_TYPE = "application/soap+xml; charset=utf-8"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TAN = "http://www.onvif.org/ver20/analytics/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"
AUTH_FAULTS = ("notauthorized", "failedauthentication", "invalidsecuritytoken", "failedcheck")
SKEW_NOTE_S = 60


def envelope(body: str, security: str = "") -> bytes:
    header = f"<s:Header>{security}</s:Header>" if security else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
            f"{header}<s:Body>{body}</s:Body></s:Envelope>").encode()


def username_token(user: str, password: str, device_time: float, nonce: bytes | None = None) -> str:
    """The WS-Security header (OASIS UsernameToken profile, PasswordDigest), Created on device time."""
    raw_nonce = nonce if nonce is not None else os.urandom(16)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(device_time))
    digest = base64.b64encode(hashlib.sha1(raw_nonce + created.encode() + password.encode("utf-8")).digest())
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
            f"<wsse:UsernameToken><wsse:Username>{escape(user)}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest.decode()}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{BASE64_BINARY}">{base64.b64encode(raw_nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>")


# ---- parsers -------------------------------------------------------------------------------------
def body_of(data: bytes) -> Element | None:
    """The first element inside the SOAP Body (the response or the Fault)."""
    root = parse_xml(data)
    if root is None or local(root.tag) != "Envelope":
        return None
    body = child(root, "Body")
    if body is None:
        return None
    return next(iter(body), None)


def fault_of(data: bytes) -> tuple[str, str] | None:
    """(codes, reason) of a SOAP Fault, lower-cased; None when the answer is not a fault."""
    first = body_of(data)
    if first is None or local(first.tag) != "Fault":
        return None
    codes = " ".join((el.text or "").strip() for el in descendants(first, "Value"))
    codes += " " + " ".join((el.text or "").strip() for el in descendants(first, "faultcode"))
    reason = " ".join((el.text or "").strip() for el in descendants(first, "Text"))
    reason += " " + " ".join((el.text or "").strip() for el in descendants(first, "faultstring"))
    return codes.lower(), short(reason, 80).lower()


def parse_device_time(data: bytes) -> float | None:
    """Epoch seconds of ``SystemDateAndTime/UTCDateTime`` (None if absent or nonsense)."""
    first = body_of(data)
    utc = descendants(first, "UTCDateTime")
    if not utc:
        return None
    try:
        parts = [int(find_text(utc[0], name) or "") for name in ("Year", "Month", "Day", "Hour", "Minute", "Second")]
        if not 1970 <= parts[0] <= 2200:
            return None
        return float(calendar.timegm((parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], 0, 0, 0)))
    except (ValueError, OverflowError, TypeError):
        return None


def parse_xaddrs(data: bytes) -> dict[str, str]:
    """Service addresses from ``GetCapabilities``: analytics, events, media."""
    first = body_of(data)
    out: dict[str, str] = {}
    for name, key in (("Analytics", "analytics"), ("Events", "events"), ("Media", "media")):
        for node in descendants(first, name):
            addr = text_at(node, "XAddr")
            if addr:
                out[key] = addr
                break
    return out


def parse_device_information(data: bytes) -> dict[str, str]:
    first = body_of(data)
    if first is None or local(first.tag) != "GetDeviceInformationResponse":
        return {}
    out: dict[str, str] = {}
    for key, name in (("manufacturer", "Manufacturer"), ("model", "Model"), ("firmware", "FirmwareVersion"),
                      ("serial", "SerialNumber")):
        value = text_at(first, name)
        if value:
            out[key] = short(value, 80)
    return out


def parse_scopes(data: bytes) -> list[str]:
    return [short(el.text or "", 160) for el in descendants(body_of(data), "ScopeItem")[:64] if (el.text or "").strip()]


def parse_analytics_token(data: bytes) -> str | None:
    """The token of the first ``VideoAnalyticsConfiguration`` in ``GetProfiles``."""
    for node in descendants(body_of(data), "VideoAnalyticsConfiguration"):
        token = node.get("token")
        if token and len(token) <= 64:
            return token
    return None


def parse_named(data: bytes, element: str) -> list[str]:
    """``Name`` attributes of RuleDescription / AnalyticsModuleDescription entries."""
    return [short(el.get("Name") or "", 80) for el in descendants(body_of(data), element)[:128] if el.get("Name")]


def parse_configured_rules(data: bytes) -> list[str]:
    """``Type`` (else ``Name``) of every rule in ``GetRulesResponse``: the rules switched on."""
    first = body_of(data)
    if first is None or local(first.tag) != "GetRulesResponse":
        return []
    return [short(el.get("Type") or el.get("Name") or "", 80) for el in descendants(first, "Rule")[:128]
            if el.get("Type") or el.get("Name")]


def parse_topics(data: bytes) -> list[str]:
    """Event topics (``RuleEngine/FaceDetector/Face``) from ``GetEventProperties``' TopicSet."""
    first = body_of(data)
    sets = descendants(first, "TopicSet")
    topics: list[str] = []

    def walk(node: Element, path: list[str], depth: int) -> None:
        if depth > 10 or len(topics) >= 256:
            return
        subs = list(node)
        is_topic = any(local(k) == "topic" and v.lower() == "true" for k, v in node.attrib.items())
        if path and (is_topic or not subs):
            topics.append("/".join(path))
        for sub in subs:
            if local(sub.tag) in ("MessageDescription", "Documentation"):
                continue
            walk(sub, [*path, local(sub.tag)], depth + 1)

    if sets:
        walk(sets[0], [], 0)
    return topics


def same_device(xaddr: str | None, ip: str, default_port: int) -> tuple[str, int, bool] | None:
    """(path, port, tls) of a service address, forced onto the device's own address."""
    if not xaddr:
        return None
    try:
        parts = urlsplit(xaddr.strip().split()[0])
        port = parts.port
    except (ValueError, IndexError):
        return None
    if parts.scheme not in ("http", "https") or not parts.path.startswith("/"):
        return None
    tls = parts.scheme == "https"
    if port is None:
        port = default_port if parts.hostname == ip and not tls else (443 if tls else 80)
    return parts.path, as_port(port) or 80, tls


# ---- the client -------------------------------------------------------------------------------------
class _Soap:
    def __init__(self, ctx: DeviceAudit, port: int) -> None:
        self.ctx = ctx
        self.port = port
        self.offset = 0.0  # device clock minus ours

    def post(self, path: str, port: int, tls: bool, body: str, *, token: bool) -> tuple[int, bytes] | None:
        security = ""
        if token:
            if self.ctx.guard.stopped:
                return None
            cred = self.ctx.credential
            security = username_token(cred.username, cred.password.reveal(), time.time() + self.offset)
        reply = self.ctx.http(port, tls=tls).post(path, envelope(body, security), SOAP_TYPE, authenticated=False)
        if reply is None:
            return None
        return reply.status, reply.body

    def refused(self, status: int, data: bytes, what: str) -> bool:
        """Judge an answer to a token request; a refusal stops every further credential use."""
        fault = fault_of(data)
        auth_fault = fault is not None and any(code in fault[0] for code in AUTH_FAULTS)
        if status == 401 or auth_fault:
            reason = fault[1] if fault else f"HTTP {status}"
            if "lock" in reason:
                self.ctx.guard.locked(f"ONVIF says the account is locked ({reason})")
            else:
                self.ctx.guard.failed(f"ONVIF refused the UsernameToken on {what} ({reason or 'NotAuthorized'})")
            return True
        return False


def onvif_port(ctx: DeviceAudit) -> int | None:
    """The device's ONVIF port: an ``onvif`` service, else its web port when it answered WS-Discovery."""
    services = ctx.device.services
    for svc in services:
        if svc.protocol == "onvif" and svc.transport == "tcp":
            return svc.port
    speaks_onvif = any(s.protocol == "wsd" for s in services) or any(
        e.source.split(":", 1)[0] in ("wsd", "onvif") for e in ctx.device.evidence)
    if not speaks_onvif:
        return None
    ports = ctx.open_ports()
    for port in (80, 8080, 8899, 2020):
        if port in ports:
            return port
    return None


def audit(ctx: DeviceAudit) -> None:
    port = onvif_port(ctx)
    if port is None:
        return
    report = ctx.report
    soap = _Soap(ctx, port)
    answer = soap.post(DEVICE_PATH, port, False, f'<tds:GetSystemDateAndTime xmlns:tds="{TDS}"/>', token=False)
    if answer is None:
        report.unreachable.append(f"ONVIF (port {port})")
        return
    asked = time.time()
    device_time = parse_device_time(answer[1]) if answer[0] == 200 else None
    if device_time is None:
        report.unsupported.append("ONVIF (no GetSystemDateAndTime answer)")
        return
    soap.offset = device_time - asked
    skew = int(round(soap.offset))
    caps = soap.post(DEVICE_PATH, port, False,
                     f'<tds:GetCapabilities xmlns:tds="{TDS}"><tds:Category>All</tds:Category></tds:GetCapabilities>',
                     token=False)
    xaddrs = parse_xaddrs(caps[1]) if caps is not None and caps[0] == 200 else {}

    info_answer = soap.post(DEVICE_PATH, port, False, f'<tds:GetDeviceInformation xmlns:tds="{TDS}"/>', token=True)
    if info_answer is None:
        report.problems.append("ONVIF GetDeviceInformation: no answer")
        return
    if soap.refused(*info_answer, "GetDeviceInformation"):
        return
    info = parse_device_information(info_answer[1]) if info_answer[0] == 200 else {}
    if not info:
        report.unsupported.append(f"ONVIF (GetDeviceInformation answered HTTP {info_answer[0]})")
        return
    ctx.guard.succeeded()
    report.uses(PROTOCOL)
    report.mark_read("onvif:GetSystemDateAndTime")
    report.mark_read("onvif:GetDeviceInformation")
    src = f"audit:{PROTOCOL}"
    if abs(skew) >= SKEW_NOTE_S:
        report.fact("clock_skew_s", skew, f"{src}:GetSystemDateAndTime", 0.9,
                    f"device clock {abs(skew)} s {'ahead' if skew > 0 else 'behind'}; token Created on device time")
    for key in ("model", "firmware", "serial"):
        if key in info:
            report.fact(key, info[key], f"{src}:GetDeviceInformation", 0.95, f"GetDeviceInformation {key}")

    def call(service: str | None, body: str, name: str) -> bytes | None:
        target = same_device(service, ctx.ip, port) if service else (DEVICE_PATH, port, False)
        if target is None:
            return None
        answer = soap.post(target[0], target[1], target[2], body, token=True)
        if answer is None:
            report.problems.append(f"ONVIF {name}: no answer")
            return None
        if soap.refused(*answer, name):
            return None
        if answer[0] != 200 or fault_of(answer[1]) is not None:
            return None
        report.mark_read(f"onvif:{name}")
        return answer[1]

    scopes_doc = call(None, f'<tds:GetScopes xmlns:tds="{TDS}"/>', "GetScopes")
    if scopes_doc is not None:
        scopes = parse_scopes(scopes_doc)
        if scopes:
            report.fact("onvif_scopes", scopes[:16], f"{src}:GetScopes", 0.9, f"{len(scopes)} scopes")
    names: list[str] = []
    rules: list[str] = []
    if "analytics" in xaddrs and not ctx.guard.stopped:
        profiles = call(xaddrs.get("media"), f'<trt:GetProfiles xmlns:trt="{TRT}"/>', "GetProfiles")
        token = parse_analytics_token(profiles) if profiles else None
        token_xml = f"<tan:ConfigurationToken>{escape(token)}</tan:ConfigurationToken>" if token else ""
        doc = call(xaddrs["analytics"], f'<tan:GetSupportedRules xmlns:tan="{TAN}">{token_xml}</tan:GetSupportedRules>',
                   "GetSupportedRules")
        rules = parse_named(doc, "RuleDescription") if doc else []
        doc = call(xaddrs["analytics"], f'<tan:GetSupportedAnalyticsModules xmlns:tan="{TAN}">{token_xml}'
                   "</tan:GetSupportedAnalyticsModules>", "GetSupportedAnalyticsModules")
        names = rules + (parse_named(doc, "AnalyticsModuleDescription") if doc else [])
        doc = call(xaddrs["analytics"], f'<tan:GetRules xmlns:tan="{TAN}">{token_xml}</tan:GetRules>', "GetRules")
        if doc is not None:
            active = parse_configured_rules(doc)
            face_active = [r for r in active if "face" in r.lower()]
            if face_active:
                report.fact("face_capture_enabled", True, f"{src}:GetRules", 0.8,
                            short("face rule(s) configured: " + ", ".join(face_active[:4])))
            elif active:
                report.fact("face_capture_enabled", False, f"{src}:GetRules", 0.6,
                            short(f"{len(active)} rule(s) configured, none for faces"))
    topics: list[str] = []
    if "events" in xaddrs and not ctx.guard.stopped:
        doc = call(xaddrs["events"], f'<tev:GetEventProperties xmlns:tev="{TEV}"/>', "GetEventProperties")
        topics = parse_topics(doc) if doc else []
    face_items = [n for n in names if "face" in n.lower()] + [t for t in topics if "face" in t.lower()]
    if face_items:
        report.fact("face_capable", True, f"{src}:analytics", 0.85,
                    short("face analytics: " + ", ".join(face_items[:4])))
    elif rules:
        report.fact("face_capable", False, f"{src}:analytics", 0.5,
                    short(f"{len(names)} analytics rules/modules and {len(topics)} event topics, none for faces"))
