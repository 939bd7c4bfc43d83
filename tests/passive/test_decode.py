"""Cheap header decode: Ethernet (IEEE 802.3 §3.1.1) with 802.1Q/802.1ad tags, Linux cooked SLL/SLL2,
raw IP, IPv4 (RFC 791 §3.1) with options and fragments, IPv6 (RFC 8200 §3-§4) with extension
headers, TCP (RFC 9293 §3.1), UDP (RFC 768); the payload-keeping rule; never raises."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    DNS,
    DNSQR,
    IP,
    TCP,
    UDP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Ether,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
    fragment,
)

from scanner.passive import decode as decode_module
from scanner.passive.decode import SMALL_PAYLOAD, TCP_ACK, TCP_PSH, TCP_SYN, DecodeStats, Packet, decode
from tests.discovery.helpers import mutations

CAM, GW = "44:b2:95:c4:01:31", "00:11:22:33:44:55"


ETH_HEADER = (
    bytes.fromhex("001122334455")  # destination MAC
    + bytes.fromhex("44b295c40131")  # source MAC (a Hikvision OUI)
)
IPV4_TCP = (
    bytes.fromhex("46")  # version 4, IHL 6 (24 bytes: one option word)
    + bytes.fromhex("00")  # DSCP/ECN
    + struct.pack("!H", 24 + 20 + 5)  # total length: header 24 + TCP 20 + payload 5
    + struct.pack("!H", 0x1234)  # identification
    + struct.pack("!H", 0x4000)  # flags DF, fragment offset 0
    + bytes.fromhex("40")  # TTL 64
    + bytes.fromhex("06")  # protocol TCP
    + bytes.fromhex("0000")  # header checksum (not checked)
    + bytes([198, 51, 100, 23])  # source 198.51.100.23
    + bytes([203, 0, 113, 9])  # destination 203.0.113.9
    + bytes.fromhex("94040000")  # option: router alert (RFC 2113)
    + struct.pack("!H", 40000)  # TCP source port
    + struct.pack("!H", 8883)  # destination port (MQTT over TLS)
    + struct.pack("!I", 0xDEADBEEF)  # sequence number
    + struct.pack("!I", 1)  # acknowledgment number
    + bytes.fromhex("50")  # data offset 5 words
    + bytes.fromhex("18")  # flags PSH ACK
    + struct.pack("!H", 65535)  # window
    + bytes.fromhex("0000")  # checksum
    + bytes.fromhex("0000")  # urgent pointer
    + b"\x16\x03\x01\x00\x00"  # payload: 5 bytes, a TLS handshake record header
)


def test_ethernet_ipv4_options_tcp_inline() -> None:
    frame = ETH_HEADER + bytes.fromhex("0800") + IPV4_TCP + b"\x00" * 6  # Ethernet padding is not payload
    stats = DecodeStats()
    pkt = decode(1, frame, 12.5, stats)
    assert pkt is not None
    assert (pkt.ts, pkt.src_mac, pkt.dst_mac) == (12.5, CAM, GW)
    assert (pkt.src_ip, pkt.dst_ip, pkt.ip_version, pkt.proto) == ("198.51.100.23", "203.0.113.9", 4, 6)
    assert (pkt.sport, pkt.dport, pkt.tcp_seq, pkt.tcp_flags) == (40000, 8883, 0xDEADBEEF, TCP_PSH | TCP_ACK)
    assert (pkt.ip_len, pkt.payload_len, pkt.payload) == (49, 5, b"\x16\x03\x01\x00\x00")
    assert pkt.data() == pkt.payload and pkt.frame is frame
    assert pkt.flow_key == ("198.51.100.23", "203.0.113.9", 40000, 8883)
    assert stats.as_dict() == dict.fromkeys(stats.as_dict(), 0)


@pytest.mark.parametrize(
    ("tags", "inner"),
    [
        (bytes.fromhex("8100" "0014"), "802.1Q: TPID 0x8100, TCI (PCP 0, VID 20)"),
        (bytes.fromhex("88a8" "0064" "8100" "0014"), "802.1ad QinQ: S-tag VID 100, then C-tag VID 20"),
        (bytes.fromhex("9100" "0064" "8100" "0014"), "pre-standard QinQ TPID 0x9100"),
    ],
)
def test_vlan_tags_are_skipped(tags: bytes, inner: str) -> None:
    frame = ETH_HEADER + tags + bytes.fromhex("0800") + IPV4_TCP
    pkt = decode(1, frame, 0.0)
    assert pkt is not None, inner
    assert (pkt.src_ip, pkt.dport, pkt.payload_len) == ("198.51.100.23", 8883, 5)


def test_too_many_vlan_tags_are_malformed() -> None:
    stats = DecodeStats()
    frame = ETH_HEADER + bytes.fromhex("81000001") * 6 + bytes.fromhex("0800") + IPV4_TCP
    assert decode(1, frame, 0.0, stats) is None and stats.malformed == 1


def test_linux_cooked_sll() -> None:
    frame = (
        struct.pack("!H", 0)  # packet type: to us
        + struct.pack("!H", 1)  # ARPHRD_ETHER
        + struct.pack("!H", 6)  # link-layer address length
        + bytes.fromhex("44b295c40131") + b"\0\0"  # address, padded to 8
        + struct.pack("!H", 0x0800)  # protocol
        + IPV4_TCP
    )  # fmt: skip
    pkt = decode(113, frame, 0.0)
    assert pkt is not None and (pkt.src_mac, pkt.dst_mac, pkt.dst_ip, pkt.payload_len) == (CAM, "", "203.0.113.9", 5)


def test_linux_cooked_sll2() -> None:
    frame = (
        struct.pack("!H", 0x0800)  # protocol
        + struct.pack("!H", 0)  # reserved
        + struct.pack("!I", 3)  # interface index
        + struct.pack("!H", 1)  # ARPHRD_ETHER
        + struct.pack("!B", 4)  # packet type: outgoing
        + struct.pack("!B", 6)  # address length
        + bytes.fromhex("44b295c40131") + b"\0\0"  # address, padded to 8
        + IPV4_TCP
    )  # fmt: skip
    pkt = decode(276, frame, 0.0)
    assert pkt is not None and (pkt.src_mac, pkt.sport, pkt.tcp_seq) == (CAM, 40000, 0xDEADBEEF)


@pytest.mark.parametrize("linktype", [101, 228, 12])
def test_raw_ipv4_link_types(linktype: int) -> None:
    pkt = decode(linktype, IPV4_TCP, 0.0)
    assert pkt is not None and (pkt.src_mac, pkt.src_ip, pkt.sport) == ("", "198.51.100.23", 40000)


@pytest.mark.parametrize(
    ("linktype", "header"),
    [(0, struct.pack("<I", 2)), (0, struct.pack(">I", 2)), (108, struct.pack(">I", 2))],
)
def test_bsd_loopback_link_types(linktype: int, header: bytes) -> None:
    """NULL (0) has the address family in the capturing host's byte order, LOOP (108) in network order."""
    pkt = decode(linktype, header + IPV4_TCP, 0.0)
    assert pkt is not None and pkt.dst_ip == "203.0.113.9"


