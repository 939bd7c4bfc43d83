"""Builds and removes the lab's network namespaces with iproute2 (netns mode).

Topology (DESIGN.md, "The lab")::

    [device ns eth0] --veth-- p-dNN ┐
    [gateway ns lan0] --veth-- p-gw ├─ br0 in the switch ns (multicast snooping off)
    [inspector ns eth0] -- p-insp   ┘
    every port's ingress is mirrored (tc u32 match-all + mirred) to p-mirror -> inspector mirror0
    [gateway ns wan0 203.0.113.1] --veth-- [internet ns wan0: 203.0.113.53 + one address per cloud]

Every frame enters the switch through exactly one port, so mirroring each port's ingress
gives the inspector one copy of all switch traffic. (The kernels we target have no root
``prio`` qdisc or ``matchall`` classifier, hence ingress + u32.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from scanner.errors import LabError, PrivilegeError
from scanner.lab.plan import LabPlan

LAN_PREFIX = 24


def have_netns_privileges() -> bool:
    return os.geteuid() == 0


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    except FileNotFoundError as exc:
        raise LabError("iproute2 ('ip') is not installed; netns mode needs it") from exc
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc


def ns_exec(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ip("netns", "exec", ns, *cmd, check=check)


def list_namespaces(prefix: str) -> list[str]:
    proc = ip("netns", "list", check=False)
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix)]


def build(plan: LabPlan) -> None:
    """Create every namespace, link and address of the plan; raise LabError on failure."""
    if not have_netns_privileges():
        raise PrivilegeError("netns mode needs root (CAP_NET_ADMIN); use --mode loopback without privileges")
    ns = plan.namespaces
    sw, gw, net, insp = ns["switch"], ns["gateway"], ns["internet"], ns["inspector"]
    for name in [sw, gw, net, insp, *(d.namespace for d in plan.devices if d.namespace)]:
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
    ip("-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0")
    ip("-n", sw, "link", "set", "br0", "up")
    # The mirror port first, so every other port can mirror into it.
    ip("-n", sw, "link", "add", "p-mirror", "type", "veth", "peer", "name", "mirror0", "netns", insp)
    ip("-n", sw, "link", "set", "p-mirror", "up")
    ip("-n", insp, "link", "set", "mirror0", "promisc", "on", "up")

    _attach(plan, sw, "p-gw", gw, "lan0", None, plan.gateway_ip, default_route=False)
    _attach(plan, sw, "p-insp", insp, "eth0", "00:1b:21:0a:0b:0c", plan.inspector_ip)
    for index, device in enumerate(plan.devices):
        assert device.namespace is not None
        _attach(plan, sw, f"p-d{index:02d}", device.namespace, "eth0", device.mac, device.ip)

    # Gateway <-> fake internet.
    ip("-n", gw, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0", "netns", net)
    ip("-n", gw, "addr", "add", f"{plan.gateway_wan_ip}/24", "dev", "wan0")
    ip("-n", gw, "link", "set", "wan0", "up")
    ip("-n", net, "addr", "add", f"{plan.outside_resolver}/24", "dev", "wan0")
    for cloud_ip in sorted(set(plan.cloud_ips.values())):
        ip("-n", net, "addr", "add", f"{cloud_ip}/32", "dev", "wan0")
    ip("-n", net, "link", "set", "wan0", "up")
    ip("-n", net, "route", "add", plan.subnet, "via", plan.gateway_wan_ip)
    ns_exec(gw, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")


def _attach(plan: LabPlan, sw: str, port: str, ns: str, ifname: str, mac: str | None, addr: str,
            *, default_route: bool = True) -> None:
    ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
    if mac:
        ip("-n", ns, "link", "set", ifname, "address", mac)
    ip("-n", ns, "addr", "add", f"{addr}/{LAN_PREFIX}", "dev", ifname)
    ip("-n", ns, "link", "set", ifname, "up")
    if default_route:
        ip("-n", ns, "route", "add", "default", "via", plan.gateway_ip)
    ip("-n", sw, "link", "set", port, "master", "br0", "up")
    ns_exec(sw, "tc", "qdisc", "add", "dev", port, "ingress")
    ns_exec(sw, "tc", "filter", "add", "dev", port, "parent", "ffff:", "protocol", "all", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "p-mirror")


def namespace_pids(ns: str) -> list[int]:
    proc = ip("netns", "pids", ns, check=False)
    return [int(x) for x in proc.stdout.split() if x.isdigit()]


def kill_pids(pids: list[int], grace: float = 2.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left."""
    alive = [p for p in pids if _signal(p, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _exists(p)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)


def teardown(prefix: str, extra_pids: list[int] | None = None) -> list[str]:
    """Kill every process in the lab's namespaces and delete them. Returns what was removed."""
    names = list_namespaces(prefix)
    pids: list[int] = list(extra_pids or [])
    for name in names:
        pids.extend(namespace_pids(name))
    kill_pids(sorted(set(pids)))
    for name in names:
        ip("netns", "del", name, check=False)
    left = list_namespaces(prefix)
    if left:
        raise LabError(f"could not remove namespaces: {', '.join(left)}")
    return names


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
