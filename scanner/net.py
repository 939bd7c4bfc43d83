"""The network seam every discovery module and probe goes through.

``NetContext`` enforces the gentle defaults (DESIGN.md): at most ``per_host`` concurrent
connections per host, a global cap on new connections/datagrams per second, sockets bound to
the chosen interface's address (a multi-homed inspector never sends on the wrong interface),
and an optional port map (the unprivileged loopback lab serves port 80 at 10080). Unit tests
replace it with a fake that answers from canned bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class NetOptions:
    source_ip: str | None = None  # the interface address to send from
    iface: str | None = None
    per_host: int = 2
    rate: float = 300.0  # new connections + datagrams per second, all hosts together
    connect_timeout: float = 1.5
    read_timeout: float = 3.0
    port_map: dict[int, int] = field(default_factory=dict)


class RateLimiter:
    """Token bucket: ``rate`` events per second with a burst of ``rate / 10`` (at least 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 10)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class NetContext:
    def __init__(self, options: NetOptions | None = None) -> None:
        self.options = options or NetOptions()
        self.limiter = RateLimiter(self.options.rate)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self.connections = 0
        self.max_per_host_seen: dict[str, int] = {}
        self._active: dict[str, int] = {}

    def port(self, port: int) -> int:
        return self.options.port_map.get(port, port)

    @contextlib.asynccontextmanager
    async def host_slot(self, ip: str) -> AsyncIterator[None]:
        """Hold one of the host's ``per_host`` connection slots."""
        slot = self._host_slots.setdefault(ip, asyncio.Semaphore(self.options.per_host))
        async with slot:
            self._active[ip] = self._active.get(ip, 0) + 1
            self.max_per_host_seen[ip] = max(self.max_per_host_seen.get(ip, 0), self._active[ip])
            try:
                yield
            finally:
                self._active[ip] -= 1

    async def open(self, ip: str, port: int, *, tls: bool = False, server_hostname: str | None = None,
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a TCP (or TLS, unverified) connection; the caller must hold ``host_slot(ip)``.

        Raises OSError/TimeoutError; callers turn them into an Observation status.
        """
        await self.limiter.acquire()
        self.connections += 1
        ctx: ssl.SSLContext | None = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        local = (self.options.source_ip, 0) if self.options.source_ip else None
        return await asyncio.wait_for(
            asyncio.open_connection(ip, self.port(port), ssl=ctx, server_hostname=server_hostname if tls else None,
                                    local_addr=local),
            self.options.connect_timeout + (2.0 if tls else 0.0),
        )

    def udp_socket(self, *, broadcast: bool = False, multicast: bool = False) -> socket.socket:
        """A non-blocking UDP socket bound to the interface address (ephemeral port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if self.options.iface and (broadcast or multicast):
            with contextlib.suppress(OSError):  # needs CAP_NET_RAW; the bound address already picks the iface
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.options.iface.encode())
        if multicast and self.options.source_ip:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.options.source_ip))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind((self.options.source_ip or "0.0.0.0", 0))
        return sock


def status_of(exc: BaseException) -> str:
    """Map a network exception to a zgrab2-style status string."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection-refused"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "io-timeout"
    if isinstance(exc, ssl.SSLError):
        return "handshake-error"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError)):
        return "connection-closed"
    if isinstance(exc, OSError):
        return "connection-timeout" if exc.errno in (110, 113) else "unknown-error"
    return "unknown-error"
