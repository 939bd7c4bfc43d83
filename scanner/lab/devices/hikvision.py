"""Hikvision cameras and NVRs: SADP, ISAPI (digest), ONVIF, RTSP, the SDK port, Hik-Connect.

Shapes follow protocols.md §1: SADP ProbeMatch fields (with the real ``flase`` typo and CRLF
XML), ISAPI documents in the ``hikvision.com`` namespace for cameras and ``isapi.org`` for the
NVR, ``App-webs/`` / ``DNVRS-Webs`` servers, realm ``IP Camera(XXXXX)``, RTSP without a Server
header and with a double-space Date. Writes (PUT/POST/DELETE on ISAPI) are refused and counted:
camsweep must never send one.
"""

from __future__ import annotations

import json
import time
import uuid

from defusedxml import ElementTree as SafeET

from scanner.lab import behaviour
from scanner.lab.devices.common import device_auth, device_tls, ident, rtsp_server, silent_tcp
from scanner.lab.devices.onvif import OnvifIdentity, OnvifService, WsDiscoveryResponder, onvif_scopes
from scanner.lab.runtime.httpserver import (
    DigestAuth,
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
    xml_response,
)
from scanner.lab.runtime.node import Node, UdpEndpoint

SADP_GROUP = "239.255.255.250"
SADP_PORT = 37020
NS_CAMERA = "http://www.hikvision.com/ver20/XMLSchema"
NS_NVR = "http://www.isapi.org/ver20/XMLSchema"
PICTURE_HOST = "storeface-pic.oss-cn-hangzhou.aliyuncs.com"


