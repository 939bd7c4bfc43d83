"""The assessment rules: one small function per finding kind, each saying why its severity.

A rule reads one ``DeviceView`` (a device and its non-local cloud destinations) and returns
findings without legal references (``scanner.assess.assess`` adds those per jurisdiction).

What counts as what:

* **video device**: a camera (``is_camera``, or type camera/doorbell/face-terminal), a recorder
  (nvr/dvr: it holds and relays camera video), or anything known to be face-capable.
* **known non-camera**: a device identified as equipment without an image sensor (printer, NAS,
  PC, POS, router ...; ``identify.NO_CAMERA_TYPES``). A device of unknown type is neither.
* **local destination**: an address in RFC 1918 / link-local / loopback / ULA space, in a scanned
  target network, or in the device's own /24; a name ending in .local/.lan/.home.arpa/...; these
  never make findings (a store's own NVR or HikCentral server is not a cloud). When the result
  records the networks the passive side treated as local (``scan.options["local_networks"]``:
  defaults, ``--local``, the scanned networks), observed links are judged by exactly those.
* **label-only destination**: a cloud signature with ``flag: false`` (clouds.md "U" entries)
  names it but is never evidence: the rules treat it as an unknown destination.
* Observed links carry the behaviour classifier's verdict (``passive:flow`` evidence) and its
  certainty; configured links come from the device's own configuration (self-audit), discovery
  links from a vendor discovery flag (e.g. SADP ``HCPlatformEnable``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scanner.errors import CamsweepError
from scanner.identify import NO_CAMERA_TYPES
from scanner.models import CLOUD_CATEGORIES, CloudLink, Device, Evidence, Finding

CAMERA_TYPES = frozenset({"camera", "doorbell", "face-terminal"})
RECORDER_TYPES = frozenset({"nvr", "dvr"})
#: Clouds whose business is faces or visitors (clouds.md FACE, FLOW-with-face).
FACE_CATEGORIES = frozenset({"face-analytics", "passenger-flow"})
#: Camera-related clouds: pictures sent to any of them are pictures in a camera cloud.
CAMERA_CLOUD_CATEGORIES = frozenset({"face-analytics", "passenger-flow", "picture-upload", "video-cloud",
                                     "vendor-management"})
#: A snapshot-upload verdict at least this certain (>= 3 JPEG-sized objects in >= 2 bursts, or HTTP
#: image uploads; see passive/classify.py) makes an unknown destination a high finding.
HIGH_CERTAINTY = 0.8
LOCAL_SUFFIXES = (".local", ".lan", ".localdomain", ".home.arpa", ".internal", ".intranet")
LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10",
    "::1/128"))
#: Scan targets wider than this are not taken as "the store LAN".
MIN_TARGET_PREFIX = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# ---- the view the rules read ------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    """One non-local destination of a device, as the rules see it."""

    cloud: CloudLink
    category: str  # the link's category; "unknown" when no flagging signature names it
    certainty: float  # observed: the behaviour verdict's certainty; otherwise the link's confidence

    @property
    def source(self) -> str:
        return self.cloud.source

    @property
    def snapshots(self) -> bool:
        return self.cloud.source == "observed" and self.cloud.behaviour == "snapshot-upload"

    @property
    def known(self) -> bool:
        return self.category != "unknown"

    @property
    def strength(self) -> float:
        """How sure the link is, as one number: behaviour x destination for an observed, named link;
        the behaviour alone for an unnamed one; the link's own confidence for configured/discovery."""
        if self.cloud.source == "observed" and self.known:
            return self.certainty * _unit(self.cloud.confidence)
        return self.certainty

    @property
    def name(self) -> str:
        """The destination for a title: host, else operator, else address:port."""
        if self.cloud.host:
            return self.cloud.host
        if self.cloud.operator:
            return self.cloud.operator
        return f"{self.cloud.ip or '?'}:{self.cloud.port or '?'}"

    @property
    def label(self) -> str:
        """Operator and category, for a title."""
        who = self.cloud.operator or "operator unknown"
        return f"{who}, {self.category}"


