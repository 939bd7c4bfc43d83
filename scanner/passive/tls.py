"""TLS ClientHello: the server name a device asks for, from the first bytes of a TLS connection.

Parsed (RFC 8446 §5.1 records, §4 handshake header, §4.1.2 ClientHello; RFC 6066 §3 server_name;
RFC 7301 §3.1 ALPN; RFC 8446 §4.2.1 supported_versions): TLS handshake records (content type 22,
version 3.x) are concatenated until the first handshake message is complete, which must be a
ClientHello (type 1) of at most ``MAX_HELLO`` bytes. A ClientHello may span several records and
several TCP segments: ``SniReassembler`` collects the segments of each flow in TCP sequence order
(out-of-order segments too, when the SYN or the first segment was seen) up to ``MAX_HELLO``
bytes, and forgets the flow when the hello is complete, when the flow turns out not to be TLS,
on RST/FIN, or after ``timeout`` seconds of capture time.

Hostile input never raises: bad lengths, truncated extensions, a record that is not a handshake
-> ``None``. A server name longer than ``MAX_SNI`` bytes is cut there and marked
(``ClientHello.sni_truncated``); unprintable bytes are escaped (``\\xNN``). Nothing but the parsed
fields is kept: the buffered segments of a flow are dropped as soon as it is decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from scanner.passive.decode import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet

MAX_HELLO = 16 * 1024  # bytes of a ClientHello (records and handshake header included) we accept
MAX_SNI = 255  # bytes of server name kept (a DNS name has at most 253 characters)
MAX_ALPN = 8  # ALPN protocol names kept
MAX_SEGMENTS = 64  # segments buffered per flow (a 16 KiB hello in 536-byte segments needs 31)

CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43

_MORE, _DONE, _BAD = 0, 1, 2
_PRINTABLE = bytes(range(0x21, 0x7F))

FlowKey = tuple[str, str, int, int]  # (src_ip, dst_ip, sport, dport), the client -> server direction


class ClientHello(NamedTuple):
    sni: str | None  # host_name from server_name, lower-case, no trailing dot; None when absent
    sni_truncated: bool  # the name was longer than MAX_SNI bytes and was cut
    legacy_version: int  # 0x0303 for TLS 1.2 and 1.3 (RFC 8446 §4.1.2)
    tls13: bool  # supported_versions offers TLS 1.3 (0x0304)
    alpn: tuple[str, ...]  # offered application protocols ("h2", "http/1.1", "mqtt", ...), bounded


class _Invalid(Exception):
    pass


def client_hello_sni(data: bytes) -> str | None:
    """The SNI host name of the ClientHello at the start of ``data`` (TLS records), else ``None``."""
    hello = parse_client_hello(data)
    return hello.sni if hello is not None else None


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The ClientHello at the start of ``data``; ``None`` if incomplete, not a ClientHello, or malformed."""
    status, hello = _scan(data)
    return hello if status == _DONE else None


def looks_like_client_hello(data: bytes) -> bool:
    """Cheap test on a segment's first bytes: a handshake record (22, 3.x) holding a ClientHello (1)."""
    return len(data) >= 3 and data[0] == CONTENT_HANDSHAKE and data[1] == 3 and (len(data) < 6 or data[5] == 1)


