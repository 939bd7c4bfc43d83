"""ONVIF for lab devices: the device/media/events/analytics SOAP services and WS-Discovery.

Rules followed (protocols.md §5, ONVIF Core):
* PRE_AUTH operations (GetSystemDateAndTime, GetCapabilities, GetServices, GetHostname,
  GetServiceCapabilities, GetEndpointReference, GetWsdlUrl) never need credentials;
* everything else needs WS-UsernameToken (PasswordDigest = B64(SHA1(nonce ‖ created ‖ password)),
  ``Created`` checked against the *device's* clock, which may be skewed) or HTTP digest; without
  credentials a digest-capable device answers HTTP 401, a token-only one HTTP 400 +
  ``ter:NotAuthorized``. Cheap devices may answer GetDeviceInformation anonymously.
* WS-Discovery: ProbeMatches unicast to the prober after a random delay up to 500 ms; Types
  filter on dn:NetworkVideoTransmitter / tds:Device; Scopes matched by rfc3986 path-segment prefix.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.lab.runtime.httpserver import DigestAuth, Request, Response, Router
from scanner.lab.runtime.node import Node, UdpEndpoint

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PRE_AUTH = {
    "GetSystemDateAndTime",
    "GetCapabilities",
    "GetServices",
    "GetHostname",
    "GetServiceCapabilities",
    "GetEndpointReference",
    "GetWsdlUrl",
}
NS = (
    f'xmlns:env="{SOAP_ENV}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:tan="http://www.onvif.org/ver20/analytics/wsdl" '
    'xmlns:wstop="http://docs.oasis-open.org/wsn/t-1" xmlns:tns1="http://www.onvif.org/ver10/topics" '
    'xmlns:ter="http://www.onvif.org/ver10/error"'
)
TOKEN_WINDOW_S = 300
# Operations that change a device (Set*, Delete*, Add*, Create<config>, reboot/factory reset): the
# lab refuses them (ActionNotSupported) and counts them, because camsweep must never send one.
WRITE_PREFIXES = ("Set", "Delete", "Add", "Remove", "Modify", "SystemReboot", "Upgrade", "CreateUsers",
                  "CreateProfile", "CreateRules", "CreateAnalyticsModules")
ANALYTICS_TOKEN = "VideoAnalyticsToken"


@dataclass
class OnvifIdentity:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    scopes: list[str]
    analytics_modules: list[str] = field(default_factory=list)  # e.g. "hikxsd:FaceDetect"
    rules: list[str] = field(default_factory=list)  # e.g. "tt:LineDetector", "tt:FaceRecognition"
    event_topics: list[str] = field(default_factory=list)  # e.g. "tns1:RuleEngine/FaceDetector/Face"
    configured_rules: list[str] = field(default_factory=list)  # rule types switched on (GetRules), e.g. face
    anonymous_device_info: bool = False
    digest: bool = True  # HTTP digest accepted (401 challenge); False: UsernameToken only
    clock_skew_s: int = 0


class OnvifService:
    """SOAP dispatcher mounted on a device's HTTP router."""

    def __init__(self, node: Node, ident: OnvifIdentity, auth: DigestAuth, http_port: int = 80) -> None:
        self.node = node
        self.ident = ident
        self.auth = auth
        self.http_port = http_port
        self.writes = 0

    def mount(self, router: Router) -> None:
        for path in ("/onvif/device_service", "/onvif/media_service", "/onvif/event_service",
                     "/onvif/analytics_service", "/onvif/Device", "/onvif/Media", "/onvif/Events",
                     "/onvif/Analytics"):
            router.add("POST", path, self.handle)

    def device_time(self) -> float:
        return time.time() + self.ident.clock_skew_s

    def xaddr(self, service: str) -> str:
        port = "" if self.http_port == 80 else f":{self.http_port}"
        return f"http://{self.node.spec.ip}{port}/onvif/{service}"

    def handle(self, req: Request) -> Response:
        try:
            root = SafeET.fromstring(req.body)
        except Exception:  # defusedxml raises several kinds; malformed SOAP is a sender fault
            return self.fault("env:Sender", "ter:WellFormed", "malformed XML", 400)
        body = _child(root, "Body")
        op_el = next(iter(body), None) if body is not None else None
        if op_el is None:
            return self.fault("env:Sender", "ter:WellFormed", "empty body", 400)
        op = _local(op_el.tag)
        if op not in PRE_AUTH and not (op == "GetDeviceInformation" and self.ident.anonymous_device_info):
            denied = self.authorise(req, root)
            if denied is not None:
                return denied
        if op.startswith(WRITE_PREFIXES):
            self.writes += 1
            self.node.bump("onvif_writes")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            return self.fault("env:Receiver", "ter:ActionNotSupported", f"{op} not supported", 400)
        body_xml: str = handler(op_el)
        return Response(200, _envelope(body_xml), content_type="application/soap+xml; charset=utf-8")

    def authorise(self, req: Request, root: Element) -> Response | None:
        token = _username_token(root)
        if token is not None:
            user, digest, nonce, created = token
            if self.auth.is_locked(user):
                self.auth.record(user, False)
                return self.fault("env:Sender", "ter:NotAuthorized", "account locked", 400)
            ok = user in self.auth.users and self._token_ok(self.auth.users[user], digest, nonce, created)
            if self.auth.record(user, ok):
                return None
            return self.fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized", 400)
        if self.ident.digest and req.header("authorization"):
            ok, _user = self.auth.check(req)
            if ok:
                return None
        if self.ident.digest:
            return Response(401, "", headers=self.auth.challenge_headers())
        return self.fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized", 400)

    def _token_ok(self, password: str, digest: str, nonce: str, created: str) -> bool:
        try:
            nonce_raw = base64.b64decode(nonce)
            created_ts = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
        except (ValueError, TypeError):
            return False
        if abs(created_ts - self.device_time()) > TOKEN_WINDOW_S:
            return False  # "Wsse authorized time check failed"
        expected = base64.b64encode(hashlib.sha1(nonce_raw + created.encode() + password.encode()).digest())
        return expected.decode() == digest

    def fault(self, code: str, subcode: str, reason: str, status: int) -> Response:
        body = (
            f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
            f"</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{reason}</env:Text></env:Reason>"
            "</env:Fault>"
        )
        return Response(status, _envelope(body), content_type="application/soap+xml; charset=utf-8")

    # ---- operations (each returns the Body content) -----------------------------------------
    def op_GetSystemDateAndTime(self, _el: Element) -> str:  # noqa: N802 - ONVIF operation name
        t = time.gmtime(self.device_time())
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute>"
            f"<tt:Second>{t.tm_sec}</tt:Second></tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year>"
            f"<tt:Month>{t.tm_mon}</tt:Month><tt:Day>{t.tm_mday}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def op_GetCapabilities(self, _el: Element) -> str:  # noqa: N802
        analytics = ""
        if self.ident.analytics_modules or self.ident.rules:
            analytics = (
                f"<tt:Analytics><tt:XAddr>{self.xaddr('analytics_service')}</tt:XAddr>"
                "<tt:RuleSupport>true</tt:RuleSupport><tt:AnalyticsModuleSupport>true</tt:AnalyticsModuleSupport>"
                "</tt:Analytics>"
            )
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"{analytics}<tt:Device><tt:XAddr>{self.xaddr('device_service')}</tt:XAddr></tt:Device>"
            f"<tt:Events><tt:XAddr>{self.xaddr('event_service')}</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>true</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport></tt:Events>"
            f"<tt:Media><tt:XAddr>{self.xaddr('media_service')}</tt:XAddr><tt:StreamingCapabilities>"
            "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def op_GetServices(self, _el: Element) -> str:  # noqa: N802
        services = [
            ("http://www.onvif.org/ver10/device/wsdl", "device_service"),
            ("http://www.onvif.org/ver10/media/wsdl", "media_service"),
            ("http://www.onvif.org/ver10/events/wsdl", "event_service"),
        ]
        if self.ident.analytics_modules or self.ident.rules:
            services.append(("http://www.onvif.org/ver20/analytics/wsdl", "analytics_service"))
        items = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{self.xaddr(svc)}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, svc in services
        )
        return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"

    def op_GetHostname(self, _el: Element) -> str:  # noqa: N802
        return ("<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
                f"<tt:Name>{self.node.spec.name}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>")

    def op_GetDeviceInformation(self, _el: Element) -> str:  # noqa: N802
        i = self.ident
        return (
            f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{i.manufacturer}</tds:Manufacturer>"
            f"<tds:Model>{i.model}</tds:Model><tds:FirmwareVersion>{i.firmware}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{i.serial}</tds:SerialNumber><tds:HardwareId>{i.hardware_id}</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    def op_GetScopes(self, _el: Element) -> str:  # noqa: N802
        items = "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{s}</tt:ScopeItem></tds:Scopes>"
            for s in self.ident.scopes
        )
        return f"<tds:GetScopesResponse>{items}</tds:GetScopesResponse>"

    def op_GetSupportedAnalyticsModules(self, _el: Element) -> str:  # noqa: N802
        items = "".join(
            f'<tt:AnalyticsModuleDescription Name="{m}"><tt:Parameters/></tt:AnalyticsModuleDescription>'
            for m in self.ident.analytics_modules
        )
        return ("<tan:GetSupportedAnalyticsModulesResponse><tan:SupportedAnalyticsModules>"
                f"{items}</tan:SupportedAnalyticsModules></tan:GetSupportedAnalyticsModulesResponse>")

    def op_GetSupportedRules(self, _el: Element) -> str:  # noqa: N802
        items = "".join(f'<tt:RuleDescription Name="{r}"><tt:Parameters/></tt:RuleDescription>'
                        for r in self.ident.rules)
        return f"<tan:GetSupportedRulesResponse><tan:SupportedRules>{items}</tan:SupportedRules>" \
               "</tan:GetSupportedRulesResponse>"

    def op_GetProfiles(self, _el: Element) -> str:  # noqa: N802
        """Media profiles (ONVIF Media ver10); the analytics configuration token when analytics exist."""
        analytics = ""
        if self.ident.analytics_modules or self.ident.rules:
            analytics = (f'<tt:VideoAnalyticsConfiguration token="{ANALYTICS_TOKEN}"><tt:Name>VideoAnalytics</tt:Name>'
                         "<tt:UseCount>1</tt:UseCount><tt:AnalyticsEngineConfiguration/><tt:RuleEngineConfiguration/>"
                         "</tt:VideoAnalyticsConfiguration>")
        return ('<trt:GetProfilesResponse><trt:Profiles token="Profile_1" fixed="true"><tt:Name>mainStream</tt:Name>'
                f"{analytics}</trt:Profiles></trt:GetProfilesResponse>")

    def op_GetRules(self, _el: Element) -> str:  # noqa: N802
        """The rules configured (switched on) in the analytics configuration (ONVIF Analytics ver20)."""
        items = "".join(f'<tan:Rule Name="Rule{i + 1}" Type="{r}"><tt:Parameters/></tan:Rule>'
                        for i, r in enumerate(self.ident.configured_rules))
        return f"<tan:GetRulesResponse>{items}</tan:GetRulesResponse>"

    def op_GetEventProperties(self, _el: Element) -> str:  # noqa: N802
        topics = "".join(_topic_xml(t) for t in self.ident.event_topics)
        return (
            "<tev:GetEventPropertiesResponse><tev:TopicNamespaceLocation>"
            "http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>"
            "<wsnt:FixedTopicSet xmlns:wsnt=\"http://docs.oasis-open.org/wsn/b-2\">true</wsnt:FixedTopicSet>"
            f"<wstop:TopicSet>{topics}</wstop:TopicSet></tev:GetEventPropertiesResponse>"
        )


