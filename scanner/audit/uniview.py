"""Uniview LAPI audit (JSON over digest-protected HTTP, GET only) -- protocols.md §3.

Reads ``/LAPI/V1.0/System/DeviceInfo`` (the login attempt), ``/LAPI/V1.0/Network/Cloud``
(EZCloud / Star4Live registration), ``/LAPI/V1.0/Smart/Capabilities`` (face features) and
``/LAPI/V1.0/Smart/FaceDetection/Rule`` (whether face detection is switched on). Every answer
is the ``Response`` envelope (``ResponseCode`` 0 = success; unknown paths answer HTTP 599 with
``ResponseCode`` 1).

UNCERTAIN (protocols.md §3, §11 item 5): the realm and the field names of the Cloud, Smart
Capabilities and FaceDetection documents are not publicly documented. This client therefore
looks for enable-like keys (``Enabled``/``Enable``), address-like keys (``ServerAddress``,
``ServerAddr``, ``Address``, ``Domain``) and face flags by the word "Face" in the key, and
records what it matched in the evidence detail so a reader can judge.
"""

from __future__ import annotations

from typing import Any

from scanner.audit.context import DeviceAudit, refused_after_credentials
from scanner.audit.parsing import as_bool, as_port, clean_host, parse_json, short, walk_items
from scanner.audit.records import STATUS, Destination

PROTOCOL = "lapi"
DEVICE_INFO = "/LAPI/V1.0/System/DeviceInfo"
CLOUD = "/LAPI/V1.0/Network/Cloud"
SMART_CAPS = "/LAPI/V1.0/Smart/Capabilities"
FACE_RULE = "/LAPI/V1.0/Smart/FaceDetection/Rule"
ENABLE_KEYS = ("Enabled", "Enable", "IsEnable", "CloudEnable")
ADDRESS_KEYS = ("ServerAddress", "ServerAddr", "Address", "Domain", "ServerDomain", "HostName")
PORT_KEYS = ("ServerPort", "Port")
EZCLOUD = "Uniview EZCloud"


def source(path: str) -> str:
    return f"audit:{PROTOCOL}:{path}"


def lapi_data(body: bytes) -> tuple[bool, Any]:
    """(succeeded, Data) from a LAPI ``Response`` envelope; (False, None) if not one."""
    doc = parse_json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("Response"), dict):
        return False, None
    resp = doc["Response"]
    code = resp.get("ResponseCode")
    ok = isinstance(code, int) and not isinstance(code, bool) and code == 0
    return ok, resp.get("Data")


def parse_device_info(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    for key, name in (("model", "DeviceModel"), ("serial", "SerialNumber"), ("firmware", "FirmwareVersion"),
                      ("mac", "MAC")):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            out[key] = short(value, 80)
    return out


def parse_cloud(data: Any) -> Destination | None:
    """The cloud registration when an enable-like key is true (names UNCERTAIN)."""
    if not isinstance(data, dict):
        return None
    enabled = next((as_bool(data[k]) for k in ENABLE_KEYS if k in data), None)
    if enabled is not True:
        return None
    host_key = next((k for k in ADDRESS_KEYS if clean_host(data.get(k))), None)
    host = clean_host(data.get(host_key)) if host_key else None
    port = next((as_port(data[k]) for k in PORT_KEYS if k in data and as_port(data[k])), None)
    status = next((str(data[k]) for k in ("RegisterStatus", "DeviceStatus", "Status") if k in data), "?")
    return Destination(host=host, port=port, protocol="ezcloud", what=STATUS, source=source(CLOUD),
                       detail=short(f"Cloud enabled, {host_key or 'no address'}={host or '-'} status={status}"),
                       operator_hint=EZCLOUD)


def face_flags(data: Any) -> dict[str, bool]:
    """Every ``*Face*`` key with a truth value in the Smart capabilities."""
    flags: dict[str, bool] = {}
    for key, value in walk_items(data):
        if "face" in key.lower():
            truth = as_bool(value)
            if truth is not None:
                flags.setdefault(short(key, 60), truth)
    return flags


def audit(ctx: DeviceAudit) -> None:
    port, tls = ctx.web_port()
    http = ctx.http(port, tls=tls)
    report = ctx.report
    reply = http.get(DEVICE_INFO)
    if reply is None:
        report.unreachable.append(f"LAPI (port {port})")
        return
    if refused_after_credentials(reply):
        if "lock" in reply.text.lower():
            ctx.guard.locked("Uniview LAPI says the account is locked")
        else:
            ctx.guard.failed("Uniview LAPI refused the credential (HTTP 401 after digest)")
        return
    ok, data = lapi_data(reply.body)
    info = parse_device_info(data) if reply.status == 200 and ok else {}
    if not info:
        report.unsupported.append(f"LAPI (DeviceInfo answered HTTP {reply.status})")
        return
    ctx.guard.succeeded()
    report.uses(PROTOCOL)
    report.mark_read(f"lapi:{DEVICE_INFO}")
    for key, value in info.items():
        report.fact(key, value, source(DEVICE_INFO), 0.95, f"DeviceInfo {key}")

    answers: dict[str, Any] = {}
    for path in (CLOUD, SMART_CAPS, FACE_RULE):
        reply = http.get(path)
        if reply is None:
            report.problems.append(f"LAPI {path}: no answer")
            continue
        if refused_after_credentials(reply):
            ctx.guard.failed(f"Uniview LAPI refused the credential on {path}")
            return
        ok, data = lapi_data(reply.body)
        if reply.status == 200 and ok:
            report.mark_read(f"lapi:{path}")
            answers[path] = data
        elif reply.status not in (403, 404, 599) and not (reply.status == 200 and not ok):
            report.problems.append(f"LAPI {path}: HTTP {reply.status}")

    if CLOUD in answers:
        found = parse_cloud(answers[CLOUD])
        if found is not None:
            report.destinations.append(found)
    flags = face_flags(answers.get(SMART_CAPS))
    capable: bool | None = None
    if flags:
        capable = any(flags.values())
        report.fact("face_capable", capable, source(SMART_CAPS), 0.85,
                    short(", ".join(f"{k}={int(v)}" for k, v in flags.items())))
    if FACE_RULE in answers and isinstance(answers[FACE_RULE], dict):
        enabled = next((as_bool(answers[FACE_RULE][k]) for k in ENABLE_KEYS if k in answers[FACE_RULE]), None)
        if enabled is not None:
            report.fact("face_capture_enabled", enabled, source(FACE_RULE), 0.85,
                        f"FaceDetection rule enabled={'1' if enabled else '0'}")
            if enabled:
                report.fact("face_capable", True, source(FACE_RULE), 0.9, "a face detection rule exists")
    elif capable is False:
        report.fact("face_capture_enabled", False, source(SMART_CAPS), 0.85, "no face feature")