def _scan(data: bytes) -> tuple[int, ClientHello | None]:
    """(_MORE, None): a ClientHello so far but incomplete; (_DONE, hello); (_BAD, None)."""
    try:
        # RFC 8446 §5.1 TLSPlaintext: type (1), legacy_record_version (2), length (2), fragment
        hs = bytearray()
        pos = 0
        n = len(data)
        need = 4  # the handshake header first: msg_type (1), length (3)
        while len(hs) < need:
            if pos + 5 > n:
                return _MORE, None
            if data[pos] != CONTENT_HANDSHAKE or data[pos + 1] != 3:
                return _BAD, None
            rlen = (data[pos + 3] << 8) | data[pos + 4]
            if rlen == 0 or rlen > 16384 + 2048:  # RFC 8446 §5.1: at most 2^14 (+ expansion in older versions)
                return _BAD, None
            frag = data[pos + 5 : pos + 5 + rlen]
            hs += frag
            pos += 5 + rlen
            if len(hs) >= 4 and need == 4:
                if hs[0] != HANDSHAKE_CLIENT_HELLO:
                    return _BAD, None
                need = 4 + ((hs[1] << 16) | (hs[2] << 8) | hs[3])
                if need > MAX_HELLO:
                    return _BAD, None
            if len(frag) < rlen and len(hs) < need:
                return _MORE, None
        return _DONE, _client_hello(bytes(hs[4:need]))
    except _Invalid:
        return _BAD, None
    except (IndexError, ValueError):  # pragma: no cover - every read is bounds-checked
        return _BAD, None


def _client_hello(body: bytes) -> ClientHello:
    """RFC 8446 §4.1.2: legacy_version, random, legacy_session_id, cipher_suites, compression, extensions."""
    n = len(body)
    if n < 2 + 32 + 1:
        raise _Invalid("ClientHello too short")
    legacy_version = (body[0] << 8) | body[1]
    pos = 34  # legacy_version (2) + random (32)
    sid_len = body[pos]  # legacy_session_id <0..32>
    if sid_len > 32:
        raise _Invalid("session id longer than 32 bytes")
    pos += 1 + sid_len
    cs_len = _u16(body, pos)  # cipher_suites <2..2^16-2>
    if cs_len < 2 or cs_len & 1:
        raise _Invalid("bad cipher_suites length")
    pos += 2 + cs_len
    if pos >= n:
        raise _Invalid("ClientHello ends in cipher_suites")
    comp_len = body[pos]  # legacy_compression_methods <1..2^8-1>
    if comp_len < 1:
        raise _Invalid("no compression methods")
    pos += 1 + comp_len
    if pos > n:
        raise _Invalid("ClientHello ends in compression methods")
    sni: str | None = None
    truncated = False
    tls13 = False
    alpn: tuple[str, ...] = ()
    if pos == n:  # no extensions at all (SSL 3.0 / TLS 1.0-1.2 clients may omit them)
        return ClientHello(None, False, legacy_version, False, ())
    ext_end = pos + 2 + _u16(body, pos)  # extensions <8..2^16-1>
    if ext_end > n:
        raise _Invalid("extensions run past the ClientHello")
    pos += 2
    while pos < ext_end:
        # Extension: extension_type (2), extension_data <0..2^16-1>
        if pos + 4 > ext_end:
            raise _Invalid("extension header cut short")
        etype = _u16(body, pos)
        elen = _u16(body, pos + 2)
        start = pos + 4
        pos = start + elen
        if pos > ext_end:
            raise _Invalid("extension runs past the extensions block")
        if etype == EXT_SERVER_NAME and elen:
            sni, truncated = _server_name(body, start, pos)
        elif etype == EXT_ALPN and elen:
            alpn = _alpn(body, start, pos)
        elif etype == EXT_SUPPORTED_VERSIONS and elen:
            vlen = body[start]  # ProtocolVersion versions<2..254>
            if start + 1 + vlen > pos or vlen & 1:
                raise _Invalid("bad supported_versions")
            tls13 = any(_u16(body, i) == 0x0304 for i in range(start + 1, start + 1 + vlen, 2))
    return ClientHello(sni, truncated, legacy_version, tls13, alpn)


def _server_name(body: bytes, pos: int, end: int) -> tuple[str | None, bool]:
    """RFC 6066 §3: ServerNameList <1..2^16-1> of (name_type (1), HostName <1..2^16-1>)."""
    list_end = pos + 2 + _u16(body, pos)
    if list_end > end:
        raise _Invalid("server_name list runs past its extension")
    pos += 2
    while pos + 3 <= list_end:
        name_type = body[pos]
        nlen = _u16(body, pos + 1)
        start = pos + 3
        pos = start + nlen
        if pos > list_end:
            raise _Invalid("server name runs past its list")
        if name_type == 0 and nlen:  # host_name; RFC 6066: at most one name of each type
            raw = body[start : min(pos, start + MAX_SNI)]
            return _text(raw).rstrip("."), nlen > MAX_SNI
    if pos != list_end:
        raise _Invalid("server_name list cut short")
    return None, False


