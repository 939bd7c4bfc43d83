"""The bulk path of ``camsweep analyze`` for pcap and pcapng files: a buffer of records at a time, with numpy.

``analyze.PacketPath`` is the reference: decode one frame, count it in the flow table, dissect the
few that matter. Here each batch of records (``reader.iter_pcap_batches``, several MB) gets the same
result with far less Python per packet (pcapng: each run of Enhanced Packet Blocks of one
interface is a batch; the reader hands over its other packets as single frames, in order):

1. The header fields of every record are read as arrays: timestamp and captured length, then the
   Ethernet/IPv4/TCP/UDP fields at the fixed offsets of the common frame (Ethernet without VLAN tag,
   IPv4 without options, not a fragment).
2. ``PacketPath`` still gets, one by one and in capture order, every packet that needs more than
   counting or is not such a common frame: other link types, IPv6 (but multicast ICMPv6), VLAN
   tags, IP options, fragments, malformed headers (``decode`` decides and counts them), segments
   that start like a TLS ClientHello or an HTTP request line, DNS responses with answers,
   a connection's first segment with payload after its SYN, the segments of a connection whose
   ClientHello is waiting for reassembly, and the packet at which the table sweeps idle flows.
3. The other packets are only counted: ARP and the like, and packets of no flow (LAN, transit,
   multicast), by kind; flow packets in *runs*: packets of one connection (both directions, in
   capture order) that the flow table can take in one call (``FlowTable.add_run`` lists the
   conditions: in short, nothing in the run could end an exchange, an upstream object or a second
   of the activity record). Runs are counted in the capture order of their first packets; what
   SYN, FIN and RST segments in them feed the ClientHello reassembler is replayed in capture
   order, between the packets of step 2.

Nothing is kept between batches but the flow table's and the reassembler's own state, so memory
is the reader's buffer plus arrays of a few dozen bytes per record of one batch. Equality with the
frame-by-frame path is tested on the committed captures, on generated ones and on a lab recording
(``tests/passive/test_fastpath.py``).
"""

from __future__ import annotations

import heapq
import socket
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from scanner.passive.decode import HTTP_REQUEST_PREFIXES, LINKTYPE_ETHERNET, Packet, decode
from scanner.passive.dns import DNS_PORT
from scanner.passive.flows import (
    ADDRESS_IGNORED,
    ADDRESS_LOCAL,
    ADDRESS_REMOTE,
    BURST_GAP_S,
    BURST_STALL_S,
    EXCHANGE_GAP_S,
    FlowKey,
)
from scanner.passive.reader import Frame, PcapBatch
from scanner.passive.tls import looks_like_client_hello

if TYPE_CHECKING:
    from scanner.passive.analyze import PacketPath

TCP_SYN = 0x02
TCP_ACK = 0x10
CACHE_ENTRIES = 65536  # per cache (address kinds, address text, flow keys); cleared when full

# The first four bytes of an HTTP request line, as big-endian integers (decode.HTTP_REQUEST_PREFIXES).
_HTTP_PREFIXES = np.array(sorted(int.from_bytes(p, "big") for p in HTTP_REQUEST_PREFIXES), dtype=np.uint32)

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def analyze_batches(path: PacketPath, batches: Iterable[PcapBatch | Frame]) -> None:
    """Every record of ``batches`` (and single frames between them) into ``path``'s flow table, as
    ``path.packet`` one by one would."""
    bulk = _Bulk(path)
    stats = path.summary.decode
    for batch in batches:
        if isinstance(batch, tuple):  # a single frame (pcapng blocks outside the runs)
            ts, linktype, frame = batch
            pkt = decode(linktype, frame, ts, stats)
            if pkt is not None:
                path.packet(pkt)
        elif batch.linktype == LINKTYPE_ETHERNET and len(batch.positions):
            bulk.ethernet(batch, batch.columns if isinstance(batch.columns, Columns) else None)
        else:
            bulk.one_by_one(batch)


