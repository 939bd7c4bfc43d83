"""Hikvision ISAPI audit (digest auth, GET only) -- protocols.md §1.2-§1.6.

Reads, in order: ``System/deviceInfo`` (the login attempt), ``System/capabilities``
(``isSupportFaceSnap``, ``isSupportFaceLib``, ``isSupportFaceContrast``, ``isSupportFaceSnapModeling``,
``SmartCap/isSupportFaceDetect``, ``isSupportFaceCaptureStatistics``, counting flags),
``Smart/capabilities``, ``Intelligent/capabilities`` (``isFaceSupport``...), the channel's
``intelliType`` (which smart mode is switched on), ``Intelligent/FDLib`` (face libraries),
``System/Network/EZVIZ`` (Hik-Connect), ``System/Network/Ehome`` (ISUP platform),
``Event/notification/httpHosts`` (picture/event push targets) and ``System/PictureServer``.

A 401 with ``<lockStatus>lock</lockStatus>`` means the account is locked: nothing more is sent.
Secrets in these documents (Ehome ``key``, httpHosts ``userName``/password, PictureServer access
keys) are never read into the result: only host, port and protocol are kept.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from scanner.audit.context import FAILED, NOT_SUPPORTED, READ, REFUSED, DeviceAudit, refused_after_credentials
from scanner.audit.parsing import (
    as_bool,
    as_port,
    child,
    clean_host,
    descendants,
    find_text,
    local,
    parse_json,
    parse_xml,
    short,
    text_at,
)
from scanner.audit.records import PICTURES, STATUS, Destination

PROTOCOL = "isapi"
DEVICE_INFO = "/ISAPI/System/deviceInfo"
CAPABILITIES = "/ISAPI/System/capabilities"
SMART_CAPS = "/ISAPI/Smart/capabilities"
INTELLI_CAPS = "/ISAPI/Intelligent/capabilities"
# The web UI's per-channel smart mode (observed path [S18]; the values are UNCERTAIN: the lab and
# this client treat any value containing "face" as face capture switched on).
INTELLI_TYPE = "/ISAPI/Intelligent/channels/1/intelliType"
FDLIB = "/ISAPI/Intelligent/FDLib"
EZVIZ = "/ISAPI/System/Network/EZVIZ"
EHOME = "/ISAPI/System/Network/Ehome"
HTTP_HOSTS = "/ISAPI/Event/notification/httpHosts"
PICTURE_SERVER = "/ISAPI/System/PictureServer?format=json"

FACE_FLAGS = ("isSupportFaceSnap", "isSupportFaceLib", "isSupportFaceContrast", "isSupportFaceSnapModeling",
              "isSupportFaceDetect", "isSupportFaceCaptureStatistics", "isFaceSupport",
              "isFaceCaptureStatisticsSupport")
COUNTING_FLAGS = ("isSupportCounting", "isSupportPersonQueueDetection", "isSupportFramesPeopleCounting",
                  "isSupportHeatmap")
HIK_CONNECT = "Hik-Connect (Hikvision)"


def source(path: str) -> str:
    return f"audit:{PROTOCOL}:{path.split('?', 1)[0]}"


# ---- parsers (untrusted bytes in, never raise) -----------------------------------------------------
def is_lock_answer(body: bytes) -> tuple[bool, str]:
    """(locked, detail) from a ``userCheck`` answer: ``lockStatus lock`` and ``unlockTime`` seconds."""
    root = parse_xml(body)
    if root is None or (find_text(root, "lockStatus") or "").lower() != "lock":
        return False, ""
    unlock = as_port(find_text(root, "unlockTime"))  # seconds; as_port bounds it sanely
    return True, f" (unlocks in {unlock} s)" if unlock else ""


def is_not_supported(body: bytes) -> bool:
    """A ``ResponseStatus`` saying the device does not support the request."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "ResponseStatus":
        return False
    sub = (find_text(root, "subStatusCode") or "").lower()
    return sub in ("notsupport", "invalidoperation", "methodnotallowed") or find_text(root, "statusCode") == "4"