def _alpn(body: bytes, pos: int, end: int) -> tuple[str, ...]:
    """RFC 7301 §3.1: ProtocolNameList <2..2^16-1> of ProtocolName <1..2^8-1>."""
    list_end = pos + 2 + _u16(body, pos)
    if list_end > end:
        raise _Invalid("ALPN list runs past its extension")
    pos += 2
    names: list[str] = []
    while pos < list_end:
        plen = body[pos]
        start = pos + 1
        pos = start + plen
        if pos > list_end or plen == 0:
            raise _Invalid("bad ALPN protocol name")
        if len(names) < MAX_ALPN:
            names.append(_text(body[start : min(pos, start + 64)]))
    return tuple(names)


def _u16(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise _Invalid("length field cut short")
    return (data[pos] << 8) | data[pos + 1]


def _text(raw: bytes) -> str:
    if not raw.translate(None, _PRINTABLE):
        return raw.decode("ascii").lower()
    return "".join(chr(c) if 0x21 <= c <= 0x7E else f"\\x{c:02x}" for c in raw.lower())


# ---------------------------------------------------------------------------------------------
# reassembly across TCP segments
# ---------------------------------------------------------------------------------------------

_SEQ_MASK = 0xFFFFFFFF


@dataclass(slots=True)
class _Pending:
    base: int  # TCP sequence number of the first byte of the ClientHello record
    last_ts: float
    segs: dict[int, bytes]  # offset from base -> segment bytes
    stored: int = 0


@dataclass(slots=True)
class ReassemblyStats:
    hellos: int = 0  # complete ClientHellos returned
    not_tls: int = 0  # flows whose first bytes were not a ClientHello
    too_large: int = 0  # hellos above MAX_HELLO
    timed_out: int = 0
    evicted: int = 0  # oldest flows dropped because max_flows were pending
    closed: int = 0  # flows reset or finished before the hello was complete


class SniReassembler:
    """Collects ClientHellos split across TCP segments, per flow (src_ip, dst_ip, sport, dport).

    ``feed_packet`` takes decoded packets in capture order and returns the ``ClientHello`` when a
    flow's hello becomes complete (once per connection), else ``None``. Memory is bounded by
    ``max_flows`` pending flows of at most ``max_bytes`` each.
    """

    def __init__(self, *, max_flows: int = 4096, timeout: float = 30.0, max_bytes: int = MAX_HELLO) -> None:
        self.max_flows = max(1, max_flows)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.stats = ReassemblyStats()
        self._pending: dict[FlowKey, _Pending] = {}
        self._done: dict[FlowKey, float] = {}  # flows whose hello was decided, until timeout or a new SYN
        self._last_sweep = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    def has_pending(self) -> bool:
        """Whether any flow's ClientHello is waiting for more segments."""
        return bool(self._pending)

    def is_pending(self, key: FlowKey) -> bool:
        """Whether ``feed_packet`` would take a payload segment of ``key`` (src_ip, dst_ip, sport, dport)."""
        return key in self._pending

    def pending_keys(self) -> list[FlowKey]:
        return list(self._pending)

    def feed_packet(self, pkt: Packet) -> ClientHello | None:
        """Feed one decoded packet (anything; only TCP is looked at)."""
        if pkt.proto != 6:
            return None
        key = (pkt.src_ip, pkt.dst_ip, pkt.sport, pkt.dport)
        flags = pkt.tcp_flags
        if flags & (TCP_SYN | TCP_RST | TCP_FIN):
            return self.feed(key, pkt.ts, pkt.tcp_seq, pkt.data(), flags=flags)
        if pkt.payload_len == 0:
            return None
        if key in self._pending:
            return self.feed(key, pkt.ts, pkt.tcp_seq, pkt.data())
        if pkt.payload and looks_like_client_hello(pkt.payload):
            return self.feed(key, pkt.ts, pkt.tcp_seq, pkt.payload)
        return None

    def feed(self, key: FlowKey, ts: float, seq: int, data: bytes, *, flags: int = 0) -> ClientHello | None:
        """Feed one TCP segment of the flow ``key``: sequence number, payload and TCP flags."""
        if ts - self._last_sweep >= self.timeout / 2:
            self.expire(ts)
        pending = self._pending
        state = pending.get(key)
        if flags & TCP_RST or (flags & TCP_FIN and not data):
            if state is not None:
                del pending[key]
                self.stats.closed += 1
            self._done.pop(key, None)
            return None
        if flags & TCP_SYN and not flags & TCP_ACK:
            # A client opens a connection: its data starts at ISN + 1 (with TCP Fast Open, in this very segment).
            self._done.pop(key, None)
            seq = (seq + 1) & _SEQ_MASK
            state = self._start(key, seq, ts)
        if not data:
            return None
        if state is None:
            if key in self._done or not looks_like_client_hello(data):
                return None
            state = self._start(key, seq, ts)
        state.last_ts = ts
        rel = (seq - state.base) & _SEQ_MASK
        if rel >= self.max_bytes:
            if rel < 0x80000000:  # data beyond the largest hello we accept, and the hello is not complete
                self._decide(key)
                self.stats.too_large += 1
            return None  # else an old retransmission from before the hello
        piece = data[: self.max_bytes - rel]
        old = state.segs.get(rel)
        if old is None or len(old) < len(piece):
            state.segs[rel] = piece
            state.stored += len(piece)
        if state.stored > 2 * self.max_bytes or len(state.segs) > MAX_SEGMENTS:  # overlaps, or tiny segments
            self._decide(key)
            self.stats.too_large += 1
            return None
        if 0 not in state.segs:
            return None  # the start of the hello has not arrived yet (out of order)
        joined = _contiguous(state.segs)
        status, hello = _scan(joined)
        if status == _MORE:
            if len(joined) >= self.max_bytes:  # the buffer is full and the hello is still not complete
                self._decide(key)
                self.stats.too_large += 1
            elif flags & TCP_FIN:
                self._decide(key)
                self.stats.closed += 1
            return None
        self._decide(key)
        if status == _BAD:
            self.stats.not_tls += 1
            return None
        self.stats.hellos += 1
        return hello

    def expire(self, now: float) -> int:
        """Forget flows idle for more than ``timeout`` seconds of capture time; returns how many."""
        self._last_sweep = now
        cutoff = now - self.timeout
        old = [key for key, state in self._pending.items() if state.last_ts < cutoff]
        for key in old:
            del self._pending[key]
        self.stats.timed_out += len(old)
        for key in [key for key, ts in self._done.items() if ts < cutoff]:
            del self._done[key]
        return len(old)

    def _start(self, key: FlowKey, base: int, ts: float) -> _Pending:
        if key not in self._pending and len(self._pending) >= self.max_flows:
            self.expire(ts)
            while len(self._pending) >= self.max_flows:
                del self._pending[next(iter(self._pending))]  # the oldest (dicts keep insertion order)
                self.stats.evicted += 1
        state = self._pending[key] = _Pending(base, ts, {})
        return state

    def _decide(self, key: FlowKey) -> None:
        state = self._pending.pop(key, None)
        if len(self._done) >= self.max_flows:
            del self._done[next(iter(self._done))]
        self._done[key] = state.last_ts if state is not None else 0.0


def _contiguous(segs: dict[int, bytes]) -> bytes:
    """The bytes from offset 0 up to the first gap (overlapping retransmissions merged)."""
    out = bytearray()
    end = 0
    for off in sorted(segs):
        if off > end:
            break
        piece = segs[off]
        if off + len(piece) > end:
            out += piece[end - off :]
            end = off + len(piece)
    return bytes(out)
