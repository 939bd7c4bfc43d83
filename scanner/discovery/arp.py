"""Layer 2: who answers ARP, with which MAC, and which IEEE organisation owns that MAC's prefix.

* ``arp_sweep`` -- sent: one broadcast ARP who-has (Ethernet dst ff:ff:ff:ff:ff:ff, ARP op 1) per
  host address of the network, through scapy's ``srp`` on the given interface, paced at ``rate``
  frames/s, silent addresses asked again ``retry`` times; parsed: the is-at answers (op 2),
  ``psrc`` and ``hwsrc``. Needs CAP_NET_RAW; without it a ``PrivilegeError`` says what still works.
* ``neighbours`` -- the unprivileged fallback: after any TCP/UDP exchange with a host on the same
  link the kernel has resolved its MAC; ``/proc/net/arp`` lists the complete entries (flag
  ATF_COM 0x2).
* ``oui_observation`` -- the IEEE registry lookup (netaddr's bundled MA-L and IAB tables). A
  locally administered MAC (bit 0x02 of the first octet: randomised phones, VMs, containers) has
  no registered owner and gets no ``oui_org``.

Observations: source ``arp`` (fields ``mac``; ``other_macs`` when one address answers with
several -- an address conflict or a proxy) and source ``oui`` (fields ``mac``, ``oui``, ``oui_org``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from scanner.discovery import normalise_mac
from scanner.errors import PrivilegeError, UsageError
from scanner.observations import Observation

log = logging.getLogger(__name__)

PROC_NET_ARP = "/proc/net/arp"
ATF_COM = 0x2  # neighbour entry complete (MAC resolved)
CAP_NET_RAW = 13
MAX_SWEEP_HOSTS = 4096  # the scope guard's default; an ARP sweep is for the link the inspector is on
DEFAULT_RATE = 500.0  # frames/s; arp-scan's default bandwidth (256 kbit/s) is ~380 frames/s
RETRY_WAIT = 0.5  # seconds to wait for answers before asking the silent addresses again
PRIVILEGE_MESSAGE = (
    "ARP sweep needs root or CAP_NET_RAW (raw sockets); TCP, unicast and multicast discovery still work, "
    "and MAC addresses then come from the kernel neighbour table"
)


def _has_cap_net_raw() -> bool:
    """CAP_NET_RAW in the effective set (root in a container may lack it); euid 0 if /proc says nothing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def _sweep_addresses(network: str) -> list[str]:
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError as exc:
        raise UsageError(f"not a network: {network!r} ({exc})") from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise UsageError(f"ARP is IPv4 only: {network}")
    if net.num_addresses > MAX_SWEEP_HOSTS + 2:
        raise UsageError(f"{network} has {net.num_addresses} addresses; ARP sweeps stop at {MAX_SWEEP_HOSTS}")
    return [str(a) for a in net.hosts()] if net.prefixlen < 31 else [str(a) for a in net]


