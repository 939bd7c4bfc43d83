"""Axis network camera: VAPIX, UPnP/SSDP, mDNS, ONVIF + WS-Discovery, RTSP. No cloud.

Shapes follow protocols.md §4.3, §6 and §7 and the public VAPIX documentation:
* ``POST /axis-cgi/basicdeviceinfo.cgi`` (JSON, ``getAllUnrestrictedProperties``) answers without
  credentials with Brand, ProdShortName, ProdNbr, SerialNumber (= the MAC, upper-case, no
  colons), Version; ``getAllProperties`` and every other CGI need HTTP digest (user ``root``);
* ``/axis-cgi/param.cgi?action=list&group=...`` returns ``root.<Group>.<Name>=value`` lines;
  writes (``action=update|add|remove``) are refused and counted: camsweep must never send one;
* web pages have the title ``AXIS`` and no ``Server`` header; the HTTP digest realm is
  ``AXIS_<MAC>``, the RTSP realm ``AXIS_WS_<MAC>`` with the Axis ``Public`` list (no OPTIONS);
* UPnP description: manufacturer ``AXIS``, friendlyName ``<model> - <MAC>``, serialNumber = MAC,
  UDN ``uuid:Upnp-BasicDevice-1_0-<MAC>``; SSDP SERVER is libupnp's string;
* mDNS ``_axis-video._tcp`` (TXT ``macaddress=``) on host ``axis-<mac>.local``.
"""

from __future__ import annotations

import json
from typing import Any

from scanner.lab.devices import mdns, ssdp
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

# The Public header of Axis RTSP (protocols.md §6): alphabetical, OPTIONS not listed.
AXIS_RTSP_PUBLIC = "DESCRIBE, GET_PARAMETER, PAUSE, PLAY, SETUP, SET_PARAMETER, TEARDOWN"
SSDP_SERVER = "Linux/4.14.173-axis8, UPnP/1.0, Portable SDK for UPnP devices/1.6.22"
UNRESTRICTED = ("Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr", "ProdShortName", "ProdType",
                "ProdVariant", "SerialNumber", "Version", "WebURL")
BUILD_DATE = "Mar 02 2023 08:39"
HARDWARE_ID = "7F2"
# VAPIX basic device info error codes.
ERR_INVALID_JSON = 4000
ERR_METHOD = 2004
ERR_VERSION = 2003
ERR_HTTP_METHOD = 2002


