"""Streaming capture reader: pcap and pcapng records as (timestamp, link type, frame bytes).

Formats (each record is copied out of a bounded read buffer; the file is never loaded whole,
so memory stays flat for multi-GB captures):

* pcap (draft-ietf-opsawg-pcap §4-§5): either byte order, microsecond magic 0xA1B2C3D4 and
  nanosecond magic 0xA1B23C4D, plus the "modified" pcap of old Linux patches (0xA1B2CD34, records
  with 8 extra header bytes). The link type is the low 16 bits of the header's LinkType field.
* pcapng (draft-ietf-opsawg-pcapng §3-§4): sections in either byte order (a new SHB may change
  it and resets the interfaces), any number of IDBs each with its link type, ``if_tsresol``
  (power of 10 or of 2) and ``if_tsoffset``; Enhanced, Simple and the obsolete Packet blocks carry
  frames; every other block (NRB, ISB, DSB, custom, ...) is skipped and counted. A Simple Packet
  Block has no timestamp: it gets the timestamp of the packet before it.
* gzip-compressed files of either (``.pcap.gz``), decompressed as a stream.

Hostile input never raises: a record cut short by the end of the file is counted in
``ReadStats.truncated``; a record with an impossible length (captured length above
``MAX_RECORD``, a pcapng block whose trailing length disagrees, an undefined interface) is
counted in ``bad_records`` and reading resumes at the next plausible record found within
``RESYNC_WINDOW`` bytes (``resyncs``, ``skipped_bytes``), or stops there if none is found.
``ReadStats.errors`` keeps the first message of each kind. Only a path that cannot be read, or
a file that is not a capture at all, is an error: ``scanner.errors.UsageError``, raised when
``iter_frames`` is called, before iteration starts.
"""

from __future__ import annotations

import gzip
import io
import logging
import stat
import struct
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import sub
from pathlib import Path
from typing import IO

from scanner.errors import UsageError
from scanner.passive.decode import SUPPORTED_LINKTYPES

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20  # bytes asked of the file per read
MAX_RECORD = 256 * 1024  # captured bytes in one record; above that a record is corrupt
MAX_BLOCK = 16 * 1024 * 1024  # any pcapng block (name resolution and secrets blocks can be large)
RESYNC_WINDOW = 1 << 20  # bytes searched for a plausible record after a bad one
MAX_TS_JUMP = 7 * 86400  # a resync candidate's timestamp must be this close to the last good one
MAX_UNKNOWN_LINKTYPES = 16  # distinct unknown link types remembered in ReadStats

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
_PCAPNG_KNOWN_BLOCKS = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 0x0A, 0x0B, 0x0BAD, 0x40000BAD, PCAPNG_SHB})

_GZIP_MAGIC = b"\x1f\x8b"

Reader = Callable[[int], bytes]


@dataclass
class ReadStats:
    """What reading one capture met. Counters are exact once iteration has finished."""

    format: str = ""  # "pcap", "pcap-ns", "pcap-modified", "pcapng"; "+gzip" when compressed
    packets: int = 0  # packet records read (including those of unknown link types)
    bytes: int = 0  # captured bytes in those records
    truncated: int = 0  # records (or the file header) cut short by the end of the file
    bad_records: int = 0  # records/blocks with impossible lengths or fields
    resyncs: int = 0  # times reading resumed at a plausible record after a bad one
    skipped_bytes: int = 0  # bytes passed over while resynchronising (the window searched, when giving up)
    unknown_linktype: int = 0  # packets not yielded because decode does not know their link type
    unknown_linktypes: set[int] = field(default_factory=set)
    skipped_blocks: int = 0  # pcapng blocks that carry no packet (NRB, ISB, DSB, custom, ...)
    interfaces: int = 0  # interfaces described (pcapng IDBs; 1 for pcap)
    sections: int = 0  # pcapng sections (SHBs)
    errors: dict[str, str] = field(default_factory=dict)  # first message of each error kind

    def note(self, kind: str, message: str) -> None:
        """Remember the first message of each kind of error (bounded; logged once)."""
        if kind not in self.errors and len(self.errors) < 32:
            self.errors[kind] = message
            log.debug("capture: %s: %s", kind, message)

    def _unknown(self, linktype: int) -> None:
        if len(self.unknown_linktypes) < MAX_UNKNOWN_LINKTYPES:
            self.unknown_linktypes.add(linktype)
        self.note("unknown-linktype", f"link type {linktype} is not decoded; its packets are skipped")


Frame = tuple[float, int, bytes]


