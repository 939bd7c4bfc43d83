"""Xiongmai (XMEye / "Sofia") audit over DVRIP TCP 34567 -- protocols.md §4.3.

Every message is a 20-byte little-endian header (``BBHIIHHI``: 0xFF, version, reserved,
session, sequence, packet flags, message id, body length) then JSON ending ``\\n\\0``.
Sent, in order: login (1000, ``EncryptType MD5``, ``LoginType DVRIP-Web``, the "sofia" password
hash -- the one attempt), ``SystemInfo`` (1020), ``SystemFunction`` (1360: ``SupportFaceDetectV2``,
``SupportFaceRecognition``...), a config get (1042) of ``NetWork.Nat`` (the XMEye cloud/P2P
switch ``NatEnable``), and logout (1002). Login answers: ``Ret`` 100/515 accepted; 106, 203,
205 refused; 206/207 are read as a locked/blacklisted account (207 "Blacklisted" is in
python-dvr's table; 206 is UNCERTAIN).

Message 1042 as "config get" and the key names of ``NetWork.Nat`` other than ``NatEnable``
(``ServerAddr``/``ServerPort``) follow python-dvr and clouds.md ("secu100.net", "port 8000").
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from typing import Any

from scanner.audit.context import DeviceAudit
from scanner.audit.parsing import as_bool, as_port, clean_host, parse_json, short, walk_items
from scanner.audit.records import VIDEO, Destination

PROTOCOL = "dvrip"
PORT = 34567
HEADER = struct.Struct("<BBHIIHHI")
HEAD = 0xFF
MSG_LOGIN, MSG_LOGOUT, MSG_SYSINFO, MSG_CONFIG_GET, MSG_ABILITY = 1000, 1002, 1020, 1042, 1360
RET_OK = (100, 515)
RET_LOCKED = (206, 207)
MAX_BODY = 256 * 1024
SOFIA = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FACE_KEYS = ("SupportFaceDetectV2", "SupportFaceRecognition", "SupportFaceDetect")
XMEYE = "XMEye (Xiongmai)"


def sofia_hash(password: str) -> str:
    """MD5 digest bytes summed pairwise mod 62 into [0-9A-Za-z] (8 characters)."""
    digest = hashlib.md5(password.encode("utf-8")).digest()
    return "".join(SOFIA[(digest[i] + digest[i + 1]) % 62] for i in range(0, 16, 2))


def pack(msg_id: int, body: dict[str, Any], session: int, sequence: int) -> bytes:
    payload = json.dumps(body).encode() + b"\n\x00"
    return HEADER.pack(HEAD, 0, 0, session, sequence, 0, msg_id, len(payload)) + payload


def parse_header(data: bytes) -> tuple[int, int, int] | None:
    """(session, message id, body length) of a reply header, or None if it is not DVRIP."""
    if len(data) != HEADER.size:
        return None
    head, _ver, _res, session, _seq, _flags, msg_id, length = HEADER.unpack(data)
    if head != HEAD or length > MAX_BODY:
        return None
    return session, msg_id, length


def face_flags(function: Any) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for key, value in walk_items(function):
        if key in FACE_KEYS or ("face" in key.lower() and key.lower().startswith("support")):
            truth = as_bool(value)
            if truth is not None:
                flags.setdefault(short(key, 40), truth)
    return flags


def parse_nat(nat: Any, source: str) -> Destination | None:
    """The XMEye cloud switch: a destination when ``NatEnable`` is true."""
    if not isinstance(nat, dict) or as_bool(nat.get("NatEnable")) is not True:
        return None
    host = clean_host(nat.get("ServerAddr")) or clean_host(nat.get("ServerAddress"))
    port = as_port(nat.get("ServerPort"))
    return Destination(host=host, port=port, protocol="xmeye-p2p", what=VIDEO, source=source,
                       detail=short(f"NetWork.Nat NatEnable=true server {host or '-'}:{port or '?'}"),
                       operator_hint=XMEYE)


class _Dvrip:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.session = 0
        self.sequence = 0

    def _recv_exact(self, size: int) -> bytes | None:
        chunks: list[bytes] = []
        remaining = size
        while remaining > 0:
            chunk = self.sock.recv(min(remaining, 65536))
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def ask(self, msg_id: int, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send one message and read one reply (None on a protocol error)."""
        self.sock.sendall(pack(msg_id, body, self.session, self.sequence))
        self.sequence += 1
        head = self._recv_exact(HEADER.size)
        parsed = parse_header(head) if head is not None else None
        if parsed is None:
            return None
        _session, _msg, length = parsed
        raw = self._recv_exact(length) if length else b""
        if raw is None:
            return None
        data = parse_json(raw)
        return data if isinstance(data, dict) else None


