"""What a vendor client gets for one device: the credential, the login guard, HTTP, the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from scanner.audit.creds import Credential
from scanner.audit.records import AuditReport
from scanner.audit.transport import DeviceHttp, HttpReply, LoginGuard, NetSettings
from scanner.models import Device

# Reading outcomes of one endpoint.
READ, NOT_SUPPORTED, FAILED, REFUSED = "read", "not-supported", "failed", "refused"


@dataclass
class DeviceAudit:
    device: Device
    credential: Credential
    net: NetSettings
    guard: LoginGuard = field(default_factory=LoginGuard)
    report: AuditReport = field(default_factory=AuditReport)
    _http: dict[tuple[int, bool], DeviceHttp] = field(default_factory=dict)

    @property
    def ip(self) -> str:
        return self.device.ip

    def open_ports(self) -> set[int]:
        return {s.port for s in self.device.services if s.transport == "tcp" and s.status == "open"}

    def http(self, port: int, *, tls: bool = False) -> DeviceHttp:
        """The device's HTTP session for this port (one per port, reused by every request)."""
        key = (port, tls)
        if key not in self._http:
            self._http[key] = DeviceHttp(self.ip, port, tls=tls, credential=self.credential, guard=self.guard,
                                         net=self.net)
        return self._http[key]

    def web_port(self) -> tuple[int, bool]:
        """Port 80 when the scan saw it open, else 443 (TLS), else 80."""
        ports = self.open_ports()
        if 80 in ports or 443 not in ports:
            return 80, False
        return 443, True

    def close(self) -> None:
        for http in self._http.values():
            http.close()
        self._http.clear()


def refused_after_credentials(reply: HttpReply) -> bool:
    """A 401 to a request that carried the credential: the device refused the login."""
    return reply.status == 401 and reply.sent_credentials