def iter_frames(path: Path, stats: ReadStats, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Frame]:
    """Yield (timestamp seconds, link type, frame) for every packet of the capture at ``path``.

    Raises ``UsageError`` at once when the path cannot be read or is not a pcap/pcapng file
    (gzip-compressed or not); everything wrong inside the file is counted in ``stats``. The path
    is opened once, so a pipe works too (``/dev/stdin``, ``<(tcpdump -w -)``): the format is
    recognised by peeking, without consuming. The file is closed when the iterator is exhausted,
    closed, or garbage-collected.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # owned by the generator below
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a capture file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read capture file ({exc.strerror or exc})") from None
    stream: IO[bytes] | gzip.GzipFile = fh
    try:
        head = fh.peek(4)[:4]
        if head[:2] == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=fh, mode="rb")
            head = stream.peek(4)[:4]
        _check_magic(head, str(path))
    except (OSError, EOFError, zlib.error) as exc:
        _close(stream, fh)
        raise UsageError(f"{path}: cannot read capture file ({exc})") from None
    except UsageError:
        _close(stream, fh)
        raise
    suffix = "+gzip" if stream is not fh else ""
    frames = _iter_owned(stream, fh, stats, chunk_size, suffix)
    weakref.finalize(frames, _close, stream, fh)  # closed even if iteration never starts
    return frames


def iter_frames_from(fileobj: IO[bytes], stats: ReadStats, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Frame]:
    """The same from an open binary stream (stdin, a pipe from a live capture); not closed here.

    Reads the first 4 bytes at once to raise ``UsageError`` for a stream that is not a capture.
    Later reads use ``read1`` when the stream has it, so records from a live pipe are yielded as
    they arrive rather than when a whole chunk has filled.
    """
    try:
        head = _read_exact(fileobj.read, 4)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read capture stream ({exc})") from None
    if head[:2] == _GZIP_MAGIC:
        raise UsageError("gzip-compressed capture streams are not supported: decompress it first (zcat)")
    _check_magic(head, "input")
    read: Reader = getattr(fileobj, "read1", fileobj.read)
    return _iter_stream(_safe_reader(read, stats), head, stats, chunk_size)


def _close(*files: IO[bytes] | gzip.GzipFile) -> None:
    for f in files:
        try:
            f.close()
        except OSError:  # pragma: no cover - closing a read-only file
            pass


def _iter_owned(
    stream: IO[bytes] | gzip.GzipFile, fh: IO[bytes], stats: ReadStats, chunk_size: int, suffix: str
) -> Iterator[Frame]:
    try:
        read = _safe_reader(getattr(stream, "read1", stream.read), stats)
        head = _read_exact(read, 4)
        yield from _iter_stream(read, head, stats, chunk_size, suffix)
    finally:
        _close(stream, fh)


def _check_magic(head: bytes, name: str) -> None:
    if len(head) < 4:
        raise UsageError(f"{name}: not a pcap or pcapng file (only {len(head)} bytes)")
    if head == b"\x0a\x0d\x0d\x0a":
        return
    if struct.unpack("<I", head)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED):
        return
    if struct.unpack(">I", head)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED):
        return
    raise UsageError(f"{name}: not a pcap or pcapng file (starts with 0x{head.hex()})")


def _read_exact(read: Reader, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream (pipes return short reads)."""
    parts: list[bytes] = []
    have = 0
    while have < n:
        data = read(n - have)
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def _safe_reader(read: Reader, stats: ReadStats) -> Reader:
    """``read`` that turns I/O and decompression errors into the end of the stream (noted)."""

    def safe(n: int) -> bytes:
        try:
            return read(n)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            stats.note("read-error", f"reading stopped: {exc}")
            return b""

    return safe


def _iter_stream(read: Reader, head: bytes, stats: ReadStats, chunk_size: int, suffix: str = "") -> Iterator[Frame]:
    chunk_size = max(1, chunk_size)
    if head == b"\x0a\x0d\x0d\x0a":
        stats.format = "pcapng" + suffix
        return _iter_pcapng(read, head, stats, chunk_size)
    return _iter_pcap(read, head, stats, chunk_size, suffix)


def _fill(read: Reader, buf: bytes, pos: int, want: int, chunk_size: int) -> tuple[bytes, bool]:
    """``buf[pos:]`` followed by reads until it holds ``want`` bytes; (new buffer, end of stream reached)."""
    parts = [buf[pos:]]
    have = len(buf) - pos
    while have < want:
        data = read(max(chunk_size, want - have))
        if not data:
            return b"".join(parts), True
        parts.append(data)
        have += len(data)
    return b"".join(parts), False


# ---------------------------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------------------------


