"""``camsweep listen``: the same analysis as ``analyze``, live from an interface (a mirror port).

Two AF_PACKET sockets with classic BPF filters attached in the kernel:

* ``INTERESTING`` -- DNS (53), TLS handshake records (TCP payload starting 0x16) and
  plain-HTTP request lines (GET/POST/PUT/HEAD) -- passes whole frames;
* everything else passes **truncated by the kernel** to ``HEADER_BYTES`` (the filter's return
  value is how many bytes to keep), so bulk video payload never reaches Python while every
  packet is still counted: sizes come from the IP header, not from the captured bytes.

The two filters are complements, so each packet is seen once. Needs root or CAP_NET_RAW; the
kernel's drop counter (PACKET_STATISTICS) is reported so a busy mirror port cannot silently
lose data.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

from scanner.errors import PrivilegeError, UsageError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4  # sll_pkttype of frames this host sent
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33  # linux/asm-generic/socket.h
BPF_RET_K = 0x06  # BPF_RET | BPF_K: "accept this many bytes"
HEADER_BYTES = 128  # Ethernet + VLAN + IPv6 + TCP options fit
FULL_BYTES = 65535
LINKTYPE_ETHERNET = 1

_TCP_PAYLOAD = "tcp[((tcp[12:1] & 0xf0) >> 2):4]"
INTERESTING = (
    "udp port 53 or "
    "(tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16) or "
    f"({_TCP_PAYLOAD} = 0x47455420 or {_TCP_PAYLOAD} = 0x504f5354 or {_TCP_PAYLOAD} = 0x50555420 "
    f"or {_TCP_PAYLOAD} = 0x48454144)"  # "GET ", "POST", "PUT ", "HEAD"
)


@dataclass
class LiveStats:
    received: int = 0
    kernel_drops: int = 0
    kernel_packets: int = 0


def _filter(expression: str, keep: int) -> object:
    """Compile ``expression`` with libpcap (through scapy) and make accepted packets keep ``keep`` bytes."""
    from scapy.arch.common import compile_filter

    program = compile_filter(expression, linktype=LINKTYPE_ETHERNET)
    for i in range(program.bf_len):
        insn = program.bf_insns[i]
        if insn.code == BPF_RET_K and insn.k:
            insn.k = keep
    return program


def _large_receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask for a ``size``-byte kernel receive buffer. Plain SO_RCVBUF is capped by
    net.core.rmem_max (often 208 kB: a video burst while Python is busy overflows it); a packet
    socket needs CAP_NET_RAW anyway, and with CAP_NET_ADMIN (root) SO_RCVBUFFORCE lifts the cap."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _bound_socket(iface: str, program: object | None, buffer_bytes: int) -> socket.socket:
    """A packet socket that sees only ``iface``'s frames passing ``program``, from its first frame.

    It is created with protocol 0, which receives nothing, and gets ETH_P_ALL only in ``bind``,
    after the filter and buffer are in place: a socket created with ETH_P_ALL receives every
    interface's frames, unfiltered, into the default small buffer until it is bound, and a busy
    namespace (another scanner on eth0) filled that buffer -- kernel drops, and foreign frames read
    as if they had come from ``iface``."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        if program is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)  # type: ignore[call-overload]
        _large_receive_buffer(sock, buffer_bytes)
        sock.bind((iface, ETH_P_ALL))  # Python converts the protocol to network order here
    except BaseException:
        sock.close()
        raise
    return sock


def open_sockets(iface: str) -> list[socket.socket]:
    """The two filtered packet sockets on ``iface`` (PrivilegeError / UsageError on failure)."""
    programs = [_filter(INTERESTING, FULL_BYTES), _filter(f"not ({INTERESTING})", HEADER_BYTES)]
    sockets = []
    try:
        for program in programs:
            sock = _bound_socket(iface, program, 32 << 20)
            sockets.append(sock)
            sock.setblocking(False)
    except PermissionError as exc:
        for s in sockets:
            s.close()
        raise PrivilegeError("listening needs root or CAP_NET_RAW; 'camsweep analyze' reads capture files "
                             "without privileges") from exc
    except OSError as exc:
        for s in sockets:
            s.close()
        raise UsageError(f"cannot listen on {iface!r}: {exc.strerror or exc}") from exc
    return sockets


