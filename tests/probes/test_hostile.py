"""Hostile and broken replies: every probe returns a status (or a bounded result), never raises or hangs.

Each test runs a tiny asyncio server on 127.0.0.1 that misbehaves in one way, points a probe at
it (``port_map`` sends the probe's logical port there) and bounds the wall-clock time.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from scanner.observations import STATUSES, Observation
from scanner.probes import axis, dahua, http, onvif, rtsp, uniview, upnp
from tests.probes.util import hostile_context, run, serving

READ_TIMEOUT = 0.5
# The exchange budget is 4 read timeouts; connect, linger and follow-ups add a little.
TIME_BOUND = READ_TIMEOUT * 4 + 3.0


async def _drain(reader: asyncio.StreamReader) -> None:
    """Read the request (up to the blank line) so the client's write never blocks."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            return
        data += chunk


def probe_against(handler, probe_name: str = "http", logical_port: int = 80,
                  read_timeout: float = READ_TIMEOUT) -> tuple[list[Observation], float]:
    async def main() -> tuple[list[Observation], float]:
        async with serving(handler) as port:
            ctx = hostile_context(port, read_timeout=read_timeout, logical_port=logical_port)
            started = time.monotonic()
            module = {"http": http, "rtsp": rtsp, "onvif": onvif, "dahua": dahua, "axis": axis,
                      "uniview": uniview}[probe_name]
            observations = await asyncio.wait_for(module.probe(ctx, "127.0.0.1", logical_port), 30)
            elapsed = time.monotonic() - started
            assert max(ctx.max_per_host_seen.values(), default=0) <= 2
            return observations, elapsed

    return run(main())


def assert_well_formed(observations: list[Observation]) -> None:
    assert observations
    for obs in observations:
        assert obs.status in STATUSES
        assert len(obs.raw) <= 2048
        assert len(obs.fields.get("body", "")) <= 8 * 1024
        assert len(obs.fields.get("headers", "")) <= 4 * 1024


# ---- HTTP -----------------------------------------------------------------------------------------
def test_garbage_instead_of_a_status_line_is_a_protocol_error():
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\x01\x02\xffgarbage that is not HTTP\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)  # keep the connection open: the probe must not wait for more

    observations, elapsed = probe_against(garbage, read_timeout=5.0)
    assert_well_formed(observations)
    assert [o.status for o in observations] == ["protocol-error"]
    assert observations[0].error == "not an HTTP reply"
    assert observations[0].fields == {"path": "/"}
    assert observations[0].raw.startswith("\ufffd")  # what it sent, printable
    assert elapsed < 2.0  # recognised from the first bytes, not after a (5 s) read timeout


def test_endless_header_block_is_cut_at_16_kb():
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"X-Padding: " + b"a" * 1000 + b"\r\n")
            await writer.drain()

    observations, elapsed = probe_against(endless)
    assert_well_formed(observations)
    assert [o.status for o in observations] == ["protocol-error"]
    assert observations[0].error == "header block larger than 16 KB"
    assert elapsed < TIME_BOUND


def test_ten_megabyte_body_is_read_only_up_to_64_kb():
    sent = {"bytes": 0}

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        size = 10 * 1024 * 1024
        writer.write(f"HTTP/1.1 200 OK\r\nServer: huge\r\nContent-Length: {size}\r\n\r\n".encode())
        block = b"<title>big</title>" + b"x" * (64 * 1024 - 18)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
            sent["bytes"] += len(block)

    observations, elapsed = probe_against(huge)
    assert_well_formed(observations)
    (page,) = observations
    assert page.status == "success"
    assert page.fields["server"] == "huge"
    assert page.fields["title"] == "big"
    assert len(page.fields["body"]) == 8 * 1024
    assert page.error == "body of 10485760 bytes cut at 64 KB"
    assert sent["bytes"] < 10 * 1024 * 1024  # the probe hung up long before the end
    assert elapsed < TIME_BOUND


def test_truncated_chunk_then_close_keeps_what_arrived():
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n"
                     b"Transfer-Encoding: chunked\r\n"
                     b"\r\n"
                     b"5\r\n<titl\r\n"           # RFC 9112 §7.1: chunk-size CRLF chunk-data CRLF
                     b"1000\r\ne>ok</title>")     # announces 4096 bytes, sends 13, closes
        await writer.drain()

    observations, elapsed = probe_against(truncated)
    assert_well_formed(observations)
    (page,) = observations
    assert page.status == "success"
    assert page.fields["body"] == "<title>ok</title>"
    assert page.fields["title"] == "ok"
    assert page.error == "the connection closed inside a chunk"
    assert elapsed < TIME_BOUND


def test_truncated_chunk_on_an_open_connection_times_out_boundedly():
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc")
        await writer.drain()
        await asyncio.sleep(30)

    observations, elapsed = probe_against(stalls)
    (page,) = observations
    assert page.status == "success"
    assert page.fields["body"] == "abc"
    assert page.error == "body read timed out after 3 bytes"
    assert elapsed < TIME_BOUND


def test_bad_chunk_size_is_reported():
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")
        await writer.drain()

    observations, _ = probe_against(bad)
    (page,) = observations
    assert page.status == "success" and page.fields["status_code"] == "200"
    assert "body" not in page.fields
    assert page.error == "bad chunk size b'-5'"


def test_slow_drip_is_bounded_by_the_exchange_budget():
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:  # one byte at a time, each well inside the read timeout, never finishing the head
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(READ_TIMEOUT / 5)

    observations, elapsed = probe_against(drip)
    assert [o.status for o in observations] == ["io-timeout"]
    assert observations[0].raw.startswith("HTTP/1.1 200 OK")
    assert elapsed < TIME_BOUND