def _pcap_header(buf: bytes | bytearray | memoryview, stats: ReadStats, suffix: str
                 ) -> tuple[str, int, int, float, int, Callable[..., tuple[int, ...]], bool, int]:
    """Parse a pcap file header (at least 24 bytes of ``buf``) and note its format in ``stats``:
    (endian, magic, linktype, timestamp scale, record header length, record header unpacker,
    linktype supported, fraction limit)."""
    # File header: magic (4), version major (2), minor (2), reserved/thiszone (4), reserved/sigfigs (4),
    # snaplen (4), LinkType and additional information (4)
    endian = "<" if struct.unpack_from("<I", buf)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED) else ">"
    magic, network = struct.unpack_from(endian + "I16xI", buf)
    linktype = network & 0xFFFF
    scale = 1e-9 if magic == PCAP_MAGIC_NS else 1e-6
    kind = {PCAP_MAGIC_US: "pcap", PCAP_MAGIC_NS: "pcap-ns", PCAP_MAGIC_MODIFIED: "pcap-modified"}[magic]
    stats.format = kind + suffix
    stats.interfaces += 1
    # Record header: timestamp seconds (4), microseconds or nanoseconds (4), captured length (4),
    # original length (4); the modified format adds ifindex (4), protocol (2), pkt_type (1), pad (1).
    hlen = 24 if magic == PCAP_MAGIC_MODIFIED else 16
    unpack = struct.Struct(endian + ("IIII8x" if hlen == 24 else "IIII")).unpack_from
    known = linktype in SUPPORTED_LINKTYPES
    if not known:
        stats._unknown(linktype)
    frac_limit = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
    return endian, magic, linktype, scale, hlen, unpack, known, frac_limit


def _iter_pcap(read: Reader, head: bytes, stats: ReadStats, chunk_size: int, suffix: str) -> Iterator[Frame]:
    buf, eof = _fill(read, head, 0, 24, chunk_size)
    if len(buf) < 24:
        stats.format = "pcap" + suffix
        stats.truncated += 1
        stats.note("truncated", f"file header cut short at {len(buf)} of 24 bytes")
        return
    endian, magic, linktype, scale, hlen, unpack, known, frac_limit = _pcap_header(buf, stats, suffix)
    max_record = MAX_RECORD

    pos = 24
    offset = 0  # file offset of buf[0], for messages
    last_sec = -1
    packets = nbytes = 0
    try:
        while True:
            end = len(buf)
            want = hlen
            while pos + hlen <= end:
                sec, frac, caplen, _origlen = unpack(buf, pos)
                nxt = pos + hlen + caplen
                if caplen > max_record:
                    want = -1
                    break
                if nxt > end:
                    want = hlen + caplen
                    break
                packets += 1
                nbytes += caplen
                last_sec = sec
                if known:
                    yield sec + frac * scale, linktype, buf[pos + hlen : nxt]
                pos = nxt
            stats.packets += packets
            stats.bytes += nbytes
            if not known:
                stats.unknown_linktype += packets
            packets = nbytes = 0
            if want < 0:
                # A record with an impossible length: look for the next plausible record header.
                offset += pos
                window = RESYNC_WINDOW + 2 * hlen
                buf, eof = _fill(read, buf, pos, window, chunk_size)
                pos = _resync_after_bad_record(memoryview(buf), window, unpack, hlen, frac_limit, last_sec, offset,
                                               caplen, stats)
                if pos < 0:
                    return
                continue
            if eof:
                if pos < end:
                    stats.truncated += 1
                    stats.note("truncated", f"last record at offset {offset + pos} cut short by the end of the file")
                return
            offset += pos
            buf, eof = _fill(read, buf, pos, want, chunk_size)
            pos = 0
    finally:
        stats.packets += packets
        stats.bytes += nbytes
        if not known:
            stats.unknown_linktype += packets


def _resync_after_bad_record(
    view: memoryview, window: int, unpack: Callable[[bytes | bytearray | memoryview, int], tuple[int, ...]],
    hlen: int, frac_limit: int, last_sec: int, offset: int, caplen: int, stats: ReadStats,
) -> int:
    """The bad record at the start of ``view`` (file offset ``offset``, claiming ``caplen`` bytes)
    counted in ``stats``, and the offset in ``view`` of the next plausible record; -1 (noted) when
    there is none: reading stops.

    The search looks at exactly ``window`` bytes (fewer at the end of the file), however the stream
    was chunked, so every reader of the same file resynchronises at the same record."""
    stats.bad_records += 1
    stats.note("bad-record", f"record at offset {offset} claims {caplen} captured bytes")
    found = _pcap_resync(view[:window], 1, unpack, hlen, frac_limit, last_sec)
    if found < 0:
        stats.skipped_bytes += min(len(view), window)
        if len(view) >= window:
            stats.note("gave-up", f"no plausible record in {RESYNC_WINDOW} bytes after offset {offset}")
        return -1
    stats.resyncs += 1
    stats.skipped_bytes += found
    return found


def _pcap_resync(
    buf: bytes | bytearray | memoryview,
    start: int,
    unpack: Callable[[bytes | bytearray | memoryview, int], tuple[int, ...]],
    hlen: int,
    frac_limit: int,
    last_sec: int,
) -> int:
    """Offset of the first plausible pcap record header at or after ``start`` (-1: none).

    Plausible: fraction below one second, 0 < captured <= original length, captured <= MAX_RECORD,
    a timestamp within MAX_TS_JUMP of the last good record, and the record after it plausible too
    (or beyond the buffer).
    """

    def plausible(q: int) -> int:
        sec, frac, caplen, origlen = unpack(buf, q)[:4]
        if frac >= frac_limit or caplen == 0 or caplen > MAX_RECORD or caplen > origlen or origlen > 0x0FFFFFFF:
            return -1
        if last_sec >= 0 and abs(sec - last_sec) > MAX_TS_JUMP:
            return -1
        return q + hlen + caplen

    limit = min(len(buf) - hlen, start + RESYNC_WINDOW)
    for q in range(start, limit + 1):
        nxt = plausible(q)
        if nxt < 0:
            continue
        if nxt == len(buf) or nxt + hlen > len(buf) or plausible(nxt) >= 0:
            return q
    return -1


