"""Reading a capture in a second process (``scanner.passive.readahead``) hands the analysis exactly what the
reader hands it in one process: the same batches' records, frames and counters, in order, on pcap (in
place, with buffers carried across fills and batches cut small), gzip, damaged and pcapng files; the
child is reaped however the reading ends (Ctrl-C included: the analysis so far is kept), and a dead
child is an error, never a hang."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from scanner.errors import CamsweepError
from scanner.passive import analyze as analyze_module
from scanner.passive import readahead
from scanner.passive.analyze import analyze_captures
from scanner.passive.fastpath import Columns, columns
from scanner.passive.readahead import ReadAheadError, iter_batches
from scanner.passive.reader import Frame, PcapBatch, ReadStats, iter_frames, iter_pcap_batches
from tests.bench.make_capture import make
from tests.discovery.helpers import mutations
from tests.passive.test_fastpath import _SAMPLE, FIXTURES, table_state

BATCH = 4096  # small: pcap buffers are then their minimum (a resync window, 1 MiB), pcapng buffers tiny


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 5 MB pcap (five buffer fills) built from a lab capture, and variants of it."""
    work = tmp_path_factory.mktemp("readahead")
    out = {"pcap": work / "lab.pcap", "pcapng": work / "lab.pcapng"}
    make(FIXTURES[-1], out["pcap"], 5_000_000)
    make(FIXTURES[-1], out["pcapng"], 2_000_000, pcapng=True)
    data = out["pcap"].read_bytes()
    out["gzip"] = work / "lab.pcap.gz"
    out["gzip"].write_bytes(gzip.compress(data, compresslevel=1))
    # an impossible record length after 1.5 MB (the reader resynchronises), and the last record cut short
    out["damaged"] = work / "damaged.pcap"
    cut = _record_boundary(data, 1_500_000)
    out["damaged"].write_bytes(data[:cut] + struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 0x7FFFFFFF) + data[cut:-9])
    return out


def _record_boundary(data: bytes, at_least: int) -> int:
    pos = 24
    while pos < at_least:
        pos += 16 + struct.unpack_from("<8xI", data, pos)[0]
    return pos


