"""Audit every device of a scan result with the store's credentials, and merge what was read.

For each device: the most specific credentials entry (``CredentialSet.for_device``), the clients
that speak its protocols (Hikvision ISAPI, Dahua CGI/RPC2, Uniview LAPI, Xiongmai DVRIP, then
ONVIF for any ONVIF device), one ``LoginGuard`` shared by them (one refused login stops every
further credential use on that device), and a settled ``AuditRecord`` status:

    ok              logged in, read everything asked
    partial         logged in, but some reads failed (or a later protocol refused the login)
    locked          the device says the account is locked (nothing more sent)
    auth-failed     the one login attempt was refused (nothing more sent)
    no-credentials  no entry of the file matches the device (nothing sent)
    unsupported     no client for this device, or it does not speak the expected protocol
    unreachable     the audit could not connect

Devices are audited concurrently (a bounded thread pool); each device's requests are sequential,
so a device never sees more than one audit connection at a time (DESIGN.md: at most 2).

Merging: configured destinations become ``clouds[]`` entries with ``source: configured`` matched
against the cloud signatures; facts become ``Evidence`` (``source`` ``audit:<protocol>:<endpoint>``);
``face_capable``/``face_capture_enabled`` take the audit's value when it is at least as confident
as what the scan concluded; identity fields are filled only where the scan left them empty.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from scanner.audit import dahua, hikvision, onvif, uniview, xiongmai
from scanner.audit.context import DeviceAudit
from scanner.audit.creds import CredentialSet
from scanner.audit.records import (
    AUTH_FAILED,
    LOCKED,
    NO_CREDENTIALS,
    OK,
    PARTIAL,
    UNREACHABLE,
    UNSUPPORTED,
    AuditReport,
    Destination,
    Fact,
)
from scanner.audit.transport import FAILED, NetSettings
from scanner.audit.transport import LOCKED as GUARD_LOCKED
from scanner.models import AuditRecord, CloudLink, Device, Evidence, ScanResult

log = logging.getLogger(__name__)

MAX_WORKERS = 16
Client = Callable[[DeviceAudit], None]
LAN_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
    "fc00::/7", "fe80::/10", "::1/128"))
IDENTITY_FIELDS = ("model", "firmware", "serial")


def clients_for(device: Device) -> list[tuple[str, Client]]:
    """The vendor client (by identified vendor or protocol evidence), then ONVIF when it speaks ONVIF."""
    vendor = (device.vendor or "").lower()
    sources = {e.source.split(":", 1)[0] for e in device.evidence}
    ports = {s.port for s in device.services if s.transport == "tcp"}
    chosen: list[tuple[str, Client]] = []
    if vendor == "hikvision" or "sadp" in sources:
        chosen.append(("isapi", hikvision.audit))
    elif vendor == "dahua" or "dhip" in sources or "dahua-rpc2" in sources:
        chosen.append(("dahua", dahua.audit))
    elif vendor == "uniview" or "lapi" in sources:
        chosen.append(("lapi", uniview.audit))
    elif (vendor == "xiongmai" or "xm" in sources) and xiongmai.PORT in ports:
        chosen.append(("dvrip", xiongmai.audit))
    speaks_onvif = any(s.protocol in ("wsd", "onvif") for s in device.services) or bool(sources & {"wsd", "onvif"})
    if speaks_onvif:
        chosen.append(("onvif", onvif.audit))
    return chosen


def is_lan(host: str | None, device_ip: str) -> bool:
    """A private/link-local address, or one in the device's own /24 (the store LAN)."""
    if host is None:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if any(addr.version == net.version and addr in net for net in LAN_NETWORKS):
        return True
    try:
        own = ipaddress.ip_network(f"{device_ip}/24", strict=False)
    except ValueError:
        return False
    return addr.version == own.version and addr in own