def parse_device_info(body: bytes) -> dict[str, str]:
    """model, serial, firmware, mac, device_type from ``DeviceInfo`` (empty dict if unreadable)."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "DeviceInfo":
        return {}
    out: dict[str, str] = {}
    for key, name in (("model", "model"), ("serial", "serialNumber"), ("mac", "macAddress"),
                      ("device_type", "deviceType")):
        value = text_at(root, name)
        if value:
            out[key] = short(value, 80)
    firmware = text_at(root, "firmwareVersion")
    if firmware:
        build = text_at(root, "firmwareReleasedDate")
        out["firmware"] = short(f"{firmware} {build}" if build else firmware, 80)
    return out


def capability_flags(*bodies: bytes | None) -> dict[str, bool]:
    """Face and counting flags found anywhere in capability documents (first value of each wins)."""
    flags: dict[str, bool] = {}
    for body in bodies:
        root = parse_xml(body)
        if root is None:
            continue
        for name in FACE_FLAGS + COUNTING_FLAGS:
            for node in descendants(root, name):
                value = as_bool(node.text or "")
                if value is not None and name not in flags:
                    flags[name] = value
    return flags


def face_capability(flags: dict[str, bool]) -> bool | None:
    """True if any face flag is true, False if face flags are present and all false, else None."""
    face = {k: v for k, v in flags.items() if k in FACE_FLAGS}
    if any(face.values()):
        return True
    return False if face else None


def parse_intelli_type(body: bytes) -> str | None:
    root = parse_xml(body)
    if root is None:
        return None
    value = find_text(root, "intelliType")
    return short(value, 40) if value else None


def parse_fdlib(body: bytes) -> int | None:
    """Number of face libraries in an ``FDLibBaseCfgList`` (None if not that document)."""
    root = parse_xml(body)
    if root is None or local(root.tag) == "ResponseStatus":
        return None
    if local(root.tag) not in ("FDLibBaseCfgList", "FDLibList") and not descendants(root, "FDLibBaseCfg"):
        return None
    return len(descendants(root, "FDLibBaseCfg"))


def _address(el: Element | None) -> str | None:
    """hostName or ipAddress, following addressingFormatType when both are present."""
    if el is None:
        return None
    kind = (text_at(el, "addressingFormatType") or "").lower()
    host = clean_host(text_at(el, "hostName"))
    ip = clean_host(text_at(el, "ipAddress")) or clean_host(text_at(el, "ipv6Address"))
    if kind == "hostname":
        return host or ip
    if kind == "ipaddress":
        return ip or host
    return host or ip


def parse_ezviz(body: bytes) -> Destination | None:
    """The Hik-Connect/EZVIZ registration when ``enabled`` is true (§1.6)."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "EZVIZ" or as_bool(text_at(root, "enabled")) is not True:
        return None
    registered = text_at(root, "registerStatus") or text_at(root, "status") or "?"
    bind = text_at(root, "bindStatus") or "?"
    server = child(root, "serverAddress")
    host = _address(server) if server is not None else None
    return Destination(host=host, port=None, protocol="hik-connect", what=STATUS, source=source(EZVIZ),
                       detail=short(f"EZVIZ enabled=true registerStatus={registered} bindStatus={bind}"),
                       operator_hint=HIK_CONNECT)