# ---------------------------------------------------------------------------------------------
# pcap files in batches (the bulk path of ``camsweep analyze``)
# ---------------------------------------------------------------------------------------------

BATCH_SIZE = 16 << 20  # bytes per buffer fill of the batch reader
BATCH_RECORDS = 1 << 16  # records per batch at most (a fill of tiny records is cut into several batches)
BATCH_SLACK = 256  # bytes after the data, so fixed-size header windows never run off the buffer


class PcapBatch:
    """The records of one buffer fill of a pcap file, or a run of pcapng EPBs (``iter_pcap_batches``).

    ``buf`` is the reader's own buffer, overwritten when the iterator advances: read it, then let it
    go. ``positions`` are the offsets in ``buf`` of the record headers (``hlen`` bytes: seconds,
    fraction, captured length, original length, in ``byte_order``); each frame follows its header.
    Every record's frame lies inside ``buf``, and ``buf`` has ``BATCH_SLACK`` more bytes after the
    last one.
    """

    __slots__ = ("buf", "positions", "hlen", "byte_order", "ts_scale", "linktype", "ts_div", "ts_offset", "columns")

    def __init__(self, buf: bytes | bytearray | memoryview, positions: Sequence[int], hlen: int, byte_order: str,
                 ts_scale: float, linktype: int, *, ts_div: float = 0.0, ts_offset: float = 0.0) -> None:
        self.buf = buf
        self.positions = positions
        self.hlen = hlen
        self.byte_order = byte_order  # "<" or ">"
        self.ts_scale = ts_scale  # pcap: 1e-6 (microseconds) or 1e-9 (nanoseconds)
        self.linktype = linktype
        # pcapng EPBs (ts_div set): the first two fields are the timestamp's upper and lower 32 bits, in
        # units of 1/ts_div seconds (if_tsresol), plus ts_offset seconds (if_tsoffset)
        self.ts_div = ts_div
        self.ts_offset = ts_offset
        self.columns: object = None  # fastpath.Columns, when the reading process computed them (readahead)

    def timestamp(self, first: int, second: int) -> float:
        """Seconds from a record header's first two fields (the reader's own arithmetic)."""
        if self.ts_div:
            return ((first << 32) | second) / self.ts_div + self.ts_offset
        return first + second * self.ts_scale

    def frames(self) -> Iterator[Frame]:
        """The records as ``iter_frames`` yields them (copies of the frames)."""
        unpack = struct.Struct(self.byte_order + "III").unpack_from
        buf, hlen, linktype, timestamp = self.buf, self.hlen, self.linktype, self.timestamp
        for pos in self.positions:
            first, second, caplen = unpack(buf, pos)
            yield timestamp(first, second), linktype, bytes(buf[pos + hlen : pos + hlen + caplen])