IPV6_UDP = (
    struct.pack("!I", 0x60000000)  # version 6, traffic class 0, flow label 0
    + struct.pack("!H", 8 + 8 + 8 + 12)  # payload length: hop-by-hop 8 + dest opts 8 + UDP 8 + data 12
    + bytes([0])  # next header: hop-by-hop options
    + bytes([64])  # hop limit
    + bytes.fromhex("20010db8000000000000000000000023")  # source 2001:db8::23
    + bytes.fromhex("ff0200000000000000000000000000fb")  # destination ff02::fb (mDNS)
    + bytes([60, 0]) + bytes.fromhex("050200000100")  # hop-by-hop: next dest opts, length 0 (8 bytes), options
    + bytes([17, 0]) + bytes.fromhex("010400000000")  # dest opts: next UDP, length 0, PadN
    + struct.pack("!HHHH", 5353, 5353, 8 + 12, 0)  # UDP: ports, length, checksum
    + bytes(12)  # a DNS header
)  # fmt: skip


def test_ipv6_extension_headers_are_skipped() -> None:
    pkt = decode(229, IPV6_UDP, 0.0)
    assert pkt is not None
    assert (pkt.src_ip, pkt.dst_ip, pkt.ip_version, pkt.proto) == ("2001:db8::23", "ff02::fb", 6, 17)
    assert (pkt.sport, pkt.dport, pkt.ip_len, pkt.payload_len, pkt.payload) == (5353, 5353, 76, 12, bytes(12))


