"""Read a large capture in a second process while this one analyses it (``camsweep analyze`` on 2+ cores).

Reading (``reader.iter_pcap_batches``: file reads, gzip, the walk from record header to record header,
pcapng blocks) and what each batch's records say by themselves (``fastpath.columns``: header fields,
which records go one by one) are about half of a pass over a large capture, and none of it depends
on what the analysis finds. So for a large file a forked child does that and this process analyses:

- The child reads records straight into buffers in shared memory (the reader fills through a
  ``BufferRing``; a batch on a larger buffer of the reader's own, after a huge pcapng block, is
  copied there) and sends, for each batch, which buffer, the record positions, its ``ReadStats`` so
  far and the batch's columns over a pipe; single frames go over the pipe as they are.
- This process rebuilds each ``PcapBatch`` on the shared buffer and sends the buffer's number back
  once it has finished with the batch; the child reuses a buffer only when every batch on it is back.

So the batches, frames, columns and counters are those of the reader run here, in the same order
(tested). The child ignores SIGINT (this process stops it), dies with this process
(PR_SET_PDEATHSIG), and runs nothing of this process's after the fork but the reader and
``columns``: it leaves with ``os._exit``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import mmap
import os
import pickle
import signal
import struct
import threading
import traceback
import weakref
from array import array
from collections.abc import Iterator
from multiprocessing.connection import Connection, Pipe
from pathlib import Path

from scanner.errors import CamsweepError
from scanner.passive.decode import LINKTYPE_ETHERNET
from scanner.passive.reader import (
    BATCH_RECORDS,
    BATCH_SIZE,
    BATCH_SLACK,
    BufferRing,
    Frame,
    PcapBatch,
    ReadStats,
    buffer_size,
    iter_pcap_batches,
)

log = logging.getLogger(__name__)

SLOTS = 2  # shared buffers: one being analysed, one being read (a third measured no faster)
READ_AHEAD_MIN_BYTES = 64 << 20  # smaller files: a second process saves less than it costs
FRAMES_PER_MESSAGE = 256  # single frames (pcapng) sent together
PR_SET_PDEATHSIG = 1  # prctl(2)
F_SETPIPE_SZ = 1031  # fcntl(2), Linux
PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size by default


class ReadAheadError(CamsweepError):
    """The reading process died or failed (the reader counts hostile input; it does not raise)."""


def iter_batches(path: Path, stats: ReadStats, *, read_ahead: bool | None = None, batch_size: int = BATCH_SIZE,
                 max_records: int = BATCH_RECORDS) -> Iterator[PcapBatch | Frame] | None:
    """``reader.iter_pcap_batches(path, stats)``, read by a second process when ``read_ahead`` is True, or
    when it is None and the file is large and this process may fork (two CPUs, no other thread)."""
    if read_ahead is None:
        read_ahead = _worth_it(path)
    if not read_ahead or not hasattr(os, "fork"):
        return iter_pcap_batches(path, stats, batch_size=batch_size, max_records=max_records)
    slot_size = buffer_size(batch_size) + BATCH_SLACK
    try:
        shared = mmap.mmap(-1, SLOTS * slot_size)  # anonymous, MAP_SHARED: the child writes, this process reads
    except OSError as exc:
        log.debug("reading in this process: no shared memory (%s)", exc)
        return iter_pcap_batches(path, stats, batch_size=batch_size, max_records=max_records)
    ring = _SlotRing(shared, slot_size)
    batches = iter_pcap_batches(path, stats, batch_size=batch_size, max_records=max_records, ring=ring)
    if batches is None:
        ring.release()
        return None
    ends: list[Connection] = []
    try:
        data_in, data_out = Pipe(duplex=False)
        ends += (data_in, data_out)
        _widen(data_out)
        free_in, free_out = Pipe(duplex=False)
        ends += (free_in, free_out)
        pid = os.fork()
    except OSError as exc:  # out of processes or descriptors: read here after all
        log.debug("reading in this process: cannot fork a reader (%s)", exc)
        for end in ends:
            end.close()
        del batches
        ring.release()
        return iter_pcap_batches(path, stats, batch_size=batch_size, max_records=max_records)
    if pid == 0:  # pragma: no cover - the child (its work is checked through what this process receives)
        _child(batches, ring, stats, data_out, free_in, (data_in, free_out))
    data_out.close()
    free_in.close()
    del batches  # this process's copy of the open file is closed (reader's finalizer); the child reads its own
    child = _Child(pid, data_in, free_out, ring)
    received = _receive(child, stats)
    weakref.finalize(received, child.stop)  # also when iteration never starts
    return received


def _widen(conn: Connection) -> None:
    """A pipe of PIPE_BYTES (Linux; else as it is): a batch's columns then cross it in one write."""
    try:
        fcntl.fcntl(conn.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass


def _worth_it(path: Path) -> bool:
    """A large capture file, two CPUs or more, and no thread that a fork would leave behind."""
    try:
        size = Path(path).stat().st_size
        cpus = len(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return False
    return size >= READ_AHEAD_MIN_BYTES and cpus >= 2 and threading.active_count() == 1


class _SlotRing(BufferRing):
    """The child's shared buffers: which one the reader fills, and how many batches of each are still
    being analysed by the parent."""

    def __init__(self, shared: mmap.mmap, slot_size: int) -> None:
        self.shared = shared
        whole = memoryview(shared)
        self.views = [whole[i * slot_size : (i + 1) * slot_size] for i in range(SLOTS)]
        whole.release()
        self.slot_size = slot_size
        self.out = [0] * SLOTS  # batches on each buffer not yet given back
        self.current = -1  # the buffer the reader fills (pcap and pcapng alike)
        self.free: Connection | None = None  # buffer numbers given back by the parent

    def first(self, size: int) -> memoryview:
        self.current = self.acquire()
        return self.views[self.current]

    def carry(self, mv: memoryview, pos: int, end: int) -> tuple[memoryview, int]:
        if self.current < 0 or not self.out[self.current]:
            return super().carry(mv, pos, end)  # nothing of it is with the parent: refill in place
        slot = self.acquire()
        new = self.views[slot]
        new[: end - pos] = mv[pos:end]
        self.current = slot
        return new, end - pos

    def acquire(self) -> int:
        """A buffer with no batch out, other than the one being filled (waits for the parent if need be)."""
        assert self.free is not None
        while self.free.poll():
            self.out[self.free.recv()] -= 1
        while True:
            for slot in range(SLOTS):
                if slot != self.current and not self.out[slot]:
                    return slot
            self.out[self.free.recv()] -= 1

    def slot_of(self, buf: object) -> int:
        """The buffer ``buf`` is (-1: not one of them)."""
        for slot, view in enumerate(self.views):
            if buf is view:
                return slot
        return -1

    def release(self) -> None:
        for view in self.views:
            try:
                view.release()
            except BufferError:  # still exported (an exception's frames hold arrays on it): unmapped when freed
                return
        self.shared.close()


def _child(batches: Iterator[PcapBatch | Frame], ring: _SlotRing, stats: ReadStats, data: Connection,
           free: Connection, parent_ends: tuple[Connection, Connection]) -> None:  # pragma: no cover - child
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
        for end in parent_ends:
            end.close()
        ring.free = free
        from scanner.passive import fastpath  # (numpy: already imported by the parent before the fork)

        frames: list[Frame] = []
        for item in batches:
            if isinstance(item, tuple):
                frames.append(item)
                if len(frames) >= FRAMES_PER_MESSAGE:
                    data.send(("frames", frames, stats))
                    frames = []
                continue
            if frames:
                data.send(("frames", frames, stats))
                frames = []
            slot = ring.slot_of(item.buf)
            inline = None
            positions = item.positions
            if slot < 0:  # a larger buffer of the reader's own: its records (and slack) copied to a shared one
                base = positions[0]
                caplen = struct.unpack_from(item.byte_order + "8xI", item.buf, positions[-1])[0]
                stop = min(len(item.buf), positions[-1] + item.hlen + caplen + BATCH_SLACK)
                positions = [at - base for at in positions]
                records = memoryview(item.buf)[base:stop]
                if len(records) <= ring.slot_size:
                    slot = ring.acquire()
                    ring.views[slot][: len(records)] = records
                else:  # pragma: no cover - only a run of records larger than a buffer
                    inline = bytes(records)
                records.release()
            if slot >= 0:
                ring.out[slot] += 1
            # the batch as the parent will see it, and what its records say by themselves (fastpath.Columns)
            seen = PcapBatch(ring.views[slot] if slot >= 0 else inline or b"", positions, item.hlen, item.byte_order,
                             item.ts_scale, item.linktype, ts_div=item.ts_div, ts_offset=item.ts_offset)
            packed = fastpath.columns(seen).pack() if item.linktype == LINKTYPE_ETHERNET and positions else b""
            data.send(("batch", slot, inline, array("q", positions).tobytes(), item.hlen, item.byte_order,
                       item.ts_scale, item.linktype, item.ts_div, item.ts_offset, bool(packed), stats))
            if packed:
                data.send_bytes(packed)
        if frames:
            data.send(("frames", frames, stats))
        data.send(("end", stats))
    except (BrokenPipeError, EOFError):
        code = 1  # the parent stopped reading
    except BaseException:
        code = 1
        try:
            data.send(("error", traceback.format_exc(), stats))
        except Exception:  # noqa: S110 - the parent is gone; nothing left to tell
            pass
    finally:
        os._exit(code)


def _die_with_parent() -> None:  # pragma: no cover - child
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(1)


@dataclasses.dataclass
class _Child:
    pid: int
    data: Connection
    free: Connection
    ring: _SlotRing
    done: bool = False

    def stop(self) -> None:
        """Close the pipes and reap the child (killed if it is still reading)."""
        if self.done:
            return
        self.done = True
        self.data.close()
        self.free.close()
        try:
            os.kill(self.pid, signal.SIGKILL)  # (after "end" it has nothing left to do but exit)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.ring.release()


def _receive(child: _Child, stats: ReadStats) -> Iterator[PcapBatch | Frame]:
    """What the child reads, as ``iter_pcap_batches`` yields it; the counters copied into ``stats``."""
    views = child.ring.views
    try:
        while True:
            message = pickle.loads(_recv_bytes(child.data))
            _copy_stats(message[-1], stats)
            kind = message[0]
            if kind == "frames":
                yield from message[1]
            elif kind == "batch":
                _, slot, inline, packed, hlen, byte_order, ts_scale, linktype, ts_div, ts_offset, columns, _ = message
                positions = array("q")  # (numpy takes it as a buffer; a list of ints costs a conversion)
                positions.frombytes(packed)
                batch = PcapBatch(views[slot] if slot >= 0 else inline, positions, hlen, byte_order, ts_scale,
                                  linktype, ts_div=ts_div, ts_offset=ts_offset)
                if columns:
                    from scanner.passive.fastpath import Columns

                    batch.columns = Columns.unpack(_recv_bytes(child.data), len(positions))
                yield batch
                if slot >= 0:
                    try:
                        child.free.send(slot)
                    except OSError:  # the child has read everything and left (or died: the next recv says so)
                        pass
            elif kind == "end":
                return
            else:
                log.debug("the process reading the capture failed:\n%s", message[1])
                last = message[1].strip().splitlines()[-1] if message[1].strip() else "unknown error"
                raise ReadAheadError(f"the process reading the capture failed: {last}")
    finally:
        child.stop()


def _recv_bytes(conn: Connection) -> bytes:
    try:
        return conn.recv_bytes()
    except EOFError:
        raise ReadAheadError("the process reading the capture ended without a word") from None


def _copy_stats(source: ReadStats, target: ReadStats) -> None:
    for f in dataclasses.fields(ReadStats):
        setattr(target, f.name, getattr(source, f.name))
