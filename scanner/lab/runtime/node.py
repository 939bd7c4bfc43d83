"""The process that runs one lab node: an emulated device, the gateway, or the clouds.

A node process runs inside its own network namespace (netns mode) or binds its own 127.x
address (loopback mode). It owns every socket of that node, answers control requests on a
unix socket (unix sockets live in the file system, so they cross network namespaces), and
writes ``<name>.ready`` once every listener is bound.

Control protocol: one JSON object per line, e.g. ``{"cmd": "walkby"}`` -> ``{"ok": true, ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.lab.runtime.httpserver import TextProtocolServer

log = logging.getLogger(__name__)

ControlHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


@dataclass
class NodeSpec:
    """Everything a node process needs, written as JSON by ``lab up``."""

    name: str
    role: str  # device | gateway | cloud
    ip: str
    mode: str  # netns | loopback
    statedir: str
    seed: int
    profile: str | None = None
    extra_ips: list[str] = field(default_factory=list)
    resolver: str = ""  # the store's DNS resolver (the gateway)
    port_offset: int = 0  # loopback without root: privileged ports are shifted by this
    iface: str = "eth0"
    identity: dict[str, Any] = field(default_factory=dict)  # serial, mac, ... from the plan
    clouds: dict[str, str] = field(default_factory=dict)  # host -> ip (for the gateway / cloud node)
    cloud_endpoints: list[dict[str, Any]] = field(default_factory=list)
    certfile: str = ""
    keyfile: str = ""
    visitor_interval: float = 45.0  # mean seconds between simulated visitors (0: none)

    @classmethod
    def load(cls, path: str | Path) -> NodeSpec:
        return cls(**json.loads(Path(path).read_text()))

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.__dict__, indent=1, sort_keys=True))


class Node:
    """Runtime services for one node: listeners, outbound connections, events, control."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"{spec.seed}:{spec.name}")
        self.counters: dict[str, int] = {}
        self.state: dict[str, Any] = {}
        self.hung_reason: str | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._control: dict[str, ControlHandler] = {}
        self._walkby: list[Callable[[], Awaitable[None]]] = []
        self._watch: list[Callable[[float], Awaitable[None]]] = []
        self._dns_cache: dict[str, tuple[float, str]] = {}
        self._http_servers: list[TextProtocolServer] = []
        self._outbound: set[asyncio.StreamWriter] = set()
        self._inbound: set[asyncio.StreamWriter] = set()

    # ---- addressing -------------------------------------------------------------------
    @property
    def netns(self) -> bool:
        return self.spec.mode == "netns"

    def port(self, port: int) -> int:
        """The port actually bound for a protocol port (shifted in unprivileged loopback)."""
        if self.spec.port_offset and port < 1024:
            return port + self.spec.port_offset
        return port

    def bind_ip(self, ip: str | None = None) -> str:
        return ip or self.spec.ip

    # ---- listeners ----------------------------------------------------------------------
    async def tcp(
        self,
        port: int,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        *,
        ip: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
            # Runs synchronously at accept time, so close() finds the connection even if its
            # handler task never got to run.
            self._inbound = {w for w in self._inbound if not w.is_closing()}
            self._inbound.add(writer)
            return handler(reader, writer)

        server = await asyncio.start_server(
            accept, host=self.bind_ip(ip), port=self.port(port), ssl=tls, reuse_address=True, backlog=64
        )
        self._servers.append(server)

    async def http(
        self, port: int, server: TextProtocolServer, *, ip: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self._http_servers.append(server)
        await self.tcp(port, server.handle, ip=ip, tls=tls)

    async def udp(
        self,
        port: int,
        on_datagram: Callable[[bytes, tuple[str, int], UdpEndpoint], Awaitable[None] | None],
        *,
        group: str | None = None,
        ip: str | None = None,
        broadcast: bool = False,
    ) -> UdpEndpoint:
        """Listen on UDP ``port``; in netns mode also on multicast ``group`` and broadcasts."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if self.netns and (group or broadcast) and ip is None:
            sock.bind(("0.0.0.0", self.port(port)))
        else:
            sock.bind((self.bind_ip(ip), self.port(port)))
        if self.netns and group:
            mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(self.spec.ip))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.spec.ip))
        endpoint = UdpEndpoint(self, on_datagram)
        transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
        self._transports.append(transport)
        return endpoint

    def adopt(self, transport: asyncio.BaseTransport) -> None:
        """Close ``transport`` with the node (for endpoints created outside ``udp``/``tcp``)."""
        self._transports.append(transport)

    # ---- outbound ----------------------------------------------------------------------
    async def resolve(self, host: str, *, resolver: str | None = None) -> str | None:
        """Resolve ``host`` with a real DNS query to the store resolver (or ``resolver``)."""
        if _is_ipv4(host):
            return host
        cached = self._dns_cache.get(host)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        from scanner.lab.runtime.dnsserver import query_a

        server = resolver or self.spec.resolver
        ip = await query_a(host, server, self.port(53), source_ip=self.spec.ip)
        self.bump("dns_queries")
        if ip:
            self._dns_cache[host] = (time.monotonic() + 300.0, ip)
        return ip

    async def open(
        self, host: str, port: int, *, tls: bool = False, resolver: str | None = None, timeout: float = 5.0
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to a cloud by name (resolving it first); None when unreachable."""
        ip = await self.resolve(host, resolver=resolver)
        if ip is None:
            self.bump("dns_failures")
            return None
        ctx: ssl.SSLContext | None = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    ip,
                    self.port(port),
                    ssl=ctx,
                    server_hostname=host if tls else None,
                    local_addr=(self.spec.ip, 0),
                ),
                timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError):
            self.bump("connect_failures")
            return None
        self._outbound = {w for w in self._outbound if not w.is_closing()}
        self._outbound.add(writer)
        return reader, writer

    async def udp_client(self) -> tuple[asyncio.DatagramTransport, UdpEndpoint]:
        loop = asyncio.get_running_loop()
        endpoint = UdpEndpoint(self, lambda _d, _a, _e: None)
        transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, local_addr=(self.spec.ip, 0))
        self._transports.append(transport)
        return transport, endpoint

    # ---- behaviour ----------------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", exc_info=task.exception())

    def every(self, interval: float, action: Callable[[], Awaitable[None]], *, jitter: float = 0.1,
              first: float | None = None) -> None:
        """Run ``action`` every ``interval`` seconds (+-jitter), starting after ``first``."""

        async def loop() -> None:
            await asyncio.sleep(self.rng.uniform(0.2, 1.5) if first is None else first)
            while True:
                if not self.hung_reason:
                    try:
                        await action()
                    except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                        self.bump("periodic_errors")
                        log.debug("periodic action failed: %s", exc)
                await asyncio.sleep(interval * self.rng.uniform(1 - jitter, 1 + jitter))

        self.spawn(loop())

    def on_walkby(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._walkby.append(callback)

    def on_watch(self, callback: Callable[[float], Awaitable[None]]) -> None:
        self._watch.append(callback)

    async def walkby(self) -> int:
        """A simulated visitor walks past: every face-capture behaviour fires once."""
        self.bump("walkbys")
        for cb in self._walkby:
            self.spawn(cb())
        return len(self._walkby)

    async def watch(self, seconds: float) -> int:
        """Someone opens the live view in the vendor app for ``seconds``."""
        self.bump("watch_sessions")
        for cb in self._watch:
            self.spawn(cb(seconds))
        return len(self._watch)

    def bump(self, counter: str, by: int = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + by

    def hang(self, reason: str) -> None:
        """The device stops answering on every service (fragile firmware)."""
        if self.hung_reason is None:
            self.hung_reason = reason
            log.warning("device hung: %s", reason)
            for server in self._http_servers:
                server.hung.set()

    def control(self, cmd: str, handler: ControlHandler) -> None:
        self._control[cmd] = handler

    # ---- lifecycle ----------------------------------------------------------------------
    async def serve_control(self) -> None:
        path = Path(self.spec.statedir) / "nodes" / f"{self.spec.name}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = await asyncio.start_unix_server(self._handle_control, path=str(path))
        self._servers.append(server)

    async def _handle_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                    reply = await self._dispatch_control(msg)
                except (ValueError, TypeError, KeyError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _dispatch_control(self, msg: dict[str, Any]) -> dict[str, Any]:
        cmd = msg.get("cmd")
        if cmd == "ping":
            return {"ok": True, "name": self.spec.name, "pid": os.getpid()}
        if cmd == "status":
            return {
                "ok": True,
                "name": self.spec.name,
                "role": self.spec.role,
                "profile": self.spec.profile,
                "ip": self.spec.ip,
                "hung": self.hung_reason,
                "counters": dict(self.counters),
                "state": self.state,
            }
        if cmd == "walkby":
            return {"ok": True, "behaviours": await self.walkby()}
        if cmd == "watch":
            return {"ok": True, "behaviours": await self.watch(float(msg.get("seconds", 10)))}
        handler = self._control.get(str(cmd))
        if handler is None:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        result = handler(msg)
        if not isinstance(result, dict):
            result = await result
        return result

    def start_visitors(self) -> None:
        """Seeded visitor arrivals (exponential gaps) for face-capture behaviours."""
        if not self._walkby or self.spec.visitor_interval <= 0:
            return

        async def visitors() -> None:
            while True:
                await asyncio.sleep(self.rng.expovariate(1.0 / self.spec.visitor_interval))
                if not self.hung_reason:
                    await self.walkby()

        self.spawn(visitors())

    def mark_ready(self) -> None:
        ready = Path(self.spec.statedir) / "nodes" / f"{self.spec.name}.ready"
        ready.write_text(str(os.getpid()))

    async def close(self) -> None:
        """Stop listening, cancel every other task of this loop (open connections close)."""
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        connections = self._outbound | self._inbound  # heartbeats, uploads, clients mid-request
        for writer in connections:
            writer.close()
        for writer in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        await asyncio.sleep(0)


class UdpEndpoint(asyncio.DatagramProtocol):
    """Datagram protocol that forwards to a callback and never raises on bad input."""

    def __init__(
        self,
        node: Node,
        on_datagram: Callable[[bytes, tuple[str, int], UdpEndpoint], Awaitable[None] | None],
    ) -> None:
        self.node = node
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.node.hung_reason:
            return
        try:
            result = self.on_datagram(data, addr, self)
            if result is not None:
                self.node.spawn(result)
        except Exception:  # hostile datagrams must never kill the node
            log.exception("datagram handler failed")

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.node.hung_reason:
            self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return text.count(".") == 3


RoleBuilder = Callable[[Node], Awaitable[None]]


async def run_node(spec: NodeSpec, build: RoleBuilder) -> None:
    node = Node(spec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.serve_control()
    await build(node)
    node.start_visitors()
    node.mark_ready()
    await stop.wait()
    await node.close()