class Hikvision:
    def __init__(self, node: Node, *, nvr: bool) -> None:
        self.node = node
        self.nvr = nvr
        self.model = str(ident(node, "model"))
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac"))
        fw = str(ident(node, "firmware"))  # "V5.5.800 build 210628"
        self.fw_version, _, self.fw_build = fw.partition(" ")
        self.face = bool(ident(node, "face_capable"))
        self.face_enabled = bool(ident(node, "face_capture_enabled"))
        clouds = ident(node, "clouds", [])
        self.hik_connect = any(c["host"] == "litedev.hik-connect.com" for c in clouds)
        self.picture_push = any(c["host"] == PICTURE_HOST for c in clouds)
        self.ns = NS_NVR if nvr else NS_CAMERA
        self.realm = f"IP Camera({self.serial[-5:]})"
        self.auth: DigestAuth = device_auth(node, self.realm)
        self.writes = 0

    # ---- SADP ------------------------------------------------------------------------------
    def sadp_reply(self, probe_uuid: str) -> bytes:
        mac = self.mac.replace(":", "-")
        hc_enable = "true" if self.hik_connect else "flase"  # the typo real firmware sends
        fields = [
            ("Uuid", probe_uuid),
            ("Types", "inquiry"),
            ("DeviceType", "139367" if self.nvr else "142624"),
            ("DeviceDescription", self.model),
            ("DeviceSN", self.serial),
            ("CommandPort", "8000"),
            ("HttpPort", "80"),
            ("MAC", mac),
            ("IPv4Address", self.node.spec.ip),
            ("IPv4SubnetMask", "255.255.255.0"),
            ("IPv4Gateway", str(ident(self.node, "gateway"))),
            ("IPv6Address", "::"),
            ("IPv6Gateway", "::"),
            ("IPv6MaskLen", "64"),
            ("DHCP", "false"),
            ("AnalogChannelNum", "0"),
            ("DigitalChannelNum", "8" if self.nvr else "1"),
            ("SoftwareVersion", f"{self.fw_version}{self.fw_build}"),
            ("DSPVersion", "V7.3build 210601"),
            ("BootTime", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 86400 * 3))),
            ("Encrypt", "true"),
            ("ResetAbility", "false"),
            ("DiskNumber", "1" if self.nvr else "0"),
            ("Activated", "true"),
            ("PasswordResetAbility", "true"),
            ("PasswordResetModeSecond", "true"),
            ("SupportHCPlatform", "true"),
            ("HCPlatformEnable", hc_enable),
            ("IsModifyVerificationCode", "true" if self.hik_connect else "false"),
            ("Salt", uuid.uuid4().hex),
            ("DeviceLock", "true"),
            ("SDKServerStatus", "true"),
            ("SDKOverTLSPort", "8443"),
            ("OEMInfo", "N/A"),
        ]
        body = "".join(f"<{k}>{v}</{k}>\r\n" for k, v in fields)
        return f'<?xml version="1.0" encoding="UTF-8"?>\r\n<ProbeMatch>\r\n{body}</ProbeMatch>\r\n'.encode()

    def on_sadp(self, data: bytes, addr: tuple[str, int], endpoint: UdpEndpoint) -> None:
        try:
            root = SafeET.fromstring(data)
        except Exception:
            return
        if root.tag != "Probe":
            return
        types = (root.findtext("Types") or "").strip().lower()
        if not types.startswith("inquiry"):
            return
        self.node.bump("sadp_probes")
        endpoint.send(self.sadp_reply((root.findtext("Uuid") or "").strip()), addr)

    # ---- ISAPI -------------------------------------------------------------------------------
    def xml(self, root: str, inner: str) -> Response:
        return xml_response(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" xmlns="{self.ns}">\n'
                            f"{inner}</{root}>\n")

    def status(self, url: str, code: int, text: str, sub: str, http: int) -> Response:
        resp = self.xml("ResponseStatus", f"<requestURL>{url}</requestURL><statusCode>{code}</statusCode>"
                        f"<statusString>{text}</statusString><subStatusCode>{sub}</subStatusCode>")
        resp.status = http
        return resp

    def isapi(self, req: Request) -> Response:
        ok, user = self.auth.check(req)
        if not ok:
            headers = self.auth.challenge_headers()
            if self.auth.is_locked(user):
                resp = self.xml("userCheck", "<statusValue>401</statusValue><statusString>Unauthorized</statusString>"
                                "<lockStatus>lock</lockStatus><unlockTime>1800</unlockTime>"
                                "<retryLoginTime>0</retryLoginTime>")
            else:
                resp = self.xml("userCheck", "<statusValue>401</statusValue><statusString>Unauthorized</statusString>")
            resp.status = 401
            resp.headers.extend(headers)
            return resp
        if req.method != "GET":
            self.writes += 1
            self.node.bump("isapi_writes")
            return self.status(req.path, 4, "Invalid Operation", "methodNotAllowed", 403)
        page = ISAPI_PAGES.get(req.path)
        if page is None:
            return self.status(req.path, 4, "Invalid Operation", "notSupport", 403)
        return page(self, req)

    def device_info(self, _req: Request) -> Response:
        nvr_extra = ("<decordChannelNums>0</decordChannelNums><VGANums>1</VGANums><USBNums>2</USBNums>"
                     "<auxoutNums>0</auxoutNums><regionVersion>CN</regionVersion>") if self.nvr else ""
        return self.xml(
            "DeviceInfo",
            f"<deviceName>{'nvr' if self.nvr else 'IP CAMERA'}</deviceName>"
            f"<deviceID>{uuid.UUID(int=self.node.rng.getrandbits(128))}</deviceID>"
            f"<deviceDescription>{'NVR' if self.nvr else 'IPCamera'}</deviceDescription>"
            "<deviceLocation>hangzhou</deviceLocation><systemContact>Hikvision.China</systemContact>"
            f"<model>{self.model}</model><serialNumber>{self.serial}</serialNumber>"
            f"<macAddress>{self.mac}</macAddress><firmwareVersion>{self.fw_version}</firmwareVersion>"
            f"<firmwareReleasedDate>{self.fw_build}</firmwareReleasedDate><encoderVersion>V7.3</encoderVersion>"
            "<encoderReleasedDate>build 210601</encoderReleasedDate><bootVersion>V1.3.4</bootVersion>"
            "<bootReleasedDate>100316</bootReleasedDate><hardwareVersion>0x0</hardwareVersion>"
            f"<deviceType>{'NVR' if self.nvr else 'IPCamera'}</deviceType>"
            f"<telecontrolID>{255 if self.nvr else 88}</telecontrolID><supportBeep>true</supportBeep>"
            "<supportVideoLoss>false</supportVideoLoss><firmwareVersionInfo>B-R-G5-0</firmwareVersionInfo>"
            f"<manufacturer>hikvision</manufacturer>{nvr_extra}",
        )

    def capabilities(self, _req: Request) -> Response:
        f = "true" if self.face else "false"
        counting = "true" if self.face else "false"
        return self.xml(
            "DeviceCap",
            "<SysCap><isSupportDst>true</isSupportDst><NetworkCap><isSupportWireless>false</isSupportWireless>"
            "<isSupportEZVIZ>true</isSupportEZVIZ><isSupportEhome>true</isSupportEhome>"
            "<isSupportPlatformAccess>true</isSupportPlatformAccess><isSupportUpnp>true</isSupportUpnp>"
            "</NetworkCap></SysCap>"
            f"<EventCap><isSupportFaceSnap>{f}</isSupportFaceSnap><isSupportFaceLib>{f}</isSupportFaceLib>"
            f"<isSupportFaceContrast>false</isSupportFaceContrast>"
            f"<isSupportFaceSnapModeling>{f}</isSupportFaceSnapModeling>"
            f"<isSupportPersonQueueDetection>{counting}</isSupportPersonQueueDetection></EventCap>"
            f"<SmartCap><isSupportFaceDetect>{f}</isSupportFaceDetect></SmartCap>"
            f"<VideoCap><isSupportCounting>{counting}</isSupportCounting></VideoCap>"
            f"<isSupportFaceCaptureStatistics>{f}</isSupportFaceCaptureStatistics>",
        )

    def smart_caps(self, _req: Request) -> Response:
        f = "true" if self.face else "false"
        return self.xml("SmartCap", f"<isSupportROI>true</isSupportROI><isSupportFaceDetect>{f}</isSupportFaceDetect>"
                        "<isSupportLineDetection>true</isSupportLineDetection>"
                        "<isSupportFieldDetection>true</isSupportFieldDetection>")

    def intelli_caps(self, req: Request) -> Response:
        if not self.face:
            return self.status(req.path, 4, "Invalid Operation", "notSupport", 403)
        return self.xml("IntelliCap", "<isFaceSupport>true</isFaceSupport><isBehaviorSupport>true</isBehaviorSupport>"
                        "<isFaceCaptureStatisticsSupport>true</isFaceCaptureStatisticsSupport>")

    def intelli_type(self, _req: Request) -> Response:
        kind = "faceCapture" if self.face_enabled else ("close" if self.face else "behavior")
        return self.xml("IntelliType", f"<intelliType>{kind}</intelliType>")

    def fdlib(self, req: Request) -> Response:
        if not self.face:
            return self.status(req.path, 4, "Invalid Operation", "notSupport", 403)
        return self.xml("FDLibBaseCfgList", "<FDLibBaseCfg><id>1</id><FDID>1</FDID><faceLibType>blackFD</faceLibType>"
                        "<name>VIP</name></FDLibBaseCfg>")

    def ezviz(self, _req: Request) -> Response:
        on = "true" if self.hik_connect else "false"
        return self.xml("EZVIZ", f"<enabled>{on}</enabled><registerStatus>{on}</registerStatus>"
                        f"<bindStatus>{'bind' if self.hik_connect else 'unbind'}</bindStatus>"
                        "<redirect>true</redirect><serverAddress><addressingFormatType>hostname"
                        "</addressingFormatType><hostName>litedev.hik-connect.com</hostName></serverAddress>"
                        "<verificationCode></verificationCode>")

    def ehome(self, _req: Request) -> Response:
        return self.xml("Ehome", "<enabled>false</enabled><addressingFormatType>ipaddress</addressingFormatType>"
                        "<ipAddress>0.0.0.0</ipAddress><portNo>7660</portNo><deviceID></deviceID>"
                        "<registerStatus>false</registerStatus><protocolVersion>v5.0</protocolVersion>")

    def http_hosts(self, _req: Request) -> Response:
        if self.picture_push:
            host = (f"<id>1</id><url>/faces</url><protocolType>HTTPS</protocolType>"
                    "<parameterFormatType>JSON</parameterFormatType><addressingFormatType>hostname"
                    f"</addressingFormatType><hostName>{PICTURE_HOST}</hostName><portNo>443</portNo>"
                    "<httpAuthenticationMethod>none</httpAuthenticationMethod>")
        else:  # the factory default entry
            host = ("<id>1</id><url></url><protocolType>HTTP</protocolType><parameterFormatType>XML"
                    "</parameterFormatType><addressingFormatType>ipaddress</addressingFormatType>"
                    "<ipAddress>0.0.0.0</ipAddress><portNo>80</portNo>"
                    "<httpAuthenticationMethod>none</httpAuthenticationMethod>")
        return self.xml("HttpHostNotificationList", f"<HttpHostNotification>{host}</HttpHostNotification>")

    def picture_server(self, _req: Request) -> Response:
        return Response(200, json.dumps({"PictureServerInformation": {
            "pictureServerType": "none", "addressingFormatType": "ipaddress", "ipAddress": "0.0.0.0",
            "portNo": 0}}), content_type="application/json")

    def time_cfg(self, _req: Request) -> Response:
        now = time.strftime("%Y-%m-%dT%H:%M:%S+08:00",
                            time.gmtime(time.time() + int(ident(self.node, "clock_skew_s", 0)) + 8 * 3600))
        return self.xml("Time", f"<timeMode>NTP</timeMode><localTime>{now}</localTime><timeZone>CST-8:00:00"
                        "</timeZone>")

    def user_check(self, _req: Request) -> Response:
        return self.xml("userCheck", "<statusValue>200</statusValue><statusString>OK</statusString>")

    # ---- web pages ---------------------------------------------------------------------------
    def index(self, _req: Request) -> Response:
        return Response(200, '<!DOCTYPE html><html><head><meta http-equiv="Refresh" '
                        'content="0;url=/doc/page/login.asp?_1617000000000"/></head></html>', content_type="text/html")

    def login_page(self, _req: Request) -> Response:
        return Response(200, "<!DOCTYPE html><html><head><title></title>"
                        '<script src="../script/lib/require/require.js" data-main="../script/login/main"></script>'
                        "</head><body><div id='footer'>&copy;Hikvision Digital Technology Co., Ltd. "
                        "All Rights Reserved.</div></body></html>", content_type="text/html")


