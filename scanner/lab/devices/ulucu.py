"""ULUCU (悠络客) passenger-flow camera: an unbranded OEM box that only its cloud traffic names.

ULUCU's camera-side LAN protocol is not public (protocols.md §4.2, §9 item i): the box shows
generic ONVIF, RTSP and a plain web login on its ODM hardware, with no ULUCU string anywhere a
scanner can reach. What gives it away is outbound traffic (clouds.md §1a):

* a persistent TCP connection to ``entry.device.serv.ulucu.com:29023`` carrying newline-delimited
  JSON (the "Huidian" device protocol, version "2.1.2"): a login, then a heartbeat every 20 s;
* face pictures PUT to UpYun object storage (``v0.api.upyun.com``), named ``<SN>_0_<unixtime>_4.jpg``.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from scanner.lab import behaviour
from scanner.lab.devices.common import device_auth, ident, rtsp_server
from scanner.lab.devices.onvif import OnvifIdentity, OnvifService, WsDiscoveryResponder, onvif_scopes
from scanner.lab.runtime.httpserver import DigestAuth, Request, Response, Router, ServerStyle, TextProtocolServer
from scanner.lab.runtime.node import Node

ENTRY_HOST = "entry.device.serv.ulucu.com"
ENTRY_PORT = 29023
PROTOCOL_VERSION = "2.1.2"  # huidian.h (clouds.md §1a)
HEARTBEAT_S = 20.0
UPYUN_HOST = "v0.api.upyun.com"
# UpYun's REST API stores an object with ``PUT /<bucket>/<path>``. The real bucket name is not
# public (the picture CDN host ``c2-hd-img.upy-img.static.ulucu.com`` hints at an "hd-img"
# bucket); this one is the lab's choice. Only host, method and file-name shape are sourced.
UPYUN_BUCKET = "ulucu-hd-img"
# ULUCU open-API device type 5 = "客流统计设备" (passenger-counting device), clouds.md §1a.
PASSENGER_FLOW_DEVICE_TYPE = 5
WEB_SERVER = "Boa/0.94.14rc21"  # a generic ODM web server banner: nothing names ULUCU
RTSP_REALM = "IPCAM"

LOGIN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>WEB SERVICE</title></head>
<body><form method="post" action="/login.cgi">
<input type="text" name="username"><input type="password" name="password">
<input type="submit" value="Login"></form></body></html>
"""


def picture_path(serial: str, unixtime: int) -> str:
    """UpYun object path for one picture: ``/<bucket>/<SN>_0_<unixtime>_4.jpg``."""
    return f"/{UPYUN_BUCKET}/{serial}_0_{unixtime}_4.jpg"


class UlucuCamera:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac"))
        self.firmware = str(ident(node, "firmware", PROTOCOL_VERSION))
        self.auth: DigestAuth = device_auth(node, RTSP_REALM)
        self.sequence = 0

    def cloud_message(self, kind: str) -> dict[str, object]:
        """The JSON line sent on the 29023 channel: ``login`` once per connection, then ``heartbeat``.

        ``cmd``, ``ver``, ``sn`` and the 20 s cadence are sourced; the other fields are plausible
        fillers (the full message layout is not public).
        """
        self.sequence += 1
        message: dict[str, object] = {"cmd": kind, "ver": PROTOCOL_VERSION, "sn": self.serial,
                                      "seq": self.sequence, "ts": int(time.time())}
        if kind == "login":
            message.update({"mac": self.mac.replace(":", "").upper(), "dev_type": PASSENGER_FLOW_DEVICE_TYPE,
                            "fw": self.firmware, "channels": 1})
        else:
            message.update({"interval": int(HEARTBEAT_S), "status": "online",
                            "pictures": self.node.counters.get("pictures_uploaded", 0)})
        return message

    def login_page(self, _req: Request) -> Response:
        return Response(200, LOGIN_PAGE, content_type="text/html")

    def login(self, req: Request) -> Response:
        """Form POST ``username=..&password=..``: counted as a login attempt; JSON result."""
        form = parse_qs(req.body.decode("utf-8", "replace"))
        user = form.get("username", [""])[0]
        password = form.get("password", [""])[0]
        ok = self.auth.record(user, self.auth.users.get(user) == password)
        body = '{"code":0,"msg":"ok"}' if ok else '{"code":-1,"msg":"user or password error"}'
        return Response(200, body, content_type="application/json")


async def build_camera(node: Node) -> None:
    cam = UlucuCamera(node)
    router = Router()
    router.get("/", cam.login_page)
    router.get("/login.html", cam.login_page)
    router.add("POST", "/login.cgi", cam.login)
    # Generic scopes (name/IPC, hardware/IPC): ULUCU ships OEM hardware and publishes no
    # camera-side identity, so a pre-auth scan cannot learn vendor, model or face capability.
    scopes = onvif_scopes("IPC", "IPC")
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer="IPC",
            model="IPC",
            firmware=cam.firmware,
            serial=cam.serial,  # the "Ub..." SN is visible only after authentication
            hardware_id="T31",
            scopes=scopes,
            anonymous_device_info=False,
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        cam.auth,
    )
    onvif.mount(router)
    await node.http(80, TextProtocolServer(router, ServerStyle(server=WEB_SERVER), name="http"))
    await rtsp_server(node, cam.auth, style=ServerStyle(protocol="RTSP/1.0", server=None))
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    node.control("auth", lambda _m: {"ok": True, "attempts": len(cam.auth.attempts),
                                     "locked": sorted(cam.auth.locked), "writes": onvif.writes})

    behaviour.json_line_heartbeat(node, ENTRY_HOST, ENTRY_PORT, interval=HEARTBEAT_S, message=cam.cloud_message)
    behaviour.snapshot_uploads(node, UPYUN_HOST, 80, tls=False, method="PUT",
                               path=lambda _n: picture_path(cam.serial, int(time.time())))