def _topic_xml(topic: str) -> str:
    """``tns1:RuleEngine/FaceDetector/Face`` -> nested topic elements."""
    parts = topic.split(":", 1)[-1].split("/")
    opening = "".join(f'<tns1:{p} wstop:topic="true">' if i == len(parts) - 1 else f"<tns1:{p}>"
                      for i, p in enumerate(parts))
    closing = "".join(f"</tns1:{p}>" for p in reversed(parts))
    return opening + closing


def _envelope(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope {NS}><env:Body>{body}</env:Body></env:Envelope>'


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element, local: str) -> Element | None:
    for child in el:
        if _local(child.tag) == local:
            return child
    return None


def _find(el: Element, local: str) -> Element | None:
    for node in el.iter():
        if _local(node.tag) == local:
            return node
    return None


def _username_token(root: Element) -> tuple[str, str, str, str] | None:
    token = _find(root, "UsernameToken")
    if token is None:
        return None
    parts = {}
    for name in ("Username", "Password", "Nonce", "Created"):
        el = _find(token, name)
        parts[name] = (el.text or "").strip() if el is not None else ""
    return parts["Username"], parts["Password"], parts["Nonce"], parts["Created"]


# ---- WS-Discovery -----------------------------------------------------------------------------
def _scope_matches(probe_scopes: list[str], device_scopes: list[str]) -> bool:
    """rfc3986 rule: each probe scope is a path-segment prefix of some device scope."""
    for wanted in probe_scopes:
        w = wanted.rstrip("/").split("/")
        if not any(d.rstrip("/").split("/")[: len(w)] == w for d in device_scopes):
            return False
    return True