@dataclass(frozen=True)
class DeviceView:
    device: Device
    links: tuple[Link, ...]  # non-local destinations only

    @property
    def ip(self) -> str:
        return self.device.ip

    @property
    def video_device(self) -> bool:
        d = self.device
        return (d.is_camera or d.device_type in CAMERA_TYPES or d.device_type in RECORDER_TYPES
                or d.face_capable is True)

    @property
    def known_non_camera(self) -> bool:
        return not self.video_device and self.device.device_type in NO_CAMERA_TYPES

    @property
    def what(self) -> str:
        """The device in a title: "face-capable camera", "NVR", "device"..."""
        d = self.device
        kind = d.device_type if d.device_type and d.device_type != "unknown" else ("camera" if d.is_camera
                                                                                    else "device")
        kind = kind.upper() if kind in RECORDER_TYPES else kind
        return f"face-capable {kind}" if d.face_capable is True else kind

    @property
    def subject(self) -> str:
        """``what``, capitalised for the start of a title."""
        return self.what[:1].upper() + self.what[1:]

    def observed(self) -> list[Link]:
        return [link for link in self.links if link.source == "observed"]

    def uploads_pictures(self) -> bool:
        return any(link.snapshots for link in self.links)


def build_view(device: Device, is_local: Callable[[CloudLink, Device], bool],
               label_only: Callable[[CloudLink], bool]) -> DeviceView:
    links: list[Link] = []
    for cloud in device.clouds:
        if is_local(cloud, device):
            continue
        category = cloud.category if cloud.category in CLOUD_CATEGORIES else "unknown"
        if label_only(cloud):
            category = "unknown"
        links.append(Link(cloud, category, _certainty(cloud)))
    return DeviceView(device, tuple(links))


def _certainty(cloud: CloudLink) -> float:
    for e in cloud.evidence:
        if e.source == "passive:flow" and e.field == "cloud_behaviour":
            return _unit(e.confidence)
    return _unit(cloud.confidence)


def _unit(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, min(1.0, number)) if not math.isnan(number) else 0.0


# ---- local destinations -------------------------------------------------------------------------------
def local_networks(targets: Iterable[str]) -> tuple[Network, ...]:
    """The scanned networks (CIDR targets no wider than /16); other targets (names, ranges, files) are skipped."""
    out: list[Network] = []
    for target in targets:
        try:
            net = ipaddress.ip_network(str(target).strip(), strict=False)
        except ValueError:
            continue
        if net.prefixlen >= MIN_TARGET_PREFIX or net.version == 6 and net.prefixlen >= 48:
            out.append(net)
    return tuple(out)


def make_local_test(targets: Iterable[str], passive_networks: Iterable[str] | None = None,
                    ) -> Callable[[CloudLink, Device], bool]:
    """``is_local(link, device)``: does this destination stay inside the store network?
    ``passive_networks``: the local networks the passive side used (``scan.options["local_networks"]``)."""
    scanned = local_networks(targets)
    passive_local: tuple[Network, ...] | None = None
    if passive_networks is not None:
        parsed = []
        for text in passive_networks:
            try:
                parsed.append(ipaddress.ip_network(str(text), strict=False))
            except ValueError:
                continue
        passive_local = tuple(parsed)

    def is_local(link: CloudLink, device: Device) -> bool:
        observed_ip = _address(link.ip) if link.source == "observed" else None
        if observed_ip is not None and passive_local is not None:
            # The passive side oriented this flow with these networks (its --local list, recorded in
            # the result): one definition of "the store's networks", so a user's --local stands.
            return any(observed_ip.version == n.version and observed_ip in n for n in passive_local + scanned)
        address = _address(link.ip) or _address(link.host)
        if address is not None:
            if any(address.version == n.version and address in n for n in LOCAL_NETWORKS + scanned):
                return True
            own = _address(device.ip)
            if own is not None and own.version == 4 and address.version == 4:
                return address in ipaddress.ip_network(f"{own}/24", strict=False)
            return False
        host = (link.host or "").strip().lower().rstrip(".")
        return bool(host) and ("." not in host or host.endswith(LOCAL_SUFFIXES))

    return is_local


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(str(text).strip().strip("[]"))
    except ValueError:
        return None


def make_label_only_test() -> Callable[[CloudLink], bool]:
    """``label_only(link)``: the signature naming this link has ``flag: false`` (never evidence)."""
    try:
        from scanner.passive.clouds import shipped

        signatures = shipped()
    except CamsweepError:  # broken signature files: nothing is label-only, the categories stand
        return lambda link: False

    def label_only(link: CloudLink) -> bool:
        ids = [e.source.split(":", 1)[1] for e in link.evidence if e.source.startswith("cloud-signature:")]
        if not ids and link.host and link.category in CLOUD_CATEGORIES and link.category != "unknown":
            found = signatures.match_host(link.host)
            ids = [found.signature_id] if found is not None else []
        for sig_id in ids:
            sig = signatures.by_id(sig_id)
            if sig is not None and not sig.flag:
                return True
        return False

    return label_only