def iter_pcap_batches(path: Path, stats: ReadStats, *, batch_size: int = BATCH_SIZE,
                      max_records: int = BATCH_RECORDS, ring: BufferRing | None = None
                      ) -> Iterator[PcapBatch | Frame] | None:
    """The records of the pcap or pcapng file at ``path`` in batches, or ``None`` when batches do not apply.

    ``None`` (nothing read into ``stats``) for anything but a regular file, plain or gzip: pipes, paths
    that cannot be read or are not captures. Use ``iter_frames`` then, which also raises the
    ``UsageError``. Reading is the same as ``iter_frames``: the same records, timestamps and
    ``ReadStats`` (hostile records counted, resynchronised or cut short the same way); only the buffer
    is larger, and filled in place (``ring`` says where: by default one buffer per file). pcapng packets
    that are not in a run of Enhanced Packet Blocks of one interface (simple and obsolete packet
    blocks, damaged blocks) come as single frames between the batches.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        fh = open(path, "rb", buffering=0)  # owned by the generator below
    except OSError:
        return None
    stream: io.FileIO | gzip.GzipFile = fh
    try:
        head = fh.read(4) or b""
        if head[:2] == _GZIP_MAGIC:
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh, mode="rb")
            head = stream.read(4)
        if len(head) < 4:
            raise ValueError("not a capture")
        _check_magic(head, str(path))
        stream.seek(0)
    except (OSError, EOFError, ValueError, zlib.error, UsageError):
        _close(stream, fh)
        return None
    suffix = "+gzip" if stream is not fh else ""
    batches: Iterator[PcapBatch | Frame]
    if head == b"\x0a\x0d\x0d\x0a":
        batches = _pcapng_batches_owned(stream, fh, stats, batch_size, max(1, max_records), suffix, ring)
    else:
        batches = _pcap_batches_owned(stream, fh, stats, batch_size, max(1, max_records), suffix, ring)
    weakref.finalize(batches, _close, stream, fh)  # closed even if iteration never starts
    return batches


def _pcap_batches_owned(
    stream: io.FileIO | gzip.GzipFile, fh: io.FileIO, stats: ReadStats, batch_size: int, max_records: int, suffix: str,
    ring: BufferRing | None,
) -> Iterator[PcapBatch]:
    try:
        yield from _pcap_batches(stream.readinto, stats, batch_size, max_records, suffix, ring)
    finally:
        _close(stream, fh)


def _pcapng_batches_owned(
    stream: io.FileIO | gzip.GzipFile, fh: io.FileIO, stats: ReadStats, batch_size: int, max_records: int, suffix: str,
    ring: BufferRing | None,
) -> Iterator[PcapBatch | Frame]:
    try:
        stats.format = "pcapng" + suffix
        head = _read_exact(_safe_reader(stream.read, stats), 4)
        yield from _pcapng_items(stream.readinto, head, stats, batch_size, max_records, ring)
    finally:
        _close(stream, fh)


def _fill_into(
    readinto: Callable[[memoryview], int | None], mv: memoryview, end: int, size: int, stats: ReadStats,
    at_least: int | None = None,
) -> tuple[int, bool]:
    """Read into ``mv[end:size]`` until it is full (or holds ``at_least`` bytes); (new end, end of stream
    reached)."""
    enough = size if at_least is None else at_least
    while end < enough:
        try:
            got = readinto(mv[end:size])
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            stats.note("read-error", f"reading stopped: {exc}")
            return end, True
        if not got:
            return end, True
        end += got
    return end, False


class BufferRing:
    """Where ``_pcap_batches`` reads: by default one buffer, whose unread tail is moved to its front before
    each fill. ``readahead`` hands out buffers in shared memory instead, a new one for each fill."""

    def first(self, size: int) -> memoryview:
        """A buffer of ``size`` bytes and ``BATCH_SLACK`` more."""
        return memoryview(bytearray(size + BATCH_SLACK))

    def carry(self, mv: memoryview, pos: int, end: int) -> tuple[memoryview, int]:
        """The buffer to fill next, holding ``mv[pos:end]`` at its front; and the end of that."""
        return mv, _shift(mv, pos, end)


def buffer_size(batch_size: int) -> int:
    """Bytes of a ``_pcap_batches`` buffer for ``batch_size``: room for a resync window and any record."""
    return max(batch_size, RESYNC_WINDOW + 64, MAX_RECORD + 64)


def _fill_buffer(readinto: Callable[[memoryview], int | None], ring: BufferRing, buf: memoryview, pos: int, end: int,
                 want: int, capacity: int, stats: ReadStats) -> tuple[memoryview, int, bool]:
    """``buf[pos:end]`` moved to the front of the buffer to fill next (``ring``), then reads until it holds
    ``want`` bytes; (buffer, end, end of stream reached). Past ``capacity`` (a block larger than a
    buffer), a larger buffer of this reader's own. Every buffer has BATCH_SLACK bytes after its capacity."""
    tail = end - pos
    if max(want, tail) <= capacity:
        buf, end = ring.carry(buf, pos, end)
    else:
        larger = memoryview(bytearray(max(want, tail) + BATCH_SLACK))
        larger[:tail] = buf[pos:end]
        buf, end = larger, tail
    end, eof = _fill_into(readinto, buf, end, max(want, len(buf) - BATCH_SLACK), stats, at_least=want)
    return buf, end, eof


def _readinto_from(read: Reader) -> Callable[[memoryview], int]:
    """``readinto`` over ``read`` (streams and pipes: what has arrived is copied in)."""

    def readinto(mv: memoryview) -> int:
        data = read(len(mv))
        mv[: len(data)] = data
        return len(data)

    return readinto