def capture(iface: str, seconds: float, stats: LiveStats, *, stop: threading.Event | None = None,
            sockets: list[socket.socket] | None = None) -> Generator[tuple[float, int, bytes], None, None]:
    """Frames (timestamp, linktype, bytes) from ``iface`` for ``seconds`` (or until ``stop`` is set);
    closes its sockets (``sockets``: already opened with ``open_sockets``)."""
    if seconds <= 0:
        raise UsageError("--seconds must be positive")
    sockets = sockets if sockets is not None else open_sockets(iface)
    buffer = bytearray(FULL_BYTES)
    view = memoryview(buffer)
    deadline = time.monotonic() + seconds
    try:
        while stop is None or not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(sockets, [], [], min(left, 0.2))
            for sock in ready:
                while True:
                    try:
                        n, addr = sock.recvfrom_into(buffer)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        # This host's own sends: never device traffic, and on ``lo`` every packet would
                        # otherwise be seen twice (out, then in) -- libpcap drops these the same way.
                        continue
                    stats.received += 1
                    yield time.time(), LINKTYPE_ETHERNET, bytes(view[:n])
    finally:
        for sock in sockets:
            try:
                packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
                stats.kernel_packets += packets
                stats.kernel_drops += drops
            except OSError:
                pass
            sock.close()


class Listener:
    """Passive listening in a background thread beside a scan (``camsweep scan --listen``).

    ``start()`` opens the packet sockets at once, so a missing privilege or interface is a usage
    error before the scan sends anything; ``finish()`` waits for the listening time to run out (or
    stops at once when ``interrupt`` is true) and returns the flow table and summary.
    """

    def __init__(self, iface: str, seconds: float, *, local_networks: list[str] | None = None) -> None:
        from scanner.passive.analyze import PassiveSummary
        from scanner.passive.flows import FlowTable

        if seconds <= 0:
            raise UsageError("--listen must be a positive number of seconds")
        self.iface = iface
        self.seconds = seconds
        self.stats = LiveStats()
        self.summary = PassiveSummary(files=[f"live:{iface}"])
        self.table = FlowTable(local_networks=local_networks or None)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._sockets = open_sockets(iface)
        self._thread = threading.Thread(target=self._run, name="camsweep-listen", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def _run(self) -> None:
        from scanner.passive.analyze import analyze_frames

        frames = capture(self.iface, self.seconds, self.stats, stop=self._stop, sockets=self._sockets)
        try:
            analyze_frames(self.table, self.summary, frames)
        except Exception as exc:  # a capture failure is reported, the scan's result is kept
            self.error = exc
        finally:
            frames.close()
            self.summary.read.packets = self.stats.received

    def finish(self, *, interrupt: bool = False) -> None:
        """Wait for the listening time to end (Ctrl-C, or ``interrupt``, stops it early)."""
        if interrupt:
            self._stop.set()
        try:
            while self._thread.is_alive():
                self._thread.join(0.2)
        except KeyboardInterrupt:
            self._stop.set()
            self._thread.join()
            self.summary.files[0] += " (interrupted)"
            raise
        finally:
            if not self._thread.is_alive() and self._thread.ident is None:
                for sock in self._sockets:  # never started: close what start() would have used
                    sock.close()

    def notes(self) -> list[str]:
        notes = [f"listened on {self.iface}: {self.stats.kernel_packets} packets passed the kernel filters, "
                 f"{self.stats.kernel_drops} dropped by the kernel"]
        if self.error is not None:
            notes.append(f"listening stopped early: {self.error}")
        return notes


def record_pcap(iface: str, seconds: float, output: str, bpf: str = "") -> int:
    """Write every frame seen on ``iface`` (matching ``bpf``) for ``seconds`` to a pcap file, whole
    (``camsweep lab pcap``). One packet socket with a large receive buffer, frames this host sent
    skipped (so ``lo`` does not record each packet twice); returns the number of frames written."""
    sock = _bound_socket(iface, _filter(bpf, FULL_BYTES) if bpf else None, 64 << 20)
    try:
        sock.settimeout(0.2)
        buffer = bytearray(FULL_BYTES)
        view = memoryview(buffer)
        count = 0
        deadline = time.monotonic() + seconds
        with open(output, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, FULL_BYTES, LINKTYPE_ETHERNET))
            while time.monotonic() < deadline:
                try:
                    n, addr = sock.recvfrom_into(buffer)
                except TimeoutError:
                    continue
                if addr[2] == PACKET_OUTGOING:
                    continue
                now = time.time()
                sec = int(now)
                out.write(struct.pack("<IIII", sec, int((now - sec) * 1e6), n, n))
                out.write(view[:n])
                count += 1
        return count
    finally:
        sock.close()
