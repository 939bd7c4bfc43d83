"""Dahua audit: HTTP CGI with digest, or the RPC2 login when the CGI is missing -- protocols.md §2.2-§2.3.

CGI (digest; ``key=value`` text, configs as ``table.<Name>.<Field>=value``):
``magicBox.cgi?action=getSystemInfo`` (the login attempt), ``getSoftwareVersion``, then
``configManager.cgi?action=getConfig&name=`` ``T2UServer`` (P2P cloud), ``VSP_PaaS`` (cloud
platform), ``PictureHttpUpload``, ``EventHttpUpload`` (push targets) and ``VideoAnalyseRule``
(IVS rules: face detection/recognition and whether they are enabled).

RPC2 (JSON over HTTP): ``global.login`` twice -- the anonymous challenge, then
``MD5_UPPER(user:random:MD5_UPPER(user:realm:password))`` (the one attempt) -- then
``magicBox.getSystemInfo``, ``magicBox.getSoftwareVersion``, ``configManager.getConfig`` with the
same names, and ``global.logout``.

UNCERTAIN (protocols.md §11 item 4): the field lists of T2UServer/VSP_PaaS and the rule ``Type``
strings; this client looks for address/port pairs anywhere in those configs and treats any rule
type containing "Face" as a face rule. Dahua's "account locked" wording is not in the notes: an
answer that mentions "lock" is read as locked.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from scanner.audit.context import DeviceAudit, refused_after_credentials
from scanner.audit.parsing import as_bool, as_port, clean_host, parse_json, short
from scanner.audit.records import EVENTS, PICTURES, STATUS, VIDEO, Destination

SYSTEM_INFO = "/cgi-bin/magicBox.cgi?action=getSystemInfo"
SOFTWARE_VERSION = "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"
GET_CONFIG = "/cgi-bin/configManager.cgi?action=getConfig&name="
RPC2_LOGIN = "/RPC2_Login"
RPC2 = "/RPC2"
JSON_TYPE = "application/json"
CONFIGS = ("T2UServer", "VSP_PaaS", "PictureHttpUpload", "EventHttpUpload", "VideoAnalyseRule")
# What each destination config sends, and the protocol word used in the result.
CONFIG_KIND = {
    "T2UServer": (VIDEO, "dahua-p2p"),
    "VSP_PaaS": (STATUS, "dahua-paas"),
    "PictureHttpUpload": (PICTURES, "http-upload"),
    "EventHttpUpload": (EVENTS, "http-upload"),
}
ADDRESS_KEYS = ("Address", "ServerAddress", "HostName", "Host", "Domain", "IP", "IPAddress")
PORT_KEYS = ("Port", "ServerPort", "HttpPort")
_PATH_RE = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def login_hash(user: str, password: str, realm: str, random: str) -> str:
    """Second-step RPC2 password (§2.3, encryption "Default")."""
    return md5_upper(f"{user}:{random}:{md5_upper(f'{user}:{realm}:{password}')}")


# ---- parsers -------------------------------------------------------------------------------------
def parse_kv(body: bytes) -> dict[str, str]:
    """CRLF ``key=value`` lines (bounded); lines without ``=`` are ignored."""
    out: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines()[:4096]:
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def table_config(kv: dict[str, str], name: str) -> Any:
    """``table.<name>...`` lines rebuilt into nested dicts/lists (None when absent)."""
    prefix = f"table.{name}"
    root: dict[Any, Any] = {}
    found = False
    for key, value in kv.items():
        if key != prefix and not key.startswith((prefix + ".", prefix + "[")):
            continue
        rest = key[len(prefix):]
        tokens: list[Any] = []
        pos = 0
        for m in _PATH_RE.finditer(rest):
            if m.start() != pos:
                break
            tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
            pos = m.end()
        if pos != len(rest) or len(tokens) > 16:
            continue
        found = True
        node: dict[Any, Any] = root
        for token in tokens[:-1]:
            nxt = node.get(token)
            if not isinstance(nxt, dict):
                nxt = {}
                node[token] = nxt
            node = nxt
        if tokens:
            node[tokens[-1]] = value
        else:
            root["value"] = value
    return _listify(root) if found else None


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_listify(node[k]) for k in sorted(node)]
        return {k: _listify(v) for k, v in node.items()}
    return node


def _servers(value: Any, depth: int = 0) -> list[tuple[str, int | None]]:
    """(host, port) of every dict below ``value`` that names an address."""
    out: list[tuple[str, int | None]] = []
    if depth > 8:
        return out
    if isinstance(value, dict):
        host = next((clean_host(value[k]) for k in ADDRESS_KEYS if k in value and clean_host(value[k])), None)
        if host is not None:
            port = next((as_port(value[k]) for k in PORT_KEYS if k in value and as_port(value[k])), None)
            out.append((host, port))
        for sub in value.values():
            out.extend(_servers(sub, depth + 1))
    elif isinstance(value, list):
        for sub in value[:64]:
            out.extend(_servers(sub, depth + 1))
    return out


def config_destinations(name: str, config: Any, source: str) -> list[Destination]:
    """Destinations of an enabled T2UServer / VSP_PaaS / *HttpUpload config."""
    if name not in CONFIG_KIND or not isinstance(config, dict):
        return []
    if as_bool(config.get("Enable")) is not True:
        return []
    what, protocol = CONFIG_KIND[name]
    out: list[Destination] = []
    seen: set[tuple[str, int | None]] = set()
    for host, port in _servers(config)[:16]:
        if (host, port) in seen:
            continue
        seen.add((host, port))
        out.append(Destination(host=host, port=port, protocol=protocol, what=what, source=source,
                               detail=short(f"{name}.Enable=true server {host}:{port or '?'}")))
    return out


def _typed_rules(config: Any) -> list[dict[str, Any]]:
    """Every dict with a string ``Type`` in a VideoAnalyseRule config (bounded depth and width:
    the config comes from the device)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 6:
            return
        if isinstance(node, dict):
            if isinstance(node.get("Type"), str):
                found.append(node)
            for sub in node.values():
                walk(sub, depth + 1)
        elif isinstance(node, list):
            for sub in node[:256]:
                walk(sub, depth + 1)

    walk(config, 0)
    return found