def _pcap_batches(
    readinto: Callable[[memoryview], int | None], stats: ReadStats, batch_size: int, max_records: int, suffix: str,
    ring: BufferRing | None = None,
) -> Iterator[PcapBatch]:
    """``_iter_pcap`` over a buffer filled in place, yielding the records of each fill at once."""
    size = buffer_size(batch_size)
    ring = ring or BufferRing()
    buf = ring.first(size)  # a memoryview: struct reads one faster than a bytearray
    end, eof = _fill_into(readinto, buf, 0, size, stats)
    if end < 24:
        stats.format = "pcap" + suffix
        stats.truncated += 1
        stats.note("truncated", f"file header cut short at {end} of 24 bytes")
        return
    endian, magic, linktype, scale, hlen, unpack, known, frac_limit = _pcap_header(buf, stats, suffix)
    caplen_at = struct.Struct(endian + "8xI").unpack_from  # a record header's captured length
    max_record = MAX_RECORD
    max_step = hlen + MAX_RECORD  # from one record header to the next

    pos = 24
    offset = 0  # file offset of buf[0], for messages
    last_sec = -1
    while True:
        positions: list[int] = []
        append = positions.append
        first = pos
        caplen = 0
        bad = False
        # The hot loop only steps from header to header; lengths are checked afterwards, and the walk is
        # cut back to the first impossible record, if any (the bytes after it were never records).
        last = end - hlen
        for _ in repeat(None, max_records):  # at most max_records per batch (memory, with tiny records)
            if pos > last:
                break
            append(pos)
            pos += hlen + caplen_at(buf, pos)[0]
        more = pos <= last  # the batch is full and the buffer holds more
        if pos > end:
            pos = positions.pop()  # the last record does not fit in the buffer (yet)
        if positions and max(pos - positions[-1], max(map(sub, positions[1:], positions), default=0)) > max_step:
            for index, at in enumerate(positions):
                if caplen_at(buf, at)[0] > max_record:
                    pos = at
                    more = False
                    del positions[index:]
                    break
        if not more and pos + hlen <= end:
            caplen = caplen_at(buf, pos)[0]
            bad = caplen > max_record
        if positions:
            count = len(positions)
            stats.packets += count
            stats.bytes += pos - first - hlen * count  # the records are back to back
            last_sec = unpack(buf, positions[-1])[0]
            if known:
                yield PcapBatch(buf, positions, hlen, endian, scale, linktype)
            else:
                stats.unknown_linktype += count
        if more:
            continue
        if bad:
            # A record with an impossible length: look for the next plausible record header.
            offset += pos
            buf, end = ring.carry(buf, pos, end)
            if not eof:
                end, eof = _fill_into(readinto, buf, end, size, stats)
            pos = _resync_after_bad_record(buf[:end], RESYNC_WINDOW + 2 * hlen, unpack, hlen, frac_limit, last_sec,
                                           offset, caplen, stats)
            if pos < 0:
                return
            continue
        if eof:
            if pos < end:
                stats.truncated += 1
                stats.note("truncated", f"last record at offset {offset + pos} cut short by the end of the file")
            return
        offset += pos
        buf, end = ring.carry(buf, pos, end)
        pos = 0
        end, eof = _fill_into(readinto, buf, end, size, stats)


def _shift(mv: memoryview, pos: int, end: int) -> int:
    """Move ``mv[pos:end]`` to the front; the new end."""
    if pos:
        mv[: end - pos] = mv[pos:end]
    return end - pos


# ---------------------------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------------------------

# per interface: link type, known to decode, timestamp divisor, timestamp offset (seconds)
_Iface = tuple[int, bool, float, int]


def _iter_pcapng(read: Reader, head: bytes, stats: ReadStats, chunk_size: int) -> Iterator[Frame]:
    for item in _pcapng_items(_readinto_from(read), head, stats, chunk_size, BATCH_RECORDS):
        if isinstance(item, PcapBatch):
            yield from item.frames()
        else:
            yield item


