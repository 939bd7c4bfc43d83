"""Dahua RPC2_Login challenge: the anonymous first step of the web login leaks MAC and serial (protocols.md §2.3).

Sent: ONE ``POST /RPC2_Login`` with
``{"method":"global.login","params":{"userName":"admin","password":"","clientType":"Web3.0"},"id":1}``.
This is not a login attempt and no password is ever tried: the password field is empty and the
request is only the *challenge* step every Dahua web client sends first; the device answers with
``error.code`` 268632079 ("login challenge!") and the parameters for the second step, which
camsweep never sends. It does not count as a failed login on the device (no account lockout).

Parsed (never raises; a trailing NUL/newline after the JSON is tolerated, §9): ``params.mac``
(``3CEF8C6101C0`` -> field ``mac`` ``3c:ef:8c:61:01:c0``), ``params.realm`` (field ``realm``;
``Login to <serial>`` -> field ``serial``), ``params.encryption`` (field ``encryption``) and the
error code (field ``rpc2.error_code``). The challenge nonces (``random``, ``authorization``) are
not kept, not even in ``raw``. Source ``dahua-rpc2``.
"""

from __future__ import annotations

import json
from typing import Any

from scanner.net import NetContext
from scanner.observations import Observation, excerpt
from scanner.probes import normalise_mac
from scanner.probes.http import ProbeError, describe, failure, fetch, parse_json_object, response_fields

SOURCE = "dahua-rpc2"
RPC2_LOGIN_PATH = "/RPC2_Login"
CHALLENGE_REQUEST: dict[str, Any] = {
    "method": "global.login",
    "params": {"userName": "admin", "password": "", "clientType": "Web3.0"},
    "id": 1,
}
LOGIN_CHALLENGE_CODE = 268632079
REDACTED_PARAMS = ("random", "authorization")


def parse_challenge_reply(data: bytes) -> dict[str, str]:
    """Fields from a ``global.login`` challenge reply; empty when it is not one."""
    reply = parse_json_object(data)
    if reply is None:
        return {}
    params = reply.get("params")
    fields: dict[str, str] = {}
    if isinstance(params, dict):
        mac = normalise_mac(str(params.get("mac", "")))
        if mac:
            fields["mac"] = mac
        realm = params.get("realm")
        if isinstance(realm, str) and realm:
            fields["realm"] = realm[:256]
            if realm.startswith("Login to "):
                serial = realm.removeprefix("Login to ").strip()
                if serial:
                    fields["serial"] = serial[:128]
        encryption = params.get("encryption")
        if isinstance(encryption, str) and encryption:
            fields["encryption"] = encryption[:64]
    if not fields:
        return {}
    error = reply.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        fields["rpc2.error_code"] = str(error["code"])
    return fields


def redacted(data: bytes) -> str:
    """The reply for ``raw``, without the challenge nonces."""
    reply = parse_json_object(data)
    if reply is None:
        return excerpt(data[:512])
    params = reply.get("params")
    if isinstance(params, dict):
        reply = {**reply, "params": {k: ("..." if k in REDACTED_PARAMS else v) for k, v in params.items()}}
    return json.dumps(reply, sort_keys=True)[:1024]


async def rpc2_challenge(ctx: NetContext, ip: str, port: int, *, tls: bool = False) -> Observation:
    """POST the challenge-only ``global.login`` (empty password, never a second step) and read the leak."""
    body = json.dumps(CHALLENGE_REQUEST, separators=(",", ":")).encode()
    try:
        response = await fetch(ctx, ip, port, "POST", RPC2_LOGIN_PATH, tls=tls, body=body,
                               content_type="application/json")
    except ProbeError as err:
        return failure(ip, SOURCE, port, err, RPC2_LOGIN_PATH)
    fields = response_fields(response, RPC2_LOGIN_PATH)
    challenge = parse_challenge_reply(response.body)
    raw = excerpt(response.head.decode("latin-1") + redacted(response.body))
    if response.status_code == 404:
        return Observation(ip, SOURCE, port, status="not-found", fields=fields, raw=raw, error=response.note)
    if not challenge:
        return Observation(ip, SOURCE, port, status="protocol-error", fields=fields, raw=raw,
                           error=response.note or "no RPC2 login challenge in the reply")
    fields.update(challenge)
    return Observation(ip, SOURCE, port, status="success", fields=fields, raw=raw, error=response.note)


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """The RPC2_Login challenge on ``port`` (the device's web port)."""
    try:
        return [await rpc2_challenge(ctx, ip, port, tls=tls)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]
