"""Xiongmai (XMEye / NETSurveillance / "Sofia") cameras: 34569 discovery, DVRIP 34567, web, RTSP, ONVIF.

Shapes follow protocols.md §4.3:

* UDP 34569 discovery: a 20-byte header ``struct "BBHIIHHI"`` (0xFF head, version, reserved,
  session, sequence, flags, msg id, length) then JSON. Request msg id 1530, reply 1531 carrying
  ``NetWork.NetCommon`` (addresses as little-endian hex strings, e.g. ``"0x0A01A8C0"``).
* TCP 34567 DVRIP: same header; login msg 1000 with the "sofia" password hash, reply 1001 with
  ``Ret`` / ``SessionID`` / ``AliveInterval`` and the ``"DeviceType "`` key (trailing space, real);
  ``SystemInfo`` 1020->1021, ``SystemFunction`` 1360->1361, config get 1042->1043 (``NetWork.Nat``).
* ``Server: uc-httpd 1.0.0`` web server, title ``NETSurveillance WEB``; RTSP ``Server: H264DVR 1.0``.
* ONVIF on 8899 (XM's usual ONVIF port) with WS-UsernameToken.

Cloud (clouds.md, Xiongmai row): names are resolved through a hard-coded *outside* resolver, not the
store's DNS; ``pub-cfg.secu100.net:8086`` gets plain-HTTP ``POST /`` with ``CfgProtocol`` JSON and
``access-dss.secu100.net:8086`` a ``DssProtocol`` ``MSG_DEV_REGISTER_REQ`` every 120 s
(``KeepAliveIntervel``). Writes over DVRIP (config set, machine ops, user changes) are refused and
counted: camsweep must never send one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import struct
import time
from collections.abc import Callable
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
)
from scanner.lab.runtime.node import Node, UdpEndpoint

# ---- wire constants (protocols.md §4.3) --------------------------------------------------------
# 20-byte header, little-endian: head 0xFF, version, reserved u16, session u32, sequence u32,
# total/current packet u16, message id u16, body length u32.
HEADER = struct.Struct("<BBHIIHHI")
HEAD_MAGIC = 0xFF
BODY_TAIL = b"\n\x00"  # every JSON body ends with newline + NUL (python-dvr reads data[:-2])
MAX_BODY = 64 * 1024

DISCOVERY_PORT = 34569
DVRIP_TCP_PORT = 34567
DVRIP_UDP_PORT = 34568
ONVIF_PORT = 8899
MSG_DISCOVERY_REQ = 1530
MSG_DISCOVERY_RSP = 1531
MSG_LOGIN_REQ = 1000
MSG_LOGOUT_REQ = 1002
MSG_KEEPALIVE_REQ = 1006
MSG_SYSINFO_REQ = 1020
MSG_CONFIG_SET = 1040
MSG_CONFIG_GET = 1042
MSG_ABILITY_GET = 1360
# Requests that change the device (config set, PTZ, OPMachine/OPTimeSetting, user and group
# management, upgrade/file transfer). The lab refuses and counts them.
WRITE_MSG_IDS = frozenset({MSG_CONFIG_SET, 1400, 1450, 1476, 1478, 1480, 1482, 1484, 1486, 1488,
                           0x5F0, 0x5F2, 0x5F5})

# Ret codes (python-dvr's table; 106/203/205 are the login failures).
RET_OK = 100
RET_UNSUPPORTED = 102  # also the answer to a CONFIG_GET on a name the firmware lacks
RET_NOT_PERMITTED = 103
RET_NOT_LOGGED_IN = 105
RET_BAD_PASSWORD = 203
RET_NO_SUCH_USER = 205
RET_USER_LOCKED = 206  # UNCERTAIN: not in the public tables the notes cite

ALIVE_INTERVAL_S = 20
IDLE_TIMEOUT_S = 60.0  # the camera drops a silent session (roughly 30 s on real units)
SOFIA_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

CFG_HOST = "pub-cfg.secu100.net"
DSS_HOST = "access-dss.secu100.net"
CLOUD_PORT = 8086
DSS_KEEPALIVE_S = 120.0  # DssProtocol reply: "KeepAliveIntervel": "120"


def sofia_hash(password: str) -> str:
    """XM "sofia" hash (§4.3): MD5 bytes summed pairwise, mod 62, into [0-9A-Za-z]; 8 characters."""
    digest = hashlib.md5(password.encode("utf-8")).digest()
    return "".join(SOFIA_ALPHABET[(digest[i] + digest[i + 1]) % 62] for i in range(0, 16, 2))


def xm_hex_ip(ip: str) -> str:
    """An IPv4 address the XM way: the 4 bytes read as a little-endian u32, e.g. 192.168.1.10 -> 0x0A01A8C0."""
    return f"0x{int.from_bytes(socket.inet_aton(ip), 'little'):08X}"


def pack_message(msg_id: int, body: dict[str, Any], *, session: int = 0, sequence: int = 0) -> bytes:
    """One DVRIP/discovery message: the 20-byte header (§4.3) then JSON + ``\\n\\0``."""
    payload = json.dumps(body, separators=(", ", " : ")).encode() + BODY_TAIL
    return HEADER.pack(HEAD_MAGIC, 0, 0, session, sequence, 0, msg_id, len(payload)) + payload


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """JSON up to the first NUL; None when it is not a JSON object."""
    text = raw.split(b"\x00", 1)[0].strip()
    if not text:
        return {}
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


class Xiongmai:
    """One XM IPC: identity, the shared user database, the discovery and DVRIP answers."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model"))  # "HI3516EV300_85H50AI" (DeviceModel / HardWare)
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac"))
        self.firmware = str(ident(node, "firmware"))  # "V5.00.R02.000529G9.10010.346717.S"
        self.face = bool(ident(node, "face_capable"))
        clouds = ident(node, "clouds", [])
        self.cloud_hosts = {str(c["host"]) for c in clouds}
        self.nat_enabled = bool(self.cloud_hosts & {CFG_HOST, DSS_HOST})
        # protocols.md gives no RTSP realm for H264DVR (digest is observed): the banner's name is
        # used. UNCERTAIN. Web (uc-httpd) has no HTTP auth; login happens over DVRIP.
        self.auth: DigestAuth = device_auth(node, "H264DVR")
        self.writes = 0
        self.next_session = 0x10
        self.started = time.time()

    # ---- config documents ------------------------------------------------------------------
    def net_common(self) -> dict[str, Any]:
        """``NetWork.NetCommon`` (§4.3 discovery payload; hex little-endian addresses)."""
        return {
            "BuildDate": "2020-05-29 16:21:38",
            "ChannelNum": 1,
            "DeviceType": 1,
            "GateWay": xm_hex_ip(str(ident(self.node, "gateway", "0.0.0.0"))),
            "HostIP": xm_hex_ip(self.node.spec.ip),
            "HostName": "LocalHost",
            "HttpPort": 80,
            "MAC": self.mac,
            "MaxBps": 0,
            "MonMode": "TCP",
            "SN": self.serial,
            "SSLPort": 8443,
            "Submask": xm_hex_ip("255.255.255.0"),
            "TCPMaxConn": 10,
            "TCPPort": DVRIP_TCP_PORT,
            "TransferPlan": "Quality",
            "UDPPort": DVRIP_UDP_PORT,
            "UseHSDownLoad": False,
            "Version": self.firmware,
        }

    def nat(self) -> dict[str, Any]:
        """``NetWork.Nat``: the XMEye cloud/P2P switch (§8: NatEnable=true means cloud P2P).

        Only ``NatEnable`` is documented (§4.3); server/port follow clouds.md ("secu100.net",
        "port 8000"); the other names are UNCERTAIN.
        """
        return {"NatEnable": self.nat_enabled, "ServerAddr": "secu100.net", "ServerPort": 8000,
                "XMeyeMTU": 1280, "MinUploadBitrate": 64}

    def system_info(self) -> dict[str, Any]:
        """``SystemInfo`` (§4.3: BuildTime, DeviceModel, HardWare, SerialNo, SoftWareVersion)."""
        uptime_min = int((time.time() - self.started) / 60) + 3 * 24 * 60
        return {
            "AlarmInChannel": 0,
            "AlarmOutChannel": 0,
            "AudioInChannel": 1,
            "BuildTime": "2020-05-29 16:21:38",
            "CombineSwitch": 0,
            "DeviceModel": self.model,
            "DeviceRunTime": f"0x{uptime_min:08X}",
            "DigChannel": 0,
            "EncryptVersion": "Unknown",
            "ExtraChannel": 0,
            "HardWare": self.model,
            "HardWareVersion": "Unknown",
            "SerialNo": self.serial,
            "SoftWareVersion": self.firmware,
            "TalkInChannel": 1,
            "TalkOutChannel": 1,
            "UpdataTime": "",
            "UpdataType": "0x00000000",
            "VideoInChannel": 1,
            "VideoOutChannel": 1,
        }

    def system_function(self) -> dict[str, Any]:
        """``SystemFunction`` ability map. Key names from §4.3; their grouping is UNCERTAIN."""
        return {
            "AlarmFunction": {"AlarmConfig": True, "BlindDetect": True, "HumanDection": True,
                              "LossDetect": True, "MotionDetect": True, "NetAlarm": True,
                              "VideoAnalyze": False},
            "CommFunction": {"CommRS232": False, "CommRS485": False},
            "EncodeFunction": {"DoubleStream": True, "SnapStream": True, "SmartH264": True},
            "NetServerFunction": {"NetDHCP": True, "NetDNS": True, "NetIPFilter": True, "NetNTP": True,
                                  "NetNat": True, "NetONVIF": True, "NetRTSP": True},
            "OtherFunction": {"SupportCloudUpgrade": True, "SupportFaceDetectV2": self.face,
                              "SupportFaceRecognition": self.face, "SupportShowH265X": True},
            "PreviewFunction": {"Talk": True, "Tour": False},
        }

    CONFIGS: dict[str, Callable[[Xiongmai], dict[str, Any]]] = {
        "NetWork.NetCommon": net_common,
        "NetWork.Nat": nat,
        "SystemInfo": system_info,
        "SystemFunction": system_function,
    }

    # ---- UDP 34569 discovery -----------------------------------------------------------------
    def on_discovery(self, data: bytes, addr: tuple[str, int], endpoint: UdpEndpoint) -> None:
        """A 1530 search (§4.3 header) gets a 1531 reply to the sender; anything else is dropped."""
        if len(data) < HEADER.size:
            return
        head, _ver, _res, _session, sequence, _flags, msg_id, _length = HEADER.unpack_from(data)
        if head != HEAD_MAGIC or msg_id != MSG_DISCOVERY_REQ:
            return
        self.node.bump("xm_discovery_probes")
        reply = {"NetWork.NetCommon": self.net_common(), "Name": "NetWork.NetCommon", "Ret": RET_OK,
                 "SessionID": "0x00000000"}
        endpoint.send(pack_message(MSG_DISCOVERY_RSP, reply, sequence=sequence), addr)

    # ---- TCP 34567 DVRIP -----------------------------------------------------------------------
    async def dvrip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One DVRIP connection: read header + body, answer with msg id + 1, until EOF or junk."""
        session = 0  # 0 until a login succeeds
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(HEADER.size), IDLE_TIMEOUT_S)
                head, _ver, _res, _session, sequence, _flags, msg_id, length = HEADER.unpack(header)
                if head != HEAD_MAGIC or length > MAX_BODY:
                    self.node.bump("dvrip_garbage")
                    return  # real firmware just drops a connection that does not speak DVRIP
                body = parse_body(await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT_S))
                if self.node.hung_reason:
                    continue
                self.node.bump("dvrip_requests")
                reply: dict[str, Any]
                if body is None:
                    reply_id, reply = (msg_id + 1) & 0xFFFF, {"Ret": RET_UNSUPPORTED, "SessionID": f"0x{session:08X}"}
                elif msg_id == MSG_LOGIN_REQ:
                    reply_id, reply = MSG_LOGIN_REQ + 1, self.login(body)
                    if reply["Ret"] == RET_OK:
                        session = int(reply["SessionID"], 16)
                else:
                    reply_id, reply = (msg_id + 1) & 0xFFFF, self.request(msg_id, body, session)
                writer.write(pack_message(reply_id, reply, session=session, sequence=sequence))
                await writer.drain()
                if msg_id == MSG_LOGOUT_REQ and session:
                    return
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            writer.close()

    def login(self, body: dict[str, Any]) -> dict[str, Any]:
        """Msg 1000: check the sofia hash against the shared user db (failures count, lockout works)."""
        user = str(body.get("UserName", ""))
        offered = str(body.get("PassWord", ""))
        locked_before = self.auth.is_locked(user)
        known = user in self.auth.users
        ok = known and offered == sofia_hash(self.auth.users[user])
        if self.auth.record(user, ok):
            self.next_session += 1
            return {"AliveInterval": ALIVE_INTERVAL_S, "ChannelNum": 1, "DataUseAES": False,
                    "DeviceType ": "IPC",  # trailing space in the key: real firmware (§4.3)
                    "ExtraChannel": 0, "Ret": RET_OK, "SessionID": f"0x{self.next_session:08X}"}
        if locked_before:
            code = RET_USER_LOCKED
        elif not known:
            code = RET_NO_SUCH_USER
        else:
            code = RET_BAD_PASSWORD
        return {"Ret": code, "SessionID": "0x00000000"}

    def request(self, msg_id: int, body: dict[str, Any], session: int) -> dict[str, Any]:
        """Everything after login: keep-alive, SystemInfo, SystemFunction, config get; writes refused."""
        sid = f"0x{session:08X}"
        name = str(body.get("Name", ""))
        if not session:
            return {"Name": name, "Ret": RET_NOT_LOGGED_IN, "SessionID": sid}
        if msg_id == MSG_KEEPALIVE_REQ:
            return {"Name": "KeepAlive", "Ret": RET_OK, "SessionID": sid}
        if msg_id == MSG_LOGOUT_REQ:
            return {"Name": "", "Ret": RET_OK, "SessionID": sid}
        if msg_id in WRITE_MSG_IDS:
            self.writes += 1
            self.node.bump("dvrip_writes")
            return {"Name": name, "Ret": RET_NOT_PERMITTED, "SessionID": sid}
        wanted = {MSG_SYSINFO_REQ: "SystemInfo", MSG_ABILITY_GET: "SystemFunction"}.get(msg_id, name)
        if msg_id in (MSG_SYSINFO_REQ, MSG_ABILITY_GET, MSG_CONFIG_GET):
            build = self.CONFIGS.get(wanted)
            if build is not None:
                return {"Name": wanted, wanted: build(self), "Ret": RET_OK, "SessionID": sid}
            return {"Name": wanted, "Ret": RET_UNSUPPORTED, "SessionID": sid}
        return {"Name": name, "Ret": RET_UNSUPPORTED, "SessionID": sid}

    # ---- web -----------------------------------------------------------------------------------
    def index(self, _req: Request) -> Response:
        """The ``NETSurveillance WEB`` page (§4.3 title; the real one loads an ActiveX plugin)."""
        return Response(200, "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
                        "<title>NETSurveillance WEB</title></head><body>"
                        "<object id=\"ocx\" width=\"100%\" height=\"100%\" "
                        "classid=\"CLSID:D7F1D6BA-3F0F-4E1F-B9E0-4A8C3F2C7A11\"></object>"
                        "<div id=\"tip\">Please download and install the plugin.</div></body></html>",
                        content_type="text/html")

    # ---- cloud bodies (clouds.md, Xiongmai row) --------------------------------------------------
    def cfg_query(self, seq: int) -> bytes:
        """``CfgProtocol`` ``MSG_DSS_CFG_QUERY_REQ`` to pub-cfg.secu100.net (AuthCode == serial)."""
        return json.dumps({"CfgProtocol": {
            "Body": {"AuthCode": self.serial, "OemID": "General", "OtherInfo": self.firmware,
                     "ProductID": self.model, "SerialNumber": self.serial},
            "Header": {"CSeq": str(seq), "MessageType": "MSG_DSS_CFG_QUERY_REQ", "Version": "1.0"},
        }}, indent=4).encode()

    def dss_register(self, seq: int) -> bytes:
        """``DssProtocol`` ``MSG_DEV_REGISTER_REQ`` to access-dss.secu100.net (the 120 s keep-alive)."""
        return json.dumps({"DssProtocol": {
            "Body": {"Area": "Asia:China:Default", "AuthCode": self.serial, "Enable": "1",
                     "LiveStatus": ["0", "0"], "RewriteOemID": "General", "SerialNumber": self.serial,
                     "StreamLevel": "0_3:1_1_0", "StreamServerIPs": ["0.0.0.0", "0.0.0.0"]},
            "Header": {"CSeq": str(seq), "MessageType": "MSG_DEV_REGISTER_REQ", "Version": "1.0"},
        }}, indent=4).encode()


def json_post_every(node: Node, host: str, port: int, *, interval: float, body: Callable[[int], bytes],
                    counter: str, resolver: str | None, headers: dict[str, str] | None = None) -> None:
    """Every ``interval``: resolve ``host`` (through ``resolver``), plain-HTTP ``POST /`` ``body(seq)``.

    Local stand-in for ``behaviour.https_poll`` with a caller-supplied body (that helper only
    sends its own ``{"sn", "t", "pad"}`` JSON).
    """

    async def post() -> None:
        conn = await node.open(behaviour.address(node, host), port, tls=False, resolver=resolver)
        if conn is None:
            return
        reader, writer = conn
        try:
            seq = node.counters.get(counter, 0) + 1
            status = await behaviour.http_request(reader, writer, "POST", host, "/", body(seq), headers)
            if 200 <= status < 300:
                node.bump(counter)
        except (ValueError, ssl.SSLError):
            node.bump("periodic_errors")
        finally:
            writer.close()

    node.every(interval, post)


async def build_camera(node: Node) -> None:
    """UDP 34569, TCP 34567, uc-httpd on 80, H264DVR RTSP on 554, ONVIF on 8899, XMEye cloud."""
    xm = Xiongmai(node)
    await node.udp(DISCOVERY_PORT, xm.on_discovery, broadcast=True)
    await node.tcp(DVRIP_TCP_PORT, xm.dvrip)

    web = Router()
    web.get("/", xm.index)
    await node.http(80, TextProtocolServer(web, ServerStyle(server="uc-httpd 1.0.0"), name="http"))
    # §6: "Server: H264DVR 1.0"; the public OPTIONS capture has no Date header and this Public list.
    await rtsp_server(node, xm.auth, style=ServerStyle(protocol="RTSP/1.0", server="H264DVR 1.0", date=False),
                      public="OPTIONS, DESCRIBE, SETUP, TEARDOWN, GET_PARAMETER, PLAY, PAUSE")

    scopes = onvif_scopes("XM", xm.model)
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer="XM",  # UNCERTAIN: XM OEM firmware varies ("XM", "H264", the OEM brand)
            model=xm.model,
            firmware=xm.firmware,
            serial=xm.serial,
            hardware_id="00001",
            scopes=scopes,
            rules=["tt:CellMotionDetector"],
            analytics_modules=["tt:CellMotionEngine"],
            event_topics=["tns1:RuleEngine/CellMotionDetector/Motion", "tns1:VideoSource/MotionAlarm"],
            digest=False,  # UsernameToken only (UNCERTAIN for XM; a token-only device per §5.3)
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        xm.auth,
        http_port=ONVIF_PORT,
    )
    onvif_router = Router()
    onvif.mount(onvif_router)
    await node.http(ONVIF_PORT, TextProtocolServer(onvif_router, ServerStyle(server=None), name="onvif"))
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    node.control("auth", lambda _m: {"ok": True, "attempts": len(xm.auth.attempts),
                                     "locked": sorted(xm.auth.locked), "writes": xm.writes + onvif.writes})

    # The hard-coded outside resolver (clouds.md: 114.114.114.114 / 8.8.8.8), never the store's.
    outside = str(ident(node, "outside_resolver", "")) or None
    if CFG_HOST in xm.cloud_hosts:
        json_post_every(node, CFG_HOST, CLOUD_PORT, interval=60.0, body=xm.cfg_query, counter="polls",
                        resolver=outside, headers={"Accept": "*/*", "Content-Type": "text/html",
                                                   "User-Agent": "XAPP"})
    if DSS_HOST in xm.cloud_hosts:
        json_post_every(node, DSS_HOST, CLOUD_PORT, interval=DSS_KEEPALIVE_S, body=xm.dss_register,
                        counter="heartbeats", resolver=outside)
