"""DNS parser: RFC 1035 §4.1 message format (§4.1.1 header, §4.1.2 question, §4.1.3 resource
record, §4.1.4 compression), §3.1 name limits, mDNS (RFC 6762 §18.12); hostile messages."""

from __future__ import annotations

import ipaddress
import struct

import dnslib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.passive.dns import (
    MAX_ANSWERS,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    DnsAnswer,
    DnsQuestion,
    parse_dns,
    parse_dns_tcp,
)
from tests.discovery.helpers import mutations

QUERY = (
    struct.pack("!H", 0xBEEF)  # ID
    + struct.pack("!H", 0x0100)  # QR=0 query, OPCODE 0, RD=1
    + struct.pack("!H", 1)  # QDCOUNT
    + struct.pack("!H", 0)  # ANCOUNT
    + struct.pack("!H", 0)  # NSCOUNT
    + struct.pack("!H", 0)  # ARCOUNT
    + b"\x03api"  # QNAME: label "api"
    + b"\x05ULUCU"  # label "ULUCU" (names compare case-insensitively; returned lower-case)
    + b"\x03com"  # label "com"
    + b"\x00"  # root label
    + struct.pack("!H", 1)  # QTYPE A
    + struct.pack("!H", 1)  # QCLASS IN
)

RESPONSE = (
    struct.pack("!H", 0xBEEF)  # ID
    + struct.pack("!H", 0x8180)  # QR=1 response, RD=1, RA=1, RCODE 0
    + struct.pack("!H", 1)  # QDCOUNT
    + struct.pack("!H", 4)  # ANCOUNT
    + struct.pack("!H", 0)  # NSCOUNT
    + struct.pack("!H", 0)  # ARCOUNT
    # offset 12: the question
    + b"\x03api\x05ulucu\x03com\x00"  # QNAME
    + struct.pack("!HH", 1, 1)  # QTYPE A, QCLASS IN
    # offset 31: answer 1, a CNAME
    + b"\xc0\x0c"  # NAME: pointer to offset 12 (api.ulucu.com)
    + struct.pack("!HHI", 5, 1, 600)  # TYPE CNAME, CLASS IN, TTL 600
    + struct.pack("!H", 10)  # RDLENGTH
    + b"\x03api\x03cdn\xc0\x16"  # RDATA: "api.cdn" then a pointer to offset 22 (com)
    # offset 53: answer 2, A for the CNAME target
    + b"\xc0\x2b"  # NAME: pointer to offset 43 (the RDATA above: api.cdn.com)
    + struct.pack("!HHI", 1, 1, 60)  # TYPE A, CLASS IN, TTL 60
    + struct.pack("!H", 4)  # RDLENGTH
    + bytes([203, 0, 113, 9])  # RDATA 203.0.113.9
    # answer 3, AAAA
    + b"\xc0\x2b"  # NAME: api.cdn.com
    + struct.pack("!HHI", 28, 1, 60)  # TYPE AAAA
    + struct.pack("!H", 16)  # RDLENGTH
    + bytes.fromhex("20010db8000000000000000000000009")  # 2001:db8::9
    # answer 4, a TXT record: walked over, not reported
    + b"\xc0\x0c"
    + struct.pack("!HHI", 16, 1, 60)  # TYPE TXT
    + struct.pack("!H", 4)  # RDLENGTH
    + b"\x03abc"
)


def test_query_inline() -> None:
    msg = parse_dns(QUERY)
    assert msg is not None and msg.ok
    assert (msg.id, msg.qr, msg.opcode, msg.rd, msg.rcode) == (0xBEEF, False, 0, True, 0)
    assert msg.questions == [DnsQuestion("api.ulucu.com", TYPE_A, 1)]
    assert msg.answers == []


def test_response_with_compression_inline() -> None:
    msg = parse_dns(RESPONSE)
    assert msg is not None and msg.ok, msg
    assert (msg.qr, msg.ra, msg.ancount) == (True, True, 4)
    assert msg.questions == [DnsQuestion("api.ulucu.com", TYPE_A, 1)]
    assert msg.answers == [
        DnsAnswer("api.ulucu.com", TYPE_CNAME, 600, "api.cdn.com"),
        DnsAnswer("api.cdn.com", TYPE_A, 60, "203.0.113.9"),
        DnsAnswer("api.cdn.com", TYPE_AAAA, 60, "2001:db8::9"),
    ]