def audit(ctx: DeviceAudit) -> None:
    report = ctx.report
    if ctx.guard.stopped:
        return
    try:
        sock = socket.create_connection((ctx.ip, ctx.net.port(PORT)), timeout=ctx.net.connect_timeout,
                                        source_address=(ctx.net.source_ip, 0) if ctx.net.source_ip else None)
    except OSError:
        report.unreachable.append(f"DVRIP (port {PORT})")
        return
    try:
        sock.settimeout(ctx.net.read_timeout)
        _session(ctx, _Dvrip(sock))
    except OSError:
        report.problems.append("DVRIP: the connection failed")
    finally:
        sock.close()


def _session(ctx: DeviceAudit, link: _Dvrip) -> None:
    report = ctx.report
    cred = ctx.credential
    login = link.ask(MSG_LOGIN, {"EncryptType": "MD5", "LoginType": "DVRIP-Web", "UserName": cred.username,
                                 "PassWord": sofia_hash(cred.password.reveal())})
    if login is None:
        report.unsupported.append("DVRIP (the login answer is not DVRIP)")
        return
    ret = login.get("Ret")
    if ret in RET_LOCKED:
        ctx.guard.locked(f"Xiongmai DVRIP says the account is locked (Ret {ret})")
        return
    if ret not in RET_OK:
        ctx.guard.failed(f"Xiongmai DVRIP refused the login (Ret {short(ret, 12)})")
        return
    try:
        link.session = int(str(login.get("SessionID", "0")), 16)
    except ValueError:
        link.session = 0
    ctx.guard.succeeded()
    report.uses(PROTOCOL)
    report.mark_read("dvrip:login")
    sid = f"0x{link.session:08X}"
    src = f"audit:{PROTOCOL}"
    answers: dict[str, Any] = {}
    for msg_id, name in ((MSG_SYSINFO, "SystemInfo"), (MSG_ABILITY, "SystemFunction"),
                         (MSG_CONFIG_GET, "NetWork.Nat")):
        reply = link.ask(msg_id, {"Name": name, "SessionID": sid})
        if reply is None:
            report.problems.append(f"DVRIP {name}: no answer")
            continue
        if reply.get("Ret") in RET_OK and name in reply:
            answers[name] = reply[name]
            report.mark_read(f"dvrip:{name}")
    link.ask(MSG_LOGOUT, {"Name": "", "SessionID": sid})

    info = answers.get("SystemInfo")
    if isinstance(info, dict):
        for key, name in (("model", "DeviceModel"), ("serial", "SerialNo"), ("firmware", "SoftWareVersion")):
            value = info.get(name) or (info.get("HardWare") if key == "model" else None)
            if isinstance(value, str) and value.strip():
                report.fact(key, short(value, 80), f"{src}:SystemInfo", 0.95, f"SystemInfo {name}")
    flags = face_flags(answers.get("SystemFunction"))
    if flags:
        capable = any(flags.values())
        report.fact("face_capable", capable, f"{src}:SystemFunction", 0.9,
                    short(", ".join(f"{k}={'true' if v else 'false'}" for k, v in flags.items())))
        if not capable:
            report.fact("face_capture_enabled", False, f"{src}:SystemFunction", 0.9, "no face function")
    nat = parse_nat(answers.get("NetWork.Nat"), f"{src}:NetWork.Nat")
    if nat is not None:
        report.destinations.append(nat)