def parse_ehome(body: bytes) -> Destination | None:
    """The ISUP/EHome platform when ``enabled`` is true and an address is set (§1.6)."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "Ehome" or as_bool(text_at(root, "enabled")) is not True:
        return None
    host = _address(root)
    if host is None:
        return None
    port = as_port(text_at(root, "portNo"))
    version = text_at(root, "protocolVersion") or "?"
    registered = text_at(root, "registerStatus") or "?"
    return Destination(host=host, port=port, protocol="isup", what=STATUS, source=source(EHOME),
                       detail=short(f"Ehome enabled=true registerStatus={registered} protocolVersion={version}"))


def parse_http_hosts(body: bytes) -> list[Destination]:
    """Every push target with an address set (the factory entry is 0.0.0.0 and is skipped)."""
    root = parse_xml(body)
    out: list[Destination] = []
    if root is None:
        return out
    for entry in descendants(root, "HttpHostNotification")[:32]:
        host = _address(entry)
        if host is None:
            continue
        proto = (text_at(entry, "protocolType") or "HTTP").lower()
        port = as_port(text_at(entry, "portNo")) or (443 if proto == "https" else 80)
        path = (text_at(entry, "url") or "/").split("?", 1)[0]  # a query may carry a token: dropped
        fmt = text_at(entry, "parameterFormatType") or "?"
        out.append(Destination(host=host, port=port, protocol=proto if proto in ("http", "https") else "http",
                               what=PICTURES, source=source(HTTP_HOSTS),
                               detail=short(f"event/picture push {proto}://{host}:{port}{path} format={fmt}")))
    return out


def parse_picture_server(body: bytes) -> Destination | None:
    """``PictureServerInformation`` (JSON, or XML on some firmware) when a server type and address are set."""
    info: dict[str, Any] | None = None
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("PictureServerInformation"), dict):
        info = data["PictureServerInformation"]
    else:
        root = parse_xml(body)
        if root is not None and local(root.tag) == "PictureServerInformation":
            info = {local(el.tag): (el.text or "").strip() for el in root}
    if info is None:
        return None
    kind = str(info.get("pictureServerType") or "").strip()
    if not kind or kind.lower() in ("none", "disable", "disabled", "close"):
        return None
    fmt = str(info.get("addressingFormatType") or "").lower()
    name, ip = clean_host(info.get("hostName")), clean_host(info.get("ipAddress"))
    host = (ip or name) if fmt == "ipaddress" else (name or ip)
    if host is None:
        return None
    return Destination(host=host, port=as_port(info.get("portNo")), protocol=short(kind, 30), what=PICTURES,
                       source=source(PICTURE_SERVER), detail=short(f"PictureServer type={kind}"))


# ---- the client -------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, ctx: DeviceAudit, port: int, tls: bool) -> None:
        self.ctx = ctx
        self.http = ctx.http(port, tls=tls)

    def read(self, path: str) -> tuple[str, bytes]:
        """(outcome, body). A refused credential here (after a good login) stops everything."""
        reply = self.http.get(path)
        if reply is None:
            self.ctx.report.problems.append(f"ISAPI {path.split('?', 1)[0]}: no answer")
            return FAILED, b""
        if refused_after_credentials(reply):
            locked, detail = is_lock_answer(reply.body)
            if locked:
                self.ctx.guard.locked(f"Hikvision ISAPI: account locked{detail}")
            else:
                self.ctx.guard.failed(f"Hikvision ISAPI refused the credential on {path.split('?', 1)[0]}")
            return REFUSED, b""
        if reply.status == 200:
            self.ctx.report.mark_read(f"isapi:{path.split('?', 1)[0]}")
            return READ, reply.body
        if reply.status in (403, 404, 405, 501) or is_not_supported(reply.body):
            return NOT_SUPPORTED, b""
        self.ctx.report.problems.append(f"ISAPI {path.split('?', 1)[0]}: HTTP {reply.status}")
        return FAILED, b""


def audit(ctx: DeviceAudit) -> None:
    """Log in once (deviceInfo) and read the face and cloud configuration."""
    port, tls = ctx.web_port()
    reader = _Reader(ctx, port, tls)
    report = ctx.report
    reply = reader.http.get(DEVICE_INFO)
    if reply is None:
        report.unreachable.append(f"ISAPI (port {port})")
        return
    if refused_after_credentials(reply):
        locked, detail = is_lock_answer(reply.body)
        if locked:
            ctx.guard.locked(f"Hikvision ISAPI answered lockStatus=lock{detail}")
        else:
            ctx.guard.failed("Hikvision ISAPI refused the credential (HTTP 401 after digest)")
        return
    if reply.status == 401:
        report.unsupported.append("ISAPI (asks for a non-digest login; camsweep only sends digest)")
        return
    if reply.status != 200:
        report.unsupported.append(f"ISAPI (deviceInfo answered HTTP {reply.status})")
        return
    info = parse_device_info(reply.body)
    if not info:
        report.unsupported.append("ISAPI (deviceInfo is not a DeviceInfo document)")
        return
    ctx.guard.succeeded()
    report.uses(PROTOCOL)
    report.mark_read(f"isapi:{DEVICE_INFO}")
    for key in ("model", "firmware", "serial", "mac"):
        if key in info:
            report.fact(key, info[key], source(DEVICE_INFO), 0.98, f"DeviceInfo {key}")

    bodies: dict[str, bytes | None] = {}
    for path in (CAPABILITIES, SMART_CAPS, INTELLI_CAPS, INTELLI_TYPE, FDLIB, EZVIZ, EHOME, HTTP_HOSTS,
                 PICTURE_SERVER):
        outcome, body = reader.read(path)
        if outcome == REFUSED:
            return
        bodies[path] = body if outcome == READ else None

    flags = capability_flags(bodies[CAPABILITIES], bodies[SMART_CAPS], bodies[INTELLI_CAPS])
    capable = face_capability(flags)
    flag_text = short(", ".join(f"{k}={'true' if v else 'false'}" for k, v in flags.items() if k in FACE_FLAGS))
    if capable is not None:
        report.fact("face_capable", capable, source(CAPABILITIES), 0.95, flag_text)
    counting = [k for k, v in flags.items() if k in COUNTING_FLAGS and v]
    if counting:
        report.fact("people_counting", True, source(CAPABILITIES), 0.9, ", ".join(counting))

    mode = parse_intelli_type(bodies[INTELLI_TYPE] or b"") if bodies[INTELLI_TYPE] else None
    if mode is not None:
        report.fact("face_capture_enabled", "face" in mode.lower(), source(INTELLI_TYPE), 0.9,
                    f"channel 1 intelliType={mode}")
    elif capable is False:
        report.fact("face_capture_enabled", False, source(CAPABILITIES), 0.95, "no face capability")

    if bodies[FDLIB] is not None:
        count = parse_fdlib(bodies[FDLIB] or b"")
        if count is not None:
            report.fact("face_library", count, f"audit:{PROTOCOL}:FDLib", 0.95,
                        f"{count} face librar{'y' if count == 1 else 'ies'} on the device")

    for path, parse in ((EZVIZ, parse_ezviz), (EHOME, parse_ehome), (PICTURE_SERVER, parse_picture_server)):
        if bodies[path]:
            found = parse(bodies[path] or b"")
            if found is not None:
                report.destinations.append(found)
    if bodies[HTTP_HOSTS]:
        report.destinations.extend(parse_http_hosts(bodies[HTTP_HOSTS] or b""))