def settle(audit: DeviceAudit, clients: list[str]) -> AuditRecord:
    """The one-line status of a finished device audit."""
    report, guard = audit.report, audit.guard
    label = audit.credential.label
    read = list(report.read)
    protocols = list(report.protocols)
    if guard.state == GUARD_LOCKED:
        return AuditRecord(LOCKED, f"{guard.detail}; {guard.attempts} login attempt, no further tries ({label})",
                           read, protocols)
    if guard.state == FAILED:
        if read:
            return AuditRecord(PARTIAL, f"{guard.detail} after {', '.join(protocols)} accepted it; "
                               f"nothing more sent ({label})", read, protocols)
        return AuditRecord(AUTH_FAILED, f"{guard.detail}; {guard.attempts} login attempt, no further tries "
                           f"({label})", read, protocols)
    if not read:
        if report.unreachable and not report.unsupported:
            return AuditRecord(UNREACHABLE, "could not connect: " + ", ".join(report.unreachable), read, protocols)
        why = report.unsupported + report.unreachable + report.problems
        return AuditRecord(UNSUPPORTED, ("; ".join(why) or f"no answer to {', '.join(clients)}")[:300], read,
                           protocols)
    counts = Counter(name.split(":", 1)[0] for name in read)
    summary = ", ".join(f"{n} {p}" for p, n in counts.items())
    troubles = report.problems + [f"{u} unreachable" for u in report.unreachable]
    if troubles:
        return AuditRecord(PARTIAL, f"read {summary}; failed: {'; '.join(troubles)[:200]} ({label})", read,
                           protocols)
    return AuditRecord(OK, f"read {summary} ({label})", read, protocols)


def audit_device(device: Device, creds: CredentialSet, net: NetSettings) -> tuple[AuditRecord, AuditReport | None]:
    """Audit one device; the report is None when nothing was sent."""
    credential = creds.for_device(device.ip, device.mac, device.vendor, device.brand)
    if credential is None:
        return AuditRecord(NO_CREDENTIALS, "no entry of the credentials file matches this device; nothing sent"), None
    clients = clients_for(device)
    if not clients:
        what = " ".join(x for x in (device.vendor, device.device_type) if x) or "this device"
        return AuditRecord(UNSUPPORTED, f"no audit client for {what} (ISAPI, Dahua, LAPI, DVRIP or ONVIF); "
                           "nothing sent"), None
    audit = DeviceAudit(device, credential, net)
    try:
        for _name, client in clients:
            if audit.guard.stopped:
                break
            try:
                client(audit)
            except Exception as exc:  # a client bug must not lose the other devices
                log.debug("audit client %s failed on %s", _name, device.ip, exc_info=True)
                audit.report.problems.append(f"{_name}: internal error {exc.__class__.__name__}")
    finally:
        audit.close()
    return settle(audit, [name for name, _ in clients]), audit.report


def cloud_link(device: Device, dest: Destination, signatures: Any) -> CloudLink:
    """A configured destination as a ``clouds[]`` entry, named by the cloud signatures."""
    host_is_ip = False
    if dest.host is not None:
        try:
            ipaddress.ip_address(dest.host)
            host_is_ip = True
        except ValueError:
            pass
    match = None
    if signatures is not None and dest.host is not None:
        match = signatures.match(dest.host, dest.port)
    operator = match.operator if match is not None else dest.operator_hint
    category = match.category if match is not None else "unknown"
    if match is None and dest.operator_hint is not None and signatures is not None:
        # A vendor switch with no address (e.g. XMEye NatEnable): its operator's category.
        hinted = next((s for s in signatures.signatures if s.operator == dest.operator_hint), None)
        category = hinted.category if hinted is not None else "unknown"
    where = dest.host or "(no address configured)"
    evidence = [Evidence(source=dest.source, field="cloud", value=where, confidence=0.95, detail=dest.detail,
                         port=dest.port, protocol=dest.protocol)]
    if match is not None:
        evidence.append(Evidence(source=f"cloud-signature:{match.signature_id}", field="cloud", value=match.operator,
                                 confidence=match.score, detail=match.evidence_detail, port=dest.port,
                                 protocol=dest.protocol))
    if dest.what == "pictures" and dest.host is not None and not is_lan(dest.host, device.ip):
        evidence.append(Evidence(source=dest.source, field="picture_push_target", value=where, confidence=0.95,
                                 detail="pictures configured to go outside the store network", port=dest.port,
                                 protocol=dest.protocol))
    return CloudLink(
        host=None if host_is_ip else dest.host, ip=dest.host if host_is_ip else None, port=dest.port,
        operator=operator, category=category, source="configured", protocol=dest.protocol, what=dest.what,
        confidence=match.score if match is not None else 0.5, evidence=evidence,
    )


