"""Lab runtime pieces: the HTTP/RTSP server's wire format, digest auth, DNS answers to hostile
queries, MQTT length encoding, and the seeded plan."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from dnslib import DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.auth import HTTPDigestAuth

from scanner.lab.plan import make_plan
from scanner.lab.profiles import PROFILES
from scanner.lab.runtime import mqtt
from scanner.lab.runtime.dnsserver import answer
from scanner.lab.runtime.httpserver import (
    DigestAuth,
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
    parse_auth_params,
)


@contextmanager
def serve(server: TextProtocolServer) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = asyncio.run_coroutine_threadsafe(asyncio.start_server(server.handle, "127.0.0.1", 0), loop).result(5)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        async def stop() -> None:
            srv.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)
        chunks = b""
        while True:
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks += chunk
            if b"\r\n\r\n" in chunks:
                break
        return chunks


def test_upper_case_headers_and_no_server_header_as_dahua_firmware_sends():
    router = Router()
    router.get("/", lambda req: Response(200, "hi", content_type="text/plain"))
    server = TextProtocolServer(router, ServerStyle(server=None, header_case="upper"))
    with serve(server) as port:
        reply = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = reply.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 200 OK")
    assert "CONTENT-LENGTH: 2" in head and "CONTENT-TYPE: text/plain" in head
    assert "SERVER" not in head.upper().replace("CONTENT", "")


def test_non_protocol_bytes_get_400_and_are_reported_to_the_device():
    reasons: list[str] = []
    from scanner.lab.runtime.httpserver import ConnectionPolicy

    server = TextProtocolServer(Router(), ServerStyle(), ConnectionPolicy(on_overload=reasons.append))
    with serve(server) as port:
        reply = raw_exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    assert reasons and reasons[0].startswith("non-protocol bytes")


def test_chunked_request_body_is_read():
    seen: list[bytes] = []

    def record(req: Request) -> Response:
        seen.append(req.body)
        return Response(204)

    router = Router()
    router.add("POST", "/up", record)
    with serve(TextProtocolServer(router)) as port:
        reply = raw_exchange(port, b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 204")
    assert seen == [b"Wikipedia"]


def test_digest_auth_accepts_requests_client_and_counts_failures():
    auth = DigestAuth("IP Camera(C2183)", {"admin": "Secret1"}, lock_after=2)
    router = Router()
    router.get("/p", lambda req: Response(200, "ok") if auth.check(req)[0]
               else Response(401, headers=auth.challenge_headers()))
    with serve(TextProtocolServer(router)) as port:
        url = f"http://127.0.0.1:{port}/p"
        assert requests.get(url, auth=HTTPDigestAuth("admin", "Secret1"), timeout=5).text == "ok"
        assert requests.get(url, auth=HTTPDigestAuth("admin", "nope"), timeout=5).status_code == 401
        assert requests.get(url, auth=HTTPDigestAuth("admin", "nope"), timeout=5).status_code == 401
        # locked: the right password no longer works
        assert requests.get(url, auth=HTTPDigestAuth("admin", "Secret1"), timeout=5).status_code == 401
    assert auth.locked == {"admin"}
    assert [ok for _, _, ok in auth.attempts] == [True, False, False, False]


def test_auth_params_allow_commas_inside_quotes():
    params = parse_auth_params('username="a,b", realm="Login to X", qop=auth, nc=00000001, uri="/a?x=1,2"')
    assert params == {"username": "a,b", "realm": "Login to X", "qop": "auth", "nc": "00000001", "uri": "/a?x=1,2"}


def test_dns_answers_known_names_and_nxdomain_for_others():
    names = {"entry.device.serv.ulucu.com": "203.0.113.106"}
    reply = DNSRecord.parse(answer(bytes(DNSRecord.question("ENTRY.device.serv.ulucu.com").pack()), names))
    assert [str(r.rdata) for r in reply.rr] == ["203.0.113.106"]
    reply = DNSRecord.parse(answer(bytes(DNSRecord.question("other.example").pack()), names))
    assert reply.header.rcode == 3 and reply.rr == []


def test_dns_compression_loop_is_dropped_not_followed():
    """RFC 1035 §4.1.4: a name pointer that points at itself would loop forever if followed."""
    packet = (
        b"\x12\x34"  # ID
        b"\x01\x00"  # flags: standard query, RD
        b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QDCOUNT 1, others 0
        b"\xc0\x0c"  # QNAME: pointer to offset 12 -- itself
        b"\x00\x01\x00\x01"  # QTYPE A, QCLASS IN
    )
    assert answer(packet, {}) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_dns_answer_never_raises_on_arbitrary_bytes(data):
    result = answer(data, {"a.example": "203.0.113.5"})
    assert result is None or isinstance(result, bytes)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01")],
)
def test_mqtt_remaining_length_matches_spec_examples(value, encoded):
    """MQTT 3.1.1 §2.2.3, table 2.4: variable-length encoding of the remaining length."""
    assert mqtt.encode_length(value) == encoded


def test_mqtt_connect_packet_layout():
    pkt = mqtt.connect_packet("dev1", "user", "pw", keepalive=60)
    assert pkt[0] == 0x10  # CONNECT, flags 0
    body = pkt[2:]
    assert body[:6] == b"\x00\x04MQTT"  # protocol name
    assert body[6] == 4  # protocol level 3.1.1
    assert body[7] == 0x80 | 0x40 | 0x02  # username, password, clean session
    assert struct.unpack("!H", body[8:10])[0] == 60


def test_plan_is_deterministic_per_seed_and_varies_across_seeds():
    a, b, c = make_plan(0, "netns", 5), make_plan(0, "netns", 5), make_plan(0, "netns", 6)
    assert [(d.ip, d.mac, d.serial) for d in a.devices] == [(d.ip, d.mac, d.serial) for d in b.devices]
    assert [d.ip for d in a.devices] != [d.ip for d in c.devices]
    assert len({d.ip for d in a.devices}) == len(PROFILES)
    for device in a.devices:
        assert device.mac.startswith(device.profile.oui.lower())
        assert device.ip.startswith("198.51.100.")


def test_loopback_plan_carries_the_lab_id_in_addresses():
    plan = make_plan(7, "loopback", 1)
    assert all(d.ip.startswith("127.77.7.") for d in plan.devices)
    assert all(ip.startswith("127.78.7.") for ip in plan.cloud_ips.values())
    assert plan.namespaces == {}