def _children() -> set[int]:
    path = Path(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/children")
    return {int(pid) for pid in path.read_text().split()}


def _records(items: Iterator[PcapBatch | Frame]) -> list[Frame]:
    return [frame for item in items for frame in ([item] if isinstance(item, tuple) else item.frames())]


def _read(path: Path, *, read_ahead: bool, **kw: Any) -> tuple[list[Frame], ReadStats]:
    stats = ReadStats()
    items = iter_batches(path, stats, read_ahead=read_ahead, **kw)
    assert items is not None
    return _records(items), stats


@pytest.mark.parametrize("name", ["pcap", "gzip", "damaged", "pcapng"])
@pytest.mark.parametrize("max_records", [40, 1 << 16])
def test_read_ahead_hands_over_what_the_reader_reads(captures: dict[str, Path], name: str, max_records: int) -> None:
    before = _children()
    reference_stats = ReadStats()
    reference = list(iter_frames(captures[name], reference_stats))
    assert len(reference) > 5000
    got = _read(captures[name], read_ahead=True, batch_size=BATCH, max_records=max_records)
    assert got == (reference, reference_stats)
    assert _read(captures[name], read_ahead=False, batch_size=BATCH, max_records=max_records) == got
    if name == "damaged":
        assert reference_stats.bad_records and reference_stats.resyncs and reference_stats.truncated
    assert _children() == before  # reaped


@pytest.mark.parametrize(("name", "batch_size"), [("pcap", BATCH), ("pcapng", 300_000)])
def test_read_ahead_batches_live_in_shared_buffers_that_are_reused(captures: dict[str, Path], name: str,
                                                                  batch_size: int) -> None:
    """Records are read straight into the shared buffers (no copy), several batches to a fill, and a
    buffer comes back only when every batch on it has been analysed."""
    stats = ReadStats()
    items = iter_batches(captures[name], stats, read_ahead=True, batch_size=batch_size, max_records=40)
    assert items is not None
    batches = []
    for item in items:
        if isinstance(item, PcapBatch):
            # what the records say by themselves, computed by the reading process as this one would
            assert isinstance(item.columns, Columns) and item.columns.pack() == columns(item).pack()
            batches.append(item)
    buffers = [batch.buf for batch in batches]
    distinct = {id(b) for b in buffers}
    assert len(buffers) > 100 and 2 <= len(distinct) <= readahead.SLOTS
    assert all(isinstance(b, memoryview) for b in buffers)
    with pytest.raises(ValueError):  # released once reading ends: a batch kept too long cannot be misread
        bytes(buffers[0][:4])


def test_analysis_over_read_ahead_equals_one_process(captures: dict[str, Path]) -> None:
    """Two files in one pass (the counters add up across files), the whole analysis compared."""
    files = [captures["damaged"], FIXTURES[0], captures["gzip"]]
    ahead_table, ahead_summary = analyze_captures(files, read_ahead=True)
    alone_table, alone_summary = analyze_captures(files, read_ahead=False)
    assert table_state(ahead_table, ahead_summary) == table_state(alone_table, alone_summary)
    assert ahead_table.live and ahead_summary.read.bad_records and ahead_summary.read.packets > 20000


def test_stopping_early_reaps_the_child(captures: dict[str, Path]) -> None:
    before = _children()
    items = iter_batches(captures["pcap"], ReadStats(), read_ahead=True, batch_size=BATCH, max_records=40)
    assert items is not None
    next(items)
    next(items)
    assert len(_children() - before) == 1
    items.close()  # what an interrupted analysis does (KeyboardInterrupt unwinds through the loop)
    assert _children() == before
    # dropped before it ever started
    items = iter_batches(captures["pcap"], ReadStats(), read_ahead=True, batch_size=BATCH)
    assert len(_children() - before) == 1
    del items
    assert _children() == before


def test_a_dead_reader_is_a_one_line_error_not_a_hang(captures: dict[str, Path]) -> None:
    before = _children()
    items = iter_batches(captures["pcap"], ReadStats(), read_ahead=True, batch_size=BATCH, max_records=40)
    assert items is not None
    next(items)
    (child,) = _children() - before
    os.kill(child, signal.SIGKILL)
    with pytest.raises(ReadAheadError) as caught:
        for _ in items:
            pass
    assert isinstance(caught.value, CamsweepError) and "\n" not in str(caught.value)
    assert _children() == before


def test_read_ahead_is_chosen_for_large_pcap_files_on_two_cpus(captures: dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "READ_AHEAD_MIN_BYTES", 1_000_000)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert all(readahead._worth_it(captures[name]) for name in ("pcap", "gzip", "pcapng"))
    assert not readahead._worth_it(FIXTURES[0])  # small
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert not readahead._worth_it(captures["pcap"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not readahead._worth_it(captures["pcap"])  # a fork would leave that thread behind
    finally:
        stop.set()
        other.join()
    # and analyze_captures takes it by itself
    before = _children()
    seen: list[int] = []
    real = readahead._receive

    def spy(child: Any, stats: ReadStats) -> Iterator[PcapBatch | Frame]:
        seen.append(child.pid)
        return real(child, stats)

    monkeypatch.setattr(readahead, "_receive", spy)
    analyze_captures([captures["pcap"]])
    assert len(seen) == 1 and _children() == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutations(b"".join(struct.pack("<IIII", int(ts), 0, len(f), len(f)) + f for ts, f in _SAMPLE)))
def test_mutated_captures_read_ahead_as_in_one_process(tmp_path: Path, data: bytes) -> None:
    capture = tmp_path / "mutated.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + data)
    alone_stats = ReadStats()
    alone = iter_pcap_batches(capture, alone_stats, max_records=4)
    assert alone is not None
    assert _read(capture, read_ahead=True, max_records=4) == (_records(alone), alone_stats)


def test_when_no_reader_can_be_forked_the_file_is_read_here(captures: dict[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[bool] = []

    def no_fork() -> int:
        tried.append(True)
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = _children()
    reference = _read(captures["pcap"], read_ahead=False, batch_size=BATCH)
    monkeypatch.setattr(os, "fork", no_fork)
    assert _read(captures["pcap"], read_ahead=True, batch_size=BATCH) == reference
    assert tried == [True]  # the fork was attempted, and its failure fell back to reading here
    assert _children() == before


@pytest.mark.parametrize("read_ahead", [True, False])
def test_an_interrupted_analysis_keeps_what_it_read_and_stops_the_reader(
        captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch, read_ahead: bool) -> None:
    """Ctrl-C (KeyboardInterrupt) during the pass: the table so far is returned, marked interrupted, and a
    reading process is stopped and reaped."""
    before = _children()
    real = analyze_module.iter_batches

    def ctrl_c_after_three_batches(path: Path, stats: ReadStats, **kw: Any) -> Iterator[PcapBatch | Frame]:
        items = real(path, stats, read_ahead=kw["read_ahead"], batch_size=BATCH, max_records=1000)
        assert items is not None

        def interrupted() -> Iterator[PcapBatch | Frame]:
            try:
                for n, item in enumerate(items):
                    if n == 3:
                        raise KeyboardInterrupt
                    yield item
            finally:
                items.close()  # type: ignore[attr-defined]

        return interrupted()

    monkeypatch.setattr(analyze_module, "iter_batches", ctrl_c_after_three_batches)
    table, summary = analyze_captures([captures["pcap"]], read_ahead=read_ahead)
    assert summary.interrupted and summary.files[0].endswith("(interrupted)")
    assert table.live and 0 < summary.read.packets < 20000
    assert _children() == before
