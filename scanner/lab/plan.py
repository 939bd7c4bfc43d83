"""Turns (lab id, mode, seed) into concrete addresses, MACs and serials, and the manifest.

The seed shuffles device addresses and draws MAC suffixes, serial numbers and the visitor
schedule; models, firmware and clouds come from the profiles and never change with the seed.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from scanner.errors import UsageError
from scanner.lab.profiles import CLOUD_BY_HOST, CLOUDS, PROFILE_BY_KEY, PROFILES, CloudUse, Profile

MANIFEST_SCHEMA_VERSION = 1
NETNS_SUBNET = "198.51.100.0/24"
NETNS_INTERNET = "203.0.113.0/24"
INSPECTOR_HOST = 250


# Destinations a changed lab may add to a device: picture sinks (``LabChanges.uploads``).
UPLOAD_CATEGORIES = ("picture-upload", "face-analytics")


@dataclass(frozen=True)
class LabChanges:
    """How a run of the lab differs from the seed's standard store network, so the store can
    change between two runs (scheduled-sweep tests, training): devices left out, firmware
    strings replaced, picture destinations added, face capture switched on or off. Addresses,
    MACs, serials and passwords stay those of the standard plan, so a device that is kept is the
    same device.

    ``uploads`` adds a snapshot destination (a picture-upload or face-analytics cloud) to a
    device's configuration; the device's emulation decides whether it uses it (Hikvision cameras
    push pictures to the OSS bucket on every walk-by).
    """

    without: tuple[str, ...] = ()
    firmware: tuple[tuple[str, str], ...] = ()  # (device, firmware string)
    uploads: tuple[tuple[str, str], ...] = ()  # (device, cloud host)
    face_capture: tuple[tuple[str, bool], ...] = ()  # (device, face capture switched on) of face-capable devices

    @classmethod
    def build(cls, *, without: list[str] | None = None, firmware: dict[str, str] | None = None,
              uploads: dict[str, str] | None = None, face_capture: dict[str, bool] | None = None) -> LabChanges:
        return cls(tuple(sorted(without or ())), tuple(sorted((firmware or {}).items())),
                   tuple(sorted((uploads or {}).items())), tuple(sorted((face_capture or {}).items())))

    def __bool__(self) -> bool:
        return bool(self.without or self.firmware or self.uploads or self.face_capture)

    def to_dict(self) -> dict[str, Any]:
        return {"without": list(self.without), "firmware": dict(self.firmware), "uploads": dict(self.uploads),
                "face_capture": dict(self.face_capture)}

    def check(self) -> None:
        """UsageError for unknown devices, hosts that are not picture sinks, empty firmware strings."""
        named = [*self.without, *(n for n, _ in self.firmware), *(n for n, _ in self.uploads),
                 *(n for n, _ in self.face_capture)]
        for name in named:
            if name not in PROFILE_BY_KEY:
                raise UsageError(f"the lab has no device {name!r} (devices: {', '.join(PROFILE_BY_KEY)})")
        for name, on in self.face_capture:
            if on and not PROFILE_BY_KEY[name].face_capable:
                raise UsageError(f"{name} cannot capture faces; face capture can be switched on only on "
                                 + ", ".join(p.key for p in PROFILES if p.face_capable))
        for name, text in self.firmware:
            if not text.strip() or any(ord(ch) < 32 for ch in text):
                raise UsageError(f"bad firmware string {text!r} for {name}")
        for name, host in self.uploads:
            cloud = CLOUD_BY_HOST.get(host)
            if cloud is None or cloud.category not in UPLOAD_CATEGORIES:
                sinks = ", ".join(c.host for c in CLOUDS if c.category in UPLOAD_CATEGORIES)
                raise UsageError(f"{name} can only be made to upload to a picture destination ({sinks}), "
                                 f"not {host!r}")

    def apply(self, devices: list[DevicePlan]) -> list[DevicePlan]:
        """The devices of the changed store (a new list; profiles replaced, never mutated)."""
        self.check()
        firmware = dict(self.firmware)
        uploads = dict(self.uploads)
        face_capture = dict(self.face_capture)
        changed: list[DevicePlan] = []
        for device in devices:
            if device.name in self.without:
                continue
            profile = device.profile
            if device.name in firmware:
                profile = dataclasses.replace(profile, firmware=firmware[device.name])
            if device.name in face_capture:
                profile = dataclasses.replace(profile, face_capture_enabled=face_capture[device.name])
            host = uploads.get(device.name)
            if host is not None and not any(u.host == host for u in profile.clouds):
                use = CloudUse(host, CLOUD_BY_HOST[host].port, "snapshots", what="pictures")
                profile = dataclasses.replace(profile, clouds=profile.clouds + (use,))
            changed.append(dataclasses.replace(device, profile=profile))
        return changed


@dataclass
class DevicePlan:
    name: str
    profile: Profile
    ip: str
    mac: str
    serial: str
    password: str
    namespace: str | None = None


@dataclass
class LabPlan:
    lab_id: int
    mode: str
    seed: int
    devices: list[DevicePlan]
    cloud_ips: dict[str, str]
    gateway_ip: str
    gateway_wan_ip: str
    outside_resolver: str
    inspector_ip: str
    port_offset: int = 0
    visitor_interval: float = 45.0
    namespaces: dict[str, str] = field(default_factory=dict)  # role -> netns name
    changes: LabChanges = field(default_factory=LabChanges)  # differences from the standard store

    @property
    def gateway_mac(self) -> str:
        """The gateway's LAN MAC: fixed by the seed (a store's router keeps its MAC across lab runs)."""
        rng = random.Random(f"gateway:{self.seed}")
        return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))  # locally administered

    @property
    def subnet(self) -> str:
        return NETNS_SUBNET if self.mode == "netns" else f"127.77.{self.lab_id}.0/24"

    def device(self, name_or_ip: str) -> DevicePlan | None:
        for d in self.devices:
            if name_or_ip in (d.name, d.ip):
                return d
        return None


def ns_prefix(lab_id: int) -> str:
    return f"csw{lab_id}-"


def make_plan(lab_id: int, mode: str, seed: int, *, port_offset: int = 0,
              visitor_interval: float = 45.0, changes: LabChanges | None = None) -> LabPlan:
    rng = random.Random(seed)
    if mode == "netns":
        lan = "198.51.100."
        gateway, wan, outside = "198.51.100.1", "203.0.113.1", "203.0.113.53"
        cloud_base = "203.0.113."
        inspector = f"{lan}{INSPECTOR_HOST}"
    else:
        lan = f"127.77.{lab_id}."
        gateway, wan, outside = f"{lan}1", f"127.78.{lab_id}.1", f"127.78.{lab_id}.53"
        cloud_base = f"127.78.{lab_id}."
        inspector = "127.0.0.1"
    hosts = rng.sample(range(10, 240), len(PROFILES))
    devices: list[DevicePlan] = []
    used_macs: set[str] = set()
    for index, (profile, host) in enumerate(zip(PROFILES, hosts, strict=True)):
        mac = _mac(profile.oui, rng, used_macs)
        devices.append(
            DevicePlan(
                name=profile.key,
                profile=profile,
                ip=f"{lan}{host}",
                mac=mac,
                serial=_serial(profile, rng, mac),
                password=f"Lab{rng.randrange(1000, 9999)}-{profile.key.split('-')[0]}!",
                namespace=f"{ns_prefix(lab_id)}d{index:02d}" if mode == "netns" else None,
            )
        )
    if changes:  # after every random draw: the devices that stay keep their addresses and MACs
        devices = changes.apply(devices)
    cloud_ips = {c.host: f"{cloud_base}{100 + i}" for i, c in enumerate(CLOUDS)}
    plan = LabPlan(
        lab_id=lab_id,
        mode=mode,
        seed=seed,
        devices=devices,
        cloud_ips=cloud_ips,
        gateway_ip=gateway,
        gateway_wan_ip=wan,
        outside_resolver=outside,
        inspector_ip=inspector,
        port_offset=port_offset,
        visitor_interval=visitor_interval,
        changes=changes or LabChanges(),
    )
    if mode == "netns":
        p = ns_prefix(lab_id)
        plan.namespaces = {"switch": f"{p}sw", "gateway": f"{p}gw", "internet": f"{p}net", "inspector": f"{p}insp"}
    return plan


def _mac(oui: str, rng: random.Random, used: set[str]) -> str:
    while True:
        suffix = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        mac = f"{oui.lower()}:{suffix}"
        if mac not in used:
            used.add(mac)
            return mac


def _serial(profile: Profile, rng: random.Random, mac: str) -> str:
    if profile.vendor == "Axis":
        return mac.replace(":", "").upper()  # Axis serial numbers are the MAC (protocols.md §7)
    digits = "".join(str(rng.randrange(10)) for _ in range(9))
    if profile.vendor == "Hikvision":
        # model + production date + batch + serial (protocols.md 1.1 DeviceSN pattern)
        return f"{profile.model.split('/')[0]}20210628AACH{'EJ'[rng.randrange(2)]}{digits}"
    if profile.vendor == "Dahua":
        alnum = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
        return "".join(rng.choice(alnum) for _ in range(15))
    if profile.vendor == "ULUCU":
        # 20 characters starting "Ub" (clouds.md 1a fingerprint hints)
        return "Ub" + "".join(str(rng.randrange(10)) for _ in range(16)) + "QB"
    if profile.vendor == "Xiongmai":
        return "".join(rng.choice("0123456789abcdef") for _ in range(16))
    return f"{profile.key.upper().replace('-', '')}{digits}"


def manifest(plan: LabPlan, *, features: dict[str, Any], statedir: str) -> dict[str, Any]:
    """The ground-truth document tests and benchmarks score camsweep against."""
    netns = plan.mode == "netns"
    devices = []
    for d in plan.devices:
        p = d.profile
        observable = {"found": True, "vendor": True, "model": True, "firmware": True, "face_capable": True}
        observable.update(p.scan_observable)
        if not netns:  # no layer 2 in loopback: no MAC, no OUI, no ARP
            observable.update({name: False for name in p.l2_only})
        clouds = []
        for use in p.clouds:
            endpoint = CLOUD_BY_HOST[use.host]
            clouds.append(
                {
                    "host": use.host,
                    "ip": plan.cloud_ips[use.host],
                    "port": use.port,
                    "transport": endpoint.kind,
                    "operator": endpoint.operator,
                    "category": endpoint.category,
                    "purpose": use.purpose,
                    "what": use.what,
                    "configured": use.configured,
                    "via_dns": not endpoint.no_dns,
                }
            )
        devices.append(
            {
                "name": d.name,
                "label": p.label,
                "ip": d.ip,
                "mac": d.mac,
                "namespace": d.namespace,
                "vendor": p.vendor,
                "brand": p.brand,
                "model": p.model,
                "firmware": p.firmware,
                "serial": d.serial,
                "device_type": p.device_type,
                "is_camera": p.is_camera,
                "face_capable": p.face_capable,
                "face_capture_enabled": p.face_capture_enabled,
                "services": list(p.services),
                "discovery": list(p.multicast) if netns else [],
                "clouds": clouds,
                "credentials": {"username": p.username, "password": d.password},
                "lock_after_failures": p.lock_after,
                "clock_skew_s": p.clock_skew_s,
                "observable_without_login": observable,
                "expected": {
                    "severity": p.expected_severity,
                    "finding_kinds": list(p.expected_kinds),
                    "uploads_pictures": any(u.purpose == "snapshots" for u in p.clouds),
                },
                "notes": p.notes,
            }
        )
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "lab_id": plan.lab_id,
        "mode": plan.mode,
        "seed": plan.seed,
        "subnet": plan.subnet,
        "gateway": plan.gateway_ip,
        "gateway_mac": plan.gateway_mac if netns else None,
        "resolver": plan.gateway_ip,
        "outside_resolver": {"ip": plan.outside_resolver, "stands_for": ["114.114.114.114", "8.8.8.8"]},
        "port_offset": plan.port_offset,
        "inspector": {
            "namespace": plan.namespaces.get("inspector"),
            "ip": plan.inspector_ip,
            "iface": "eth0" if netns else "lo",
            "mirror_iface": "mirror0" if netns else None,
        },
        "features": features,
        "statedir": statedir,
        "changes": plan.changes.to_dict(),
        "devices": devices,
        "clouds": [
            {
                "host": c.host,
                "ip": plan.cloud_ips[c.host],
                "port": c.port,
                "transport": c.kind,
                "operator": c.operator,
                "category": c.category,
            }
            for c in CLOUDS
        ],
    }
