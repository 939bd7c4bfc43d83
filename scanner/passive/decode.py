"""Cheap header decode: link layer -> IPv4/IPv6 -> TCP/UDP, with ``struct`` only (perf_style.md A.4).

This runs on every frame of a capture, so it does the least that ``camsweep analyze`` needs:
addresses, ports, lengths, TCP flags and sequence number. The transport payload is copied into
``Packet.payload`` only when the packet is one of the few that get dissected further
(``payload_kept``): DNS/mDNS/LLMNR/DHCP/SSDP/WS-Discovery datagrams, TCP segments that start
like a TLS handshake record (0x16 0x03, any port: camera clouds use odd ports) or like an HTTP
request line, DNS over TCP, and anything of at most ``SMALL_PAYLOAD`` bytes. For every other
packet ``payload`` is ``b""``; ``Packet.data()`` slices the captured payload out of
``Packet.frame`` on demand (the TLS reassembler uses it for the continuation segments of a
ClientHello that is split across segments).

Link layers (tcpdump.org link-layer header types): Ethernet (1) with any number up to
``MAX_VLAN_TAGS`` of 802.1Q / 802.1ad (QinQ) tags, Linux cooked SLL (113) and SLL2 (276), raw IP
(101, 228 IPv4, 229 IPv6, and the unofficial 12 some old files carry), BSD loopback NULL (0,
host byte order) and LOOP (108). IPv4 (RFC 791) with options and fragments (only the first
fragment carries ports), IPv6 (RFC 8200) skipping the common extension headers (hop-by-hop,
routing, fragment, destination options, AH, mobility, HIP, shim6).

Lengths come from the IP header, not from the frame, so Ethernet padding is never payload and a
snaplen-truncated capture still reports the bytes that were on the wire. A capture whose IPv4
total length is 0 (TCP segmentation offload on the capturing host) uses the captured length.

Never raises: anything that is not IP or is malformed returns ``None`` and is counted in the
optional ``DecodeStats``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OLD = 12  # DLT_RAW as some systems numbered it in savefiles
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW_OLD,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, the old QinQ value
MAX_VLAN_TAGS = 4

PROTO_TCP = 6
PROTO_UDP = 17

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

# Payloads at most this long are always kept (heartbeats, MQTT CONNECT, small requests).
SMALL_PAYLOAD = 64
# UDP ports whose datagrams are always kept: DNS, DHCP, SSDP, mDNS, LLMNR, WS-Discovery, SADP.
KEEP_UDP_PORTS = frozenset({53, 67, 68, 1900, 3702, 5353, 5355, 37020})
# TCP ports whose segments are always kept: DNS over TCP.
KEEP_TCP_PORTS = frozenset({53})
# First bytes of an HTTP/1.x request line (RFC 7230 §3.1.1; RFC 7231 §4 methods).
HTTP_REQUEST_PREFIXES = frozenset({b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC"})
_HTTP_FIRST_BYTES = frozenset(p[0] for p in HTTP_REQUEST_PREFIXES)

# IPv6 extension headers that are skipped to reach the transport header (RFC 8200 §4, RFC 7045).
_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_DSTOPTS, _IP6_AH = 0, 43, 44, 60, 51
_IP6_EXT = frozenset({_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_DSTOPTS, _IP6_AH, 135, 139, 140})
MAX_IP6_EXT = 8

# version/IHL, -, total length, -, flags/fragment offset, -, protocol, -, source, destination
_IP4 = struct.Struct("!BxH2xHxB2x4s4s")
# -, payload length, next header, -, source, destination
_IP6 = struct.Struct("!4xHBx16s16s")
# source port, destination port, sequence number, -, data offset/flags
_TCP = struct.Struct("!HHI4xH")
# source port, destination port, length
_UDP = struct.Struct("!HHH")

CACHE_ENTRIES = 65536  # per text cache; a capture with more distinct addresses just formats more often


class _TextCache(dict[bytes, str]):
    """Address bytes -> text, formatted once (a store network has few addresses). Bounded: cleared when full."""

    def __init__(self, fmt: Callable[[bytes], str]) -> None:
        super().__init__()
        self.fmt = fmt

    def __missing__(self, key: bytes) -> str:
        if len(self) >= CACHE_ENTRIES:
            self.clear()
        text = self[key] = self.fmt(key)
        return text


class _MacPairCache(dict[bytes, tuple[str, str]]):
    """The first 12 bytes of an Ethernet frame -> (destination MAC, source MAC) text. Bounded."""

    def __missing__(self, key: bytes) -> tuple[str, str]:
        if len(self) >= CACHE_ENTRIES:
            self.clear()
        pair = self[key] = (key[0:6].hex(":"), key[6:12].hex(":"))
        return pair


_new = tuple.__new__  # Packet(...) without the generated __new__'s argument handling (hot path)
_ip4_text = _TextCache(socket.inet_ntoa)
_ip6_text = _TextCache(partial(socket.inet_ntop, socket.AF_INET6))
_mac_text = _TextCache(lambda raw: raw.hex(":"))
_mac_pairs = _MacPairCache()


class Packet(NamedTuple):
    """One decoded IP packet. Ports, flags and sequence are 0 where they do not apply.

    Holds a reference to the frame (no copy): consumers keep counters and small fields, never
    ``Packet`` objects themselves (that would keep payload bytes alive).
    """

    ts: float  # capture timestamp, seconds since the epoch
    src_mac: str  # "aa:bb:cc:dd:ee:ff", "" when the link layer has none
    dst_mac: str
    src_ip: str  # dotted quad or RFC 5952 IPv6 text
    dst_ip: str
    ip_version: int  # 4 or 6
    proto: int  # IP protocol number of the transport header (6 TCP, 17 UDP, 1 ICMP, ...)
    sport: int  # 0 unless TCP/UDP and the first fragment
    dport: int
    ip_len: int  # bytes on the wire at IP level (IPv4 total length; IPv6 40 + payload length)
    payload_len: int  # transport payload bytes on the wire (may exceed what was captured)
    tcp_flags: int  # TCP flag bits (TCP_SYN, TCP_ACK, ...), 0 for other protocols
    tcp_seq: int
    payload: bytes  # the captured transport payload when kept (see module docstring), else b""
    frame: bytes  # the whole captured frame (not a copy)
    payload_offset: int  # where the transport payload starts in ``frame``

    def data(self) -> bytes:
        """The captured transport payload, kept or not (sliced from the frame on demand)."""
        if self.payload:
            return self.payload
        if self.payload_len <= 0:
            return b""
        return self.frame[self.payload_offset : self.payload_offset + self.payload_len]

    @property
    def flow_key(self) -> tuple[str, str, int, int]:
        """(src_ip, dst_ip, sport, dport): the directional key the TLS reassembler uses."""
        return (self.src_ip, self.dst_ip, self.sport, self.dport)


class DecodeStats:
    """Why frames did not decode (only the failures are counted: the caller counts successes)."""

    __slots__ = ("not_ip", "malformed", "truncated", "unsupported_linktype", "fragments")

    def __init__(self) -> None:
        self.not_ip = 0  # ARP, LLDP, STP, ... (not an error)
        self.malformed = 0  # impossible header values
        self.truncated = 0  # the frame ends inside a header we need
        self.unsupported_linktype = 0
        self.fragments = 0  # non-first IP fragments (decoded, without ports)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Bad(Exception):
    """Internal: which counter a rejected frame goes to."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


