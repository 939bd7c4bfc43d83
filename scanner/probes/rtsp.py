"""RTSP identification: OPTIONS then DESCRIBE on one connection, no credentials (protocols.md §1.8, §2.4, §6).

Sent, on ONE connection (the standard probe of §6; never HTTP, never SETUP/PLAY):

    OPTIONS rtsp://<ip>:<port>/ RTSP/1.0      CSeq: 1, User-Agent: camsweep/0.1
    DESCRIBE rtsp://<ip>:<port>/ RTSP/1.0     CSeq: 2, User-Agent, Accept: application/sdp

Parsed (never raises) into one Observation, source ``rtsp``:

* ``status_code`` (of DESCRIBE when it was answered, else of OPTIONS), ``options_status_code``;
* ``server`` (``Dahua Rtsp Server``, ``H264DVR 1.0``, ``HiIpcam/...``), or ``no_server`` "true"
  when neither reply has one (current Hikvision firmware sends none, §1.8);
* ``public`` (the OPTIONS ``Public`` list; Hikvision's and Axis' lists are tells, §6);
* ``realm`` and ``auth_scheme`` from the 401 ``WWW-Authenticate`` (``IP Camera(XXXXX)``,
  ``Login to <serial>``, ``AXIS_WS_<MAC>`` ...: "the realm is usually the best vendor tell", §6);
* ``date``: the raw ``Date`` value with its separator spaces kept -- Hikvision writes
  ``Date:  Thu, May 14 2020 ...`` with two spaces (§1.8), so ``date`` starts with two spaces
  there and ``date_double_space`` is "true";
* ``headers`` (both raw header blocks), ``sdp_session_name`` when DESCRIBE returned an SDP.
"""

from __future__ import annotations

import re

from scanner.net import NetContext, status_of
from scanner.observations import Observation, excerpt
from scanner.probes.http import (
    HEADERS_FIELD,
    USER_AGENT,
    HttpResponse,
    ProbeError,
    Stream,
    auth_fields,
    describe,
    failure,
    read_response,
    session,
)

SOURCE = "rtsp"
_SDP_SESSION = re.compile(r"^s=(.*)$", re.MULTILINE)


def rtsp_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"rtsp://{host}:{port}/"


def build_request(method: str, url: str, cseq: int, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _exchange(stream: Stream, method: str, request: bytes) -> HttpResponse:
    try:
        await stream.send(request)
    except (OSError, TimeoutError) as exc:
        stream.clean = False
        raise ProbeError(status_of(exc), f"sending {method} failed: {describe(exc)}") from None
    return await read_response(stream, protocol="RTSP", method=method)


def rtsp_fields(options: HttpResponse, describe_reply: HttpResponse | None) -> dict[str, str]:
    """The Observation fields from the OPTIONS reply and (if any) the DESCRIBE reply."""
    replies = [r for r in (describe_reply, options) if r is not None]
    main = replies[0]
    fields = {"status_code": str(main.status_code), "options_status_code": str(options.status_code)}
    server = next((s for s in (r.header("server") for r in (options, describe_reply) if r) if s), None)
    if server:
        fields["server"] = server
    else:
        fields["no_server"] = "true"
    public = options.header("public") or (describe_reply.header("public") if describe_reply else None)
    if public:
        fields["public"] = public
    for reply in replies:  # DESCRIBE's challenge first: it is the one that normally carries the realm
        auth = auth_fields(reply)
        if auth:
            fields.update(auth)
            break
    date = options.header_raw("date")
    if date is None and describe_reply is not None:
        date = describe_reply.header_raw("date")
    if date is not None:
        fields["date"] = date[:128]
        if date.startswith("  "):
            fields["date_double_space"] = "true"
    blocks = [r.headers_text for r in (options, describe_reply) if r is not None and r.headers_text]
    if blocks:
        fields["headers"] = "\n\n".join(blocks)[:HEADERS_FIELD]
    if describe_reply is not None and describe_reply.status_code == 200 and describe_reply.body:
        match = _SDP_SESSION.search(describe_reply.body[:4096].decode("utf-8", "replace"))
        if match and match.group(1).strip():
            fields["sdp_session_name"] = match.group(1).strip()[:128]
    return fields


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """OPTIONS and DESCRIBE (CSeq 1 and 2) on one connection."""
    try:
        return [await _probe(ctx, ip, port, tls)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]


async def _probe(ctx: NetContext, ip: str, port: int, tls: bool) -> Observation:
    url = rtsp_url(ip, port)
    describe_reply: HttpResponse | None = None
    describe_error: ProbeError | None = None
    try:
        async with session(ctx, ip, port, tls=tls) as stream:
            options = await _exchange(stream, "OPTIONS", build_request("OPTIONS", url, 1))
            try:
                describe_reply = await _exchange(
                    stream, "DESCRIBE", build_request("DESCRIBE", url, 2, (("Accept", "application/sdp"),)))
            except ProbeError as err:
                describe_error = err
    except ProbeError as err:
        return failure(ip, SOURCE, port, err)
    fields = rtsp_fields(options, describe_reply)
    raw_parts = [options.head + options.body[:256]]
    if describe_reply is not None:
        raw_parts.append(describe_reply.head)
    error = f"DESCRIBE: {describe_error.status}: {describe_error.message}" if describe_error else None
    return Observation(ip, SOURCE, port, status="success", fields=fields, raw=excerpt(b"".join(raw_parts)),
                       error=error)
