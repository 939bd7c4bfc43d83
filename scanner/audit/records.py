"""What one device's audit found, before it is merged into the ``Device`` record.

Vendor clients fill an ``AuditReport``: which endpoints they read, configured destinations
(``Destination``), and facts (``Fact``: face capability, face capture switched on, face
libraries, identity). ``scanner.audit.runner`` turns them into ``CloudLink``s and ``Evidence``.
Nothing in here ever holds a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Device.audit.status values (result document).
OK = "ok"
PARTIAL = "partial"
LOCKED = "locked"
AUTH_FAILED = "auth-failed"
NO_CREDENTIALS = "no-credentials"
UNSUPPORTED = "unsupported"
UNREACHABLE = "unreachable"
STATUSES = (OK, PARTIAL, LOCKED, AUTH_FAILED, NO_CREDENTIALS, UNSUPPORTED, UNREACHABLE)

# What a configured destination receives.
PICTURES = "pictures"
EVENTS = "events"
VIDEO = "video"
STATUS = "status"


@dataclass
class Destination:
    """A server the device is configured to talk to (read from its own configuration)."""

    host: str | None  # a name, or an address, as configured
    port: int | None
    protocol: str | None  # e.g. https, http, hik-connect, isup, dahua-p2p
    what: str  # pictures | events | video | status
    source: str  # "audit:isapi:/ISAPI/System/Network/EZVIZ"
    detail: str  # a short excerpt of the configuration (never a secret)
    operator_hint: str | None = None  # the operator a vendor switch implies when no host is configured


@dataclass
class Fact:
    """One claim the configuration supports (becomes an ``Evidence``)."""

    field: str  # face_capable | face_capture_enabled | face_library | model | firmware | serial | mac
    value: Any
    source: str
    confidence: float
    detail: str = ""


@dataclass
class AuditReport:
    """Everything one device's audit produced; ``status`` is settled by the runner."""

    read: list[str] = field(default_factory=list)  # endpoint names answered
    protocols: list[str] = field(default_factory=list)  # isapi, dahua-cgi, dahua-rpc2, onvif, lapi, dvrip
    destinations: list[Destination] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # endpoints that failed after a good login
    unreachable: list[str] = field(default_factory=list)  # protocols that could not be reached at all
    unsupported: list[str] = field(default_factory=list)  # protocols the device turned out not to speak

    def fact(self, field_name: str, value: Any, source: str, confidence: float, detail: str = "") -> None:
        self.facts.append(Fact(field_name, value, source, confidence, detail))

    def mark_read(self, name: str) -> None:
        if name not in self.read:
            self.read.append(name)

    def uses(self, protocol: str) -> None:
        if protocol not in self.protocols:
            self.protocols.append(protocol)
