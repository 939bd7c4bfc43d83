"""Semantic differences between two result documents: what changed on a store network.

Device identity: the MAC address when the scan knows it (so a camera that got a new DHCP address
is the same camera, reported as ``address-changed``), else the IP address. A device with a MAC
on one side is matched to a device without one on the other only through the same IP. A value
that is unknown (``null``) on either side is not a change: identification can be less complete
in one sweep than in another, and "unknown" is not "different".

Cloud destinations of a device are matched by host name or by address (one sweep may have seen
the DNS answer, the other only the flow); a destination known only by its operator (a platform a
discovery reply says is enabled) by operator and category. Findings are matched by (device
identity, kind) and compared by severity.

Known states: a change is marked ``suppressed`` (it does not alert) when a reference state
already shows the state it changed to -- the accepted baseline, and at sweep time also the site's
recent sweeps. Passive listening samples a window, so a heartbeat every 60 s can be outside one
sweep's window and inside the next; a destination, finding or firmware seen in a recent sweep is
not news when it shows up again.

``CHANGE_KINDS`` below is the one table of change kinds and their alert levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scanner.models import CloudLink, Device, Finding, ScanResult

LEVELS = ("high", "medium", "low", "info")  # the same vocabulary as finding severities
_RANK = {name: index for index, name in enumerate(reversed(LEVELS))}  # info 0 .. high 3

# Cloud categories whose destinations receive pictures or face data (clouds.md: FACE, PIC, FLOW).
PICTURE_CATEGORIES = frozenset({"face-analytics", "picture-upload", "passenger-flow"})
ORDINARY_CATEGORIES = frozenset({"web", "payment"})  # a staff PC browsing, a POS paying
# Picture uploads: a jump is at least this factor on the rate and this many more pictures.
UPLOAD_JUMP_FACTOR = 3.0
UPLOAD_JUMP_MIN_PICTURES = 3


@dataclass(frozen=True)
class ChangeKind:
    name: str
    level: str | None  # None: the level of the finding concerned (finding-raised)
    meaning: str


CHANGE_KINDS: dict[str, ChangeKind] = {k.name: k for k in (
    ChangeKind("face-camera-appeared", "high", "a device that can capture faces joined the network"),
    ChangeKind("camera-appeared", "medium", "a camera joined the network"),
    ChangeKind("device-appeared", "low", "a device that is not a camera joined the network"),
    ChangeKind("camera-disappeared", "low", "a camera is no longer found"),
    ChangeKind("device-disappeared", "low", "a device that is not a camera is no longer found"),
    ChangeKind("address-changed", "info", "the same device (same MAC) has a new IP address (DHCP)"),
    ChangeKind("identity-changed", "medium", "vendor, model, device type or camera-ness of the same device changed"),
    ChangeKind("firmware-changed", "low", "the firmware string of the same device changed"),
    ChangeKind("face-capability-gained", "high", "a device is now known to be able to capture faces"),
    ChangeKind("face-capability-lost", "info", "a device is now known not to be able to capture faces"),
    ChangeKind("face-capture-enabled", "high", "face capture was switched on"),
    ChangeKind("face-capture-disabled", "low", "face capture was switched off"),
    ChangeKind("picture-cloud-added", "high", "a device sends to a new destination that takes pictures or face "
               "data (face-analytics, picture-upload, passenger-flow, or snapshot-sized uploads)"),
    ChangeKind("cloud-added", "medium", "a device talks to a new cloud (video, management, unknown)"),
    ChangeKind("web-destination-added", "info", "a device visits a new ordinary web or payment site"),
    ChangeKind("cloud-vanished", "info", "a destination seen before was not seen this time (passive listening "
               "samples a window: periodic traffic can fall outside it)"),
    ChangeKind("upload-volume-jump", "medium", f"pictures per hour to a destination rose at least "
               f"{UPLOAD_JUMP_FACTOR:g}-fold (and by at least {UPLOAD_JUMP_MIN_PICTURES} pictures)"),
    ChangeKind("finding-raised", None, "a finding appeared or its severity rose (level: the finding's)"),
    ChangeKind("finding-cleared", "info", "a finding is gone"),
)}


def level_at_least(level: str, threshold: str) -> bool:
    """True when ``level`` is ``threshold`` or more serious (high > medium > low > info)."""
    return _RANK.get(level, -1) >= _RANK[threshold]


def check_level(text: str) -> str:
    """A valid level name (lower-cased) or ValueError."""
    level = text.strip().lower()
    if level not in _RANK:
        raise ValueError(f"unknown level {text!r} (high, medium, low or info)")
    return level


@dataclass
class Change:
    kind: str
    level: str
    identity: str  # MAC, or ip:ADDRESS when the MAC is unknown
    ip: str | None
    device: str  # "vendor model" as known, for people
    subject: str  # the field, destination or finding kind that changed ("" for the whole device)
    before: Any = None
    after: Any = None
    text: str = ""
    suppressed: bool = False  # a reference state (baseline, recent sweep) already shows this state
    known_from: str = ""  # which one: "baseline (sweep 4)", "sweep 9"

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.kind, self.identity, self.subject)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def _mac(device: Device) -> str | None:
    mac = (device.mac or "").strip().lower().replace("-", ":")
    return mac or None


def identity(device: Device) -> str:
    """MAC when known, else ``ip:ADDRESS``."""
    return _mac(device) or f"ip:{device.ip}"


def _label(device: Device) -> str:
    words = [w for w in (device.vendor, device.model) if w]
    return " ".join(words) or (device.device_type or "device")


def match_devices(old: list[Device], new: list[Device]) -> tuple[list[tuple[Device, Device]], list[Device],
                                                                      list[Device]]:
    """(matched pairs, only in old, only in new): by MAC first, then by IP where a side has no MAC."""
    pairs: list[tuple[Device, Device]] = []
    by_mac: dict[str, list[Device]] = {}
    for d in new:
        if m := _mac(d):
            by_mac.setdefault(m, []).append(d)
    used: set[int] = set()
    left_old: list[Device] = []
    for d in old:
        m = _mac(d)
        candidates = by_mac.get(m, []) if m else []
        if candidates:
            partner = candidates.pop(0)
            pairs.append((d, partner))
            used.add(id(partner))
        else:
            left_old.append(d)
    by_ip: dict[str, list[Device]] = {}
    for d in new:
        if id(d) not in used:
            by_ip.setdefault(d.ip, []).append(d)
    gone: list[Device] = []
    for d in left_old:
        candidates = [p for p in by_ip.get(d.ip, []) if _mac(d) is None or _mac(p) is None]
        if candidates:
            partner = candidates[0]
            by_ip[d.ip].remove(partner)
            pairs.append((d, partner))
            used.add(id(partner))
        else:
            gone.append(d)
    appeared = [d for d in new if id(d) not in used]
    return pairs, gone, appeared


def _listen_hours(doc: ScanResult) -> float | None:
    """The listening window in hours, to compare picture counts of sweeps that listened differently."""
    seconds = doc.scan.options.get("listen_seconds") if isinstance(doc.scan.options, dict) else None
    if isinstance(seconds, int | float) and seconds > 0:
        return float(seconds) / 3600.0
    return None


def _dest(link: CloudLink) -> str:
    """The destination for people and for change signatures: host, else address, else operator."""
    if link.host or link.ip:
        return str(link.host or link.ip).lower()
    return f"{link.operator or 'unnamed'} ({link.category})".lower()


def _same_destination(a: CloudLink, b: CloudLink) -> bool:
    if a.host and b.host:
        return a.host.lower() == b.host.lower()
    if a.ip and b.ip:
        return a.ip == b.ip
    if not (a.host or a.ip or b.host or b.ip):  # both known only by operator (discovery, config)
        return (a.operator or "", a.category) == (b.operator or "", b.category)
    return False


def _where(link: CloudLink) -> str:
    if link.host or link.ip:
        return f"{_dest(link)}:{link.port}" if link.port else _dest(link)
    return f"{link.operator or 'an unnamed platform'} (seen in {link.source} data, no address)"


def _merged_links(device: Device) -> list[CloudLink]:
    """One link per destination (a destination can be both configured and observed)."""
    merged: list[CloudLink] = []
    for link in device.clouds:
        known = next((m for m in merged if _same_destination(m, link)), None)
        if known is None:
            merged.append(CloudLink(**{**asdict(link), "evidence": []}))
            continue
        known.host = known.host or link.host
        known.ip = known.ip or link.ip
        known.uploads += link.uploads
        known.bytes_up += link.bytes_up
        if link.behaviour == "snapshot-upload":
            known.behaviour = link.behaviour
        if known.category == "unknown":
            known.category = link.category
            known.operator = known.operator or link.operator
    return merged


def _cloud_kind(link: CloudLink) -> str:
    if link.category in PICTURE_CATEGORIES or link.behaviour == "snapshot-upload" or link.uploads > 0:
        if link.category not in ORDINARY_CATEGORIES:
            return "picture-cloud-added"
    if link.category in ORDINARY_CATEGORIES:
        return "web-destination-added"
    return "cloud-added"


class _Differ:
    def __init__(self, old: ScanResult, new: ScanResult) -> None:
        self.old = old
        self.new = new
        self.changes: list[Change] = []

    def add(self, kind: str, device: Device, subject: str, before: Any, after: Any, text: str,
            level: str | None = None) -> None:
        table_level = CHANGE_KINDS[kind].level
        self.changes.append(Change(kind=kind, level=level or table_level or "info", identity=identity(device),
                                   ip=device.ip, device=_label(device), subject=subject, before=before,
                                   after=after, text=text))

    def run(self) -> list[Change]:
        pairs, gone, appeared = match_devices(self.old.devices, self.new.devices)
        for d in appeared:
            if d.is_camera and d.face_capable:
                kind = "face-camera-appeared"
            else:
                kind = "camera-appeared" if d.is_camera else "device-appeared"
            named = [w for w in (d.vendor, d.model) if w]
            self.add(kind, d, "", None, _summary(d), f"new {'camera' if d.is_camera else 'device'} at {d.ip}"
                     + (f": {' '.join(named)}" if named else "") + (" (can capture faces)" if d.face_capable else ""))
            for link in _merged_links(d):
                self._cloud_added(d, link)
        for d in gone:
            kind = "camera-disappeared" if d.is_camera else "device-disappeared"
            self.add(kind, d, "", _summary(d), None, f"{_label(d)} at {d.ip} is no longer found")
        for before, after in pairs:
            self._device(before, after)
        self._findings(pairs, gone, appeared)
        order = {name: i for i, name in enumerate(CHANGE_KINDS)}
        self.changes.sort(key=lambda c: (-_RANK.get(c.level, 0), order.get(c.kind, 99), c.identity, c.subject))
        return self.changes

    def _device(self, a: Device, b: Device) -> None:
        if a.ip != b.ip:
            self.add("address-changed", b, "ip", a.ip, b.ip, f"{_label(b)} moved from {a.ip} to {b.ip}")
        for field in ("vendor", "model", "device_type"):
            x, y = getattr(a, field), getattr(b, field)
            if x is not None and y is not None and str(x).strip() != str(y).strip():
                self.add("identity-changed", b, field, x, y, f"{_label(b)} at {b.ip}: {field} {x} -> {y}")
        if a.is_camera != b.is_camera:
            self.add("identity-changed", b, "is_camera", a.is_camera, b.is_camera,
                     f"{_label(b)} at {b.ip} is {'now' if b.is_camera else 'no longer'} identified as a camera")
        if a.firmware and b.firmware and a.firmware.strip() != b.firmware.strip():
            self.add("firmware-changed", b, "firmware", a.firmware, b.firmware,
                     f"{_label(b)} at {b.ip}: firmware {a.firmware} -> {b.firmware}")
        if a.face_capable is not None and b.face_capable is not None and a.face_capable != b.face_capable:
            kind = "face-capability-gained" if b.face_capable else "face-capability-lost"
            self.add(kind, b, "face_capable", a.face_capable, b.face_capable,
                     f"{_label(b)} at {b.ip} {'can' if b.face_capable else 'cannot'} capture faces")
        x, y = a.face_capture_enabled, b.face_capture_enabled
        if x is not None and y is not None and x != y:
            kind = "face-capture-enabled" if y else "face-capture-disabled"
            self.add(kind, b, "face_capture_enabled", x, y,
                     f"{_label(b)} at {b.ip}: face capture switched {'on' if y else 'off'}")
        self._clouds(a, b)

    def _clouds(self, a: Device, b: Device) -> None:
        old_links, new_links = _merged_links(a), _merged_links(b)
        old_hours, new_hours = _listen_hours(self.old), _listen_hours(self.new)
        for link in new_links:
            previous = next((o for o in old_links if _same_destination(o, link)), None)
            if previous is None:
                self._cloud_added(b, link)
            elif link.category not in ORDINARY_CATEGORIES:
                self._volume(b, previous, link, old_hours, new_hours)
        for link in old_links:
            if not any(_same_destination(link, n) for n in new_links):
                self.add("cloud-vanished", b, _dest(link), _link_summary(link), None,
                         f"{_label(b)} at {b.ip}: {_dest(link)} not seen this time")

    def _cloud_added(self, device: Device, link: CloudLink) -> None:
        kind = _cloud_kind(link)
        operator = f" ({link.operator})" if link.operator and (link.host or link.ip) else ""
        what = f", {link.uploads} pictures" if link.uploads else ""
        self.add(kind, device, _dest(link), None, _link_summary(link),
                 f"{_label(device)} at {device.ip} sends to {_where(link)}{operator}, {link.category}{what}")

    def _volume(self, device: Device, old: CloudLink, new: CloudLink, old_hours: float | None,
                new_hours: float | None) -> None:
        if new.uploads - old.uploads < UPLOAD_JUMP_MIN_PICTURES:
            return
        if old_hours and new_hours:
            old_rate, new_rate = old.uploads / old_hours, new.uploads / new_hours
        else:
            old_rate, new_rate = float(old.uploads), float(new.uploads)
        if new_rate >= UPLOAD_JUMP_FACTOR * old_rate and new_rate > old_rate:
            self.add("upload-volume-jump", device, _dest(new), round(old_rate, 1), round(new_rate, 1),
                     f"{_label(device)} at {device.ip}: pictures to {_dest(new)} "
                     + ("per hour " if old_hours and new_hours else "")
                     + f"{old_rate:.0f} -> {new_rate:.0f}")

    def _findings(self, pairs: list[tuple[Device, Device]], gone: list[Device], appeared: list[Device]) -> None:
        # The identity a finding belongs to: its device's identity in that sweep, mapped to the new
        # side's identity for matched devices.
        old_ids = {d.ip: identity(d) for d in self.old.devices}
        new_ids = {d.ip: identity(d) for d in self.new.devices}
        translate = {identity(a): identity(b) for a, b in pairs}
        devices = {identity(d): d for d in self.new.devices}
        devices.update({identity(d): d for d in gone})

        def keyed(findings: Iterable[Finding], ids: dict[str, str], mapping: dict[str, str]) -> dict[
                tuple[str, str], Finding]:
            result: dict[tuple[str, str], Finding] = {}
            for f in findings:
                ident = ids.get(f.device_ip, f"ip:{f.device_ip}")
                ident = mapping.get(ident, ident)
                key = (ident, f.kind)
                if key not in result or _RANK.get(f.severity, 0) > _RANK.get(result[key].severity, 0):
                    result[key] = f
            return result

        before = keyed(self.old.findings, old_ids, translate)
        after = keyed(self.new.findings, new_ids, {})
        for key, f in after.items():
            old = before.get(key)
            if old is not None and _RANK.get(f.severity, 0) <= _RANK.get(old.severity, 0):
                continue
            device = devices.get(key[0]) or Device(ip=f.device_ip)
            severity = f.severity if f.severity in LEVELS else "info"
            self.add("finding-raised", device, f.kind, old.severity if old else None, severity,
                     f"{_label(device)} at {device.ip}: {f.title} ({severity})", level=severity)
        for key, f in before.items():
            if key not in after:
                device = devices.get(key[0]) or Device(ip=f.device_ip)
                self.add("finding-cleared", device, f.kind, f.severity, None,
                         f"{_label(device)} at {device.ip}: cleared: {f.title}")


def _summary(d: Device) -> dict[str, Any]:
    return {"ip": d.ip, "mac": d.mac, "vendor": d.vendor, "model": d.model, "firmware": d.firmware,
            "device_type": d.device_type, "is_camera": d.is_camera, "face_capable": d.face_capable}


def _link_summary(link: CloudLink) -> dict[str, Any]:
    return {"host": link.host, "ip": link.ip, "port": link.port, "operator": link.operator,
            "category": link.category, "behaviour": link.behaviour, "uploads": link.uploads}


Document = dict[str, Any] | ScanResult


def _result(doc: Document) -> ScanResult:
    return doc if isinstance(doc, ScanResult) else ScanResult.from_dict(doc)


def diff_documents(old: Document, new: Document, *, baseline: Document | None = None,
                   known: Sequence[tuple[str, Document]] = ()) -> list[Change]:
    """Every change from ``old`` to ``new``, most serious first.

    A change is marked ``suppressed`` when a reference state already shows the state it changed
    to, i.e. the same change does not appear between that reference and ``new``: a known device
    coming back, a known destination seen again, firmware back to the accepted one. References:
    ``baseline`` (the accepted state), then ``known`` ((label, document) pairs: recent sweeps).
    """
    new_result = _result(new)
    changes = _Differ(_result(old), new_result).run()
    references = ([("baseline", baseline)] if baseline is not None else []) + list(known)
    for label, reference in references:
        pending = [c for c in changes if not c.suppressed]
        if not pending:
            break
        still = {c.signature for c in _Differ(_result(reference), new_result).run()}
        for change in pending:
            if change.signature not in still:
                change.suppressed = True
                change.known_from = label
    return changes


def alertable(changes: Iterable[Change], threshold: str) -> list[Change]:
    """The changes that are not suppressed and at or above ``threshold``."""
    return [c for c in changes if not c.suppressed and level_at_least(c.level, threshold)]


def highest_level(changes: Iterable[Change]) -> str | None:
    best: str | None = None
    for c in changes:
        if best is None or _RANK.get(c.level, 0) > _RANK.get(best, 0):
            best = c.level
    return best
