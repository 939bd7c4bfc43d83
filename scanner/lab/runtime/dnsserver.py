"""DNS for the lab: the gateway's resolver, the fake internet's "public" resolver, and the
client devices use to look cloud names up (so every lookup is a real packet on the wire).

Wire format through dnslib (RFC 1035); the server answers A records from a name->address map,
an empty NOERROR for other types of known names, and NXDOMAIN for everything else.
"""

from __future__ import annotations

import asyncio
import logging
import os

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

log = logging.getLogger(__name__)


def answer(query: bytes, names: dict[str, str], ttl: int = 300) -> bytes | None:
    """The reply to one query datagram, or None for garbage (dropped silently)."""
    try:
        request = DNSRecord.parse(query)
    except (DNSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    reply = request.reply()
    for question in request.questions:
        qname = str(question.qname).rstrip(".").lower()
        ip = names.get(qname)
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
            continue
        if question.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=ttl))
    return bytes(reply.pack())


async def query_a(host: str, server: str, port: int = 53, *, source_ip: str = "", timeout: float = 2.0,
                  retries: int = 2) -> str | None:
    """Send one A query for ``host`` to ``server`` and return the first address, or None."""
    loop = asyncio.get_running_loop()
    ident = int.from_bytes(os.urandom(2), "big")
    packet = DNSRecord.question(host, "A")
    packet.header.id = ident
    data = bytes(packet.pack())
    future: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: tuple[str, int]) -> None:
            if not future.done() and len(reply) >= 2 and int.from_bytes(reply[:2], "big") == ident:
                future.set_result(reply)

    transport, _ = await loop.create_datagram_endpoint(
        Client, local_addr=(source_ip or "0.0.0.0", 0), remote_addr=(server, port)
    )
    try:
        for _ in range(retries + 1):
            transport.sendto(data)
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), timeout)
                break
            except TimeoutError:
                continue
        else:
            return None
    finally:
        transport.close()
    try:
        record = DNSRecord.parse(reply)
    except (DNSError, ValueError, IndexError):
        return None
    for rr in record.rr:
        if rr.rtype == QTYPE.A:
            return str(rr.rdata)
    return None


class DnsResponder(asyncio.DatagramProtocol):
    """UDP DNS server answering from a fixed map."""

    def __init__(self, names: dict[str, str], on_query: object = None) -> None:
        self.names = {k.lower(): v for k, v in names.items()}
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        reply = answer(data, self.names)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