def _pcapng_items(readinto: Callable[[memoryview], int | None], head: bytes, stats: ReadStats, chunk_size: int,
                  max_records: int, ring: BufferRing | None = None) -> Iterator[PcapBatch | Frame]:
    """The packets of a pcapng stream in order: runs of Enhanced Packet Blocks of one interface as
    batches (the common case), every other packet as a frame. The buffer is filled in place (``ring``)
    and grows only for a block larger than ``chunk_size``."""
    ring = ring or BufferRing()
    capacity = max(64, chunk_size)
    buf = ring.first(capacity)
    buf[: len(head)] = head
    buf, end, eof = _fill_buffer(readinto, ring, buf, 0, len(head), 12, capacity, stats)
    pos = 0
    offset = 0
    ifaces: list[_Iface] = []
    endian = "<"  # set by each section header
    run: list[int] = []  # positions of EPBs (+12: their timestamp) on one interface, in this buffer
    run_iface: _Iface = (-1, False, 1e6, 0)
    run_index = -1
    # Generic block: type (4), total length (4), body, total length again (4) -- pcapng §3.1
    block = struct.Struct("<II").unpack_from
    u32 = struct.Struct("<I").unpack_from
    # EPB body: interface id (4), timestamp upper (4), lower (4), captured length (4), original length (4)
    epb = struct.Struct("<IIIII").unpack_from
    epb_head = struct.Struct("<III8xI").unpack_from  # type, total length, interface id, captured length
    last_ts = 0.0
    packets = nbytes = unknown = 0
    max_block, max_record = MAX_BLOCK, MAX_RECORD
    append = run.append
    try:
        while True:
            want = 12
            bad = ""
            while pos + 12 <= end:
                if pos + 24 <= end:
                    # the common case first: an Enhanced Packet Block of a known link type, added to the
                    # run of its interface (the same checks as the general path below)
                    btype, blen, iface, caplen = epb_head(buf, pos)
                    # (caplen + 32 <= blen: a captured length that fits, and at least an EPB's 32 bytes)
                    if btype == 6 and caplen <= max_record and caplen + 32 <= blen <= max_block and not blen & 3:
                        nxt = pos + blen
                        if nxt <= end and u32(buf, nxt - 4)[0] == blen:
                            if iface == run_index and len(run) < max_records:
                                append(pos + 12)
                                packets += 1
                                nbytes += caplen
                                pos = nxt
                                continue
                            if iface < len(ifaces) and ifaces[iface][1]:
                                if run:
                                    last_ts = _epb_time(buf, run[-1], endian, run_iface)
                                    yield from _epb_run(buf, run, endian, run_iface)
                                run, run_index, run_iface = [pos + 12], iface, ifaces[iface]
                                append = run.append
                                packets += 1
                                nbytes += caplen
                                pos = nxt
                                continue
                btype, blen = block(buf, pos)
                if run:  # any other block: the run ends here, and its packets come first
                    last_ts = _epb_time(buf, run[-1], endian, run_iface)
                    yield from _epb_run(buf, run, endian, run_iface)
                    run, run_index = [], -1
                    append = run.append
                if btype == PCAPNG_SHB:
                    # SHB: type, length, byte-order magic (4), major (2), minor (2), section length (8), options
                    bom = bytes(buf[pos + 8 : pos + 12])
                    if bom == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        bad = f"section header at offset {offset + pos} has no byte-order magic"
                        break
                    block = struct.Struct(endian + "II").unpack_from
                    u32 = struct.Struct(endian + "I").unpack_from
                    epb = struct.Struct(endian + "IIIII").unpack_from
                    epb_head = struct.Struct(endian + "III8xI").unpack_from
                    btype, blen = block(buf, pos)
                if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                    bad = f"block at offset {offset + pos} (type 0x{btype:x}) has impossible length {blen}"
                    break
                nxt = pos + blen
                if nxt > end:
                    want = blen
                    break
                if u32(buf, nxt - 4)[0] != blen:
                    bad = f"block at offset {offset + pos} (type 0x{btype:x}): trailing length differs from {blen}"
                    break
                if btype == PCAPNG_EPB:
                    if blen < 32:
                        bad = f"enhanced packet block at offset {offset + pos} too short ({blen})"
                        break
                    iface, hi, lo, caplen, _origlen = epb(buf, pos + 8)
                    if caplen > blen - 32 or caplen > MAX_RECORD or iface >= len(ifaces):
                        stats.bad_records += 1
                        stats.note("bad-record", _epb_problem(offset + pos, caplen, blen, iface, len(ifaces)))
                    else:
                        linktype, known, div, tsoff = ifaces[iface]
                        packets += 1
                        nbytes += caplen
                        last_ts = ((hi << 32) | lo) / div + tsoff
                        if known:
                            yield last_ts, linktype, bytes(buf[pos + 28 : pos + 28 + caplen])
                        else:
                            unknown += 1
                elif btype == PCAPNG_SPB:
                    # SPB: original length (4), packet data; interface 0, no timestamp
                    origlen = u32(buf, pos + 8)[0]
                    caplen = min(origlen, blen - 16)
                    if not ifaces or caplen > MAX_RECORD or blen < 16:
                        stats.bad_records += 1
                        stats.note("bad-record", f"simple packet block at offset {offset + pos} is unusable")
                    else:
                        linktype, known, _div, _tsoff = ifaces[0]
                        packets += 1
                        nbytes += caplen
                        if known:
                            yield last_ts, linktype, bytes(buf[pos + 12 : pos + 12 + caplen])
                        else:
                            unknown += 1
                elif btype == PCAPNG_IDB:
                    ifaces.append(_parse_idb(buf, pos, blen, endian, stats))
                elif btype == PCAPNG_SHB:
                    ifaces = []
                    stats.sections += 1
                elif btype == PCAPNG_OPB:
                    # obsolete PB: interface id (2), drops count (2), timestamp upper, lower, captured, original
                    if blen < 32:
                        bad = f"packet block at offset {offset + pos} too short ({blen})"
                        break
                    iface, hi, lo, caplen = struct.unpack_from(endian + "H2xIII", buf, pos + 8)
                    if caplen > blen - 32 or caplen > MAX_RECORD or iface >= len(ifaces):
                        stats.bad_records += 1
                        stats.note("bad-record", _epb_problem(offset + pos, caplen, blen, iface, len(ifaces)))
                    else:
                        linktype, known, div, tsoff = ifaces[iface]
                        packets += 1
                        nbytes += caplen
                        last_ts = ((hi << 32) | lo) / div + tsoff
                        if known:
                            yield last_ts, linktype, bytes(buf[pos + 28 : pos + 28 + caplen])
                        else:
                            unknown += 1
                else:
                    stats.skipped_blocks += 1
                pos = nxt
            if run:  # the buffer is refilled or the stream ends: the run's packets first
                last_ts = _epb_time(buf, run[-1], endian, run_iface)
                yield from _epb_run(buf, run, endian, run_iface)
                run, run_index = [], -1
                append = run.append
            stats.packets += packets
            stats.bytes += nbytes
            stats.unknown_linktype += unknown
            packets = nbytes = unknown = 0
            if bad:
                stats.bad_records += 1
                stats.note("bad-block", bad)
                offset += pos
                buf, end, eof = _fill_buffer(readinto, ring, buf, pos, end, RESYNC_WINDOW + 64, capacity, stats)
                pos = 0
                found = _pcapng_resync(buf[:end], 1, block, u32)
                if found < 0:
                    stats.skipped_bytes += end
                    if not eof:
                        stats.note("gave-up", f"no plausible block in {RESYNC_WINDOW} bytes after offset {offset}")
                    return
                stats.resyncs += 1
                stats.skipped_bytes += found
                pos = found
                continue
            if eof:
                if pos < end:
                    stats.truncated += 1
                    stats.note("truncated", f"last block at offset {offset + pos} cut short by the end of the file")
                return
            offset += pos
            buf, end, eof = _fill_buffer(readinto, ring, buf, pos, end, want, capacity, stats)
            pos = 0
    finally:
        stats.packets += packets
        stats.bytes += nbytes
        stats.unknown_linktype += unknown


