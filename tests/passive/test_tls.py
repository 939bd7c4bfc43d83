"""TLS ClientHello SNI: RFC 8446 §5.1 (records), §4 (handshake header), §4.1.2 (ClientHello),
RFC 6066 §3 (server_name), RFC 7301 §3.1 (ALPN); reassembly across TCP segments; hostile input."""

from __future__ import annotations

import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, Ether, Raw

from scanner.passive.decode import TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, decode
from scanner.passive.tls import (
    MAX_SNI,
    ClientHello,
    SniReassembler,
    client_hello_sni,
    parse_client_hello,
)
from tests.discovery.helpers import mutations

CAM, GW = "44:b2:95:c4:01:31", "00:11:22:33:44:55"


def server_name_ext(name: bytes) -> bytes:
    server_name_list = (
        b"\x00"  # name_type: host_name (RFC 6066 §3)
        + struct.pack("!H", len(name))  # HostName length
        + name
    )
    return (
        struct.pack("!H", 0)  # extension_type: server_name
        + struct.pack("!H", 2 + len(server_name_list))  # extension_data length
        + struct.pack("!H", len(server_name_list))  # ServerNameList length
        + server_name_list
    )


ALPN_EXT = (
    struct.pack("!H", 16)  # extension_type: application_layer_protocol_negotiation (RFC 7301 §3.1)
    + struct.pack("!H", 2 + 1 + 2 + 1 + 4)  # extension_data length
    + struct.pack("!H", 1 + 2 + 1 + 4)  # ProtocolNameList length
    + b"\x02h2"  # ProtocolName "h2"
    + b"\x04mqtt"  # ProtocolName "mqtt"
)
SUPPORTED_VERSIONS_EXT = (
    struct.pack("!H", 43)  # extension_type: supported_versions (RFC 8446 §4.2.1)
    + struct.pack("!H", 5)  # extension_data length
    + b"\x04"  # versions length
    + b"\x03\x04"  # TLS 1.3
    + b"\x03\x03"  # TLS 1.2
)


def client_hello(extensions: bytes | None, *, session_id: bytes = b"\x11" * 32) -> bytes:
    """A ClientHello handshake message (RFC 8446 §4.1.2), without the record header."""
    body = (
        b"\x03\x03"  # legacy_version: TLS 1.2
        + bytes(range(32))  # random
        + bytes([len(session_id)]) + session_id  # legacy_session_id <0..32>
        + struct.pack("!H", 4) + b"\x13\x01\x13\x02"  # cipher_suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
        + b"\x01\x00"  # legacy_compression_methods: null
    )  # fmt: skip
    if extensions is not None:
        body += struct.pack("!H", len(extensions)) + extensions  # extensions <8..2^16-1>
    return (
        b"\x01"  # msg_type: client_hello (RFC 8446 §4)
        + len(body).to_bytes(3, "big")  # length (uint24)
        + body
    )


def record(fragment: bytes, content_type: int = 22) -> bytes:
    return (
        bytes([content_type])  # ContentType: handshake (22)
        + b"\x03\x01"  # legacy_record_version: 0x0301 for an initial ClientHello (RFC 8446 §5.1)
        + struct.pack("!H", len(fragment))  # length
        + fragment
    )


HELLO = record(client_hello(server_name_ext(b"Face.ULUCU.com") + ALPN_EXT + SUPPORTED_VERSIONS_EXT))