_TRUNCATED = _Bad("truncated")
_MALFORMED = _Bad("malformed")
_NOT_IP = _Bad("not_ip")
_UNSUPPORTED = _Bad("unsupported_linktype")


def decode(linktype: int, frame: bytes, ts: float, stats: DecodeStats | None = None) -> Packet | None:
    """Decode one captured frame; ``None`` (counted in ``stats``) for non-IP or malformed frames."""
    try:
        flen = len(frame)
        src_mac = dst_mac = ""
        # ---- link layer: find the network-layer offset and its type -------------------------
        if linktype == 1:  # LINKTYPE_ETHERNET
            # destination MAC (6), source MAC (6), EtherType (2) -- IEEE 802.3 §3.1.1
            if flen < 14:
                raise _TRUNCATED
            etype = (frame[12] << 8) | frame[13]
            off = 14
            tags = 0
            while etype in (0x8100, 0x88A8, 0x9100):  # VLAN_ETHERTYPES
                # 802.1Q tag: TCI (2), then the inner EtherType (2)
                tags += 1
                if tags > MAX_VLAN_TAGS:
                    raise _MALFORMED
                if off + 4 > flen:
                    raise _TRUNCATED
                etype = (frame[off + 2] << 8) | frame[off + 3]
                off += 4
            dst_mac, src_mac = _mac_pairs[frame[0:12]]
        elif linktype == LINKTYPE_LINUX_SLL:
            # packet type (2), ARPHRD type (2), address length (2), address (8), protocol (2)
            if flen < 16:
                raise _TRUNCATED
            etype = (frame[14] << 8) | frame[15]
            off = 16
            if frame[2] == 0 and frame[3] == 1 and frame[4] == 0 and frame[5] == 6:  # ARPHRD_ETHER, 6-byte address
                src_mac = _mac_text[frame[6:12]]
        elif linktype == LINKTYPE_LINUX_SLL2:
            # protocol (2), reserved (2), ifindex (4), ARPHRD type (2), packet type (1), address length (1),
            # address (8)
            if flen < 20:
                raise _TRUNCATED
            etype = (frame[0] << 8) | frame[1]
            off = 20
            if frame[8] == 0 and frame[9] == 1 and frame[11] == 6:
                src_mac = _mac_text[frame[12:18]]
        elif linktype == LINKTYPE_RAW or linktype == LINKTYPE_IPV4 or linktype == LINKTYPE_IPV6 or (
            linktype == LINKTYPE_RAW_OLD
        ):
            off = 0
            etype = _etype_from_version(frame, 0)
        elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
            # a 4-byte address family (host or network byte order); the IP version nibble decides
            off = 4
            etype = _etype_from_version(frame, 4)
        else:
            raise _UNSUPPORTED

        # ---- network layer --------------------------------------------------------------------
        # (literals rather than the module constants in the hot path: no global look-ups)
        if etype == 0x0800:  # ETHERTYPE_IPV4
            # RFC 791 §3.1: version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol,
            # checksum, source, destination, options
            if off + 20 > flen:
                raise _TRUNCATED
            vihl, ip_len, frag, proto, src4, dst4 = _IP4.unpack_from(frame, off)
            ihl = (vihl & 0x0F) << 2
            if vihl >> 4 != 4 or ihl < 20:
                raise _MALFORMED
            if ip_len == 0:  # TSO: the capturing host's NIC splits it later
                ip_len = flen - off
            elif ip_len < ihl:
                raise _MALFORMED
            version = 4
            src_ip = _ip4_text[src4]
            dst_ip = _ip4_text[dst4]
            l4 = off + ihl
            if frag & 0x1FFF:  # not the first fragment: no transport header here
                if stats is not None:
                    stats.fragments += 1
                plen = ip_len - ihl
                return Packet(ts, src_mac, dst_mac, src_ip, dst_ip, 4, proto, 0, 0, ip_len, plen, 0, 0, b"", frame, l4)
        elif etype == 0x86DD:  # ETHERTYPE_IPV6
            # RFC 8200 §3: version/class/flow (4), payload length (2), next header (1), hop limit (1),
            # source (16), destination (16)
            if off + 40 > flen:
                raise _TRUNCATED
            if frame[off] >> 4 != 6:
                raise _MALFORMED
            plen6, proto, src16, dst16 = _IP6.unpack_from(frame, off)
            ip_len = 40 + plen6 if plen6 else flen - off  # 0: jumbogram or TSO
            version = 6
            src_ip = _ip6_text[src16]
            dst_ip = _ip6_text[dst16]
            l4 = off + 40
            if proto in _IP6_EXT:
                hops = 0
                while proto in _IP6_EXT:
                    hops += 1
                    if hops > MAX_IP6_EXT:
                        raise _MALFORMED
                    if l4 + 8 > flen:
                        raise _TRUNCATED
                    nxt = frame[l4]
                    if proto == _IP6_FRAGMENT:
                        # RFC 8200 §4.5: next header, reserved, offset(13 bits)/res/M, identification
                        fragoff = ((frame[l4 + 2] << 8) | frame[l4 + 3]) >> 3
                        l4 += 8
                        if fragoff:
                            if stats is not None:
                                stats.fragments += 1
                            plen = off + ip_len - l4
                            if plen < 0:
                                raise _MALFORMED
                            return Packet(
                                ts, src_mac, dst_mac, src_ip, dst_ip, 6, nxt, 0, 0, ip_len, plen, 0, 0, b"", frame, l4
                            )
                    elif proto == _IP6_AH:
                        l4 += (frame[l4 + 1] + 2) << 2  # RFC 4302 §2.2: length in 4-octet units, minus 2
                    else:
                        l4 += (frame[l4 + 1] + 1) << 3  # RFC 8200 §4.3: length in 8-octet units, minus 1
                    proto = nxt
        else:
            raise _NOT_IP

        ip_end = off + ip_len
        # ---- transport layer ------------------------------------------------------------------
        if proto == 6:  # PROTO_TCP
            # RFC 9293 §3.1: source port, destination port, sequence, acknowledgment, data offset/flags, ...
            if l4 + 20 > flen:
                raise _TRUNCATED
            sport, dport, seq, offflags = _TCP.unpack_from(frame, l4)
            doff = (offflags >> 12) << 2
            if doff < 20:
                raise _MALFORMED
            pstart = l4 + doff
            plen = ip_end - pstart
            if plen < 0:
                raise _MALFORMED
            payload = b""
            if plen and pstart < flen:
                b0 = frame[pstart]
                if plen <= SMALL_PAYLOAD or sport in KEEP_TCP_PORTS or dport in KEEP_TCP_PORTS:
                    payload = frame[pstart : min(ip_end, flen)]
                elif b0 == 0x16:
                    if pstart + 1 < flen and frame[pstart + 1] == 3:  # TLS handshake record, RFC 8446 §5.1
                        payload = frame[pstart : min(ip_end, flen)]
                elif b0 in _HTTP_FIRST_BYTES and frame[pstart : pstart + 4] in HTTP_REQUEST_PREFIXES:
                    payload = frame[pstart : min(ip_end, flen)]
            return _new(
                Packet,
                (ts, src_mac, dst_mac, src_ip, dst_ip, version, 6, sport, dport, ip_len, plen, offflags & 0x01FF, seq,
                 payload, frame, pstart),
            )  # fmt: skip
        if proto == 17:  # PROTO_UDP
            # RFC 768: source port, destination port, length, checksum
            if l4 + 8 > flen:
                raise _TRUNCATED
            sport, dport, ulen = _UDP.unpack_from(frame, l4)
            pstart = l4 + 8
            plen = ip_end - pstart
            if 8 <= ulen < plen + 8:  # the UDP length is authoritative when it is the smaller one
                plen = ulen - 8
            if plen < 0:
                raise _MALFORMED
            payload = b""
            if plen and (plen <= SMALL_PAYLOAD or sport in KEEP_UDP_PORTS or dport in KEEP_UDP_PORTS):
                payload = frame[pstart : min(pstart + plen, flen)]
            return _new(
                Packet,
                (ts, src_mac, dst_mac, src_ip, dst_ip, version, 17, sport, dport, ip_len, plen, 0, 0, payload, frame,
                 pstart),
            )  # fmt: skip
        # another transport (ICMP, IGMP, GRE, ESP, ...): addresses and lengths only
        plen = ip_end - l4
        if plen < 0:
            raise _MALFORMED
        return Packet(ts, src_mac, dst_mac, src_ip, dst_ip, version, proto, 0, 0, ip_len, plen, 0, 0, b"", frame, l4)
    except _Bad as bad:
        bad.__traceback__ = None  # the instances are shared: do not let tracebacks pile up on them
        if stats is not None:
            setattr(stats, bad.kind, getattr(stats, bad.kind) + 1)
        return None
    except (struct.error, IndexError, ValueError, OSError):  # pragma: no cover - guarded above; belt and braces
        if stats is not None:
            stats.malformed += 1
        return None


def _etype_from_version(frame: bytes, off: int) -> int:
    """The EtherType a bare IP header at ``off`` stands for, from its version nibble."""
    if off >= len(frame):
        raise _TRUNCATED
    version = frame[off] >> 4
    if version == 4:
        return ETHERTYPE_IPV4
    if version == 6:
        return ETHERTYPE_IPV6
    raise _NOT_IP


def looks_like_http_request(data: bytes) -> bool:
    """True when ``data`` starts like an HTTP/1.x request line (the decoder's keep rule)."""
    return data[:4] in HTTP_REQUEST_PREFIXES