class _Bulk:
    """Caches that live across batches: address kinds and text, flow keys."""

    def __init__(self, path: PacketPath) -> None:
        self.path = path
        self.table = path.table
        self.summary = path.summary
        self.kind_addrs: NDArray[np.uint32] = np.empty(0, dtype=np.uint32)  # sorted
        self.kind_values: NDArray[np.int8] = np.empty(0, dtype=np.int8)
        self.texts: dict[int, str] = {}
        self.keys: dict[tuple[int, int, int, int], FlowKey] = {}

    # ---- helpers --------------------------------------------------------------------------------
    def text(self, address: int) -> str:
        text = self.texts.get(address)
        if text is None:
            if len(self.texts) >= CACHE_ENTRIES:
                self.texts.clear()
            text = self.texts[address] = socket.inet_ntoa(address.to_bytes(4, "big"))
        return text

    def kinds(self, addresses: NDArray[np.uint32]) -> NDArray[np.int8]:
        """The flow table's kind (local, remote, ignored) of each IPv4 address, looked up once per address."""
        known = self.kind_addrs
        if len(known):
            index = np.minimum(np.searchsorted(known, addresses), len(known) - 1)
            hit = known[index] == addresses
            if hit.all():
                return self.kind_values[index]
            new = np.unique(addresses[~hit])
        else:
            new = np.unique(addresses)
        if len(known) + len(new) > CACHE_ENTRIES:
            known = np.empty(0, dtype=np.uint32)
            self.kind_values = np.empty(0, dtype=np.int8)
            new = np.unique(addresses)
        values = np.array([self.table.address_kind(self.text(a)) for a in new.tolist()], dtype=np.int8)
        merged = np.concatenate([known, new])
        order = np.argsort(merged, kind="stable")
        self.kind_addrs = merged[order]
        self.kind_values = np.concatenate([self.kind_values, values])[order]
        index = np.searchsorted(self.kind_addrs, addresses)
        return self.kind_values[index]

    def key(self, local: int, remote: int, port: int, proto: int) -> FlowKey:
        ident = (local, remote, port, proto)
        key = self.keys.get(ident)
        if key is None:
            if len(self.keys) >= CACHE_ENTRIES:
                self.keys.clear()
            key = self.keys[ident] = FlowKey(self.text(local), self.text(remote), port, proto)
        return key

    def one_by_one(self, batch: PcapBatch) -> None:
        packet = self.path.packet
        stats = self.summary.decode
        for ts, linktype, frame in batch.frames():
            pkt = decode(linktype, frame, ts, stats)
            if pkt is not None:
                packet(pkt)

    # ---- Ethernet batches -----------------------------------------------------------------------
    def ethernet(self, batch: PcapBatch, cols: Columns | None = None) -> None:
        """A batch of Ethernet records: in bulk, or one by one when the flow table may have to evict flows.
        ``cols``: the batch's ``columns``, when the reading process computed them already."""
        if not self.bulk(batch, cols if cols is not None else columns(batch)):
            for position in batch.positions:
                self.one(batch, position)

    def one(self, batch: PcapBatch, position: int) -> None:
        """The record at ``position`` of ``batch``, one by one."""
        first, second, caplen = struct.unpack_from(batch.byte_order + "III", batch.buf, position)
        at = position + batch.hlen
        pkt = decode(batch.linktype, bytes(batch.buf[at : at + caplen]), batch.timestamp(first, second),
                     self.summary.decode)
        if pkt is not None:
            self.path.packet(pkt)

    def bulk(self, batch: PcapBatch, cols: Columns) -> bool:
        """The records of ``batch``; False (and nothing done) when the table could have to evict flows, since
        which flows it evicts depends on the order in which they see their packets."""
        buf = batch.buf
        ts, caplen, start, iplen, plen = cols.ts, cols.caplen, cols.start, cols.iplen, cols.plen
        proto, src, dst, sport, dport, flags, seq = cols.proto, cols.src, cols.dst, cols.sport, cols.dport, \
            cols.flags, cols.seq
        valid, tcp, not_ip, stub, multicast6 = cols.valid, cols.tcp, cols.not_ip, cols.stub, cols.multicast6
        has_payload = plen > 0
        control = tcp & ((flags & 0x07) != 0)  # SYN, FIN, RST: they feed the ClientHello reassembler
        slow = cols.slow.copy()
        # A SYN starts ClientHello reassembly for its direction (tls.SniReassembler), and the connection's
        # first segment with payload usually settles it: that segment goes one by one too (it often does
        # already: a ClientHello, a request line), so that the rest of the connection can be counted in runs.
        # (Whatever stays pending is handled when runs are counted.)
        opening = tcp & ((flags & 0x12) == TCP_SYN) & ~has_payload
        open_rows = np.flatnonzero(opening)
        open_pair = (src[open_rows].astype(np.uint64) << np.uint64(32)) | dst[open_rows]
        open_ports = (sport[open_rows] << 16) | dport[open_rows]
        pending_now = [(pair_of, s_port << 16 | d_port) for src_ip, dst_ip, s_port, d_port in
                       self.path.sni.pending_keys() if (pair_of := _ipv4_pair(src_ip, dst_ip)) is not None]
        if pending_now:  # connections pending since an earlier batch: as if opened before this one
            open_rows = np.concatenate([np.full(len(pending_now), -1, dtype=np.int64), open_rows])
            open_pair = np.concatenate([np.array([k[0] for k in pending_now], dtype=np.uint64), open_pair])
            open_ports = np.concatenate([np.array([k[1] for k in pending_now], dtype=np.int64), open_ports])
        if len(open_rows):
            carriers = np.flatnonzero(tcp & has_payload)
            c_pair = (src[carriers].astype(np.uint64) << np.uint64(32)) | dst[carriers]
            near = _member(c_pair, np.unique(open_pair))
            carriers, c_pair = carriers[near], c_pair[near]
            # openers and carriers by connection, then capture order: a carrier right after an opener is
            # that connection's first segment with payload after its SYN
            rows_all = np.concatenate([open_rows, carriers])
            pair_all = np.concatenate([open_pair, c_pair])
            ports_all = np.concatenate([open_ports, (sport[carriers] << 16) | dport[carriers]])
            opener = np.concatenate([np.ones(len(open_rows), dtype=np.bool_), np.zeros(len(carriers), dtype=np.bool_)])
            order = np.lexsort((rows_all, ports_all, pair_all))
            rows_all, pair_all, ports_all, opener = rows_all[order], pair_all[order], ports_all[order], opener[order]
            same = (pair_all[1:] == pair_all[:-1]) & (ports_all[1:] == ports_all[:-1])
            first_after = ~opener[1:] & opener[:-1] & same
            slow[rows_all[1:][first_after]] = True
        openers = list(zip(open_pair.tolist(), open_ports.tolist(), strict=True))

        # ---- flows of the plain packets --------------------------------------------------------------
        plain = np.flatnonzero(valid & ~slow)
        kind_src = np.zeros(len(ts), dtype=np.int8)
        kind_dst = np.zeros(len(ts), dtype=np.int8)
        kind_src[plain] = self.kinds(src[plain])
        kind_dst[plain] = self.kinds(dst[plain])
        upstream = valid & (kind_src == ADDRESS_LOCAL) & (kind_dst == ADDRESS_REMOTE)
        in_flow = upstream | (valid & (kind_src == ADDRESS_REMOTE) & (kind_dst == ADDRESS_LOCAL))
        # the slow plain packets' flows too: they cut their flow's runs
        slow_plain = np.flatnonzero(valid & slow)
        if len(slow_plain):
            ks = self.kinds(src[slow_plain])
            kd = self.kinds(dst[slow_plain])
            up_s = (ks == ADDRESS_LOCAL) & (kd == ADDRESS_REMOTE)
            upstream[slow_plain] = up_s
            in_flow[slow_plain] = up_s | ((ks == ADDRESS_REMOTE) & (kd == ADDRESS_LOCAL))
        local = np.where(upstream, src, dst)
        remote = np.where(upstream, dst, src)
        remote_port = np.where(upstream, dport, sport)
        local_port = np.where(upstream, sport, dport)

        # ---- the flows, and whether the table could have to evict some (order matters then) ----------
        table = self.table
        flow_rows = np.flatnonzero(in_flow)
        pair = (local[flow_rows].astype(np.uint64) << np.uint64(32)) | remote[flow_rows]
        port_proto = (remote_port[flow_rows] << 8) | proto[flow_rows]
        order = np.lexsort((flow_rows, port_proto, pair))  # by flow, then capture order
        flow_seq = _FlowSequence(flow_rows[order], pair[order], port_proto[order])
        undecided = int((slow & ~valid).sum())  # packets whose flow is only known once decoded
        if len(table.live) + flow_seq.flows() + undecided >= table.max_flows:
            return False

        # ---- from here on the table changes: decode the packets that go one by one -------------------
        decode_stats = self.summary.decode
        decode_stats.not_ip += int(not_ip.sum())
        decode_stats.truncated += int(stub.sum())
        slow_rows: dict[int, Packet | None] = {}
        slow_index = np.flatnonzero(slow)
        for row, at, size, when in zip(slow_index.tolist(), start[slow_index].tolist(), caplen[slow_index].tolist(),
                                       ts[slow_index].tolist(), strict=True):
            slow_rows[row] = decode(1, bytes(buf[at : at + size]), when, decode_stats)

        # A TCP segment with payload of a connection whose ClientHello reassembly is pending must be fed to
        # the reassembler. Flow runs are checked when they are counted (runs()); packets of no flow go one
        # by one when their connection was pending before this batch or may become so in it.
        fast = ~slow & ~not_ip & ~stub
        maybe = self.maybe_pending(slow_rows, openers)
        if maybe:
            loose = np.flatnonzero(fast & ~in_flow & tcp & has_payload)
            if len(loose):
                l_pair = (src[loose].astype(np.uint64) << np.uint64(32)) | dst[loose]
                near = _member(l_pair, np.unique(np.array([p for p, _ in maybe], dtype=np.uint64)))
                loose = loose[near]
                for row, pair_of, ports_of, at, size, when in zip(
                        loose.tolist(), l_pair[near].tolist(), ((sport[loose] << 16) | dport[loose]).tolist(),
                        start[loose].tolist(), caplen[loose].tolist(), ts[loose].tolist(), strict=True):
                    if (pair_of, ports_of) in maybe:
                        slow_rows[row] = decode(1, bytes(buf[at : at + size]), when, decode_stats)
                        fast[row] = False
                        slow[row] = True

        # Flow packets that decode only one by one (VLAN tags, IP options, fragments, IPv6): their flows.
        odd: list[tuple[int, int, int, int, int]] = []  # IPv4: (local, remote, remote port, proto, row)
        odd_flow_rows: list[int] = []
        for row in np.flatnonzero(slow & ~valid).tolist():
            pkt = slow_rows[row]
            if pkt is not None:
                oriented = table.orient(pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.sport, pkt.dport)
                if oriented is not None:
                    odd_flow_rows.append(row)
                    key = oriented[0]
                    pair_of = _ipv4_pair(key.local_ip, key.remote_ip)
                    if pair_of is not None:
                        odd.append((pair_of >> 32, pair_of & 0xFFFFFFFF, key.remote_port, key.proto, row))

        # The table sweeps idle flows at the first flow packet that is newer than any before it and comes
        # idle_timeout / 4 after the last sweep. Those packets go one by one, and no run spans them.
        epoch = np.zeros(len(ts), dtype=np.int64)
        flow_packets = np.flatnonzero(in_flow)  # sorted: merged with the odd rows only when there are any
        if odd_flow_rows:
            flow_packets = np.union1d(flow_packets, np.array(odd_flow_rows, dtype=np.int64))
        for row in self.sweeps(flow_packets, ts):
            epoch[row] = 1
            if row not in slow_rows:
                at = int(start[row])
                slow_rows[row] = decode(1, bytes(buf[at : at + int(caplen[row])]), float(ts[row]), decode_stats)
                fast[row] = False
                slow[row] = True
        epoch = np.cumsum(epoch)

        # ---- packets of no flow: counted by kind -----------------------------------------------------
        loose_rows = fast & ~in_flow
        count = int(loose_rows.sum())
        if count:
            ks = kind_src[loose_rows]
            kd = kind_dst[loose_rows]
            ignored = int((multicast6[loose_rows] | (ks == ADDRESS_IGNORED) | (kd == ADDRESS_IGNORED)).sum())
            lan = int((~multicast6[loose_rows] & (ks == ADDRESS_LOCAL) & (kd == ADDRESS_LOCAL)).sum())
            table_stats = table.stats
            table_stats.packets += count
            table_stats.ignored += ignored
            table_stats.lan += lan
            table_stats.transit += count - ignored - lan

        # ---- capture times seen (PacketPath sets them for the packets it gets) ------------------------
        summary = self.summary
        decoded = [row for row, pkt in slow_rows.items() if pkt is not None]
        fast_index = np.flatnonzero(fast)
        first = min([*decoded, *fast_index[:1].tolist()], default=-1)
        last = max([*decoded, *fast_index[-1:].tolist()], default=-1)
        if summary.first_ts is None and first >= 0:
            summary.first_ts = float(ts[first])

        # ---- flow packets in runs, in capture order with the packets that go one by one ---------------
        # what SniReassembler.feed_packet feeds for a SYN, FIN or RST without payload
        fed = np.flatnonzero(control & fast)
        text = self.text
        controls = {
            row: ((text(a), text(b), sp, dp), when, number, bits)
            for row, a, b, sp, dp, when, number, bits in zip(
                fed.tolist(), src[fed].tolist(), dst[fed].tolist(), sport[fed].tolist(), dport[fed].tolist(),
                ts[fed].tolist(), seq[fed].tolist(), flags[fed].tolist(), strict=True)
        }
        events = _Events(self, batch, ts, start, caplen, controls, slow_rows)
        for row in np.flatnonzero(loose_rows & control).tolist():
            events.control(row)
        self.runs(events, flow_seq, odd, epoch, fast, upstream, control & ~has_payload & upstream
                  & ((flags & 0x12) == TCP_SYN), control, ts, iplen, plen, local, remote, remote_port, local_port,
                  proto)
        if last >= 0:
            summary.last_ts = float(ts[last])
        return True

    def maybe_pending(self, slow_rows: dict[int, Packet | None],
                      openers: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """(addresses, ports) of IPv4 TCP connections whose ClientHello reassembly is pending now, or may
        start in this batch (a SYN, or a segment that starts like a ClientHello)."""
        out = set(openers)
        for pkt in slow_rows.values():
            if pkt is not None and pkt.proto == 6 and pkt.ip_version == 4 and (
                (pkt.tcp_flags & TCP_SYN and not pkt.tcp_flags & TCP_ACK)
                or (pkt.payload and looks_like_client_hello(pkt.payload))
            ):
                pair_of = _ipv4_pair(pkt.src_ip, pkt.dst_ip)
                if pair_of is not None:
                    out.add((pair_of, (pkt.sport << 16) | pkt.dport))
        return out

    def sweeps(self, flow_rows: IntArray, ts: NDArray[np.float64]) -> list[int]:
        """The rows (among ``flow_rows``, sorted) at which ``FlowTable.add`` will sweep idle flows."""
        table = self.table
        if not len(flow_rows):
            return []
        times = ts[flow_rows]
        newest = np.maximum.accumulate(np.concatenate([[table._now], times]))[:-1]
        rising = times > newest  # FlowTable.add looks at the clock only for packets newer than any before
        rows = flow_rows[rising]
        times = times[rising]
        last_sweep = table._last_sweep
        quarter = table.idle_timeout / 4
        at = 0
        if last_sweep < 0 and len(times):
            last_sweep = float(times[0])  # the first flow packet starts the clock
            at = 1
        out: list[int] = []
        while at < len(times):
            due = np.flatnonzero(times[at:] - last_sweep >= quarter)
            if not len(due):
                break
            at += int(due[0])
            out.append(int(rows[at]))
            last_sweep = float(times[at])
            at += 1
        return out

    def runs(self, events: _Events, seq: _FlowSequence, odd: list[tuple[int, int, int, int, int]],
             epoch: IntArray, fast: BoolArray, upstream: BoolArray,
             syn: BoolArray, control: BoolArray, ts: NDArray[np.float64], iplen: IntArray, plen: IntArray,
             local: NDArray[np.uint32], remote: NDArray[np.uint32], remote_port: IntArray, local_port: IntArray,
             proto: NDArray[np.uint8]) -> None:
        """Cut each flow's packets (by flow, then capture order) into runs and count them, in capture order
        of their first packets, between the ``events`` (packets one by one, reassembler input)."""
        sni = self.path.sni
        table = self.table

        # A packet that goes one by one cuts the runs of its own flow (``odd``: those known by their decoded
        # key only). An idle sweep cuts every run (``epoch``).
        if odd:
            extra = np.array(odd, dtype=np.int64)
            seq = seq.with_rows(extra[:, 4], (extra[:, 0].astype(np.uint64) << np.uint64(32)) | extra[:, 1].astype(
                np.uint64), (extra[:, 2] << 8) | extra[:, 3])
        member = fast[seq.rows]  # the packets that can be in a run; the others cut their flow's runs
        separators = np.cumsum(~member)[member]
        rows = seq.rows[member]
        flow_start = seq.starts()[member]
        m = len(rows)
        if m == 0:
            events.until(1 << 62)
            return
        up = upstream[rows]
        t = ts[rows]
        size = iplen[rows]
        carries = plen[rows] > 0
        lport = local_port[rows]
        objects = up & carries  # upstream packets with payload (the table's "objects")
        replies = ~up & carries

        cut = np.ones(m, dtype=np.bool_)
        era = epoch[rows]
        cut[1:] = (
            flow_start[1:] | (lport[1:] != lport[:-1]) | (separators[1:] != separators[:-1]) | (era[1:] != era[:-1])
            | (t[1:] < t[:-1]) | (t[1:] - t[:-1] > EXCHANGE_GAP_S)
        )
        obj = np.flatnonzero(objects)
        if len(obj) > 1:
            # An upstream object (Flow.up) may end, or its second change, only at the first one of a run.
            a, b = obj[:-1], obj[1:]
            run_id = np.cumsum(cut)
            same_run = run_id[a] == run_id[b]
            gap = t[b] - t[a]
            reply_count = np.cumsum(replies)
            replied = reply_count[b] != reply_count[a]
            second = t.astype(np.int64)
            split = same_run & ((second[b] != second[a]) | (gap >= BURST_STALL_S) | ((gap >= BURST_GAP_S) & replied))
            cut[b[split]] = True
        first = np.flatnonzero(cut)
        last = np.append(first[1:], m) - 1
        index = np.arange(m)
        sentinel = m
        up_count = np.add.reduceat(up.astype(np.int64), first)
        up_bytes = np.add.reduceat(np.where(up, size, 0), first)
        down_bytes = np.add.reduceat(np.where(up, 0, size), first)
        syn_count = np.add.reduceat(syn[rows].astype(np.int64), first)
        control_rows = control[rows]
        control_count = np.add.reduceat(control_rows.astype(np.int64), first)
        obj_count = np.add.reduceat(objects.astype(np.int64), first)
        obj_bytes = np.add.reduceat(np.where(objects, size, 0), first)
        obj_first = np.minimum.reduceat(np.where(objects, index, sentinel), first)
        obj_last = np.maximum.reduceat(np.where(objects, index, -1), first)
        reply_first = np.minimum.reduceat(np.where(replies, index, sentinel), first)
        reply_last = np.maximum.reduceat(np.where(replies, index, -1), first)
        up_first = np.minimum.reduceat(np.where(up, index, sentinel), first)
        obj_first_c = np.minimum(obj_first, m - 1)
        obj_last_c = np.maximum(obj_last, 0)
        first_row = rows[first]
        by_row = np.argsort(first_row, kind="stable")  # runs in capture order of their first packet
        f = first[by_row]
        ends = last[by_row]

        rows_list: list[int] = rows.tolist()
        control_list: list[int] = np.flatnonzero(control_rows).tolist()  # positions in rows_list
        keys = self.keys
        make_key = self.key
        until = events.until
        heap = events.heap
        for (row0, g0, g1, loc, rem, rport, lp, pr, ts0, ts1, n_up, b_up, b_down, n_syn, n_control, n_obj, b_obj,
             o_ts0, o_len0, o_ts1, r_first, r_last, o_first, o_last, u_first) in zip(
            first_row[by_row].tolist(), f.tolist(), ends.tolist(), local[rows[f]].tolist(),
            remote[rows[f]].tolist(), remote_port[rows[f]].tolist(), lport[f].tolist(), proto[rows[f]].tolist(),
            t[f].tolist(), t[ends].tolist(), up_count[by_row].tolist(), up_bytes[by_row].tolist(),
            down_bytes[by_row].tolist(), syn_count[by_row].tolist(), control_count[by_row].tolist(),
            obj_count[by_row].tolist(), obj_bytes[by_row].tolist(), t[obj_first_c[by_row]].tolist(),
            size[obj_first_c[by_row]].tolist(), t[obj_last_c[by_row]].tolist(), reply_first[by_row].tolist(),
            reply_last[by_row].tolist(), obj_first[by_row].tolist(), obj_last[by_row].tolist(),
            up_first[by_row].tolist(), strict=True,
        ):
            if heap and heap[0] < row0 << 2:
                until(row0)
            key = keys.get((loc, rem, rport, pr)) or make_key(loc, rem, rport, pr)
            flow = None
            if not (pr == 6 and sni.has_pending() and (
                (n_obj > 0 and sni.is_pending((key.local_ip, key.remote_ip, lp, rport)))
                or (r_first < sentinel and sni.is_pending((key.remote_ip, key.local_ip, rport, lp)))
            )):
                # (a connection whose ClientHello is pending: its segments go to the reassembler one by one)
                flow = table.add_run(key, lp, ts0, ts1, n_up, b_up, g1 - g0 + 1 - n_up, b_down,
                                     (n_obj, b_obj, o_ts0, o_len0, o_ts1) if n_obj else None, r_first < o_first,
                                     r_last > o_last, n_syn)
            if flow is None:
                for row in rows_list[g0 : g1 + 1]:
                    events.one(row)
                continue
            if n_control:
                for at in control_list[bisect_left(control_list, g0) : bisect_right(control_list, g1)]:
                    events.control(rows_list[at])
            if n_up and not flow.local_mac:
                flow.local_mac = events.source_mac(rows_list[u_first])
        until(1 << 62)


COLUMN_DTYPES = {  # the fields of ``Columns``, in the order ``readahead`` packs them
    "ts": np.float64, "caplen": np.int64, "start": np.int64, "iplen": np.int64, "plen": np.int64,
    "sport": np.int64, "dport": np.int64, "flags": np.int64, "seq": np.uint32, "src": np.uint32, "dst": np.uint32,
    "proto": np.uint8, "valid": np.bool_, "tcp": np.bool_, "not_ip": np.bool_, "stub": np.bool_,
    "multicast6": np.bool_, "slow": np.bool_,
}


class Columns:
    """What a batch's records say by themselves, as arrays (one element per record): the header fields of
    the common frame and which records must go one by one for what they contain. Nothing here depends
    on the flow table, so the reading process can compute it (``readahead``)."""

    __slots__ = tuple(COLUMN_DTYPES)

    ts: NDArray[np.float64]
    caplen: IntArray
    start: IntArray  # offset of the frame in the batch's buffer
    iplen: IntArray
    plen: IntArray  # payload bytes by the headers
    sport: IntArray
    dport: IntArray
    flags: IntArray  # TCP flags
    seq: NDArray[np.uint32]  # TCP sequence number
    src: NDArray[np.uint32]
    dst: NDArray[np.uint32]
    proto: NDArray[np.uint8]
    valid: BoolArray  # plain IPv4 TCP/UDP/other that decode reads the same way
    tcp: BoolArray
    not_ip: BoolArray
    stub: BoolArray
    multicast6: BoolArray
    slow: BoolArray  # one by one for what it holds: odd frames, ClientHello starts, request lines, DNS answers

    def pack(self) -> bytes:
        """The arrays back to back (``unpack`` reads them)."""
        return b"".join(np.ascontiguousarray(getattr(self, name), dtype=dtype).tobytes()
                        for name, dtype in COLUMN_DTYPES.items())

    @classmethod
    def unpack(cls, data: bytes, rows: int) -> Columns:
        out = cls()
        offset = 0
        for name, dtype in COLUMN_DTYPES.items():
            array: NDArray[Any] = np.frombuffer(data, dtype=dtype, count=rows, offset=offset)
            setattr(out, name, array)
            offset += array.nbytes
        return out


def columns(batch: PcapBatch) -> Columns:
    """The ``Columns`` of a batch of Ethernet records."""
    view = np.frombuffer(batch.buf, dtype=np.uint8)
    pos = np.array(batch.positions, dtype=np.int64)
    # record header: seconds, fraction, captured length, original length (reader.PcapBatch)
    hdr = sliding_window_view(view, 16)[pos].view(batch.byte_order + "u4")
    if batch.ts_div:  # pcapng: the same float operations as PcapBatch.timestamp
        ticks = (hdr[:, 0].astype(np.uint64) << np.uint64(32)) | hdr[:, 1].astype(np.uint64)
        ts = ticks.astype(np.float64) / batch.ts_div + batch.ts_offset
    else:
        ts = hdr[:, 0] + hdr[:, 1] * batch.ts_scale  # the same float operations as the reader's sec + frac * scale
    caplen = hdr[:, 2].astype(np.int64)
    start = pos + batch.hlen  # first frame byte
    # Frame bytes -2..49, so that the IPv4 addresses are 4-byte aligned in the window:
    # destination MAC (0-5), source MAC (6-11), EtherType (12-13), IPv4 (14-33): version/IHL (14),
    # total length (16-17), flags/fragment offset (20-21), protocol (23), source (26-29),
    # destination (30-33); TCP/UDP (34-): ports (34-37), UDP length (38-39), TCP sequence number
    # (38-41), TCP data offset/flags (46-47). IPv6 (14-53): version (14), next header (20), destination (38-).
    win = sliding_window_view(view, 52)[start - 2]
    be16 = win.view(">u2")  # be16[:, k] is frame bytes 2k-2, 2k-1
    be32 = win.view(">u4")  # be32[:, k] is frame bytes 4k-2 .. 4k+1
    etype = be16[:, 7]
    iplen = be16[:, 9].astype(np.int64)
    proto = win[:, 25]
    sport = be16[:, 18].astype(np.int64)
    dport = be16[:, 19].astype(np.int64)
    udp_len = be16[:, 20].astype(np.int64)
    offflags = be16[:, 24].astype(np.int64)

    # ---- which frames decode as plain IPv4 TCP/UDP/other, and their lengths (decode.decode) ----
    iplen = np.where(iplen == 0, caplen - 14, iplen)  # 0: segmentation offload on the capturing host
    ip4 = (caplen >= 34) & (etype == 0x0800) & (win[:, 16] == 0x45) & (iplen >= 20) & ((be16[:, 11] & 0x1FFF) == 0)
    doff = (offflags >> 12) * 4
    tcp = ip4 & (proto == 6) & (caplen >= 54) & (doff >= 20)
    udp = ip4 & (proto == 17) & (caplen >= 42)
    other = ip4 & (proto != 6) & (proto != 17)
    payload_at = np.where(tcp, 34 + doff, np.where(udp, 42, 34))
    ip_end = 14 + iplen
    plen = ip_end - payload_at
    plen = np.where(udp & (udp_len >= 8) & (udp_len < plen + 8), udp_len - 8, plen)
    valid = (tcp | udp | other) & (plen >= 0)
    flags = np.where(tcp, offflags & 0x1FF, 0)
    ports_apply = tcp | udp
    # ARP, LLDP, STP...: decode counts them as not IP and they go no further; so are frames shorter than an
    # Ethernet header (counted as truncated)
    not_ip = (caplen >= 14) & (etype != 0x0800) & (etype != 0x86DD) & (etype != 0x8100) & (etype != 0x88A8) \
        & (etype != 0x9100)
    stub = caplen < 14
    # ICMPv6 to a multicast group (neighbour discovery, MLD): belongs to no flow (FlowTable: ignored)
    multicast6 = (caplen >= 54) & (etype == 0x86DD) & ((win[:, 16] >> 4) == 6) & (win[:, 22] == 58) \
        & (win[:, 40] == 0xFF)

    # ---- packets that go one by one for what they hold ----------------------------------------------
    captured = np.minimum(ip_end, caplen) - payload_at  # payload bytes in the capture
    lead = sliding_window_view(view, 8)[np.minimum(start + payload_at, len(view) - 8)]
    hello = (captured >= 3) & (lead[:, 0] == 0x16) & (lead[:, 1] == 3) & ((captured < 6) | (lead[:, 5] == 1))
    http = (captured >= 4) & np.isin(lead.view(">u4")[:, 0], _HTTP_PREFIXES)
    has_payload = plen > 0
    control = tcp & ((flags & 0x07) != 0)  # SYN, FIN, RST
    slow = (~valid & ~not_ip & ~stub & ~multicast6) | (tcp & has_payload & (control | hello | http))
    sport = np.where(ports_apply, sport, 0)
    dport = np.where(ports_apply, dport, 0)
    # DNS: only responses with answers name anything (analyze.PacketPath; not mDNS); header: ID (0-1),
    # flags with QR in the top bit (2-3), QDCOUNT (4-5), ANCOUNT (6-7) -- RFC 1035 §4.1.1
    dns_port = (sport == DNS_PORT) | (dport == DNS_PORT)
    slow |= udp & has_payload & dns_port & (captured >= 12) & ((lead[:, 2] & 0x80) != 0) \
        & ((lead[:, 6] | lead[:, 7]) != 0)

    out = Columns()
    out.ts, out.caplen, out.start, out.iplen, out.plen = ts, caplen, start, iplen, plen
    out.sport, out.dport, out.flags, out.seq, out.src, out.dst, out.proto = sport, dport, flags, be32[:, 10], \
        be32[:, 7], be32[:, 8], proto
    out.valid, out.tcp, out.not_ip, out.stub, out.multicast6, out.slow = valid, tcp, not_ip, stub, multicast6, slow
    return out


class _Events:
    """What reaches ``PacketPath`` or the reassembler one packet at a time, replayed in capture order: the
    packets that go one by one (decoded beforehand in ``slow_rows``, or decoded when their turn comes) and
    the reassembler input of SYN, FIN and RST segments counted in runs."""

    _SLOW, _ONE, _CONTROL = 0, 1, 2

    def __init__(self, bulk: _Bulk, batch: PcapBatch, ts: NDArray[np.float64], start: IntArray, caplen: IntArray,
                 controls: dict[int, tuple[tuple[str, str, int, int], float, int, int]],
                 slow_rows: dict[int, Packet | None]) -> None:
        self.bulk = bulk
        self.batch = batch
        self.ts, self.start, self.caplen = ts, start, caplen
        self.controls = controls  # row: (flow key, time, sequence number, flags) of SYN/FIN/RST without payload
        self.slow_rows = slow_rows
        self.heap = [row << 2 | self._SLOW for row in sorted(slow_rows)]  # sorted: already a heap

    def one(self, row: int) -> None:
        heapq.heappush(self.heap, row << 2 | self._ONE)

    def control(self, row: int) -> None:
        heapq.heappush(self.heap, row << 2 | self._CONTROL)

    def source_mac(self, row: int) -> str:
        at = int(self.start[row])
        return bytes(self.batch.buf[at + 6 : at + 12]).hex(":")

    def until(self, row: int) -> None:
        """Replay every event before ``row``."""
        heap = self.heap
        limit = row << 2
        packet = self.bulk.path.packet
        while heap and heap[0] < limit:
            item = heapq.heappop(heap)
            at, kind = item >> 2, item & 3
            if kind == self._SLOW:
                pkt = self.slow_rows[at]
            elif kind == self._ONE:
                begin = int(self.start[at])
                pkt = decode(1, bytes(self.batch.buf[begin : begin + int(self.caplen[at])]), float(self.ts[at]),
                             self.bulk.summary.decode)
            else:
                key, when, number, bits = self.controls[at]
                self.bulk.path.sni.feed(key, when, number, b"", flags=bits)
                continue
            if pkt is not None:
                packet(pkt)


def _member(values: NDArray[np.uint64] | NDArray[np.uint32], keys: NDArray[np.uint64] | NDArray[np.uint32]
            ) -> BoolArray:
    """``np.isin(values, keys)`` for sorted, distinct ``keys``: one binary search per value, no sort of
    ``values`` (np.isin sorts both)."""
    if not len(keys):
        return np.zeros(len(values), dtype=np.bool_)
    index = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    found: BoolArray = keys[index] == values
    return found


def _ipv4_pair(src_ip: str, dst_ip: str) -> int | None:
    """Two IPv4 addresses as one 64-bit number (None for IPv6)."""
    try:
        return (int.from_bytes(socket.inet_aton(src_ip), "big") << 32) | int.from_bytes(socket.inet_aton(dst_ip), "big")
    except OSError:
        return None


class _FlowSequence:
    """Rows of flow packets sorted by flow key (addresses as one number, remote port and protocol as
    another), then capture order."""

    def __init__(self, rows: IntArray, pair: NDArray[np.uint64], port_proto: IntArray) -> None:
        self.rows = rows
        self.pair = pair
        self.port_proto = port_proto

    def starts(self) -> BoolArray:
        """True where a new flow begins."""
        out = np.ones(len(self.rows), dtype=np.bool_)
        out[1:] = (self.pair[1:] != self.pair[:-1]) | (self.port_proto[1:] != self.port_proto[:-1])
        return out

    def flows(self) -> int:
        return int(self.starts().sum())

    def with_rows(self, rows: IntArray, pair: NDArray[np.uint64], port_proto: IntArray) -> _FlowSequence:
        rows = np.concatenate([self.rows, rows])
        pair = np.concatenate([self.pair, pair])
        port_proto = np.concatenate([self.port_proto, port_proto])
        order = np.lexsort((rows, port_proto, pair))
        return _FlowSequence(rows[order], pair[order], port_proto[order])