def face_rules(config: Any) -> list[tuple[str, bool | None]]:
    """(type, enabled) of every IVS rule whose Type mentions Face, in a VideoAnalyseRule config."""
    return [(short(rule["Type"], 40), as_bool(rule.get("Enable")))
            for rule in _typed_rules(config) if "face" in rule["Type"].lower()]


def rule_count(config: Any) -> int:
    return len(_typed_rules(config))


def software_version(value: Any) -> str | None:
    """``version=2.800...,build:2020-06-05`` (CGI) or ``{"version": {"Version", "BuildDate"}}`` (RPC2)."""
    if isinstance(value, dict):
        inner = value.get("version", value)
        if isinstance(inner, dict):
            version, build = inner.get("Version"), inner.get("BuildDate")
            if isinstance(version, str) and version:
                return short(f"{version}, build {build}" if isinstance(build, str) and build else version, 80)
        return None
    if isinstance(value, str) and value:
        version, _, build = value.partition(",build:")
        return short(f"{version}, build {build}" if build else version, 80)
    return None


# ---- shared conclusions ------------------------------------------------------------------------------
def conclude(ctx: DeviceAudit, protocol: str, system: dict[str, Any], version: str | None,
             configs: dict[str, Any]) -> None:
    report = ctx.report
    src = f"audit:{protocol}"
    model, serial = system.get("deviceType"), system.get("serialNumber")
    if isinstance(model, str) and model:
        report.fact("model", short(model, 80), f"{src}:magicBox.getSystemInfo", 0.98, "getSystemInfo deviceType")
    if isinstance(serial, str) and serial:
        report.fact("serial", short(serial, 80), f"{src}:magicBox.getSystemInfo", 0.98,
                    "getSystemInfo serialNumber")
    if version:
        report.fact("firmware", version, f"{src}:magicBox.getSoftwareVersion", 0.98, "getSoftwareVersion")
    for name in CONFIGS:
        if name in configs and name in CONFIG_KIND:
            report.destinations.extend(config_destinations(name, configs[name], f"{src}:{name}"))
    if "VideoAnalyseRule" in configs:
        rules = face_rules(configs["VideoAnalyseRule"])
        listed = ", ".join(f"{kind} Enable={'true' if on else 'false'}" for kind, on in rules[:4])
        rule_src = f"{src}:VideoAnalyseRule"
        if rules:
            report.fact("face_capable", True, rule_src, 0.9, short(f"face rule(s): {listed}"))
            enabled = any(on for _, on in rules)
            report.fact("face_capture_enabled", enabled, rule_src, 0.9, short(f"face rule(s): {listed}"))
        else:
            total = rule_count(configs["VideoAnalyseRule"])
            report.fact("face_capture_enabled", False, rule_src, 0.75,
                        f"{total} IVS rule(s), none of a face type")


# ---- CGI ---------------------------------------------------------------------------------------------
def _cgi(ctx: DeviceAudit, port: int, tls: bool) -> bool | None:
    """True: audited over CGI; False: stop (refused/locked/unreachable); None: no CGI, try RPC2."""
    report = ctx.report
    http = ctx.http(port, tls=tls)
    reply = http.get(SYSTEM_INFO)
    if reply is None:
        report.unreachable.append(f"Dahua CGI (port {port})")
        return False
    if refused_after_credentials(reply):
        if "lock" in reply.text.lower():
            ctx.guard.locked("Dahua CGI says the account is locked")
        else:
            ctx.guard.failed("Dahua CGI refused the credential (HTTP 401 after digest)")
        return False
    if reply.status == 401:
        return None  # not a digest CGI: RPC2 may still work
    if reply.status != 200:
        return None
    system = parse_kv(reply.body)
    if "deviceType" not in system and "serialNumber" not in system:
        return None
    ctx.guard.succeeded()
    report.uses("dahua-cgi")
    report.mark_read("dahua-cgi:magicBox.getSystemInfo")
    version = None
    reply = http.get(SOFTWARE_VERSION)
    if reply is not None and refused_after_credentials(reply):
        ctx.guard.failed("Dahua CGI refused the credential on getSoftwareVersion")
        return True
    if reply is not None and reply.status == 200:
        report.mark_read("dahua-cgi:magicBox.getSoftwareVersion")
        version = software_version(parse_kv(reply.body).get("version"))
    configs: dict[str, Any] = {}
    for name in CONFIGS:
        reply = http.get(GET_CONFIG + name)
        if reply is None:
            report.problems.append(f"Dahua CGI {name}: no answer")
            continue
        if refused_after_credentials(reply):
            ctx.guard.failed(f"Dahua CGI refused the credential on {name}")
            break
        if reply.status == 200:
            config = table_config(parse_kv(reply.body), name)
            if config is not None:
                configs[name] = config
                report.mark_read(f"dahua-cgi:configManager.{name}")
                continue
        if reply.status not in (400, 404, 501):  # 400 "Bad Request" = no such config on this firmware
            report.problems.append(f"Dahua CGI {name}: HTTP {reply.status}")
    conclude(ctx, "dahua-cgi", system, version, configs)
    return True