def test_silent_server_is_an_io_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    observations, elapsed = probe_against(silent)
    assert [o.status for o in observations] == ["io-timeout"]
    assert observations[0].error == "no reply in time"
    assert elapsed < TIME_BOUND


def test_immediate_close_is_connection_closed():
    async def hangup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    observations, _ = probe_against(hangup)
    assert [o.status for o in observations] == ["connection-closed"]


def test_closed_port_is_connection_refused():
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    for module in (http, rtsp, onvif, dahua, axis, uniview):
        port = 554 if module is rtsp else 80
        ctx = hostile_context(free, logical_port=port)
        observations = run(module.probe(ctx, "127.0.0.1", port))
        assert [o.status for o in observations] == ["connection-refused"], module.__name__


def test_close_delimited_body_and_bare_newlines_are_read():
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.0 401 Unauthorized\n"
                     b"WWW-Authenticate: Basic realm=\"hikvision\"\n"   # old Hikvision DVR (§1.7)
                     b"\n"
                     b"<html>no</html>")
        await writer.drain()

    observations, _ = probe_against(old_style)
    page = observations[0]
    assert page.status == "success"
    assert page.fields["status_code"] == "401"
    assert page.fields["auth_scheme"] == "Basic" and page.fields["realm"] == "hikvision"
    assert page.fields["body"] == "<html>no</html>"
    # the realm is a Hikvision marker: the ISAPI follow-up went to the same (hostile) server
    assert [o.fields["path"] for o in observations] == ["/", "/ISAPI/System/deviceInfo"]


def test_redirect_to_another_host_is_not_followed():
    requests_seen: list[bytes] = []

    async def redirector(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests_seen.append(await reader.readline())
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/login\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    observations, _ = probe_against(redirector)
    assert [o.fields["location"] for o in observations] == ["http://192.0.2.1/login"]
    assert requests_seen == [b"GET / HTTP/1.1\r\n"]


def test_request_is_what_the_docstring_says():
    seen: list[bytes] = []

    async def recorder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await reader.read(4096)
        seen.append(data)
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    probe_against(recorder)
    assert seen == [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: camsweep/0.1\r\nAccept: */*\r\n"
                    b"Connection: close\r\n\r\n"]


# ---- RTSP -----------------------------------------------------------------------------------------
def test_rtsp_probe_against_an_http_server_is_a_protocol_error():
    async def web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    observations, _ = probe_against(web, "rtsp", 554)
    assert [o.status for o in observations] == ["protocol-error"]
    assert observations[0].error == "not an RTSP reply"


def test_rtsp_server_that_hangs_up_after_options_keeps_the_options_answer():
    requests_seen: list[bytes] = []

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await reader.read(4096)
        requests_seen.append(data)
        writer.write(b"RTSP/1.0 200 OK\r\n"
                     b"CSeq: 1\r\n"
                     b"Server: H264DVR 1.0\r\n"                  # §6: Xiongmai-style banner
                     b"Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, GET_PARAMETER, PLAY, PAUSE\r\n"
                     b"\r\n")
        await writer.drain()

    observations, _ = probe_against(one_shot, "rtsp", 554)
    (obs,) = observations
    assert obs.status == "success"
    assert obs.fields["server"] == "H264DVR 1.0"
    assert obs.fields["status_code"] == "200"
    assert obs.error is not None and obs.error.startswith("DESCRIBE: connection-closed")
    assert requests_seen == [b"OPTIONS rtsp://127.0.0.1:554/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: camsweep/0.1\r\n\r\n"]


def test_rtsp_endless_body_is_bounded():
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain(reader)
        writer.write(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\n")
        while True:
            writer.write(b"v=0\r\n" * 1000)
            await writer.drain()

    observations, elapsed = probe_against(endless, "rtsp", 554)
    (obs,) = observations
    assert obs.status == "success" and obs.fields["status_code"] == "200"
    assert elapsed < TIME_BOUND


# ---- ONVIF / vendor JSON --------------------------------------------------------------------------
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b'<Envelope><Body>&lol2;</Body></Envelope>')


@pytest.mark.parametrize("body", [BILLION_LAUGHS, b"<Envelope><Body><Broken", b"\xff\xfe\x00garbage",
                                  b"[" * 100000, b""])
def test_onvif_and_vendor_probes_survive_hostile_bodies(body: bytes):
    async def replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    for name in ("onvif", "dahua", "axis", "uniview"):
        observations, elapsed = probe_against(replies, name)
        assert_well_formed(observations)
        assert observations[0].status == ("success" if name == "uniview" else "protocol-error"), name
        assert elapsed < TIME_BOUND


def test_upnp_refuses_a_location_on_another_host():
    ctx = hostile_context(9)
    obs = run(upnp.fetch_description(ctx, "127.0.0.1", "http://127.0.0.2:80/description.xml"))
    assert obs.status == "skipped"
    assert obs.error == "LOCATION points at another host ('127.0.0.2'), not 127.0.0.1"
    assert ctx.connections == 0
    for bad in ("ftp://127.0.0.1/x", "http://127.0.0.1:99999/x", "http://[::1/x"):
        assert run(upnp.fetch_description(ctx, "127.0.0.1", bad)).status == "skipped", bad
    assert run(upnp.probe(ctx, "127.0.0.1", 80)) == [
        Observation("127.0.0.1", "upnp", 80, status="skipped", error="no SSDP LOCATION to fetch")]
    assert ctx.connections == 0


def test_a_cancelled_probe_stops_at_once():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def main() -> float:
        async with serving(silent) as port:
            ctx = hostile_context(port, read_timeout=5.0)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(http.probe(ctx, "127.0.0.1", 80), 0.3)
            return time.monotonic() - started

    assert run(main()) < 1.0