def _with_name(name: bytes) -> bytes:
    """A query whose QNAME is ``name`` (raw wire bytes), placed at offset 12."""
    return struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (b"\xc0\x0c", "does not point backwards"),  # §4.1.4 pointer to itself: the classic loop
        (b"\x01a\xc0\x0c", "does not point backwards"),  # a label, then back to its own start
        (b"\xc0\x0e\xc0\x0c", "does not point backwards"),  # forward pointer, then back: a two-pointer loop
        (b"\x01a\xc0\x40", "does not point backwards"),  # pointer past the end
        (b"\x41abc\x00", "reserved label type 0x40"),  # §4.1.4: 01 and 10 prefixes are reserved
        (b"\x81abc\x00", "reserved label type 0x80"),
        (b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00",
         "longer than 255"),  # §3.1: 4 x 64 + 1 = 257 octets
        (b"\x05ab", "past the end"),  # label cut short
        (b"\x03abc", "past the end"),  # no root label
    ],
)  # fmt: skip
def test_hostile_names_are_errors_not_exceptions(name: bytes, error: str) -> None:
    msg = parse_dns(_with_name(name))
    assert msg is not None and not msg.ok and error in msg.error
    assert msg.questions == []


def test_pointer_cut_short_at_the_end_of_the_message() -> None:
    msg = parse_dns(struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0")  # QNAME: half a pointer, then nothing
    assert msg is not None and "cut short" in msg.error


def test_pointer_loop_between_two_records() -> None:
    """Two answer names pointing at each other (§4.1.4): detected, not followed forever."""
    msg = (
        struct.pack("!HHHHHH", 1, 0x8000, 0, 2, 0, 0)  # a response, no question, 2 answers
        + b"\xc0\x17"  # offset 12: NAME -> offset 23 (the second answer's name)
        + struct.pack("!HHIH", 1, 1, 1, 0)  # A, IN, TTL 1, RDLENGTH 0 (wrong, but never reached)
        + b"\xc0\x0c"  # offset 23: NAME -> offset 12
        + struct.pack("!HHIH", 1, 1, 1, 4)
        + bytes(4)
    )
    parsed = parse_dns(msg)
    assert parsed is not None and "does not point backwards" in parsed.error


def _pointer_chain(hops: int) -> bytes:
    """A response whose second answer's name is reached through ``hops`` backward pointers (§4.1.4)."""
    chain = b"".join(struct.pack("!H", 0xC000 | (12 if i == 0 else 28 + 2 * (i - 1))) for i in range(hops - 1))
    return (
        struct.pack("!HHHHHH", 1, 0x8000, 1, 2, 0, 0)  # a response: 1 question, 2 answers
        + b"\x00"  # offset 12: QNAME, the root
        + struct.pack("!HH", 255, 1)  # QTYPE ANY, QCLASS IN
        + b"\x00"  # offset 17: answer 1 NAME, the root
        + struct.pack("!HHIH", 99, 1, 5, len(chain))  # TYPE 99 (not decoded), CLASS, TTL, RDLENGTH
        + chain  # offset 28: pointer 0 -> 12, pointer i -> pointer i-1
        + struct.pack("!H", 0xC000 | (28 + 2 * (hops - 2) if hops > 1 else 12))  # answer 2 NAME -> the last pointer
        + struct.pack("!HHIH", 1, 1, 5, 4)  # TYPE A, CLASS IN, TTL 5, RDLENGTH 4
        + bytes([198, 51, 100, 7])  # RDATA
    )


def test_pointer_hop_limit() -> None:
    """40 backward pointers in a row: each one is legal, the chain is not (MAX_POINTER_HOPS = 32)."""
    parsed = parse_dns(_pointer_chain(40))
    assert parsed is not None and "too many compression pointers" in parsed.error


def test_pointer_chain_below_the_limit_is_fine() -> None:
    parsed = parse_dns(_pointer_chain(30))
    assert parsed is not None and parsed.ok, parsed
    assert parsed.answers == [DnsAnswer("", TYPE_A, 5, "198.51.100.7")]


def test_too_short_for_a_header() -> None:
    assert parse_dns(QUERY[:11]) is None
    assert parse_dns(b"") is None


def test_truncated_response_keeps_what_was_parsed() -> None:
    msg = parse_dns(RESPONSE[:60])
    assert msg is not None and not msg.ok and "past the end" in msg.error
    assert msg.questions == [DnsQuestion("api.ulucu.com", TYPE_A, 1)]
    assert msg.answers == [DnsAnswer("api.ulucu.com", TYPE_CNAME, 600, "api.cdn.com")]


def test_a_record_with_wrong_length() -> None:
    bad = RESPONSE.replace(struct.pack("!HHI", 1, 1, 60) + struct.pack("!H", 4) + bytes([203, 0, 113, 9]),
                           struct.pack("!HHI", 1, 1, 60) + struct.pack("!H", 3) + bytes([203, 0, 113]))  # fmt: skip
    msg = parse_dns(bad)
    assert msg is not None and "A record with 3 bytes" in msg.error


def test_labels_with_dots_and_unprintable_octets_are_escaped() -> None:
    """RFC 1035 §5.1 master-file escapes: a dot inside a label is ``\\.``, other octets ``\\DDD``."""
    msg = parse_dns(_with_name(b"\x05evil.\x03com\x00"))
    assert msg is not None and msg.questions[0].name == "evil\\..com"
    msg = parse_dns(_with_name(b"\x03a\x00b\x02\xffZ\x00"))
    assert msg is not None and msg.questions[0].name == "a\\000b.\\255z"


def test_root_name_and_mdns_unicast_bit() -> None:
    """RFC 6762 §18.12: the top bit of QCLASS asks for a unicast response; the class is the rest."""
    msg = parse_dns(struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + b"\x00" + struct.pack("!HH", 255, 0x8001))
    assert msg is not None and msg.questions == [DnsQuestion("", 255, 1)]


def test_answers_are_bounded() -> None:
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + bytes(4)
    question = b"\x01a\x00" + struct.pack("!HH", 1, 1)
    msg = parse_dns(struct.pack("!HHHHHH", 1, 0x8000, 1, 500, 0, 0) + question + rr * 500)
    assert msg is not None and msg.ok and len(msg.answers) == MAX_ANSWERS


def test_dns_over_tcp_length_prefix() -> None:
    """RFC 1035 §4.2.2: a two-octet length field precedes each message."""
    msg = parse_dns_tcp(struct.pack("!H", len(QUERY)) + QUERY + b"next message")
    assert msg is not None and msg.questions[0].name == "api.ulucu.com"
    assert parse_dns_tcp(b"\x00") is None


# --- the same answers as dnslib -----------------------------------------------------------------

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_name = st.lists(_label, min_size=1, max_size=5).map(".".join)


@settings(max_examples=200, deadline=None)
@given(
    qname=_name,
    cname=_name,
    addrs=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**31 - 1)), max_size=5),
    addrs6=st.lists(st.binary(min_size=16, max_size=16), max_size=3),
)
def test_dnslib_built_responses(qname: str, cname: str, addrs: list[tuple[int, int]], addrs6: list[bytes]) -> None:
    record = dnslib.DNSRecord(dnslib.DNSHeader(id=7, qr=1, aa=1, ra=1), q=dnslib.DNSQuestion(qname, dnslib.QTYPE.A))
    record.add_answer(dnslib.RR(qname, dnslib.QTYPE.CNAME, rdata=dnslib.CNAME(cname), ttl=30))
    for addr, ttl in addrs:
        a = dnslib.A(str(ipaddress.IPv4Address(addr)))
        record.add_answer(dnslib.RR(cname, dnslib.QTYPE.A, rdata=a, ttl=ttl))
    for raw in addrs6:
        aaaa = dnslib.AAAA(str(ipaddress.IPv6Address(raw)))
        record.add_answer(dnslib.RR(cname, dnslib.QTYPE.AAAA, rdata=aaaa, ttl=1))
    wire = record.pack()
    msg = parse_dns(wire)
    assert msg is not None and msg.ok, msg.error if msg else None
    reference = dnslib.DNSRecord.parse(wire)
    assert [(q.name, q.qtype) for q in msg.questions] == [
        (str(q.qname).rstrip("."), q.qtype) for q in reference.questions
    ]
    assert [(a.name, a.rtype, a.ttl, a.value) for a in msg.answers] == [
        (str(rr.rname).rstrip("."), rr.rtype, rr.ttl, str(rr.rdata).rstrip(".")) for rr in reference.rr
    ]
    assert (msg.id, msg.qr, msg.aa, msg.ra) == (7, True, True, True)


# --- never raises -------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), mutations(RESPONSE), mutations(QUERY)))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    msg = parse_dns(data)
    if msg is not None:
        assert len(msg.questions) <= 16 and len(msg.answers) <= MAX_ANSWERS
        assert all(len(q.name) <= 4 * 255 for q in msg.questions)