# ---- evidence helpers ---------------------------------------------------------------------------------
def link_evidence(link: Link) -> list[Evidence]:
    """A one-line summary of the destination, then copies of the link's own evidence."""
    c = link.cloud
    port = "?" if c.port is None else str(c.port)
    where = f"{c.host or '?'} ({c.ip or '?'}:{port}{'/' + c.protocol if c.protocol else ''})"
    facts = [f"{c.operator or 'operator unknown'}", link.category]
    if c.source == "observed":
        facts.append(f"behaviour {c.behaviour or 'unknown'}")
        if c.uploads:
            facts.append(f"~{c.uploads} pictures")
        facts.append(f"{c.bytes_up} B up, {c.bytes_down} B down")
    if c.what:
        facts.append(f"sends {c.what}")
    summary = Evidence(source=f"cloud:{c.source}", field="cloud", value=where, confidence=_unit(c.confidence),
                       detail="; ".join(facts), port=c.port, protocol=c.protocol)
    return [summary] + [dataclasses.replace(e) for e in c.evidence]


def device_evidence(device: Device, *fields: str, limit: int = 3) -> list[Evidence]:
    """Copies of the device's strongest evidence for the value it settled on in each of ``fields``."""
    out: list[Evidence] = []
    for name in fields:
        settled = getattr(device, name, None)
        items = [e for e in device.evidence if e.field == name and (settled is None or e.value == settled)]
        items.sort(key=lambda e: -_unit(e.confidence))
        out.extend(dataclasses.replace(e) for e in items[:limit])
    return out


def _camera_evidence(view: DeviceView) -> list[Evidence]:
    return device_evidence(view.device, "device_type", "face_capable", limit=2)


def _finding(view: DeviceView, severity: str, kind: str, title: str, confidence: float,
             evidence: list[Evidence]) -> Finding:
    return Finding(device_ip=view.ip, severity=severity, kind=kind, title=title,
                   confidence=round(_unit(confidence), 2), evidence=evidence)


def _pictures(link: Link) -> str:
    n = link.cloud.uploads
    return f"~{n} picture{'s' if n != 1 else ''}" if n else "pictures"


# ---- rules on observed traffic -------------------------------------------------------------------------
def face_upload(view: DeviceView) -> list[Finding]:
    """HIGH: a camera sends bursts of pictures to a face-analytics, passenger-flow, picture or vendor cloud.

    Visitors' faces leave the store for a third party: the Xpeng/ULUCU pattern ("collected and
    uploaded"). Any sender except a known non-camera counts for a face-analytics destination (the
    cloud does the face processing); for the other camera clouds the device must not be known to
    lack face capability (then it is ``picture_upload``)."""
    out: list[Finding] = []
    for link in view.observed():
        if not link.snapshots or link.category not in CAMERA_CLOUD_CATEGORIES or view.known_non_camera:
            continue
        if link.category != "face-analytics" and view.device.face_capable is False:
            continue
        face = view.device.confidence.get("face_capable", 0.0) if view.device.face_capable is True else 0.0
        confidence = link.certainty * max(_unit(link.cloud.confidence), _unit(face))
        out.append(_finding(view, "high", "face-upload",
                            f"{view.subject} uploads {_pictures(link)} to {link.name} ({link.label})",
                            confidence, link_evidence(link) + _camera_evidence(view)))
    return out


def picture_upload(view: DeviceView) -> list[Finding]:
    """MEDIUM: a camera known NOT to be face-capable sends pictures to a picture, flow or vendor cloud.

    Images of people leave the store (PIPL art. 26: images from public places only for public
    security without consent), but nothing shows face processing on the device."""
    out: list[Finding] = []
    if view.device.face_capable is not False or not view.video_device:
        return out
    for link in view.observed():
        if link.snapshots and link.category in CAMERA_CLOUD_CATEGORIES - {"face-analytics"}:
            out.append(_finding(view, "medium", "picture-upload",
                                f"{view.subject} uploads {_pictures(link)} to {link.name} ({link.label})",
                                link.strength, link_evidence(link)))
    return out