def test_ipv4_fragments_only_the_first_has_ports() -> None:
    """RFC 791: a non-zero fragment offset means no transport header in this packet."""
    big = IP(src="198.51.100.23", dst="203.0.113.9", id=7) / UDP(sport=5000, dport=6000) / Raw(b"x" * 3000)
    frags = fragment(big, fragsize=1000)
    assert len(frags) == 4  # 8 + 3000 bytes in 1000-byte pieces
    stats = DecodeStats()
    decoded = [decode(101, bytes(f), 0.0, stats) for f in frags]
    assert all(d is not None for d in decoded)
    first, *rest = decoded
    assert first is not None and (first.sport, first.dport, first.payload_len) == (5000, 6000, 1000 - 8)
    assert all(d is not None and (d.sport, d.dport, d.proto) == (0, 0, 17) for d in rest)
    assert sum(d.ip_len for d in decoded if d) == sum(len(f) for f in frags)
    assert stats.fragments == 3


def test_ipv6_fragments_only_the_first_has_ports() -> None:
    base = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=9, offset=0, m=1)
    first = decode(229, bytes(base / UDP(sport=1, dport=2) / Raw(b"a" * 16)), 0.0)
    later = decode(229, bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(nh=17, offset=2)
                              / Raw(b"b" * 16)), 0.0)  # fmt: skip
    assert first is not None and (first.sport, first.dport, first.payload_len) == (1, 2, 16)
    assert later is not None and (later.proto, later.sport, later.payload_len) == (17, 0, 16)


def test_tso_zero_total_length_uses_the_captured_length() -> None:
    frame = bytearray(ETH_HEADER + bytes.fromhex("0800") + IPV4_TCP)
    frame[16:18] = b"\x00\x00"  # total length 0: segmentation offload on the capturing host
    pkt = decode(1, bytes(frame), 0.0)
    assert pkt is not None and pkt.ip_len == len(IPV4_TCP) and pkt.payload_len == 5


def test_snaplen_truncated_payload_keeps_wire_lengths() -> None:
    pkt = Ether(src=CAM, dst=GW) / IP(src="198.51.100.23", dst="203.0.113.9") / TCP(dport=80) / Raw(b"z" * 1000)
    decoded = decode(1, bytes(pkt)[:96], 0.0)  # tcpdump -s 96
    assert decoded is not None and (decoded.ip_len, decoded.payload_len) == (1040, 1000)
    assert len(decoded.data()) == 96 - 54


# --- what is not decoded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("linktype", "frame", "counter"),
    [
        (1, ETH_HEADER + bytes.fromhex("0806") + bytes(28), "not_ip"),  # ARP
        (1, ETH_HEADER + bytes.fromhex("88cc") + bytes(30), "not_ip"),  # LLDP
        (1, ETH_HEADER + bytes.fromhex("0800") + IPV4_TCP[:30], "truncated"),  # inside the TCP header
        (1, ETH_HEADER[:10], "truncated"),
        (1, ETH_HEADER + bytes.fromhex("0800") + b"\x44" + IPV4_TCP[1:], "malformed"),  # IHL 4 (< 5 words)
        (1, ETH_HEADER + bytes.fromhex("0800") + b"\x65" + IPV4_TCP[1:], "malformed"),  # version 6 in an IPv4 type
        (101, b"\x75" + IPV4_TCP[1:], "not_ip"),  # version 7
        (147, IPV4_TCP, "unsupported_linktype"),
        (101, b"", "truncated"),
        (229, IPV6_UDP[:50], "truncated"),  # ends inside the extension headers
    ],
)
def test_rejected_frames_are_counted(linktype: int, frame: bytes, counter: str) -> None:
    stats = DecodeStats()
    assert decode(linktype, frame, 0.0, stats) is None
    assert stats.as_dict()[counter] == 1 and sum(stats.as_dict().values()) == 1


