"""DNS message parser for passive analysis (RFC 1035 §4.1; mDNS RFC 6762 §18).

Runs on every DNS/mDNS/LLMNR datagram of a capture, so it is small and never raises. It reads the
header, the questions (name, type, class) and, from the answer section, A, AAAA and CNAME
records with their TTL: enough to map the IP addresses a camera talks to back to the cloud
names it looked up. Other record types and the authority/additional sections are not decoded.

Names (RFC 1035 §3.1, §4.1.4): compression pointers are followed only backwards -- each pointer
must point before the start of the labels it continues, so a loop is impossible -- and at most
``MAX_POINTER_HOPS`` times; a name longer than 255 octets, a reserved label type (0x40, 0x80)
or a name running past the end of the message is an error. Names are returned lower-case,
without the trailing dot ("" for the root), with dots inside labels and unprintable octets
escaped as in master files (RFC 1035 §5.1: ``\\.``, ``\\DDD``).

Result: ``None`` only when the message is shorter than its 12-byte header. Anything else gives
a ``DnsMessage``; when something is wrong, ``error`` says what (first problem only) and the
message holds what was parsed before it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

# Destinations are named by unicast DNS only (a message to or from port 53). mDNS (5353, RFC 6762) answers
# name .local hosts on the link: any device there can multicast one unasked, so one naming a remote
# address is a misconfiguration or a spoof, and a store's printers and phones send thousands an hour.
DNS_PORT = 53

TYPE_A = 1
TYPE_CNAME = 5
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_ANY = 255

MAX_NAME = 255  # octets in wire form, RFC 1035 §2.3.4
MAX_POINTER_HOPS = 32
MAX_QUESTIONS = 16  # questions kept; real messages have one (mDNS a few)
MAX_ANSWERS = 64  # A/AAAA/CNAME answers kept

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH
_QTAIL = struct.Struct("!HH")  # QTYPE, QCLASS
_PRINTABLE = bytes(range(0x21, 0x7F))  # printable ASCII, no space

_inet_ntoa = socket.inet_ntoa


class DnsQuestion(NamedTuple):
    name: str
    qtype: int
    qclass: int  # with the mDNS unicast-response bit (0x8000) cleared


class DnsAnswer(NamedTuple):
    name: str
    rtype: int  # TYPE_A, TYPE_AAAA or TYPE_CNAME
    ttl: int
    value: str  # the address as text, or the CNAME target


@dataclass(slots=True)
class DnsMessage:
    id: int
    qr: bool  # True for a response
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    rcode: int
    qdcount: int  # counts as the header states them
    ancount: int
    questions: list[DnsQuestion] = field(default_factory=list)
    answers: list[DnsAnswer] = field(default_factory=list)
    error: str = ""  # "" when every section parsed was well-formed

    @property
    def ok(self) -> bool:
        return not self.error


class _DnsError(Exception):
    pass


def parse_dns(payload: bytes) -> DnsMessage | None:
    """Parse one DNS message (the UDP payload); ``None`` only when it has no complete header."""
    n = len(payload)
    if n < 12:
        return None
    # RFC 1035 §4.1.1: ID, flags (QR opcode AA TC RD RA Z RCODE), QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
    ident, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(payload)
    msg = DnsMessage(
        id=ident,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0x0F,
        aa=bool(flags & 0x0400),
        tc=bool(flags & 0x0200),
        rd=bool(flags & 0x0100),
        ra=bool(flags & 0x0080),
        rcode=flags & 0x0F,
        qdcount=qdcount,
        ancount=ancount,
    )
    pos = 12
    try:
        # RFC 1035 §4.1.2: QNAME, QTYPE, QCLASS
        for _ in range(qdcount):
            name, pos = _read_name(payload, pos, n)
            if pos + 4 > n:
                raise _DnsError("question runs past the end of the message")
            qtype, qclass = _QTAIL.unpack_from(payload, pos)
            pos += 4
            if len(msg.questions) < MAX_QUESTIONS:
                msg.questions.append(DnsQuestion(name, qtype, qclass & 0x7FFF))
        # RFC 1035 §4.1.3: NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA
        for _ in range(ancount):
            name, pos = _read_name(payload, pos, n)
            if pos + 10 > n:
                raise _DnsError("resource record runs past the end of the message")
            rtype, _rclass, ttl, rdlength = _RR.unpack_from(payload, pos)
            rdata = pos + 10
            pos = rdata + rdlength
            if pos > n:
                raise _DnsError("RDATA runs past the end of the message")
            if len(msg.answers) >= MAX_ANSWERS:
                continue
            if rtype == TYPE_A:
                if rdlength != 4:
                    raise _DnsError(f"A record with {rdlength} bytes of RDATA")
                msg.answers.append(DnsAnswer(name, TYPE_A, ttl, _inet_ntoa(payload[rdata:pos])))
            elif rtype == TYPE_AAAA:
                if rdlength != 16:
                    raise _DnsError(f"AAAA record with {rdlength} bytes of RDATA")
                text = socket.inet_ntop(socket.AF_INET6, payload[rdata:pos])
                msg.answers.append(DnsAnswer(name, TYPE_AAAA, ttl, text))
            elif rtype == TYPE_CNAME:
                target, end = _read_name(payload, rdata, pos)
                if end != pos:
                    raise _DnsError("CNAME target does not fill its RDATA")
                msg.answers.append(DnsAnswer(name, TYPE_CNAME, ttl, target))
    except _DnsError as exc:
        msg.error = str(exc)
    except (struct.error, IndexError, ValueError, OSError) as exc:  # pragma: no cover - bounds are checked above
        msg.error = f"malformed: {exc}"
    return msg


def parse_dns_tcp(payload: bytes) -> DnsMessage | None:
    """DNS over TCP (RFC 1035 §4.2.2): a 2-byte length prefix, then the message (first one only)."""
    if len(payload) < 2:
        return None
    length = (payload[0] << 8) | payload[1]
    return parse_dns(payload[2 : 2 + length])


def _read_name(msg: bytes, pos: int, end: int) -> tuple[str, int]:
    """The name at ``pos`` (labels ending in 0 or a pointer), and the position after it.

    ``end`` bounds the labels read at ``pos`` (the message length, or the end of an RDATA);
    pointers may lead anywhere earlier in the message.
    """
    labels: list[bytes] = []
    octets = 1  # the final root label
    after = -1
    floor = pos  # a pointer must point before every position visited so far (no loops)
    hops = 0
    limit = end
    while True:
        if pos >= limit:
            raise _DnsError("name runs past the end of the message")
        length = msg[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            # RFC 1035 §4.1.4: 11 then a 14-bit offset from the start of the message
            if pos + 1 >= limit:
                raise _DnsError("compression pointer cut short")
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            if after < 0:
                after = pos + 2
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise _DnsError("too many compression pointers")
            if target >= floor:
                raise _DnsError(f"compression pointer to {target} does not point backwards (loop)")
            floor = pos = target
            limit = len(msg)
            continue
        if kind:
            raise _DnsError(f"reserved label type 0x{kind:02x}")
        octets += length + 1
        if octets > MAX_NAME:
            raise _DnsError("name longer than 255 octets")
        if pos + 1 + length > limit:
            raise _DnsError("label runs past the end of the message")
        labels.append(msg[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return _text(labels), (after if after >= 0 else pos)


def _text(labels: list[bytes]) -> str:
    if not labels:
        return ""
    raw = b".".join(labels).lower()
    if not raw.translate(None, _PRINTABLE) and raw.count(b".") == len(labels) - 1 and b"\\" not in raw:
        return raw.decode("ascii")
    return ".".join("".join(map(_ESCAPED.__getitem__, label.lower())) for label in labels)


def _escape(c: int) -> str:
    if c == 0x2E or c == 0x5C:  # "." and "\" inside a label
        return "\\" + chr(c)
    if 0x21 <= c <= 0x7E:
        return chr(c)
    return f"\\{c:03d}"


_ESCAPED = [_escape(c) for c in range(256)]  # each octet as it appears in a name's text