class Axis:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model"))  # "AXIS P3245-LV"
        self.prod_nbr = self.model.removeprefix("AXIS ").strip()  # "P3245-LV"
        self.firmware = str(ident(node, "firmware"))  # "10.12.114"
        self.mac = str(ident(node, "mac")).lower()
        self.mac_hex = self.mac.replace(":", "").upper()  # "ACCC8E1A2B3C": Axis serial number
        self.web_auth: DigestAuth = device_auth(node, f"AXIS_{self.mac_hex}")
        self.rtsp_auth: DigestAuth = device_auth(node, f"AXIS_WS_{self.mac_hex}")
        self.soc_serial = f"{node.rng.getrandbits(64):016X}"
        self.writes = 0

    # ---- properties ------------------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        """Every basicdeviceinfo property (the unrestricted ones plus what needs a login)."""
        return {
            "Architecture": "armv7hf",
            "Brand": "AXIS",
            "BuildDate": BUILD_DATE,
            "HardwareID": HARDWARE_ID,
            "ProdFullName": f"{self.model} Network Camera",
            "ProdNbr": self.prod_nbr,
            "ProdShortName": self.model,
            "ProdType": "Network Camera",
            "ProdVariant": "",
            "SerialNumber": self.mac_hex,
            "Soc": "Axis Artpec-7",
            "SocSerialNumber": self.soc_serial,
            "Version": self.firmware,
            "WebURL": "http://www.axis.com",
        }

    def param_groups(self) -> dict[str, list[tuple[str, str]]]:
        """param.cgi groups: ``root.<group>.<name>=<value>``."""
        return {
            "Brand": [("Brand", "AXIS"), ("ProdFullName", f"{self.model} Network Camera"),
                      ("ProdNbr", self.prod_nbr), ("ProdShortName", self.model), ("ProdType", "Network Camera"),
                      ("ProdVariant", ""), ("WebURL", "http://www.axis.com")],
            "Properties": [
                ("API.HTTP.Version", "3"), ("API.Metadata.Metadata", "yes"), ("API.Metadata.Version", "1.0"),
                ("EmbeddedDevelopment.Version", "3.0"), ("Firmware.BuildDate", BUILD_DATE),
                ("Firmware.BuildNumber", "26"), ("Firmware.Version", self.firmware),
                ("Image.Format", "jpeg,mjpeg,h264,h265"), ("Image.NbrOfViews", "2"),
                ("Image.Resolution", "1920x1080,1280x720,800x450,640x360,320x180"),
                ("Image.Rotation", "0,180"), ("System.Architecture", "armv7hf"),
                ("System.HardwareID", HARDWARE_ID), ("System.SerialNumber", self.mac_hex),
                ("System.Soc", "Axis Artpec-7"),
            ],
            "Network": [("HostName", f"axis-{self.mac_hex.lower()}"), ("eth0.MACAddress", self.mac.upper()),
                        ("eth0.IPAddress", self.node.spec.ip), ("UPnP.Enabled", "yes"),
                        ("Bonjour.Enabled", "yes"), ("Bonjour.FriendlyName", self.friendly_name)],
        }

    @property
    def friendly_name(self) -> str:
        return f"{self.model} - {self.mac_hex}"

    # ---- VAPIX -------------------------------------------------------------------------------
    def unauthorized(self) -> Response:
        return Response(401, "<HTML><HEAD><TITLE>401 Unauthorized</TITLE></HEAD><BODY><H1>401 Unauthorized</H1>"
                        "</BODY></HTML>", content_type="text/html", headers=self.web_auth.challenge_headers())

    @staticmethod
    def vapix_error(code: int, message: str, method: str | None = None, version: str = "1.0") -> Response:
        doc: dict[str, Any] = {"apiVersion": version, "error": {"code": code, "message": message}}
        if method:
            doc["method"] = method
        return json_response(json.dumps(doc))

    def basic_device_info(self, req: Request) -> Response:
        """VAPIX basic device information: unrestricted properties need no login."""
        if req.method != "POST":
            return self.vapix_error(ERR_HTTP_METHOD, "HTTP request type not supported")
        try:
            msg = json.loads(req.body)
        except (ValueError, UnicodeDecodeError):
            return self.vapix_error(ERR_INVALID_JSON, "JSON input error")
        if not isinstance(msg, dict):
            return self.vapix_error(ERR_INVALID_JSON, "JSON input error")
        method = str(msg.get("method", ""))
        version = str(msg.get("apiVersion", "1.0"))
        if not version.startswith("1."):
            return self.vapix_error(ERR_VERSION, "The requested API version is not supported", method, version)
        reply: dict[str, Any] = {"apiVersion": "1.3", "method": method}
        if "context" in msg:
            reply["context"] = msg["context"]
        props = self.properties()
        if method == "getSupportedVersions":
            reply["data"] = {"apiVersions": ["1.3"]}
        elif method == "getAllUnrestrictedProperties":
            self.node.bump("vapix_unrestricted")
            reply["data"] = {"propertyList": {k: props[k] for k in UNRESTRICTED}}
        elif method in ("getAllProperties", "getProperties"):
            if not self.web_auth.check(req)[0]:
                return self.unauthorized()
            params = msg.get("params")
            wanted = params.get("propertyList") if method == "getProperties" and isinstance(params, dict) else None
            names = [n for n in wanted if n in props] if isinstance(wanted, list) else list(props)
            reply["data"] = {"propertyList": {k: props[k] for k in names}}
        else:
            return self.vapix_error(ERR_METHOD, "Method not supported", method)
        return json_response(json.dumps(reply))

    def param(self, req: Request) -> Response:
        """param.cgi ``action=list[&group=a,b]`` (digest); writes are refused and counted."""
        if not self.web_auth.check(req)[0]:
            return self.unauthorized()
        query = req.query
        action = query.get("action", "")
        if action != "list":
            if action in ("update", "add", "remove"):
                self.writes += 1
                self.node.bump("vapix_writes")
            return Response(200, "# Request failed: Permission denied\r\n", content_type="text/plain")
        groups = self.param_groups()
        wanted = [g.strip().removeprefix("root.") for g in query.get("group", "").split(",") if g.strip()]
        lines: list[str] = []
        for name in wanted or list(groups):
            top, _, sub = name.partition(".")
            if top not in groups:
                lines.append(f"# Error: Error -1 getting param in group '{name}'")
                continue
            for key, value in groups[top]:
                if not sub or key == sub or key.startswith(sub + "."):
                    lines.append(f"root.{top}.{key}={value}")
        return Response(200, "\r\n".join(lines) + "\r\n", content_type="text/plain")

    def other_cgi(self, req: Request) -> Response:
        """Every other VAPIX CGI: a login first, and then nothing this emulation knows."""
        if not self.web_auth.check(req)[0]:
            return self.unauthorized()
        return Response(404, "Not Found", content_type="text/plain")

    # ---- web pages ---------------------------------------------------------------------------
    def index(self, _req: Request) -> Response:
        return Response(200, '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>AXIS</title>\n'
                        '<meta http-equiv="refresh" content="0; url=/camera/index.html">\n</head>\n'
                        "<body></body>\n</html>\n", content_type="text/html; charset=utf-8")

    # ---- discovery ---------------------------------------------------------------------------
    def upnp_description(self) -> ssdp.UpnpDescription:
        return ssdp.UpnpDescription(
            device_type="urn:schemas-upnp-org:device:Basic:1",
            friendly_name=self.friendly_name,
            manufacturer="AXIS",
            manufacturer_url="http://www.axis.com/",
            model_description=f"{self.model} Network Camera",
            model_name=self.model,
            model_number=self.prod_nbr,
            model_url="http://www.axis.com/",
            serial_number=self.mac_hex,
            udn=f"uuid:Upnp-BasicDevice-1_0-{self.mac_hex}",
            presentation_url=f"http://{self.node.spec.ip}:80/",
        )

    def mdns_services(self) -> list[mdns.MdnsService]:
        txt = {"macaddress": self.mac_hex}
        return [
            mdns.MdnsService("_axis-video._tcp.local.", self.friendly_name, 80, txt),
            mdns.MdnsService("_http._tcp.local.", self.friendly_name, 80, {"path": "/"}),
            mdns.MdnsService("_rtsp._tcp.local.", self.friendly_name, 554, {"path": "/axis-media/media.amp"}),
        ]

    @property
    def mdns_hostname(self) -> str:
        return f"axis-{self.mac_hex.lower()}"

    def scopes(self) -> list[str]:
        return onvif_scopes("AXIS", self.prod_nbr, ["onvif://www.onvif.org/Profile/G",
                                                     "onvif://www.onvif.org/Profile/T"])