ISAPI_PAGES = {
    "/ISAPI/System/deviceInfo": Hikvision.device_info,
    "/ISAPI/System/capabilities": Hikvision.capabilities,
    "/ISAPI/Smart/capabilities": Hikvision.smart_caps,
    "/ISAPI/Intelligent/capabilities": Hikvision.intelli_caps,
    "/ISAPI/Intelligent/channels/1/intelliType": Hikvision.intelli_type,
    "/ISAPI/Intelligent/FDLib": Hikvision.fdlib,
    "/ISAPI/System/Network/EZVIZ": Hikvision.ezviz,
    "/ISAPI/System/Network/Ehome": Hikvision.ehome,
    "/ISAPI/Event/notification/httpHosts": Hikvision.http_hosts,
    "/ISAPI/System/PictureServer": Hikvision.picture_server,
    "/ISAPI/System/time": Hikvision.time_cfg,
    "/ISAPI/Security/userCheck": Hikvision.user_check,
}


async def _build(node: Node, *, nvr: bool) -> None:
    hik = Hikvision(node, nvr=nvr)
    router = Router()
    router.get("/", hik.index)
    router.get("/doc/page/login.asp", hik.login_page)
    router.prefix("*", "/ISAPI/", hik.isapi)
    scopes = onvif_scopes(f"HIKVISION%20{hik.model}", hik.model, ["onvif://www.onvif.org/location/city/hangzhou"])
    face_rules = ["hikxsd:FaceDetection"] if hik.face else []
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer="HIKVISION",
            model=hik.model,
            firmware=f"{hik.fw_version} {hik.fw_build}",
            serial=hik.serial,
            hardware_id="88",
            scopes=scopes,
            rules=["tt:CellMotionDetector", "tt:LineDetector", "tt:FieldDetector", *face_rules],
            analytics_modules=["tt:CellMotionEngine", *(["hikxsd:FaceCaptureEngine"] if hik.face else [])],
            event_topics=["tns1:RuleEngine/CellMotionDetector/Motion", "tns1:RuleEngine/LineDetector/Crossed",
                          *(["tns1:RuleEngine/FaceDetector/Face"] if hik.face else [])],
            configured_rules=["tt:CellMotionDetector", *(["hikxsd:FaceDetection"] if hik.face_enabled else [])],
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        hik.auth,
    )
    onvif.mount(router)
    style = ServerStyle(server="DNVRS-Webs" if nvr else "App-webs/",
                        extra_headers=[("X-Frame-Options", "SAMEORIGIN")])
    await node.http(80, TextProtocolServer(router, style, name="http"))
    if not nvr:
        await node.http(443, TextProtocolServer(router, style, name="https"), tls=device_tls(node))
    await rtsp_server(node, hik.auth, style=ServerStyle(protocol="RTSP/1.0", server=None, date_double_space=True))
    await silent_tcp(node, 8000)
    await node.udp(SADP_PORT, hik.on_sadp, group=SADP_GROUP)
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    node.control("auth", lambda _m: {"ok": True, "attempts": len(hik.auth.attempts),
                                     "locked": sorted(hik.auth.locked), "writes": hik.writes + onvif.writes})

    if hik.hik_connect:
        hello = b"\x9e\xba\xac\xe9" + json.dumps({"sn": hik.serial, "model": hik.model}).encode()
        behaviour.tcp_exchange(node, "litedev.hik-connect.com", 8666, interval=120.0, request=hello)
        behaviour.mqtt_keepalive(node, "mqtt.hik-connect.lab", 31006, interval=30.0, username=hik.serial,
                                 password="test")
    if nvr and hik.hik_connect:
        behaviour.tcp_video_relay(node, "relay.hik-connect.lab", 7760, kbps=2000)
    if hik.picture_push:
        behaviour.snapshot_uploads(
            node, PICTURE_HOST, 443, tls=True, method="PUT",
            path=lambda n: f"/faces/{hik.serial}/{int(time.time())}_{n}.jpg",
        )


async def build_camera(node: Node) -> None:
    await _build(node, nvr=False)


async def build_nvr(node: Node) -> None:
    await _build(node, nvr=True)
