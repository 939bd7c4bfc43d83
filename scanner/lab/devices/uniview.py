"""Uniview (UNV) cameras: LAPI JSON over digest-protected HTTP, ONVIF, RTSP, EZCloud heartbeat.

Shapes follow protocols.md §3: every LAPI answer is the ``Response`` envelope
(``ResponseURL``, ``ResponseCode``, ``ResponseString``, ``StatusCode``, ``Data``); unknown paths
answer HTTP 599 with ``ResponseCode 1`` (the quirk seen in public parsers). Discovery is ONVIF
WS-Discovery only (§3: no proprietary UNV discovery is known). Writes (PUT/POST/DELETE on
LAPI) are refused and counted: camsweep must never send one.

UNCERTAIN (protocols.md §3, §11 item 5): the digest realm ``UNV`` comes from a single public
fingerprint test; the ``/LAPI/V1.0/Network/Cloud`` and ``/LAPI/V1.0/Smart/Capabilities`` field
names are not documented anywhere public, so the lab picks plausible ones (commented below).
"""

from __future__ import annotations

import json
from typing import Any

from scanner.lab import behaviour
from scanner.lab.devices.common import device_auth, ident, rtsp_server
from scanner.lab.devices.onvif import OnvifIdentity, OnvifService, WsDiscoveryResponder, onvif_scopes
from scanner.lab.runtime.httpserver import (
    DigestAuth,
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
    json_response,
)
from scanner.lab.runtime.node import Node

EZCLOUD_HOST = "en.ezcloud.uniview.com"
# protocols.md §3: 'WWW-Authenticate: Digest realm="UNV"' -- one public fingerprint test (UNCERTAIN).
REALM = "UNV"
# LAPI ResponseCode values: 0 = Succeed (§3 example), 1 = the unknown-path answer (§3 quirk).
CODE_OK = 0
CODE_NOT_SUPPORTED = 1
LAPI_NOT_SUPPORTED_HTTP = 599


