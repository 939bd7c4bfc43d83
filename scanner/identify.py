"""Evidence -> Device: every claim with the evidence it rests on and a confidence.

Each observation of a host is matched against the signatures; each match becomes one
``Evidence`` per claimed field. Conflicts are resolved by explicit rules, never by which probe
wrote last:

1. Source weight: what a device says about itself in a structured vendor protocol (SADP, DHIP,
   XM discovery, VAPIX, the Dahua RPC2 challenge, ONVIF GetDeviceInformation) outweighs
   self-descriptions in free text (ONVIF scopes, UPnP, mDNS), which outweigh banners and realms
   (HTTP, RTSP), which outweigh the MAC's OUI (a Wi-Fi module or ODM NIC can carry another
   company's OUI -- protocols.md §10).
2. Per field, candidate values are scored ``1 - prod(1 - certainty * weight)`` over their
   evidence (independent agreeing observations add up); the best score wins.
3. ``face_capable`` is true only on positive evidence, false only on negative evidence, and
   null when nothing speaks to it -- never guessed true.
4. Model knowledge (signatures/models) is applied after vendor and model are settled.
A losing candidate with real support is kept in ``Device.notes`` so the reader sees the conflict.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from scanner.models import CloudLink, Device, Evidence, Service
from scanner.observations import Observation

log = logging.getLogger(__name__)

SOURCE_WEIGHT = {
    "sadp": 1.0,
    "dhip": 1.0,
    "xm": 1.0,
    "vapix": 1.0,
    "dahua-rpc2": 1.0,
    "onvif": 0.95,
    "model": 0.9,
    "wsd": 0.85,
    "upnp": 0.85,
    "mdns": 0.8,
    "ssdp": 0.75,
    "http": 0.8,
    "https": 0.8,
    "rtsp": 0.8,
    "lapi": 0.8,
    "tcp": 0.5,
    "oui": 0.5,
}
CLAIM_FIELDS = ("vendor", "brand", "model", "firmware", "serial", "hostname", "device_type", "is_camera",
                "face_capable", "face_capture_enabled", "cloud_platform", "odm", "os")
NOTE_FIELDS = ("cloud_platform", "odm", "os")  # claims without a Device attribute: kept as notes
CAMERA_TYPES = {"camera", "doorbell", "face-terminal"}
# Equipment with no image sensor: identifying one as such settles face_capable as false.
NO_CAMERA_TYPES = {"printer", "nas", "pc", "pos", "router", "switch", "access-point", "tv", "phone"}
# Pre-auth discovery flags saying a cloud platform is switched on: (source, field) -> the cloud
# signature that names the platform. Only SADP has one (protocols.md §1.1/§8: HCPlatformEnable,
# mapping to Hik-Connect inferred from the name -- UNCERTAIN). DHIP and XM 34569 discovery answers
# carry no cloud switch; Dahua T2UServer.Enable and XM NetWork.Nat.NatEnable need a login (audit).
DISCOVERY_CLOUD_FLAGS = {("sadp", "cloud.hik_connect_enabled"): "hik-connect-device"}
DISCOVERY_CLOUD_FALLBACK = {"hik-connect-device": ("Hik-Connect (Hikvision)", "vendor-management")}
# An enabled flag is not traffic: the platform may be unreachable or the flag mean something else.
DISCOVERY_CLOUD_CONFIDENCE = 0.4


class MatchLike(Protocol):
    signature_id: str
    certainty: float
    claims: dict[str, object]
    source: str
    detail: str


class Matcher(Protocol):
    def match(self, observation: Observation) -> list[Any]: ...

    def match_model(self, vendor: str, model: str) -> list[Any]: ...


def evidence_from(observation: Observation, matcher: Matcher) -> list[Evidence]:
    """Every claim any signature makes about this observation, as Evidence."""
    out: list[Evidence] = []
    if observation.status != "success" and observation.status != "unauthorized":
        return out
    try:
        matches = matcher.match(observation)
    except Exception:  # a broken signature must not lose the scan
        log.exception("signature matching failed on %s/%s", observation.source, observation.ip)
        return out
    for m in matches:
        for field, value in m.claims.items():
            out.append(
                Evidence(
                    source=f"{observation.source}:{m.signature_id}",
                    field=field,
                    value=value,
                    confidence=round(float(m.certainty) * SOURCE_WEIGHT.get(observation.source, 0.6), 3),
                    detail=str(m.detail)[:300],
                    port=observation.port,
                    protocol=observation.source,
                )
            )
    return out


def resolve(ip: str, observations: Iterable[Observation], matcher: Matcher) -> Device:
    """Build the Device for ``ip`` from everything observed about it."""
    obs = list(observations)
    device = Device(ip=ip)
    evidence: list[Evidence] = []
    for o in obs:
        evidence.extend(evidence_from(o, matcher))
        if o.fields.get("mac") and device.mac is None:
            device.mac = o.fields["mac"].lower()
    device.services = _services(obs)
    _settle(device, evidence)
    if device.vendor and device.model:
        model_obs = Observation(ip=ip, source="model", fields={"vendor": device.vendor, "model": device.model})
        model_evidence: list[Evidence] = []
        try:
            model_matches = matcher.match_model(device.vendor, device.model)
        except Exception:
            log.exception("model knowledge failed for %s %s", device.vendor, device.model)
            model_matches = []
        for m in model_matches:
            for field, value in m.claims.items():
                model_evidence.append(Evidence(source=f"model:{m.signature_id}", field=field, value=value,
                                               confidence=round(float(m.certainty) * SOURCE_WEIGHT["model"], 3),
                                               detail=str(m.detail)[:300], protocol=model_obs.source))
        evidence.extend(model_evidence)
        _settle(device, evidence)
    device.evidence = evidence
    _camera_rule(device, obs, evidence)
    device.clouds.extend(discovery_clouds(obs))
    return device


def discovery_clouds(obs: Iterable[Observation]) -> list[CloudLink]:
    """CloudLinks (source ``discovery``) for cloud switches a device's discovery answer reports on.

    SADP ``HCPlatformEnable`` = true (case-insensitive; the real-firmware typo ``flase`` is false) ->
    the Hik-Connect platform access server (operator and category from the cloud signature
    ``hik-connect-device``); host and port stay unknown (the flag does not say which server)."""
    found: dict[str, list[Evidence]] = {}
    for o in obs:
        if o.status != "success":
            continue
        for (source, name), sig_id in DISCOVERY_CLOUD_FLAGS.items():
            value = o.fields.get(name, "")
            if o.source == source and value.strip().lower() == "true":
                found.setdefault(sig_id, []).append(Evidence(
                    source=source, field="cloud", value=sig_id, confidence=DISCOVERY_CLOUD_CONFIDENCE,
                    detail=f"{source} {name}={value.strip()} (a cloud-enabled flag, not observed traffic)",
                    port=o.port, protocol=source))
    links = []
    for sig_id, evidence in found.items():
        operator, category = _cloud_signature(sig_id)
        for e in evidence:
            e.value = operator
        links.append(CloudLink(host=None, ip=None, port=None, operator=operator, category=category,
                               source="discovery", confidence=DISCOVERY_CLOUD_CONFIDENCE, evidence=evidence[:1]))
    return links


def _cloud_signature(sig_id: str) -> tuple[str, str]:
    """(operator, category) of a shipped cloud signature; the built-in fallback if it cannot be loaded."""
    try:
        from scanner.passive.clouds import shipped

        sig = shipped().by_id(sig_id)
    except Exception:  # broken signature files must not lose the scan
        log.exception("cloud signatures could not be loaded for %s", sig_id)
        sig = None
    if sig is not None:
        return sig.operator, sig.category
    return DISCOVERY_CLOUD_FALLBACK[sig_id]


def _settle(device: Device, evidence: list[Evidence]) -> None:
    by_field: dict[str, dict[Any, list[Evidence]]] = defaultdict(lambda: defaultdict(list))
    for e in evidence:
        if e.field in CLAIM_FIELDS and e.value not in (None, ""):
            by_field[e.field][_key(e.value)].append(e)
    notes = [n for n in device.notes
             if not n.startswith("conflict ") and not n.startswith(tuple(f"{f}: " for f in NOTE_FIELDS))]
    for field, candidates in by_field.items():
        scored = sorted(((_combined(items), key, items) for key, items in candidates.items()),
                        key=lambda t: t[0], reverse=True)
        best_score, _, best_items = scored[0]
        value = max(best_items, key=lambda e: e.confidence).value
        if field in NOTE_FIELDS:
            notes.append(f"{field}: {value}")
            device.confidence[field] = round(best_score, 3)
            continue
        setattr(device, field, value)
        device.confidence[field] = round(best_score, 3)
        for score, _, items in scored[1:]:
            if score >= 0.3:
                loser = max(items, key=lambda e: e.confidence)
                notes.append(f"conflict on {field}: kept {value!r} ({best_score:.2f}) over {loser.value!r} "
                             f"({score:.2f}, {loser.source})")
    device.notes = notes


def _combined(items: list[Evidence]) -> float:
    miss = 1.0
    for e in items:
        miss *= 1.0 - max(0.0, min(1.0, e.confidence))
    return 1.0 - miss


def _key(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _camera_rule(device: Device, obs: list[Observation], evidence: list[Evidence]) -> None:
    """is_camera follows device_type when known; else an ONVIF video transmitter with RTSP is one."""
    if device.device_type in CAMERA_TYPES:
        device.is_camera = True
    elif device.device_type is not None and "is_camera" not in device.confidence:
        device.is_camera = False
    if device.device_type is None:
        types = " ".join(o.fields.get("types", "") for o in obs if o.source == "wsd")
        has_rtsp = any(o.source == "rtsp" and o.status in ("success", "unauthorized") for o in obs)
        if "NetworkVideoTransmitter" in types and has_rtsp:
            e = Evidence(source="wsd:types+rtsp", field="device_type", value="camera", confidence=0.6,
                         detail="ONVIF NetworkVideoTransmitter answering RTSP")
            evidence.append(e)
            device.device_type = "camera"
            device.is_camera = True
            device.confidence["device_type"] = 0.6
    if device.face_capable is None and device.device_type in NO_CAMERA_TYPES:
        e = Evidence(source="rule:device-type", field="face_capable", value=False,
                     confidence=device.confidence.get("device_type", 0.5),
                     detail=f"a {device.device_type} has no camera")
        evidence.append(e)
        device.face_capable = False
        device.confidence["face_capable"] = e.confidence
    if device.face_capable is not True and device.face_capable is not False:
        device.face_capable = None


def _services(obs: list[Observation]) -> list[Service]:
    seen: dict[tuple[int, str], Service] = {}
    for o in obs:
        if o.port is None or o.status not in ("success", "unauthorized"):
            continue
        if o.source in ("oui", "arp", "model"):
            continue
        key = (o.port, o.transport)
        protocol = o.source if o.source != "tcp" else "tcp"
        banner = o.fields.get("server") or o.fields.get("title") or None
        if key not in seen or seen[key].protocol == "tcp":
            seen[key] = Service(port=o.port, transport=o.transport, protocol=protocol, banner=banner)
    return sorted(seen.values(), key=lambda s: (s.transport, s.port))