def test_tcp_data_offset_below_five_words_is_malformed() -> None:
    frame = bytearray(IPV4_TCP)
    frame[24 + 12] = 0x40  # data offset 4
    stats = DecodeStats()
    assert decode(101, bytes(frame), 0.0, stats) is None and stats.malformed == 1


def test_other_ip_protocols_have_addresses_and_lengths() -> None:
    pkt = decode(101, bytes(IP(src="198.51.100.23", dst="198.51.100.1", proto=1) / Raw(b"\x08\x00" + bytes(30))), 0.0)
    assert pkt is not None and (pkt.proto, pkt.sport, pkt.dport, pkt.payload_len) == (1, 0, 0, 32)


# --- the payload-keeping rule -------------------------------------------------------------------


def _tcp(payload: bytes, dport: int = 443) -> Packet:
    frame = bytes(Ether(src=CAM, dst=GW) / IP(src="198.51.100.23", dst="203.0.113.9")
                  / TCP(sport=40000, dport=dport, flags="PA") / Raw(payload))  # fmt: skip
    pkt = decode(1, frame, 0.0)
    assert pkt is not None
    return pkt


def test_bulk_payload_is_not_copied_but_can_be_sliced() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"j" * 1400
    pkt = _tcp(jpeg)
    assert pkt.payload == b"" and pkt.payload_len == len(jpeg)
    assert pkt.data() == jpeg


@pytest.mark.parametrize(
    ("payload", "dport"),
    [
        (b"\x16\x03\x01\x02\x00\x01" + bytes(600), 7443),  # TLS handshake on an odd port
        (b"POST /api/upload HTTP/1.1\r\nHost: cloud\r\n" + bytes(600), 8080),
        (b"GET / HTTP/1.1\r\n" + bytes(600), 80),
        (b"\x01\x2c" + bytes(300), 53),  # DNS over TCP
        (b"\x10\x20" + bytes(SMALL_PAYLOAD - 2), 1883),  # small: always kept
    ],
)
def test_payloads_that_matter_are_kept(payload: bytes, dport: int) -> None:
    assert _tcp(payload, dport).payload == payload


def test_tls_application_data_is_not_kept() -> None:
    assert _tcp(b"\x17\x03\x03" + bytes(800)).payload == b""


def test_dns_datagrams_are_kept() -> None:
    frame = bytes(Ether(src=CAM, dst=GW) / IP(src="198.51.100.23", dst="198.51.100.1")
                  / UDP(sport=40000, dport=53) / DNS(qd=DNSQR(qname="a" * 60 + ".ulucu.com")))  # fmt: skip
    pkt = decode(1, frame, 0.0)
    assert pkt is not None and pkt.payload_len > SMALL_PAYLOAD and pkt.payload == pkt.data()


# --- the same answers as scapy ------------------------------------------------------------------


def scapy_corpus() -> list[tuple[int, object]]:
    ip4 = IP(src="198.51.100.23", dst="203.0.113.9")
    ip6 = IPv6(src="2001:db8::23", dst="2001:db8:0:1::9")
    return [
        (1, Ether(src=CAM, dst=GW) / ip4 / TCP(sport=1, dport=443, flags="S", seq=123456789)),
        (1, Ether(src=CAM, dst=GW) / ip4 / TCP(sport=2, dport=80, flags="PA", options=[("MSS", 1460), ("NOP", None),
                                                                                    ("WScale", 7)]) / Raw(b"x" * 99)),
        (1, Ether(src=CAM, dst=GW) / Dot1Q(vlan=5) / ip4 / UDP(sport=3, dport=53) / DNS(qd=DNSQR(qname="x.cn"))),
        (1, Ether(src=CAM, dst=GW) / Dot1AD(vlan=7) / Dot1Q(vlan=5) / ip6 / UDP(sport=4, dport=5353) / Raw(b"q" * 5)),
        (1, Ether(src=CAM, dst=GW) / ip6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt()
         / TCP(sport=5, dport=554, flags="A", seq=42) / Raw(b"RTSP")),
        (113, CookedLinux(lladdrtype=1, lladdrlen=6, src=bytes.fromhex("44b295c40131") + b"\0\0") / ip4
         / UDP(sport=6, dport=123) / Raw(b"n" * 48)),
        (276, CookedLinuxV2(lladdrtype=1, lladdrlen=6, src=bytes.fromhex("44b295c40131") + b"\0\0") / ip6
         / TCP(sport=7, dport=8443, flags="FA", seq=2**32 - 1)),
        (228, ip4 / UDP(sport=8, dport=37020) / Raw(b"<Probe/>")),
        (229, ip6 / TCP(sport=9, dport=1935, flags="R")),
    ]  # fmt: skip