def _epb_time(buf: memoryview, at: int, endian: str, iface: _Iface) -> float:
    """The timestamp of the EPB whose timestamp fields are at ``at``."""
    hi, lo = struct.unpack_from(endian + "II", buf, at)
    _linktype, _known, div, tsoff = iface
    seconds: float = ((hi << 32) | lo) / div + tsoff
    return seconds


def _epb_run(buf: memoryview, run: list[int], endian: str, iface: _Iface) -> Iterator[PcapBatch]:
    """EPBs of one interface (``run``: offsets of their timestamp fields) as a batch: each record is
    read as timestamp upper (4), lower (4), captured length (4), original length (4), then the frame.
    (Every pcapng buffer has BATCH_SLACK bytes after its capacity: ``_fill_buffer``.)"""
    linktype, _known, div, tsoff = iface
    yield PcapBatch(buf, run, 16, endian, 0.0, linktype, ts_div=div, ts_offset=tsoff)


def _epb_problem(at: int, caplen: int, blen: int, iface: int, nifaces: int) -> str:
    if iface >= nifaces:
        return f"packet block at offset {at} names interface {iface}, but {nifaces} are defined"
    return f"packet block at offset {at} claims {caplen} captured bytes in a {blen}-byte block"


def _parse_idb(buf: bytes | memoryview, pos: int, blen: int, endian: str, stats: ReadStats) -> _Iface:
    """IDB (pcapng §4.2): link type (2), reserved (2), snaplen (4), options (code 2, length 2, value, padding)."""
    stats.interfaces += 1
    if blen < 20:
        stats.bad_records += 1
        stats.note("bad-block", f"interface description block of {blen} bytes")
        return (-1, False, 1e6, 0)
    linktype = struct.unpack_from(endian + "H", buf, pos + 8)[0]
    div = 1e6  # default if_tsresol: microseconds
    tsoff = 0
    opt = pos + 16
    end = pos + blen - 4
    code_len = struct.Struct(endian + "HH").unpack_from
    while opt + 4 <= end:
        code, olen = code_len(buf, opt)
        value = opt + 4
        if code == 0 or value + olen > end:  # opt_endofopt, or an option running past the block
            break
        if code == 9 and olen >= 1:  # if_tsresol: 10^-n, or 2^-n when the top bit is set
            res = buf[value]
            div = float(2 ** (res & 0x7F)) if res & 0x80 else float(10**res)
        elif code == 14 and olen >= 8:  # if_tsoffset: seconds added to every timestamp
            tsoff = struct.unpack_from(endian + "q", buf, value)[0]
        opt = value + ((olen + 3) & ~3)
    known = linktype in SUPPORTED_LINKTYPES
    if not known:
        stats._unknown(linktype)
    return (linktype, known, div, tsoff)


def _pcapng_resync(
    buf: bytes | memoryview,
    start: int,
    block: Callable[[bytes | memoryview, int], tuple[int, ...]],
    u32: Callable[[bytes | memoryview, int], tuple[int, ...]],
) -> int:
    """Offset of the first plausible pcapng block at or after ``start`` (-1: none).

    Plausible: a known block type, a length that is a multiple of 4 within bounds, and the same
    length repeated at the end of the block (when the block ends inside the buffer).
    """
    size = len(buf)
    limit = min(size - 12, start + RESYNC_WINDOW)
    for q in range(start, limit + 1):
        btype, blen = block(buf, q)
        if btype not in _PCAPNG_KNOWN_BLOCKS:
            continue
        if btype == PCAPNG_SHB:
            return q  # a new section: its own byte order is checked by the main loop
        if blen < 12 or blen & 3 or blen > MAX_BLOCK:
            continue
        if q + blen > size or u32(buf, q + blen - 4)[0] == blen:
            return q
    return -1
