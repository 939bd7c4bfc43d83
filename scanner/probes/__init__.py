"""Identification probes: pre-auth, read-only, targeted requests, one module per protocol (zgrab2 style).

Every module exposes the same small interface::

    async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                    hints: dict[str, str] | None = None) -> list[Observation]

``probe`` never raises (``asyncio.CancelledError`` aside): a refused connection, a timeout or a
hostile reply is an ``Observation`` with a status (``connection-refused``, ``io-timeout``,
``protocol-error`` ...), exactly like a successful answer is. Each module speaks only its own
protocol; the engine decides which probe runs on which port ("Gentle by default" in DESIGN.md,
perf_style.md A.2: no HTTP to an RTSP or vendor binary port, no banner waiting).

Rules every module follows:

* every connection is opened with ``ctx.open`` while holding ``ctx.host_slot(ip)`` (at most two
  concurrent connections per host, rate-limited, bound to the interface address);
* requests of one probe are sequential, one connection at a time, ``Connection: close``, with a
  short pause between them; one retry only, and only when connecting timed out;
* a connection is closed gracefully: the probe half-closes and waits (briefly, bounded) for the
  device to close its side, so a device never sees more connections than the probe holds slots;
* nothing is ever sent with credentials, and nothing that changes the device is ever sent.

Modules: ``http`` (GET / and vendor follow-ups), ``rtsp`` (OPTIONS + DESCRIBE), ``onvif``
(PRE_AUTH device calls + one anonymous GetDeviceInformation), ``dahua`` (RPC2_Login challenge),
``upnp`` (the LOCATION description), ``uniview`` (LAPI DeviceInfo), ``axis`` (VAPIX basic device
info). ``http`` also holds the small HTTP/1.1 client the others use.
"""

from __future__ import annotations

import importlib
import re
from typing import Protocol

from scanner.net import NetContext
from scanner.observations import Observation

PROBE_NAMES = ("http", "rtsp", "onvif", "dahua", "upnp", "uniview", "axis")


class ProbeFunction(Protocol):
    """The signature every probe module's ``probe`` has."""

    async def __call__(self, ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                       hints: dict[str, str] | None = None) -> list[Observation]: ...


def load_probe(name: str) -> ProbeFunction:
    """The ``probe`` function of module ``name`` (one of ``PROBE_NAMES``); KeyError otherwise."""
    if name not in PROBE_NAMES:
        raise KeyError(name)
    module = importlib.import_module(f"scanner.probes.{name}")
    function: ProbeFunction = module.probe
    return function


_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")


def normalise_mac(text: str) -> str | None:
    """``3CEF8C6101C0`` / ``3c-ef-8c-61-01-c0`` / ``3cef.8c61.01c0`` -> ``3c:ef:8c:61:01:c0``; None if not a MAC."""
    compact = _MAC_SEPARATORS.sub("", text or "")
    if not _HEX12.fullmatch(compact):
        return None
    compact = compact.lower()
    return ":".join(compact[i:i + 2] for i in range(0, 12, 2))