# ---- RPC2 --------------------------------------------------------------------------------------------
class _Rpc:
    def __init__(self, ctx: DeviceAudit, port: int, tls: bool) -> None:
        self.ctx = ctx
        self.http = ctx.http(port, tls=tls)
        self.session: int | None = None
        self.next_id = 1

    def call(self, path: str, method: str, params: dict[str, Any], session: int | None = None) -> Any:
        """POST one JSON-RPC message (no HTTP auth; the RPC2 session carries the login)."""
        msg: dict[str, Any] = {"method": method, "params": params, "id": self.next_id}
        self.next_id += 1
        if session is not None:
            msg["session"] = session
        reply = self.http.post(path, json.dumps(msg).encode(), JSON_TYPE, authenticated=False)
        if reply is None or reply.status != 200:
            return None
        data = parse_json(reply.body)
        return data if isinstance(data, dict) else None


def _rpc2(ctx: DeviceAudit, port: int, tls: bool) -> None:
    report = ctx.report
    rpc = _Rpc(ctx, port, tls)
    user = ctx.credential.username
    first = rpc.call(RPC2_LOGIN, "global.login", {"userName": user, "password": "", "clientType": "Web3.0"})
    if first is None:
        report.unsupported.append("Dahua CGI/RPC2 (no login endpoint answered)")
        return
    params = first.get("params") if isinstance(first.get("params"), dict) else {}
    session, realm, random = first.get("session"), params.get("realm"), params.get("random")
    encryption = params.get("encryption", "Default")
    if not isinstance(session, int) or isinstance(session, bool) or not isinstance(realm, str) \
            or not isinstance(random, str):
        report.unsupported.append("Dahua RPC2 (the login challenge is not in the known shape)")
        return
    if encryption != "Default":
        report.unsupported.append(f"Dahua RPC2 (login encryption {short(encryption, 20)} is not supported)")
        return
    if ctx.guard.stopped:
        return
    password = login_hash(user, ctx.credential.password.reveal(), realm, random)
    second = rpc.call(RPC2_LOGIN, "global.login", {"userName": user, "password": password, "clientType": "Web3.0",
                                                   "authorityType": "Default", "passwordType": "Default"},
                      session=session)
    if second is None:
        report.problems.append("Dahua RPC2 login: no answer")
        return
    if second.get("result") is not True:
        error = second.get("error") if isinstance(second.get("error"), dict) else {}
        message = short(error.get("message", ""), 80)
        if "lock" in message.lower():
            ctx.guard.locked(f"Dahua RPC2 says the account is locked ({message})")
        else:
            ctx.guard.failed(f"Dahua RPC2 refused the login ({message or 'result false'})")
        return
    ctx.guard.succeeded()
    report.uses("dahua-rpc2")
    report.mark_read("dahua-rpc2:global.login")

    def call(method: str, params: dict[str, Any]) -> Any:
        answer = rpc.call(RPC2, method, params, session=session)
        if answer is None or answer.get("result") is not True:
            return None
        report.mark_read(f"dahua-rpc2:{method}" + (f".{params['name']}" if "name" in params else ""))
        return answer.get("params")

    system = call("magicBox.getSystemInfo", {})
    version = software_version(call("magicBox.getSoftwareVersion", {}))
    configs: dict[str, Any] = {}
    for name in CONFIGS:
        found = call("configManager.getConfig", {"name": name})
        if isinstance(found, dict) and "table" in found:
            configs[name] = found["table"]
    rpc.call(RPC2, "global.logout", {}, session=session)
    conclude(ctx, "dahua-rpc2", system if isinstance(system, dict) else {}, version, configs)


def audit(ctx: DeviceAudit, *, prefer_rpc2: bool = False) -> None:
    """CGI first (one digest login); RPC2 only when the device has no digest CGI."""
    port, tls = ctx.web_port()
    if not prefer_rpc2:
        done = _cgi(ctx, port, tls)
        if done is not None:
            return
    _rpc2(ctx, port, tls)