@pytest.mark.parametrize(("linktype", "pkt"), scapy_corpus())
def test_fields_equal_what_scapy_dissects(linktype: int, pkt: object) -> None:
    raw = bytes(pkt)  # type: ignore[call-overload]
    parsed = type(pkt)(raw)  # scapy's own dissection of the built bytes
    decoded = decode(linktype, raw, 1.5)
    assert decoded is not None
    ip = parsed[IP] if IP in parsed else parsed[IPv6]
    l4 = parsed[TCP] if TCP in parsed else parsed[UDP]
    assert (decoded.src_ip, decoded.dst_ip) == (ip.src, ip.dst)
    assert decoded.ip_version == ip.version
    assert decoded.ip_len == (ip.len if ip.version == 4 else 40 + ip.plen)
    assert (decoded.sport, decoded.dport) == (l4.sport, l4.dport)
    assert decoded.payload_len == len(bytes(l4.payload))
    assert decoded.data() == bytes(l4.payload)
    if TCP in parsed:
        assert (decoded.proto, decoded.tcp_seq, decoded.tcp_flags) == (6, l4.seq, int(l4.flags))
    else:
        assert (decoded.proto, decoded.tcp_flags) == (17, 0)
    if Ether in parsed:
        assert (decoded.src_mac, decoded.dst_mac) == (parsed[Ether].src, parsed[Ether].dst)


def test_syn_flags() -> None:
    frame = bytes(Ether(src=CAM, dst=GW) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S"))
    pkt = decode(1, frame, 0.0)
    assert pkt is not None and pkt.tcp_flags == TCP_SYN


def test_text_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "CACHE_ENTRIES", 10)
    for i in range(50):
        pkt = decode(101, bytes(IP(src=f"10.0.{i}.1", dst="10.9.9.9") / UDP()), 0.0)
        assert pkt is not None and pkt.src_ip == f"10.0.{i}.1"
    assert len(decode_module._ip4_text) <= 10


# --- never raises -------------------------------------------------------------------------------

_LINKTYPES = st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276, 147, -1, 2**40])
_SAMPLES = [bytes(p) for _, p in scapy_corpus()]  # type: ignore[call-overload]


@settings(max_examples=500, deadline=None)
@given(linktype=_LINKTYPES, frame=st.binary(max_size=200))
def test_arbitrary_frames_never_raise(linktype: int, frame: bytes) -> None:
    stats = DecodeStats()
    pkt = decode(linktype, frame, 0.0, stats)
    assert pkt is not None or sum(stats.as_dict().values()) == 1


@settings(max_examples=500, deadline=None)
@given(index=st.integers(0, len(_SAMPLES) - 1), data=st.data())
def test_mutated_frames_never_raise(index: int, data: st.DataObject) -> None:
    linktype = scapy_corpus()[index][0]
    frame = data.draw(mutations(_SAMPLES[index]))
    pkt = decode(linktype, frame, 0.0)
    if pkt is not None:
        assert pkt.payload_len >= 0 and 0 <= pkt.sport < 65536 and pkt.ip_version in (4, 6)
        assert len(pkt.data()) <= max(pkt.payload_len, 0)