async def build_camera(node: Node) -> None:
    axis = Axis(node)
    router = Router()
    router.get("/", axis.index)
    router.get("/index.html", axis.index)
    router.add("POST", "/axis-cgi/basicdeviceinfo.cgi", axis.basic_device_info)
    router.get("/axis-cgi/basicdeviceinfo.cgi", axis.basic_device_info)
    router.prefix("*", "/axis-cgi/param.cgi", axis.param)
    router.prefix("*", "/axis-cgi/", axis.other_cgi)
    description = axis.upnp_description()
    ssdp.mount_description(router, description)
    scopes = axis.scopes()
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer="AXIS",
            model=axis.prod_nbr,
            firmware=axis.firmware,
            serial=axis.mac_hex,
            hardware_id=HARDWARE_ID,
            scopes=scopes,
            rules=["tt:MotionRegionDetector"],
            event_topics=["tns1:VideoSource/MotionAlarm", "tns1:RuleEngine/MotionRegionDetector/Motion"],
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        axis.web_auth,
    )
    onvif.mount(router)
    await node.http(80, TextProtocolServer(router, ServerStyle(server=None), name="http"))
    await rtsp_server(node, axis.rtsp_auth, style=ServerStyle(protocol="RTSP/1.0", server=None),
                      public=AXIS_RTSP_PUBLIC, stream_name="Session streamed with GStreamer")
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    await ssdp.SsdpResponder(node, description, server=SSDP_SERVER).start()
    mdns.advertise(node, axis.mdns_hostname, axis.mdns_services())
    node.control("auth", lambda _m: {"ok": True, "attempts": len(axis.web_auth.attempts) +
                                     len(axis.rtsp_auth.attempts), "writes": axis.writes + onvif.writes})