class Uniview:
    """One Uniview IPC: identity, the shared user database, and the LAPI pages."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model"))
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac"))
        self.firmware = str(ident(node, "firmware"))  # "IPC_G6103-B0005P62D1905"
        self.face = bool(ident(node, "face_capable"))
        clouds = ident(node, "clouds", [])
        self.ezcloud = any(c["host"] == EZCLOUD_HOST for c in clouds)
        self.auth: DigestAuth = device_auth(node, REALM)
        self.writes = 0

    # ---- LAPI envelope -----------------------------------------------------------------------
    def envelope(self, url: str, data: Any, *, code: int = CODE_OK, text: str = "Succeed",
                 http: int = 200) -> Response:
        """The §3 ``Response`` envelope around ``data``."""
        body = {"Response": {"ResponseURL": url, "ResponseCode": code, "ResponseString": text,
                             "StatusCode": code, "Data": data}}
        return json_response(json.dumps(body), status=http)

    def lapi(self, req: Request) -> Response:
        """Every ``/LAPI/`` request: digest first, then writes refused, then the page or 599."""
        ok, user = self.auth.check(req)
        if not ok:
            # Body shape of a LAPI 401 is not in the notes; an empty body with the challenge.
            return Response(401, "", headers=self.auth.challenge_headers())
        if req.method != "GET":
            self.writes += 1
            self.node.bump("lapi_writes")
            # Lab choice: refuse every write (a real camera would apply it) so a scan that sends
            # one is caught; HTTP 403 + a non-zero ResponseCode.
            return self.envelope(req.path, None, code=CODE_NOT_SUPPORTED, text="Operation Not Permitted",
                                 http=403)
        page = LAPI_PAGES.get(req.path)
        if page is None or (req.path in FACE_ONLY_PAGES and not self.face):
            # protocols.md §3: unknown paths answer HTTP 599 with ResponseCode 1.
            return self.envelope(req.path, None, code=CODE_NOT_SUPPORTED, text="Not Supported",
                                 http=LAPI_NOT_SUPPORTED_HTTP)
        return self.envelope(req.path, page(self))

    def device_info(self) -> dict[str, Any]:
        """``/LAPI/V1.0/System/DeviceInfo`` Data (§3 field names; MAC/HardwareVersion added)."""
        return {
            "ID": 0,
            "DeviceName": self.model,
            "DeviceType": 0,  # the §3 NVR example shows 1; the IPC value is UNCERTAIN
            "DeviceModel": self.model,
            "SerialNumber": self.serial,
            "FirmwareVersion": self.firmware,
            "HardwareVersion": "A",
            "UbootVersion": "V1.6.0.1",
            "Manufacturer": "Uniview",
            "MAC": self.mac,
        }

    def cloud(self) -> dict[str, Any]:
        """``/LAPI/V1.0/Network/Cloud`` Data. Field names UNCERTAIN (protocols.md §3, §11 item 5)."""
        on = 1 if self.ezcloud else 0
        return {
            "Enabled": on,
            "ServerAddress": EZCLOUD_HOST,
            "RegisterStatus": on,  # 1 = registered/online, 0 = offline (lab convention)
            "DeviceStatus": "Online" if self.ezcloud else "Offline",
            "AddMode": 0,
        }

    def smart_capabilities(self) -> dict[str, Any]:
        """``/LAPI/V1.0/Smart/Capabilities`` Data: per-feature 0/1 flags (names UNCERTAIN, §3)."""
        face = 1 if self.face else 0
        return {
            "IsSupportMotionDetection": 1,
            "IsSupportCrossLineDetection": 1,
            "IsSupportIntrusionDetection": 1,
            "IsSupportFaceDetection": face,
            "IsSupportFaceRecognition": face,
            "IsSupportPeopleCounting": 0,
        }

    def face_rule(self) -> dict[str, Any]:
        """``/LAPI/V1.0/Smart/FaceDetection/Rule`` (only served on face-capable models)."""
        return {"Enabled": 1, "Num": 1, "Areas": [{"ID": 0, "Sensitivity": 80}]}

    def ntp(self) -> dict[str, Any]:
        """``/LAPI/V1.0/System/Time/NTP`` Data (§3: NTPServerInfos[0]{IPAddress,Port,...})."""
        return {"Num": 1, "NTPServerInfos": [{"IPAddress": str(ident(self.node, "gateway", "0.0.0.0")),
                                              "Port": 123, "SynchronizeInterval": 60, "Enabled": 1}]}

    # ---- web page ----------------------------------------------------------------------------
    def index(self, _req: Request) -> Response:
        """The login page at ``/`` (no public capture of the UNV page; a plain login shell)."""
        return Response(200, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Web Client</title>"
                        '<script src="/js/common/require.js" data-main="/js/login/main"></script>'
                        "</head><body><div id=\"login\"></div><div id=\"footer\">&copy; Zhejiang Uniview "
                        "Technologies Co., Ltd.</div></body></html>", content_type="text/html")


LAPI_PAGES = {
    "/LAPI/V1.0/System/DeviceInfo": Uniview.device_info,
    "/LAPI/V1.0/Network/Cloud": Uniview.cloud,
    "/LAPI/V1.0/Smart/Capabilities": Uniview.smart_capabilities,
    "/LAPI/V1.0/Smart/FaceDetection/Rule": Uniview.face_rule,
    "/LAPI/V1.0/System/Time/NTP": Uniview.ntp,
}
FACE_ONLY_PAGES = {"/LAPI/V1.0/Smart/FaceDetection/Rule"}


async def build_camera(node: Node) -> None:
    """HTTP 80 (LAPI + ONVIF), RTSP 554, WS-Discovery, and the EZCloud heartbeat."""
    unv = Uniview(node)
    router = Router()
    router.get("/", unv.index)
    router.prefix("*", "/LAPI/", unv.lapi)
    scopes = onvif_scopes("UNIVIEW", unv.model)
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer="UNIVIEW",
            model=unv.model,
            firmware=unv.firmware,
            serial=unv.serial,
            hardware_id="A",
            scopes=scopes,
            rules=["tt:CellMotionDetector", "tt:LineDetector", "tt:FieldDetector"],
            analytics_modules=["tt:CellMotionEngine"],
            event_topics=["tns1:RuleEngine/CellMotionDetector/Motion", "tns1:RuleEngine/LineDetector/Crossed"],
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        unv.auth,  # one user database for LAPI, ONVIF (UsernameToken + digest) and RTSP
    )
    onvif.mount(router)
    # No public capture of the UNV HTTP/RTSP Server header: none is sent (UNCERTAIN).
    await node.http(80, TextProtocolServer(router, ServerStyle(server=None), name="http"))
    await rtsp_server(node, unv.auth, style=ServerStyle(protocol="RTSP/1.0", server=None))
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    node.control("auth", lambda _m: {"ok": True, "attempts": len(unv.auth.attempts),
                                     "locked": sorted(unv.auth.locked), "writes": unv.writes + onvif.writes})

    if unv.ezcloud:
        behaviour.https_poll(node, EZCLOUD_HOST, 443, interval=30.0, path="/device/heartbeat")