def snapshot_upload_unknown(view: DeviceView) -> list[Finding]:
    """HIGH or MEDIUM: bursts of picture-sized uploads to a destination no (flagging) signature knows.

    The Yuzhou sales-office case: captures went to an unnamed "cloud platform". HIGH when the sender
    is a video device not known to lack face capability and the upload shape is clear
    (certainty >= HIGH_CERTAINTY); MEDIUM when the shape is weaker, the device type is unknown, or
    the camera is known not to be face-capable. Known non-cameras (a PC sending files) never."""
    out: list[Finding] = []
    if view.known_non_camera:
        return out
    for link in view.observed():
        if not link.snapshots or link.category in CAMERA_CLOUD_CATEGORIES:
            continue
        strong = view.video_device and view.device.face_capable is not False and link.certainty >= HIGH_CERTAINTY
        where = "an unknown destination" if not link.known else f"a {link.category} destination"
        out.append(_finding(view, "high" if strong else "medium", "snapshot-upload-unknown",
                            f"{view.subject} uploads {_pictures(link)} to {where}: {link.name}",
                            link.certainty, link_evidence(link) + _camera_evidence(view)))
    return out


def face_api_non_camera(view: DeviceView) -> list[Finding]:
    """MEDIUM: a device that is not a camera talks to a face-analytics API.

    It may be a back end forwarding camera pictures (face data leaving the store) or an ordinary
    app; traffic alone cannot say whose faces, hence medium. Not raised when ``face_upload`` already
    covers the same destination (an unknown-type device sending pictures there)."""
    if view.video_device:
        return []
    out: list[Finding] = []
    for link in view.links:
        if link.category != "face-analytics" or link.source == "configured":
            continue
        if link.snapshots and not view.known_non_camera:
            continue  # face_upload reports it
        out.append(_finding(view, "medium", "face-api-non-camera",
                            f"{view.subject} (not a camera) talks to a face API: {link.name} ({link.label})",
                            link.strength, link_evidence(link) + device_evidence(view.device, "device_type", limit=2)))
    return out


def face_cloud_enabled(view: DeviceView) -> list[Finding]:
    """MEDIUM: a face-capable camera has a cloud platform on, but no picture upload was seen.

    The 2025 Measures want face data kept inside the device: an open cloud channel on a device that
    can capture faces is one switch away from uploading them. Also raised for a camera of unknown
    face capability connected to a face-analytics or passenger-flow platform. A video relay to an
    unknown host counts as a platform for a face-capable camera. Configured links are
    left to ``cloud_registered`` (the device's own settings make their own finding)."""
    if not view.video_device or view.uploads_pictures() or view.device.face_capable is False:
        return []
    platform = [link for link in view.links if link.source != "configured"
                and (link.category in CAMERA_CLOUD_CATEGORIES
                     or link.source == "observed" and link.cloud.behaviour == "video-relay")]
    if view.device.face_capable is not True:
        platform = [link for link in platform if link.category in FACE_CATEGORIES]
    if not platform:
        return []
    names = ", ".join(sorted({link.cloud.operator or link.name for link in platform}))
    face = _unit(view.device.confidence.get("face_capable", 0.5)) if view.device.face_capable else 0.5
    evidence = [e for link in platform for e in link_evidence(link)] + _camera_evidence(view)
    return [_finding(view, "medium", "face-cloud-enabled",
                     f"{view.subject} has a cloud platform enabled ({names}); no picture upload seen",
                     face * max(link.strength for link in platform), evidence)]


def video_cloud(view: DeviceView) -> list[Finding]:
    """LOW: a camera or recorder (not face-capable) reaches a video cloud, P2P relay or vendor platform.

    Video of the store can be watched from outside (PIPL art. 26 signs and purpose), but there is
    no evidence of face processing and no picture upload. Observed video relays to unknown hosts
    count; configured links are left to ``cloud_registered``."""
    if not view.video_device or view.device.face_capable is True or view.uploads_pictures():
        return []
    platform = [link for link in view.links if link.source != "configured"
                and (link.category in {"video-cloud", "vendor-management"}
                     or link.source == "observed" and link.cloud.behaviour == "video-relay")]
    if not platform:
        return []
    names = ", ".join(sorted({link.cloud.operator or link.name for link in platform}))
    evidence = [e for link in platform for e in link_evidence(link)] + device_evidence(view.device, "device_type",
                                                                                       limit=2)
    return [_finding(view, "low", "video-cloud", f"{view.subject} uses a video cloud ({names})",
                     max(link.strength for link in platform), evidence)]


