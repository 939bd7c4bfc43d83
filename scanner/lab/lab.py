"""``camsweep lab``: bring the emulated store network up and down, inspect and drive it.

State of lab N lives in ``<state root>/lab-N/``: ``state.json`` (mode, namespaces, node pids),
``manifest.json``, ``nodes/<name>.{json,sock,ready}`` and ``logs/<name>.log``. Names carry the
lab id (namespaces ``cswN-…``, loopback addresses ``127.77.N.x``), so two labs never collide.
A lab whose processes died (a crashed run) is detected as stale and cleaned before reuse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import scanner
from scanner.errors import LabError, UsageError
from scanner.lab import control, topology
from scanner.lab.plan import LabChanges, LabPlan, make_plan, manifest, ns_prefix
from scanner.lab.profiles import CLOUD_BY_HOST, CLOUDS
from scanner.lab.runtime.node import NodeSpec
from scanner.lab.runtime.tlsutil import write_self_signed

UNPRIVILEGED_PORT_OFFSET = 10000
MAX_LAB_ID = 99
# Node processes this process started: kept so they are reaped (no zombies, no "still running"
# warnings) when ``down`` stops them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def state_root() -> Path:
    override = os.environ.get("CAMSWEEP_LAB_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run/camsweep")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "camsweep"
    return Path(f"/tmp/camsweep-{os.getuid()}")


def statedir(lab_id: int) -> Path:
    return state_root() / f"lab-{lab_id}"


@dataclass
class NodeRecord:
    name: str
    role: str
    ip: str
    pid: int
    namespace: str | None


@dataclass
class LabState:
    lab_id: int
    mode: str
    seed: int
    statedir: str
    created: float
    port_offset: int
    namespaces: list[str] = field(default_factory=list)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    inspector_namespace: str | None = None

    def save(self) -> None:
        data = asdict(self)
        path = Path(self.statedir) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, lab_id: int) -> LabState | None:
        path = statedir(lab_id) / "state.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        data["nodes"] = {k: NodeRecord(**v) for k, v in data.get("nodes", {}).items()}
        return cls(**data)

    def alive_nodes(self) -> list[str]:
        return [n.name for n in self.nodes.values() if _pid_alive(n.pid)]

    def socket(self, name: str) -> Path:
        return Path(self.statedir) / "nodes" / f"{name}.sock"


def check_lab_id(lab_id: int) -> int:
    if not 0 <= lab_id <= MAX_LAB_ID:
        raise UsageError(f"lab id must be between 0 and {MAX_LAB_ID}, got {lab_id}")
    return lab_id


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return "netns" if topology.have_netns_privileges() else "loopback"
    if mode not in ("netns", "loopback"):
        raise UsageError(f"unknown lab mode {mode!r} (netns, loopback or auto)")
    if mode == "netns" and not topology.have_netns_privileges():
        raise UsageError("netns mode needs root (CAP_NET_ADMIN); run as root or use --mode loopback")
    return mode


def up(
    lab_id: int = 0,
    mode: str = "auto",
    seed: int = 1,
    *,
    manifest_path: Path | None = None,
    timeout: float = 15.0,
    visitor_interval: float = 45.0,
    changes: LabChanges | None = None,
) -> dict[str, Any]:
    """Build lab ``lab_id`` and return its manifest once every device answers.

    ``changes`` builds a changed store (devices left out, firmware replaced, uploads added; see
    ``LabChanges``): take a lab down and up again with other changes to change the store between
    two sweeps.
    """
    check_lab_id(lab_id)
    mode = resolve_mode(mode)
    if changes:
        changes.check()  # usage errors before anything is built
    existing = LabState.load(lab_id)
    stale_cleaned = False
    if existing is not None:
        if existing.alive_nodes():
            raise UsageError(f"lab {lab_id} is already up ({existing.mode}); take it down with "
                             f"'camsweep lab down --lab-id {lab_id}' or use another --lab-id")
        down(lab_id)
        stale_cleaned = True
    elif _leftovers(lab_id):
        down(lab_id)
        stale_cleaned = True

    port_offset = UNPRIVILEGED_PORT_OFFSET if mode == "loopback" and os.geteuid() != 0 else 0
    plan = make_plan(lab_id, mode, seed, port_offset=port_offset, visitor_interval=visitor_interval,
                     changes=changes)
    root = statedir(lab_id)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nodes").mkdir(exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    state = LabState(
        lab_id=lab_id,
        mode=mode,
        seed=seed,
        statedir=str(root),
        created=time.time(),
        port_offset=port_offset,
        namespaces=list(plan.namespaces.values()) + [d.namespace for d in plan.devices if d.namespace],
        inspector_namespace=plan.namespaces.get("inspector"),
    )
    state.save()
    try:
        certfile, keyfile = write_self_signed(root, [c.host for c in CLOUDS])
        if mode == "netns":
            topology.build(plan)
            _set_gateway_mac(plan)
        specs = _node_specs(plan, root, str(certfile), str(keyfile))
        for spec, namespace in specs:
            spec_path = root / "nodes" / f"{spec.name}.json"
            spec.dump(spec_path)
            pid = _launch(spec, spec_path, namespace, root)
            state.nodes[spec.name] = NodeRecord(spec.name, spec.role, spec.ip, pid, namespace)
            state.save()
        _wait_ready(state, timeout)
        _check_reachable(plan, state)
        features = _features(mode, port_offset)
        doc = manifest(plan, features=features, statedir=str(root))
        doc["stale_lab_cleaned"] = stale_cleaned
        text = json.dumps(doc, indent=2)
        (root / "manifest.json").write_text(text)
        if manifest_path is not None:
            manifest_path.write_text(text)
        return doc
    except BaseException:
        down(lab_id)
        raise


def down(lab_id: int) -> list[str]:
    """Remove every namespace, veth and process of lab ``lab_id``; safe to call twice."""
    check_lab_id(lab_id)
    state = LabState.load(lab_id)
    root = statedir(lab_id)
    pids = [n.pid for n in state.nodes.values()] if state else []
    pids.extend(_node_processes(root))
    removed: list[str] = []
    if topology.have_netns_privileges():
        removed = topology.teardown(ns_prefix(lab_id), pids)
    else:
        topology.kill_pids(sorted(set(pids)))
    for pid in pids:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
    return removed


def status(lab_id: int) -> dict[str, Any]:
    check_lab_id(lab_id)
    state = LabState.load(lab_id)
    if state is None:
        return {"lab_id": lab_id, "up": False, "nodes": []}
    nodes = []
    for record in state.nodes.values():
        reply = control.request(state.socket(record.name), {"cmd": "status"}, timeout=2.0)
        nodes.append(
            {
                "name": record.name,
                "role": record.role,
                "ip": record.ip,
                "namespace": record.namespace,
                "pid": record.pid,
                "answering": reply is not None,
                "hung": (reply or {}).get("hung"),
                "counters": (reply or {}).get("counters", {}),
                "state": (reply or {}).get("state", {}),
            }
        )
    return {
        "lab_id": lab_id,
        "up": any(n["answering"] for n in nodes),
        "mode": state.mode,
        "seed": state.seed,
        "statedir": state.statedir,
        "inspector_namespace": state.inspector_namespace,
        "nodes": nodes,
    }


def require_state(lab_id: int) -> LabState:
    state = LabState.load(check_lab_id(lab_id))
    if state is None or not state.alive_nodes():
        raise UsageError(f"lab {lab_id} is not up (camsweep lab up --lab-id {lab_id})")
    return state


def load_manifest(lab_id: int) -> dict[str, Any]:
    require_state(lab_id)
    try:
        data: dict[str, Any] = json.loads((statedir(lab_id) / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"lab {lab_id} has no readable manifest: {exc}") from exc
    return data


def node_command(lab_id: int, name: str, message: dict[str, Any]) -> dict[str, Any]:
    state = require_state(lab_id)
    if name not in state.nodes:
        raise UsageError(f"lab {lab_id} has no device {name!r}")
    reply = control.request(state.socket(name), message)
    if reply is None:
        raise LabError(f"device {name} does not answer its control socket")
    return reply


def walkby(lab_id: int, device: str | None = None) -> dict[str, int]:
    """A visitor walks past ``device`` (name or IP), or past every face-capture device."""
    state = require_state(lab_id)
    names = _device_names(state, device)
    fired: dict[str, int] = {}
    for name in names:
        reply = control.request(state.socket(name), {"cmd": "walkby"})
        if reply is not None and reply.get("behaviours"):
            fired[name] = int(reply["behaviours"])
    if device is not None and not fired:
        raise UsageError(f"device {device} has no face-capture behaviour to trigger")
    return fired


def watch(lab_id: int, device: str | None, seconds: float) -> dict[str, int]:
    """Someone opens the live view of ``device`` (or every camera) in the vendor app."""
    state = require_state(lab_id)
    fired: dict[str, int] = {}
    for name in _device_names(state, device):
        reply = control.request(state.socket(name), {"cmd": "watch", "seconds": seconds})
        if reply is not None and reply.get("behaviours"):
            fired[name] = int(reply["behaviours"])
    return fired


def exec_in_inspector(lab_id: int, argv: list[str]) -> int:
    """Run ``argv`` where camsweep should run: the inspector namespace (or here, in loopback)."""
    if not argv:
        raise UsageError("lab exec needs a command: camsweep lab exec -- CMD ...")
    state = require_state(lab_id)
    env = dict(os.environ, CAMSWEEP_LAB_ID=str(lab_id),
               CAMSWEEP_LAB_MANIFEST=str(Path(state.statedir) / "manifest.json"))
    cmd = argv
    if state.mode == "netns":
        assert state.inspector_namespace
        cmd = ["ip", "netns", "exec", state.inspector_namespace, *argv]
    try:
        return subprocess.call(cmd, env=env)
    except FileNotFoundError as exc:
        raise UsageError(f"command not found: {argv[0]}") from exc


def _device_names(state: LabState, device: str | None) -> list[str]:
    devices = [n for n in state.nodes.values() if n.role == "device"]
    if device is None:
        return [n.name for n in devices]
    for n in devices:
        if device in (n.name, n.ip):
            return [n.name]
    raise UsageError(f"lab {state.lab_id} has no device {device!r} (see camsweep lab status)")


def _set_gateway_mac(plan: LabPlan) -> None:
    """Give the gateway's LAN port its seeded MAC (the kernel would draw a new one every run)."""
    gateway = plan.namespaces["gateway"]
    topology.ip("-n", gateway, "link", "set", "lan0", "down")
    topology.ip("-n", gateway, "link", "set", "lan0", "address", plan.gateway_mac)
    topology.ip("-n", gateway, "link", "set", "lan0", "up")


