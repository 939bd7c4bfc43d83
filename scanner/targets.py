"""Target parsing and the scope guard.

Accepted targets: a CIDR (``198.51.100.0/24``), a last-octet range (``198.51.100.10-40``), a
full range (``198.51.100.10-198.51.100.40``), an address, a host name, ``-iL FILE`` (one target
per line, ``#`` comments), and ``auto`` (the IPv4 subnet of ``--iface``).

The guard refuses public addresses unless ``allow_public`` and more than ``max_hosts`` hosts
(default 4096) -- camsweep is for the store network the inspector is plugged into.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import UsageError

DEFAULT_MAX_HOSTS = 4096
# Documentation and special-use ranges that are not "public" for the guard (the lab lives in
# 198.51.100.0/24 and 203.0.113.0/24).
_NON_PUBLIC = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")]


@dataclass
class TargetSet:
    specs: list[str]
    hosts: list[str]  # in scan order, de-duplicated
    networks: list[ipaddress.IPv4Network]  # the networks they came from (for ARP scope)


def is_public(addr: ipaddress.IPv4Address) -> bool:
    if any(addr in net for net in _NON_PUBLIC):
        return False
    return addr.is_global


def parse_targets(
    specs: Iterable[str],
    *,
    iface_network: ipaddress.IPv4Network | None = None,
    allow_public: bool = False,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> TargetSet:
    """Expand target specs into host addresses, enforcing the scope guard (UsageError)."""
    spec_list = [s.strip() for s in specs if s.strip()]
    if not spec_list:
        raise UsageError("no targets: give a CIDR, a range, an address, a host name, -iL FILE or auto")
    hosts: list[str] = []
    seen: set[str] = set()
    networks: list[ipaddress.IPv4Network] = []
    for spec in spec_list:
        addrs, network = _expand(spec, iface_network, max_hosts)
        if network is not None:
            networks.append(network)
        for addr in addrs:
            if is_public(addr) and not allow_public:
                raise UsageError(f"{spec}: {addr} is a public address; camsweep scans the local store "
                                 "network (use --allow-public if you really mean it)")
            text = str(addr)
            if text not in seen:
                seen.add(text)
                hosts.append(text)
            if len(hosts) > max_hosts:
                raise UsageError(f"more than {max_hosts} hosts in scope; narrow the targets or raise --max-hosts")
    return TargetSet(spec_list, hosts, networks)


def read_target_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read target list {path}: {exc.strerror or exc}") from exc
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.extend(line.split())
    return out


def _expand(
    spec: str, iface_network: ipaddress.IPv4Network | None, max_hosts: int
) -> tuple[list[ipaddress.IPv4Address], ipaddress.IPv4Network | None]:
    if spec == "auto":
        if iface_network is None:
            raise UsageError("target 'auto' needs --iface (the interface whose subnet to scan)")
        return _network_hosts(iface_network, spec, max_hosts), iface_network
    if "/" in spec:
        try:
            net = ipaddress.IPv4Network(spec, strict=False)
        except ValueError as exc:
            raise UsageError(f"bad target {spec!r}: {exc}") from exc
        return _network_hosts(net, spec, max_hosts), net
    if "-" in spec and spec.replace(".", "").replace("-", "").isdigit():
        start_text, _, end_text = spec.partition("-")
        try:
            start = ipaddress.IPv4Address(start_text)
            if "." in end_text:
                end = ipaddress.IPv4Address(end_text)
            else:
                end = ipaddress.IPv4Address(f"{start_text.rsplit('.', 1)[0]}.{int(end_text)}")
        except ValueError as exc:
            raise UsageError(f"bad range {spec!r}: {exc}") from exc
        if int(end) < int(start):
            raise UsageError(f"bad range {spec!r}: the end is before the start")
        if int(end) - int(start) + 1 > max_hosts:
            raise UsageError(f"{spec}: more than {max_hosts} hosts; narrow it or raise --max-hosts")
        return [ipaddress.IPv4Address(i) for i in range(int(start), int(end) + 1)], None
    try:
        return [ipaddress.IPv4Address(spec)], None
    except ValueError as exc:
        if spec.replace(".", "").isdigit():  # a malformed address is never looked up as a name
            raise UsageError(f"bad target {spec!r}: {exc}") from exc
    if not _looks_like_hostname(spec):
        raise UsageError(f"bad target {spec!r}: not a CIDR, range, address or host name")
    try:
        infos = socket.getaddrinfo(spec, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve target {spec!r}: {exc.strerror}") from exc
    return sorted({ipaddress.IPv4Address(info[4][0]) for info in infos}), None


def _network_hosts(net: ipaddress.IPv4Network, spec: str, max_hosts: int) -> list[ipaddress.IPv4Address]:
    if net.num_addresses > max_hosts + 2:
        raise UsageError(f"{spec} has {net.num_addresses} addresses, more than {max_hosts}; "
                         "narrow it or raise --max-hosts")
    if net.prefixlen >= 31:
        return list(net)
    return list(net.hosts())


def _looks_like_hostname(text: str) -> bool:
    if len(text) > 253 or not text:
        return False
    return all(part and len(part) <= 63 and all(c.isalnum() or c == "-" for c in part) for part in text.split("."))


def parse_local_networks(specs: Iterable[str] | None) -> list[str] | None:
    """``--local`` values (the store's own networks, CIDR or address, IPv4 or IPv6) normalised;
    None when none were given; UsageError naming the first bad one."""
    if not specs:
        return None
    out: list[str] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise UsageError(f"--local {part!r} is not a network (want a CIDR such as 192.168.1.0/24)") from None
    return out or None
