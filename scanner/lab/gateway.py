"""The store's router: forwards to the fake internet (kernel) and answers DNS for the LAN."""

from __future__ import annotations

import asyncio

from scanner.lab.runtime.dnsserver import DnsResponder
from scanner.lab.runtime.node import Node


async def build_gateway(node: Node) -> None:
    loop = asyncio.get_running_loop()
    responder = DnsResponder(node.spec.clouds)
    transport, _ = await loop.create_datagram_endpoint(lambda: responder, local_addr=(node.spec.ip, node.port(53)))
    node.adopt(transport)
    node.control("dns", lambda _msg: {"ok": True, "queries": responder.queries})