def arp_sweep(iface: str, network: str, *, timeout: float = 1.0, retry: int = 1, rate: float | None = DEFAULT_RATE,
              source_ip: str | None = None) -> list[Observation]:
    """ARP who-has for every host address of ``network`` on ``iface``; one Observation per answering address.

    Addresses that stay silent are asked again, ``retry`` more times; every round but the last
    waits only ``min(timeout, RETRY_WAIT)`` for answers (wired ARP replies take well under a
    millisecond), the last one ``timeout``. Frames are paced at ``rate`` per second (None: as fast
    as scapy sends). Blocking (scapy): run it in a thread from async code. Raises
    ``PrivilegeError`` without CAP_NET_RAW, ``UsageError`` for a bad or oversized network.
    """
    addresses = _sweep_addresses(network)
    if not _has_cap_net_raw():
        raise PrivilegeError(PRIVILEGE_MESSAGE)
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    found: dict[str, list[str]] = {}
    pending = addresses
    rounds = 1 + max(0, retry)
    for round_no in range(rounds):
        wait = timeout if round_no == rounds - 1 else min(timeout, RETRY_WAIT)
        request = ARP(op=1, pdst=pending) if source_ip is None else ARP(op=1, pdst=pending, psrc=source_ip)
        try:
            answered, _unanswered = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / request, iface=iface, timeout=wait,
                                        inter=(1.0 / rate) if rate else 0, verbose=False)
        except PermissionError as exc:
            raise PrivilegeError(PRIVILEGE_MESSAGE) from exc
        for _sent, received in answered:
            if ARP not in received or received[ARP].op != 2:  # is-at only
                continue
            mac = normalise_mac(str(received[ARP].hwsrc))
            if mac is None:
                continue
            macs = found.setdefault(str(received[ARP].psrc), [])
            if mac not in macs:
                macs.append(mac)
        pending = [ip for ip in pending if ip not in found]
        if not pending:
            break
    result = []
    for ip, macs in found.items():
        fields = {"mac": macs[0]}
        if len(macs) > 1:
            fields["other_macs"] = " ".join(macs[1:8])
        result.append(Observation(ip=ip, source="arp", transport="arp", fields=fields))
    return result


def neighbours(iface: str | None = None, *, path: str = PROC_NET_ARP) -> dict[str, str]:
    """Complete IPv4 neighbour entries ``{ip: mac}`` from the kernel table (no privileges needed).

    ``/proc/net/arp`` columns: IP address, HW type, Flags, HW address, Mask, Device.
    """
    try:
        lines = Path(path).read_text(errors="replace").splitlines()[1:]
    except OSError as exc:
        log.debug("cannot read %s: %s", path, exc)
        return {}
    table: dict[str, str] = {}
    for line in lines:
        columns = line.split()
        if len(columns) < 6:
            continue
        ip, _hw_type, flags, hw_address, _mask, device = columns[:6]
        if iface is not None and device != iface:
            continue
        try:
            complete = int(flags, 16) & ATF_COM
        except ValueError:
            continue
        mac = normalise_mac(hw_address)
        if complete and mac:
            table[ip] = mac
    return table


def neighbour_observations(iface: str | None = None, hosts: list[str] | None = None,
                           *, path: str = PROC_NET_ARP) -> list[Observation]:
    """``neighbours`` as Observations (source ``arp``, ``arp.origin`` = ``neighbour-table``), for ``hosts`` or all."""
    wanted = set(hosts) if hosts is not None else None
    return [Observation(ip=ip, source="arp", transport="arp", fields={"mac": mac, "arp.origin": "neighbour-table"})
            for ip, mac in neighbours(iface, path=path).items() if wanted is None or ip in wanted]


def oui_organisation(mac: str) -> str | None:
    """The IEEE registrant of ``mac``'s prefix (MA-L, or IAB), None if unknown or locally administered."""
    normalised = normalise_mac(mac)
    if normalised is None or int(normalised[:2], 16) & 0x02:
        return None
    from netaddr import EUI, NotRegisteredError

    try:
        eui = EUI(normalised)
        if eui.is_iab():
            with_iab: str = eui.iab.registration().org
            return with_iab.strip() or None
        org: str = eui.oui.registration().org
        return org.strip() or None
    except (NotRegisteredError, ValueError, IndexError, KeyError):
        return None


def oui_observation(ip: str, mac: str) -> Observation:
    """Observation(source ``oui``): ``mac``, ``oui`` (first three octets) and ``oui_org`` when registered."""
    normalised = normalise_mac(mac)
    if normalised is None:
        return Observation(ip=ip, source="oui", transport="arp", status="protocol-error",
                           error=f"not a MAC address: {mac[:64]!r}")
    fields = {"mac": normalised, "oui": normalised[:8]}
    org = oui_organisation(normalised)
    if org:
        fields["oui_org"] = org
    return Observation(ip=ip, source="oui", transport="arp", fields=fields)