def openssl_client_hello(server_name: str) -> bytes:
    """A real ClientHello, as this machine's OpenSSL writes it (no socket: memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def test_client_hello_inline() -> None:
    hello = parse_client_hello(HELLO)
    assert hello == ClientHello(sni="face.ulucu.com", sni_truncated=False, legacy_version=0x0303, tls13=True,
                                alpn=("h2", "mqtt"))  # fmt: skip
    assert client_hello_sni(HELLO) == "face.ulucu.com"


def test_openssl_client_hello() -> None:
    data = openssl_client_hello("upload.example-cloud.test")
    hello = parse_client_hello(data)
    assert hello is not None and hello.sni == "upload.example-cloud.test" and hello.alpn == ("http/1.1",)


def test_every_prefix_is_incomplete_not_an_answer() -> None:
    for cut in range(len(HELLO)):
        assert parse_client_hello(HELLO[:cut]) is None


def test_hello_fragmented_across_two_records() -> None:
    """RFC 8446 §5.1: handshake messages may be fragmented across records."""
    msg = client_hello(server_name_ext(b"two.records.test"))
    assert client_hello_sni(record(msg[:7]) + record(msg[7:])) == "two.records.test"
    assert client_hello_sni(record(msg[:2]) + record(msg[2:])) == "two.records.test"  # even the handshake header


def test_no_server_name() -> None:
    assert client_hello_sni(record(client_hello(ALPN_EXT))) is None
    hello = parse_client_hello(record(client_hello(None)))  # no extensions block at all (TLS 1.0-1.2)
    assert hello is not None and hello.sni is None and not hello.tls13


def test_huge_server_name_is_cut_and_marked() -> None:
    hello = parse_client_hello(record(client_hello(server_name_ext(b"a" * 1000 + b".com"))))
    assert hello is not None and hello.sni_truncated and hello.sni == "a" * MAX_SNI


def test_unprintable_server_name_is_escaped() -> None:
    assert client_hello_sni(record(client_hello(server_name_ext(b"evil\x00\n.com.")))) == "evil\\x00\\x0a.com"


def _shorter_than_declared(msg: bytes, by: int) -> bytes:
    """The handshake length (RFC 8446 §4) says ``by`` bytes fewer than the message has."""
    return msg[:1] + (len(msg) - 4 - by).to_bytes(3, "big") + msg[4:]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (record(client_hello(server_name_ext(b"x.test")), content_type=23), "application data, not a handshake"),
        (HELLO[:5] + b"\x02" + HELLO[6:], "a ServerHello (msg_type 2)"),
        (b"\x16\x02\x00" + HELLO[3:], "record version 2.0"),
        (record(b""), "an empty handshake record"),
        (record(client_hello(server_name_ext(b"x.test"), session_id=b"\x00" * 33)), "session id over 32 bytes"),
        (record(client_hello(struct.pack("!HH", 0, 200) + b"\x00" * 10)), "extension longer than the block"),
        (record(_shorter_than_declared(client_hello(server_name_ext(b"x.test")), 3)), "extensions cut by the length"),
    ],
)
def test_malformed_hellos_are_none(data: bytes, why: str) -> None:
    assert parse_client_hello(data) is None, why


def test_truncated_extensions_are_none() -> None:
    msg = bytearray(client_hello(server_name_ext(b"x.test") + ALPN_EXT))
    ext_len_at = 4 + 2 + 32 + 1 + 32 + 2 + 4 + 2  # handshake header, version, random, session id, suites, compression
    msg[ext_len_at : ext_len_at + 2] = struct.pack("!H", 500)  # extensions block claims more than the hello holds
    assert parse_client_hello(record(bytes(msg))) is None


def test_server_name_list_longer_than_its_extension() -> None:
    ext = bytearray(server_name_ext(b"x.test"))
    ext[4:6] = struct.pack("!H", 300)  # ServerNameList length beyond extension_data
    assert parse_client_hello(record(client_hello(bytes(ext)))) is None


def test_hello_above_16k_is_refused() -> None:
    padding = struct.pack("!HH", 21, 17000) + bytes(17000)  # padding extension (RFC 7685)
    assert parse_client_hello(record(client_hello(server_name_ext(b"x.test") + padding)[:16000])) is None


# --- reassembly across TCP segments ----------------------------------------------------------

KEY = ("198.51.100.23", "203.0.113.9", 40000, 443)


def test_split_hello_two_segments_in_order() -> None:
    data = openssl_client_hello("split.cloud.test")
    r = SniReassembler()
    assert r.feed(KEY, 1.0, 1000, data[:100]) is None
    assert len(r) == 1
    hello = r.feed(KEY, 1.1, 1100, data[100:])
    assert hello is not None and hello.sni == "split.cloud.test"
    assert len(r) == 0 and r.stats.hellos == 1


def test_split_hello_out_of_order_after_syn() -> None:
    """With the SYN seen, the hello starts at ISN + 1: a later segment may arrive first."""
    data = openssl_client_hello("ooo.cloud.test")
    r = SniReassembler()
    assert r.feed(KEY, 1.0, 4_294_967_000, b"", flags=TCP_SYN) is None  # ISN near the wrap-around
    base = (4_294_967_000 + 1) & 0xFFFFFFFF
    parts = [data[:50], data[50:200], data[200:]]
    offsets = [0, 50, 200]
    assert r.feed(KEY, 1.1, (base + offsets[2]) & 0xFFFFFFFF, parts[2]) is None
    assert r.feed(KEY, 1.2, (base + offsets[0]) & 0xFFFFFFFF, parts[0]) is None
    hello = r.feed(KEY, 1.3, (base + offsets[1]) & 0xFFFFFFFF, parts[1])
    assert hello is not None and hello.sni == "ooo.cloud.test"


def test_retransmitted_overlapping_segments() -> None:
    data = openssl_client_hello("retx.cloud.test")
    r = SniReassembler()
    assert r.feed(KEY, 1.0, 10, data[:120]) is None
    assert r.feed(KEY, 1.1, 10, data[:120]) is None  # retransmission
    assert r.feed(KEY, 1.2, 10 + 60, data[60:200]) is None  # overlapping repacketisation
    hello = r.feed(KEY, 1.3, 10 + 200, data[200:])
    assert hello is not None and hello.sni == "retx.cloud.test"
    assert r.feed(KEY, 1.4, 10, data) is None  # a retransmission of the whole hello is not reported twice


def test_not_tls_flows_are_forgotten() -> None:
    r = SniReassembler()
    assert r.feed(KEY, 1.0, 5, b"", flags=TCP_SYN) is None
    assert len(r) == 1
    assert r.feed(KEY, 1.1, 6, b"GET / HTTP/1.1\r\n\r\n") is None
    assert len(r) == 0 and r.stats.not_tls == 1


def test_pending_flows_time_out_and_are_bounded() -> None:
    data = openssl_client_hello("slow.test")
    r = SniReassembler(max_flows=3, timeout=10.0)
    for port in range(5):
        r.feed(("10.0.0.1", "10.0.0.2", port, 443), 1.0, 0, data[:10])
    assert len(r) == 3 and r.stats.evicted == 2
    r.feed(("10.0.0.1", "10.0.0.2", 99, 443), 20.0, 0, data[:10])  # capture time moves on: the others expire
    assert len(r) == 1 and r.stats.timed_out == 3


def test_rst_drops_a_pending_hello() -> None:
    data = openssl_client_hello("reset.test")
    r = SniReassembler()
    r.feed(KEY, 1.0, 0, data[:10])
    assert r.feed(KEY, 1.1, 10, b"", flags=TCP_RST) is None
    assert len(r) == 0 and r.stats.closed == 1
    assert r.feed(KEY, 1.2, 10, data[10:]) is None


def test_hello_too_large_for_the_buffer() -> None:
    r = SniReassembler(max_bytes=1024)
    msg = record(client_hello(server_name_ext(b"big.test") + struct.pack("!HH", 21, 3000) + bytes(3000)))
    assert r.feed(KEY, 1.0, 0, msg[:1000]) is None
    assert r.feed(KEY, 1.1, 1000, msg[1000:2000]) is None
    assert len(r) == 0 and r.stats.too_large == 1


def test_many_tiny_segments_are_bounded() -> None:
    data = openssl_client_hello("tiny.test")
    r = SniReassembler()
    results = [r.feed(KEY, 1.0, i, data[i : i + 1]) for i in range(len(data))]
    assert results == [None] * len(data) and len(r) == 0  # gave up after MAX_SEGMENTS


def _frames(hello: bytes, cut: int) -> list[bytes]:
    ip = IP(src="198.51.100.23", dst="203.0.113.9")
    return [
        bytes(Ether(src=CAM, dst=GW) / ip / TCP(sport=40000, dport=443, flags="S", seq=7000)),
        bytes(Ether(src=GW, dst=CAM) / IP(src="203.0.113.9", dst="198.51.100.23")
              / TCP(sport=443, dport=40000, flags="SA", seq=9000, ack=7001)),
        bytes(Ether(src=CAM, dst=GW) / ip / TCP(sport=40000, dport=443, flags="A", seq=7001, ack=9001)),
        bytes(Ether(src=CAM, dst=GW) / ip / TCP(sport=40000, dport=443, flags="PA", seq=7001) / Raw(hello[:cut])),
        bytes(Ether(src=CAM, dst=GW) / ip / TCP(sport=40000, dport=443, flags="PA", seq=7001 + cut)
              / Raw(hello[cut:])),
    ]  # fmt: skip


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [0, 1, 2, 4, 3]], ids=["in-order", "out-of-order"])
def test_decoded_packets_through_feed_packet(order: list[int]) -> None:
    """decode() keeps only the first segment's payload (0x16 0x03); the reassembler slices the rest."""
    hello = openssl_client_hello("cam-upload.cloud.test")
    frames = _frames(hello, 300)
    r = SniReassembler()
    results = []
    for i in order:
        pkt = decode(1, frames[i], 1.0 + i)
        assert pkt is not None
        if i == 4:
            assert pkt.payload == b"" and pkt.tcp_flags == TCP_PSH | TCP_ACK  # not kept by the decoder
        results.append(r.feed_packet(pkt))
    found = [h for h in results if h is not None]
    assert len(found) == 1 and found[0].sni == "cam-upload.cloud.test"
    assert results[-1] is found[0]


def test_feed_packet_without_the_handshake_captured() -> None:
    """Capture started mid-connection: the hello segment itself (0x16 0x03) starts the flow."""
    hello = openssl_client_hello("late.cloud.test")
    frames = _frames(hello, 300)
    r = SniReassembler()
    out = [r.feed_packet(p) for p in (decode(1, frames[3], 1.0), decode(1, frames[4], 1.1)) if p is not None]
    assert out[0] is None and out[1] is not None and out[1].sni == "late.cloud.test"


# --- never raises -------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), mutations(HELLO), st.binary(max_size=40).map(lambda b: b"\x16\x03" + b)))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    hello = parse_client_hello(data)
    if hello is not None and hello.sni is not None:
        assert len(hello.sni) <= 4 * MAX_SNI


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=100), st.sampled_from([0, TCP_SYN, TCP_RST, 1])),
        max_size=20,
    )
)
def test_reassembler_never_raises(segments: list[tuple[int, bytes, int]]) -> None:
    r = SniReassembler(max_flows=4, max_bytes=512)
    for i, (seq, data, flags) in enumerate(segments):
        r.feed(("a", "b", i % 3, 443), float(i), seq, b"\x16\x03\x01" + data if i % 2 else data, flags=flags)
        assert len(r) <= 4