def _node_specs(plan: LabPlan, root: Path, certfile: str, keyfile: str) -> list[tuple[NodeSpec, str | None]]:
    ns = plan.namespaces
    dns_names = {h: ip for h, ip in plan.cloud_ips.items() if not CLOUD_BY_HOST[h].no_dns}
    pushed = {h: ip for h, ip in plan.cloud_ips.items() if CLOUD_BY_HOST[h].no_dns}
    common: dict[str, Any] = {"mode": plan.mode, "statedir": str(root), "seed": plan.seed,
                              "port_offset": plan.port_offset}
    specs: list[tuple[NodeSpec, str | None]] = [
        (NodeSpec(name="gateway", role="gateway", ip=plan.gateway_ip, clouds=dns_names, iface="lan0", **common),
         ns.get("gateway")),
        (
            NodeSpec(
                name="clouds",
                role="cloud",
                ip=plan.outside_resolver,
                extra_ips=sorted(set(plan.cloud_ips.values())),
                clouds=dns_names,
                cloud_endpoints=[
                    {"host": c.host, "port": c.port, "kind": c.kind, "ip": plan.cloud_ips[c.host]} for c in CLOUDS
                ],
                certfile=certfile,
                keyfile=keyfile,
                iface="wan0",
                **common,
            ),
            ns.get("internet"),
        ),
    ]
    for d in plan.devices:
        p = d.profile
        identity = {
            "mac": d.mac,
            "serial": d.serial,
            "username": p.username,
            "password": d.password,
            "vendor": p.vendor,
            "model": p.model,
            "firmware": p.firmware,
            "firmware_build": p.firmware_build,
            "device_type": p.device_type,
            "face_capable": p.face_capable,
            "face_capture_enabled": p.face_capture_enabled,
            "lock_after": p.lock_after,
            "clock_skew_s": p.clock_skew_s,
            "gateway": plan.gateway_ip,
            "outside_resolver": plan.outside_resolver,
            "subnet": plan.subnet,
            "clouds": [
                {"host": u.host, "port": u.port, "purpose": u.purpose, "configured": u.configured, "what": u.what}
                for u in p.clouds
            ],
        }
        specs.append(
            (
                NodeSpec(
                    name=d.name,
                    role="device",
                    ip=d.ip,
                    profile=p.key,
                    resolver=plan.gateway_ip,
                    identity=identity,
                    clouds=pushed,
                    visitor_interval=plan.visitor_interval if p.face_capture_enabled else 0.0,
                    **common,
                ),
                d.namespace,
            )
        )
    return specs