def _best(facts: list[Fact], field_name: str) -> Fact | None:
    """The most confident fact for a field; on a tie, a positive one (face claims rest on positives)."""
    candidates = [f for f in facts if f.field == field_name]
    if not candidates:
        return None
    return max(candidates, key=lambda f: (f.confidence, f.value is True))


def merge(device: Device, record: AuditRecord, report: AuditReport | None, signatures: Any) -> None:
    """Put the audit into the device record (see the module docstring for the rules)."""
    device.audit = record
    if report is None:
        return
    for fact in report.facts:
        device.evidence.append(Evidence(source=fact.source, field=fact.field, value=fact.value,
                                        confidence=fact.confidence, detail=fact.detail))
    for field_name in ("face_capable", "face_capture_enabled"):
        best = _best(report.facts, field_name)
        if best is None or not isinstance(best.value, bool):
            continue
        current = getattr(device, field_name)
        current_conf = device.confidence.get(field_name, 0.0) if current is not None else 0.0
        if current is None or best.confidence >= current_conf:
            if current is not None and current != best.value:
                device.notes.append(f"{field_name}: the device's configuration says {str(best.value).lower()} "
                                    f"({best.source}); the scan had concluded {str(current).lower()}")
            setattr(device, field_name, best.value)
            device.confidence[field_name] = round(best.confidence, 3)
    if device.face_capable is False and device.face_capture_enabled is None:
        device.face_capture_enabled = False
    for field_name in IDENTITY_FIELDS:
        # ONVIF's Model is often a generic "IPC" on OEM boxes: only vendor protocols fill the model.
        facts = [f for f in report.facts if field_name != "model" or not f.source.startswith("audit:onvif")]
        best = _best(facts, field_name)
        if best is not None and getattr(device, field_name) is None and isinstance(best.value, str):
            setattr(device, field_name, best.value)
            device.confidence[field_name] = round(best.confidence, 3)
    seen: set[tuple[str | None, int | None, str]] = set()
    for dest in report.destinations:
        key = (dest.host, dest.port, dest.what)
        if key in seen:
            continue
        seen.add(key)
        device.clouds.append(cloud_link(device, dest, signatures))


def _signatures() -> Any:
    try:
        from scanner.passive.clouds import shipped

        return shipped()
    except Exception:  # a broken signature directory must not lose the audit
        log.warning("cloud signatures could not be loaded; configured destinations stay unnamed")
        return None


def run_audit(result: ScanResult, creds: CredentialSet, net: NetSettings | None = None, *,
              workers: int = MAX_WORKERS, scope: set[str] | None = None) -> None:
    """Audit every device of ``result`` in place and add a summary note to ``result.scan.notes``.

    With ``scope``, devices whose address is not in it (e.g. added by the passive listener) are
    marked ``unsupported`` and nothing is sent to them.
    """
    net = net or NetSettings()
    signatures = _signatures()
    started = time.monotonic()
    devices = list(result.devices)
    outcomes: dict[str, tuple[AuditRecord, AuditReport | None]] = {}
    if scope is not None:
        for device in [d for d in devices if d.ip not in scope]:
            outcomes[device.ip] = (AuditRecord(UNSUPPORTED, "not among the scan's targets; nothing sent"), None)
            devices.remove(device)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(devices) or 1)),
                            thread_name_prefix="camsweep-audit") as pool:
        futures = {pool.submit(audit_device, d, creds, net): d for d in devices}
        try:
            for future in as_completed(futures):
                device = futures[future]
                outcomes[device.ip] = future.result()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            result.scan.interrupted = True
    devices = list(result.devices)
    for device in devices:
        if device.ip in outcomes:
            record, report = outcomes[device.ip]
            merge(device, record, report, signatures)
    counts = Counter(d.audit.status for d in devices if d.audit is not None)
    summary = ", ".join(f"{status} {counts[status]}" for status in
                        (OK, PARTIAL, LOCKED, AUTH_FAILED, UNREACHABLE, UNSUPPORTED, NO_CREDENTIALS) if counts[status])
    result.scan.notes.append(f"audit: {len(outcomes)} devices in {time.monotonic() - started:.1f}s ({summary})")
    trouble = [d for d in devices if d.audit is not None and d.audit.status in (LOCKED, AUTH_FAILED, UNREACHABLE)]
    for device in trouble:
        assert device.audit is not None
        result.scan.notes.append(f"audit: {device.ip} {device.audit.status}: {device.audit.detail}")