def cloud_unknown(view: DeviceView) -> list[Finding]:
    """INFO: a camera exchanges traffic (not pictures, not video) with an internet host nobody names.

    Worth a look in the device's configuration, but shape and destination say nothing yet."""
    if not view.video_device:
        return []
    unknown = [link for link in view.observed() if not link.known
               and link.cloud.behaviour not in ("snapshot-upload", "video-relay")]
    if not unknown:
        return []
    names = ", ".join(link.name for link in unknown[:4]) + (" ..." if len(unknown) > 4 else "")
    return [_finding(view, "info", "cloud-unknown",
                     f"{view.subject} talks to unidentified internet hosts: {names}",
                     max(link.certainty for link in unknown) * 0.5,
                     [e for link in unknown for e in link_evidence(link)])]


# ---- rules on the device's own configuration (self-audit) ------------------------------------------------
def _configured(view: DeviceView) -> list[Link]:
    return [link for link in view.links if link.source == "configured"]


def face_upload_configured(view: DeviceView) -> list[Finding]:
    """HIGH: face capture is switched on and the device is configured to send pictures off the LAN.

    The device's own settings name the destination: the strongest evidence there is (clouds.md §2,
    face-capture rule), whether or not an upload happened while we watched."""
    if view.device.face_capture_enabled is not True:
        return []
    out: list[Finding] = []
    for link in _configured(view):
        if link.cloud.what == "pictures":
            out.append(_finding(view, "high", "face-upload-configured",
                                f"{view.subject} captures faces and is configured to send pictures to "
                                f"{link.name} ({link.label})",
                                min(link.certainty, _face_capture_confidence(view.device)) or link.certainty,
                                link_evidence(link) + device_evidence(view.device, "face_capture_enabled")))
    return out


def picture_upload_configured(view: DeviceView) -> list[Finding]:
    """MEDIUM: pictures are configured to go off the LAN, but face capture is not known to be on.

    Images of people leave the store by design; whether they are face crops is not shown."""
    if view.device.face_capture_enabled is True:
        return []
    return [_finding(view, "medium", "picture-upload-configured",
                     f"{view.subject} is configured to send pictures to {link.name} ({link.label})",
                     link.certainty, link_evidence(link))
            for link in _configured(view) if link.cloud.what == "pictures"]


def cloud_registered(view: DeviceView) -> list[Finding]:
    """MEDIUM or LOW: the device is configured to register with a cloud platform (status, events, video).

    MEDIUM for a face-analytics, passenger-flow or picture platform, or for events from a device
    with face capture on (face events carry pictures); LOW for a video or vendor-management cloud."""
    out: list[Finding] = []
    for link in _configured(view):
        if link.cloud.what == "pictures":
            continue
        face_events = link.cloud.what == "events" and view.device.face_capture_enabled is True
        severity = "medium" if link.category in FACE_CATEGORIES | {"picture-upload"} or face_events else "low"
        sends = f" ({link.cloud.what})" if link.cloud.what else ""
        out.append(_finding(view, severity, "cloud-registered",
                            f"{view.subject} is registered with {link.name} ({link.label}){sends}",
                            link.certainty, link_evidence(link)))
    return out


def face_library(view: DeviceView) -> list[Finding]:
    """MEDIUM: the device holds face libraries (stored face templates: a biometric database).

    Sensitive personal information kept in the store (PIPL art. 28; the Measures' filing duty from
    100,000 persons); storing is not uploading, hence not high."""
    items = [e for e in view.device.evidence if e.field == "face_library" and _count(e.value) > 0]
    if not items:
        return []
    count = max(_count(e.value) for e in items)
    return [_finding(view, "medium", "face-library",
                     f"{view.subject} stores {count} face librar{'ies' if count != 1 else 'y'}",
                     max(_unit(e.confidence) for e in items), [dataclasses.replace(e) for e in items])]


def _count(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, list | tuple):
        return len(value)
    return 0


def _face_capture_confidence(device: Device) -> float:
    return _unit(device.confidence.get("face_capture_enabled", 0.0)) or max(
        (_unit(e.confidence) for e in device.evidence if e.field == "face_capture_enabled" and e.value is True),
        default=0.0)


RULES: tuple[Callable[[DeviceView], list[Finding]], ...] = (
    face_upload,
    picture_upload,
    snapshot_upload_unknown,
    face_api_non_camera,
    face_cloud_enabled,
    video_cloud,
    cloud_unknown,
    face_upload_configured,
    picture_upload_configured,
    cloud_registered,
    face_library,
)
