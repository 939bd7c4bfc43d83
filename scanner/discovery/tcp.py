"""TCP connect sweep: which ports are open, and which hosts are alive (DESIGN.md "Gentle by default").

Sent: a TCP handshake to every host x port -- nothing else: no byte of payload, and the socket is
closed (FIN) as soon as it is connected, so even a fragile camera that hangs on stray bytes only
sees a connection come and go. Every attempt holds one of the host's ``ctx.host_slot`` (at most 2
concurrent connections per host), passes the global rate limiter (``ctx.open``), and at most
``MAX_CONCURRENT`` attempts run at once overall.

Reported (liveness encoding):

* one Observation per **open** port: ``source="tcp"``, ``port=<port>``, ``status="success"``;
* one **per-host summary** Observation with ``port=None`` for every host swept, whose ``status``
  says whether the host answered at all:

  - ``"success"``: at least one port open,
  - ``"connection-refused"``: nothing open, but the host answered (a RST is an answer: alive),
  - ``"io-timeout"``: no port answered within ``timeout`` (down, or filtering everything),

  and whose fields are ``alive`` (``"true"``/``"false"``), ``open_ports`` (space-joined),
  ``refused`` and ``silent`` (counts of refused and unanswered ports).

Refused and silent ports are not reported one by one (a /24 x 19 ports would be ~5000 records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from scanner.net import NetContext, status_of
from scanner.observations import Observation

log = logging.getLogger(__name__)

SOURCE = "tcp"
DEFAULT_PORTS = [80, 443, 554, 8000, 8080, 8443, 8554, 2020, 37777, 34567, 5000, 8899, 9000, 6668, 631, 9100, 445,
                 135, 5001]
MAX_CONCURRENT = 256  # connection attempts in flight, all hosts together
CLOSE_TIMEOUT = 1.0


@dataclass
class _HostTally:
    open_ports: list[int] = field(default_factory=list)
    refused: int = 0
    silent: int = 0
    other: dict[str, int] = field(default_factory=dict)  # other statuses (unknown-error, …) by count


async def _connect(ctx: NetContext, ip: str, port: int, timeout: float, gate: asyncio.Semaphore) -> str:
    """One connect-and-close; returns the status string (never raises for network outcomes)."""
    async with ctx.host_slot(ip), gate:
        try:
            _reader, writer = await asyncio.wait_for(ctx.open(ip, port), timeout)
        except (OSError, TimeoutError) as exc:
            return status_of(exc)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
        return "success"


async def sweep(ctx: NetContext, hosts: list[str], ports: list[int], *, timeout: float) -> list[Observation]:
    """Connect to every host x port; Observations for open ports plus one liveness summary per host.

    ``timeout`` bounds each connection attempt (rate-limiter wait included). Hosts are
    interleaved port by port, so one slow host never holds the whole sweep.
    """
    hosts = list(dict.fromkeys(hosts))
    ports = list(dict.fromkeys(ports))
    gate = asyncio.Semaphore(MAX_CONCURRENT)
    tallies = {ip: _HostTally() for ip in hosts}

    async def attempt(ip: str, port: int) -> None:
        status = await _connect(ctx, ip, port, timeout, gate)
        tally = tallies[ip]
        if status == "success":
            tally.open_ports.append(port)
        elif status == "connection-refused":
            tally.refused += 1
        elif status in ("io-timeout", "connection-timeout"):
            tally.silent += 1
        else:
            tally.other[status] = tally.other.get(status, 0) + 1

    await asyncio.gather(*(attempt(ip, port) for port in ports for ip in hosts))

    result: list[Observation] = []
    for ip, tally in tallies.items():
        open_ports = [p for p in ports if p in tally.open_ports]
        for port in open_ports:
            result.append(Observation(ip=ip, source=SOURCE, port=port, transport="tcp", status="success"))
        if open_ports:
            status = "success"
        elif tally.refused:
            status = "connection-refused"
        else:
            status = "io-timeout"
        fields = {
            "alive": "true" if open_ports or tally.refused else "false",
            "open_ports": " ".join(str(p) for p in open_ports),
            "refused": str(tally.refused),
            "silent": str(tally.silent),
        }
        if tally.other:
            fields["other"] = " ".join(f"{k}={v}" for k, v in sorted(tally.other.items()))
        result.append(Observation(ip=ip, source=SOURCE, port=None, transport="tcp", status=status,
                                  fields={k: v for k, v in fields.items() if v}))
    return result