def _launch(spec: NodeSpec, spec_path: Path, namespace: str | None, root: Path) -> int:
    package_parent = str(Path(scanner.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "scanner.lab.nodemain", str(spec_path)]
    if namespace:
        cmd = ["ip", "netns", "exec", namespace, *cmd]
    log = open(root / "logs" / f"{spec.name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                start_new_session=True, cwd="/")
    finally:
        log.close()
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _wait_ready(state: LabState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(state.nodes)
    root = Path(state.statedir)
    while pending:
        for name in list(pending):
            if (root / "nodes" / f"{name}.ready").exists():
                pending.discard(name)
            elif not _pid_alive(state.nodes[name].pid):
                raise LabError(f"lab node {name} exited while starting: {_log_tail(root, name)}")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LabError(f"lab nodes not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(0.05)


_REACH_SCRIPT = r"""
import json, socket, sys
bad = []
for ip, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try: s.connect((ip, port))
    except OSError as e: bad.append(f"{ip}:{port} {e}")
    finally: s.close()
print(json.dumps(bad))
"""


def _check_reachable(plan: LabPlan, state: LabState) -> None:
    """Every device's first TCP service answers from where camsweep runs (the inspector)."""
    targets = []
    for d in plan.devices:
        for service in d.profile.services:
            port = int(service.split("/")[1])
            bound = port + plan.port_offset if plan.port_offset and port < 1024 else port
            targets.append((d.ip, bound))
            break
    cmd = [sys.executable, "-c", _REACH_SCRIPT, json.dumps(targets)]
    if plan.mode == "netns":
        assert state.inspector_namespace
        cmd = ["ip", "netns", "exec", state.inspector_namespace, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    try:
        bad = json.loads(proc.stdout or "null")
    except ValueError:
        bad = None
    if bad is None:
        raise LabError(f"reachability check failed: {proc.stderr.strip()[-300:]}")
    if bad:
        raise LabError(f"devices not answering from the inspector: {'; '.join(bad)}")


def _features(mode: str, port_offset: int) -> dict[str, Any]:
    netns = mode == "netns"
    unavailable = [] if netns else [
        "layer 2 (ARP, MAC addresses)",
        "multicast and broadcast discovery (WS-Discovery, SSDP, mDNS, SADP, DHIP, XM 34569)",
        "live capture from a mirror port",
    ]
    if port_offset:
        unavailable.append(f"privileged ports: ports below 1024 are served at port+{port_offset} (not root)")
    return {
        "l2": netns,
        "multicast": netns,
        "mirror_port": netns,
        "live_capture": netns,
        "privileged_ports": port_offset == 0,
        "unavailable": unavailable,
    }


def _leftovers(lab_id: int) -> bool:
    if topology.have_netns_privileges() and topology.list_namespaces(ns_prefix(lab_id)):
        return True
    return bool(_node_processes(statedir(lab_id)))


def _node_processes(root: Path) -> list[int]:
    """Node processes of this lab found by their command line (survives a lost state file)."""
    marker = str(root / "nodes") + "/"
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in cmdline]
        if "scanner.lab.nodemain" in args and any(a.startswith(marker) for a in args):
            pids.append(int(entry.name))
    return pids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def _log_tail(root: Path, name: str) -> str:
    try:
        lines = (root / "logs" / f"{name}.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
