"""mDNS / DNS-SD advertisements for lab devices, through the ``zeroconf`` library.

Only in netns mode: each device's zeroconf instance is bound to the device's own interface
address (``interfaces=[node.spec.ip]``), so announcements and answers stay inside the lab's
switch namespace. In loopback mode nothing is registered and nothing is sent (multicast from
the host namespace is not allowed), which is why ``service_infos`` is separate and unit-testable.

Registration (probing all names at once, then the announcements) runs in the background so the node becomes
ready at once. Nodes have no shutdown hook: the services are unregistered (goodbye packets) when
the node's tasks are cancelled by ``Node.close``, and every live instance is also kept in
``ADVERTISERS`` so nothing is garbage-collected before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from scanner.lab.runtime.node import Node

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0


@dataclass
class MdnsService:
    """One DNS-SD service instance: ``<instance>.<service_type>`` on ``port`` with TXT ``txt``."""

    service_type: str  # e.g. "_axis-video._tcp.local."
    instance: str  # e.g. "AXIS P3245-LV - ACCC8E123456"
    port: int
    txt: dict[str, str] = field(default_factory=dict)


def service_infos(node: Node, hostname: str, services: list[MdnsService]) -> list[ServiceInfo]:
    """zeroconf ``ServiceInfo`` records for ``services`` on host ``<hostname>.local.`` (A = node ip)."""
    server = f"{hostname}.local."
    return [
        ServiceInfo(
            svc.service_type,
            f"{svc.instance}.{svc.service_type}",
            port=svc.port,
            properties=dict(svc.txt),
            server=server,
            parsed_addresses=[node.spec.ip],
        )
        for svc in services
    ]


class MdnsAdvertiser:
    """The live registration of one node's services (netns mode)."""

    def __init__(self, node: Node, infos: list[ServiceInfo]) -> None:
        self.node = node
        self.infos = infos
        self.zeroconf: AsyncZeroconf | None = None
        self.registered: list[str] = []

    async def run(self) -> None:
        """Register every service, then hold them until cancelled; unregister on the way out."""
        try:
            zc = self.zeroconf = AsyncZeroconf(interfaces=[self.node.spec.ip])
            # Probe every name at once, then wait for all the announcements.
            announcements = await asyncio.gather(*(zc.async_register_service(info) for info in self.infos))
            await asyncio.gather(*announcements)
            for info in self.infos:
                self.registered.append(info.name)
                self.node.bump("mdns_services")
            await asyncio.Event().wait()
        except Exception:  # a broken advertisement must not take the node down
            log.exception("mDNS registration failed")
            self.node.bump("mdns_failures")
        finally:
            await self.close()

    async def close(self) -> None:
        """Send goodbyes and close the sockets (bounded: the loop may be shutting down)."""
        zc, self.zeroconf = self.zeroconf, None
        if zc is None:
            return
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(zc.async_close(), CLOSE_TIMEOUT_S)


ADVERTISERS: list[MdnsAdvertiser] = []


def advertise(node: Node, hostname: str, services: list[MdnsService]) -> MdnsAdvertiser | None:
    """Start advertising ``services`` (netns mode only); None when skipped."""
    if not node.netns:
        return None
    advertiser = MdnsAdvertiser(node, service_infos(node, hostname, services))
    ADVERTISERS.append(advertiser)
    node.spawn(advertiser.run())
    return advertiser