class WsDiscoveryResponder:
    """Answers WS-Discovery Probes (multicast and unicast) and announces Hello at start."""

    TYPES = "dn:NetworkVideoTransmitter tds:Device"

    def __init__(self, node: Node, scopes: list[str], xaddr: str, *, endpoint_uuid: str | None = None) -> None:
        self.node = node
        self.scopes = scopes
        self.xaddr = xaddr
        self.urn = f"urn:uuid:{endpoint_uuid or uuid.UUID(int=node.rng.getrandbits(128))}"
        self.message_number = 0
        self.endpoint: UdpEndpoint | None = None

    async def start(self) -> None:
        self.endpoint = await self.node.udp(WSD_PORT, self.on_datagram, group=WSD_GROUP)
        if self.node.netns:
            self.endpoint.send(self._hello(), (WSD_GROUP, WSD_PORT))

    def on_datagram(self, data: bytes, addr: tuple[str, int], endpoint: UdpEndpoint) -> None:
        try:
            root = SafeET.fromstring(data)
        except Exception:  # malformed multicast: silently drop (Core spec)
            return
        action = _find(root, "Action")
        if action is None or not (action.text or "").strip().endswith("/Probe"):
            return
        msg_id_el = _find(root, "MessageID")
        msg_id = (msg_id_el.text or "").strip() if msg_id_el is not None else ""
        types_el = _find(root, "Types")
        if types_el is not None and (types_el.text or "").strip():
            wanted = {t.split(":")[-1] for t in (types_el.text or "").split()}
            if not wanted & {"NetworkVideoTransmitter", "Device"}:
                return
        scopes_el = _find(root, "Scopes")
        if scopes_el is not None and (scopes_el.text or "").strip():
            if not _scope_matches((scopes_el.text or "").split(), self.scopes):
                return
        self.node.bump("wsd_probes")

        async def reply() -> None:
            await asyncio.sleep(self.node.rng.uniform(0.0, 0.5))  # APP_MAX_DELAY
            endpoint.send(self._probe_matches(msg_id), addr)

        self.node.spawn(reply())

    def _header(self, action: str, relates_to: str | None = None, to: str | None = None) -> str:
        self.message_number += 1
        relates = f"<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>" if relates_to else ""
        return (
            f"<SOAP-ENV:Header><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>{relates}"
            f"<wsa:To>{to or 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'}</wsa:To>"
            f"<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/{action}</wsa:Action>"
            f'<d:AppSequence InstanceId="1" MessageNumber="{self.message_number}"/></SOAP-ENV:Header>'
        )

    def _match_body(self) -> str:
        return (
            f"<wsa:EndpointReference><wsa:Address>{self.urn}</wsa:Address></wsa:EndpointReference>"
            f"<d:Types>{self.TYPES}</d:Types><d:Scopes>{' '.join(self.scopes)}</d:Scopes>"
            f"<d:XAddrs>{self.xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>"
        )

    def _wrap(self, header: str, body: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\r\n'
            f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
            'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
            'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
            f"{header}<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
        ).encode()

    def _probe_matches(self, relates_to: str) -> bytes:
        return self._wrap(
            self._header("ProbeMatches", relates_to),
            f"<d:ProbeMatches><d:ProbeMatch>{self._match_body()}</d:ProbeMatch></d:ProbeMatches>",
        )

    def _hello(self) -> bytes:
        return self._wrap(self._header("Hello", to="urn:schemas-xmlsoap-org:ws:2005:04:discovery"),
                          f"<d:Hello>{self._match_body()}</d:Hello>")


def onvif_scopes(name: str, hardware: str, extra: list[str] | None = None) -> list[str]:
    base = [
        "onvif://www.onvif.org/type/video_encoder",
        "onvif://www.onvif.org/Profile/Streaming",
        "onvif://www.onvif.org/type/NetworkVideoTransmitter",
        f"onvif://www.onvif.org/hardware/{hardware}",
        f"onvif://www.onvif.org/name/{name}",
        "onvif://www.onvif.org/location/country/china",
    ]
    return base + (extra or [])
