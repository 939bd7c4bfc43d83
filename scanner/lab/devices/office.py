"""The store's ordinary equipment: a network printer, a NAS, a staff PC and a POS terminal.

None of them is a camera; they are here so a scan has to tell cameras from everything else and
so the cloud-traffic view has ordinary HTTPS to ignore.

* printer (HP LaserJet Pro): embedded web server on 80 with HP's long ``Server`` banner
  (``HP HTTP Server; <model> - <product number>; Serial Number: ...; Built: ...``), IPP on 631
  (Get-Printer-Attributes answered; job operations refused and counted), JetDirect 9100 (PJL
  ``INFO ID`` answered, everything else swallowed and counted), SSDP and mDNS (``_ipp._tcp``,
  ``_printer._tcp`` with port 0 as Bonjour Printing asks when LPD is off, ``_pdl-datastream._tcp``);
* NAS (Synology DSM 7): nginx on 5000 (login page, ``/webapi/``) and 5001 (TLS), SMB 445, SSDP
  (``/ssdp/desc-DSM-eth0.xml``) and mDNS (``_http._tcp`` with DSM's TXT keys, ``_smb._tcp``);
* staff PC: SMB 445 and RPC 135 (silent); every ~8 s an HTTPS page from Baidu, Taobao or QQ Mail
  (``?size=`` 30-300 KB, the fake internet returns that many bytes) and every ~90 s one ~1.5 MB
  document POST to QQ Mail: large uploads that are not pictures and not bursts;
* POS: listens on nothing; every ~15 s a ~500-byte JSON POST to ``openapi.alipay.com``.

Banners and titles follow public product documentation; they are not byte-exact captures.
"""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from urllib.parse import parse_qsl

from scanner.lab import behaviour
from scanner.lab.devices import mdns, ssdp
from scanner.lab.devices.common import device_tls, ident, silent_tcp
from scanner.lab.runtime.httpserver import (
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
    json_response,
    xml_response,
)
from scanner.lab.runtime.node import Node

# ---- printer ----------------------------------------------------------------------------------
HP_PRODUCT_NUMBERS = {"HP LaserJet Pro M404dn": "W1A53A", "HP LaserJet Pro M404n": "W1A52A",
                      "HP LaserJet Pro M404dw": "W1A56A"}
HP_BUILT = "Thu Jun 08, 2023 02:36:55PM"
HP_SSDP_SERVER = "HP-ChaiSOE/1.0 UPnP/1.0"  # (UNCERTAIN: no public HP M404 SSDP capture)
IPP_GET_PRINTER_ATTRIBUTES = 0x000B
IPP_OK = 0x0000
IPP_BAD_REQUEST = 0x0400
IPP_FORBIDDEN = 0x0401
IPP_JOB_OPERATIONS = {0x0002: "Print-Job", 0x0003: "Print-URI", 0x0004: "Validate-Job", 0x0005: "Create-Job",
                      0x0006: "Send-Document", 0x0008: "Cancel-Job", 0x0010: "Pause-Printer",
                      0x0011: "Resume-Printer", 0x0012: "Purge-Jobs"}
JETDIRECT_LINE_LIMIT = 1024


def ipp_attribute(value_tag: int, name: str, value: bytes) -> bytes:
    """One IPP attribute: value-tag, name-length, name, value-length, value (RFC 8010 §3.1.4)."""
    encoded = name.encode()
    return struct.pack(">BH", value_tag, len(encoded)) + encoded + struct.pack(">H", len(value)) + value


class Printer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model"))  # "HP LaserJet Pro M404dn"
        self.product_number = HP_PRODUCT_NUMBERS.get(self.model, "W1A53A")
        self.firmware = str(ident(node, "firmware"))  # "002_2306A"
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac")).lower()
        self.mac6 = self.mac.replace(":", "")[-6:].upper()
        self.hostname = f"HP{self.mac6}"
        self.uuid = str(uuid.UUID(int=node.rng.getrandbits(128)))
        self.job_requests = 0
        self.jetdirect_bytes = 0

    @property
    def server_banner(self) -> str:
        fw_tag = "{DOBFWNXXXN" + self.firmware.replace("_", ".") + ".00}"
        return (f"HP HTTP Server; {self.model} - {self.product_number}; Serial Number: {self.serial}; "
                f"Built: {HP_BUILT} {fw_tag}")

    def style(self) -> ServerStyle:
        return ServerStyle(server=self.server_banner, extra_headers=[("Cache-Control", "must-revalidate")])

    # ---- web ------------------------------------------------------------------------------
    def index(self, _req: Request) -> Response:
        return Response(
            200,
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{self.model}&nbsp;&nbsp;&nbsp;{self.node.spec.ip}</title>\n</head>\n"
            f"<body><div id=\"hpHeader\">{self.model}</div><div id=\"appContainer\"></div>"
            "<script src=\"/framework/Unified.js\"></script></body>\n</html>\n",
            content_type="text/html; charset=utf-8",
        )

    def product_config(self, _req: Request) -> Response:
        """HP LEDM ``/DevMgmt/ProductConfigDyn.xml``: make, model, serial, product number."""
        return xml_response(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<prdcfgdyn2:ProductConfigDyn xmlns:prdcfgdyn2="http://www.hp.com/schemas/imaging/con/ledm/'
            'productconfigdyn/2009/03/16" xmlns:prdcfgdyn="http://www.hp.com/schemas/imaging/con/ledm/'
            'productconfigdyn/2007/11/05" xmlns:dd="http://www.hp.com/schemas/imaging/con/dictionaries/1.0/">'
            "<prdcfgdyn:ProductInformation>"
            f"<dd:MakeAndModel>{self.model}</dd:MakeAndModel>"
            f"<dd:SerialNumber>{self.serial}</dd:SerialNumber>"
            f"<dd:ProductNumber>{self.product_number}</dd:ProductNumber>"
            f"<dd:Version><dd:Revision>{self.firmware}</dd:Revision>"
            f"<dd:Date>2023-06-08</dd:Date></dd:Version>"
            "</prdcfgdyn:ProductInformation></prdcfgdyn2:ProductConfigDyn>\n"
        )

    # ---- IPP ------------------------------------------------------------------------------
    def printer_attributes(self) -> bytes:
        ip = self.node.spec.ip
        attrs = [
            ipp_attribute(0x45, "printer-uri-supported", f"ipp://{ip}/ipp/print".encode()),
            ipp_attribute(0x42, "printer-name", self.hostname.encode()),
            ipp_attribute(0x41, "printer-make-and-model", self.model.encode()),
            ipp_attribute(0x41, "printer-info", self.model.encode()),
            ipp_attribute(0x41, "printer-location", b""),
            ipp_attribute(0x23, "printer-state", struct.pack(">i", 3)),  # idle
            ipp_attribute(0x44, "printer-state-reasons", b"none"),
            ipp_attribute(0x22, "printer-is-accepting-jobs", b"\x01"),
            ipp_attribute(0x45, "printer-uuid", f"urn:uuid:{self.uuid}".encode()),
            ipp_attribute(0x41, "printer-firmware-string-version", self.firmware.encode()),
            ipp_attribute(0x41, "printer-device-id",
                          f"MFG:HP;MDL:{self.model.removeprefix('HP ')};CMD:PCL,PJL,POSTSCRIPT,URF,PWGRaster;"
                          f"SN:{self.serial};".encode()),
        ]
        return b"".join(attrs)

    def ipp(self, req: Request) -> Response:
        """IPP over HTTP POST: version(2) operation(2) request-id(4) attribute groups..."""
        if req.header("content-type").split(";")[0].strip().lower() != "application/ipp" or len(req.body) < 9:
            return Response(400, "Bad Request", content_type="text/plain")
        _major, _minor, operation, request_id = struct.unpack(">BBHI", req.body[:8])
        self.node.bump("ipp_requests")
        groups = (b"\x01" + ipp_attribute(0x47, "attributes-charset", b"utf-8")
                  + ipp_attribute(0x48, "attributes-natural-language", b"en"))
        if operation == IPP_GET_PRINTER_ATTRIBUTES:
            status = IPP_OK
            groups += b"\x04" + self.printer_attributes()
        elif operation in IPP_JOB_OPERATIONS:
            self.job_requests += 1
            self.node.bump("ipp_job_requests")
            status = IPP_FORBIDDEN
        else:
            status = IPP_BAD_REQUEST
        body = struct.pack(">BBHI", 2, 0, status, request_id) + groups + b"\x03"
        return Response(200, body, content_type="application/ipp")

    # ---- JetDirect ------------------------------------------------------------------------
    def pjl_reply(self, line: bytes) -> bytes | None:
        """The answer to one PJL command line, or None (everything else is print data)."""
        command = line.strip().upper()
        if command.startswith(b"@PJL INFO ID"):
            return b'@PJL INFO ID\r\n"' + self.model.encode() + b'"\r\n\x0c'
        if command.startswith(b"@PJL INFO STATUS"):
            return b'@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY="Ready"\r\nONLINE=TRUE\r\n\x0c'
        return None

    async def jetdirect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """TCP 9100: PJL INFO queries answered; every byte counted (a scan must never print)."""
        pending = b""
        try:
            while data := await reader.read(4096):
                self.jetdirect_bytes += len(data)
                self.node.bump("jetdirect_bytes", len(data))
                pending += data
                *lines, pending = pending.split(b"\n")
                pending = pending[-JETDIRECT_LINE_LIMIT:]
                for line in lines:
                    reply = self.pjl_reply(line.removeprefix(b"\x1b%-12345X"))
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # ---- discovery -------------------------------------------------------------------------
    def upnp_description(self) -> ssdp.UpnpDescription:
        return ssdp.UpnpDescription(
            device_type="urn:schemas-upnp-org:device:Printer:1",
            friendly_name=f"{self.model} [{self.mac6}]",
            manufacturer="HP",
            manufacturer_url="http://www.hp.com",
            model_description=self.model,
            model_name=self.model,
            model_number=self.product_number,
            model_url="http://www.hp.com",
            serial_number=self.serial,
            udn=f"uuid:{self.uuid}",
            presentation_url=f"http://{self.node.spec.ip}/",
        )

    def mdns_services(self) -> list[mdns.MdnsService]:
        instance = f"{self.model} [{self.mac6}]"
        short_model = self.model.removeprefix("HP ")
        ipp_txt = {
            "txtvers": "1", "qtotal": "1", "rp": "ipp/print", "ty": self.model, "product": f"({self.model})",
            "pdl": "application/vnd.hp-PCL,image/urf,application/PCLm,application/postscript,application/pdf",
            "adminurl": f"http://{self.hostname}.local./#hId-pgAirPrint", "note": "", "priority": "10",
            "usb_MFG": "HP", "usb_MDL": short_model, "UUID": self.uuid, "Color": "F", "Duplex": "T",
            "TLS": "1.2", "mac": self.mac, "URF": "V1.4,CP1,IS1,MT1-3-5,RS600,W8,DM1",
        }
        return [
            mdns.MdnsService("_ipp._tcp.local.", instance, 631, ipp_txt),
            mdns.MdnsService("_printer._tcp.local.", instance, 0, {"txtvers": "1", "qtotal": "1"}),
            mdns.MdnsService("_pdl-datastream._tcp.local.", instance, 9100,
                             {"txtvers": "1", "ty": self.model, "usb_MFG": "HP", "usb_MDL": short_model}),
            mdns.MdnsService("_http._tcp.local.", instance, 80, {"path": "/"}),
        ]


async def build_printer(node: Node) -> None:
    printer = Printer(node)
    router = Router()
    router.get("/", printer.index)
    router.get("/index.html", printer.index)
    router.get("/DevMgmt/ProductConfigDyn.xml", printer.product_config)
    description = printer.upnp_description()
    ssdp.mount_description(router, description)
    await node.http(80, TextProtocolServer(router, printer.style(), name="http"))
    ipp_router = Router()
    for path in ("/ipp/print", "/ipp/printer", "/ipp", "/"):
        ipp_router.add("POST", path, printer.ipp)
    ipp_router.get("/", printer.index)
    await node.http(631, TextProtocolServer(ipp_router, printer.style(), name="ipp"))
    await node.tcp(9100, printer.jetdirect)
    await ssdp.SsdpResponder(node, description, server=HP_SSDP_SERVER).start()
    mdns.advertise(node, printer.hostname, printer.mdns_services())
    node.control("printer", lambda _m: {"ok": True, "job_requests": printer.job_requests,
                                        "jetdirect_bytes": printer.jetdirect_bytes})


# ---- NAS ---------------------------------------------------------------------------------------
SYNO_API_INFO = {
    "SYNO.API.Info": {"maxVersion": 1, "minVersion": 1, "path": "query.cgi"},
    "SYNO.API.Auth": {"maxVersion": 7, "minVersion": 1, "path": "entry.cgi"},
    "SYNO.Core.Desktop.Initdata": {"maxVersion": 1, "minVersion": 1, "path": "entry.cgi"},
    "SYNO.FileStation.List": {"maxVersion": 2, "minVersion": 1, "path": "entry.cgi"},
}
SYNO_ERR_NO_API = 102
SYNO_ERR_BAD_LOGIN = 400
SYNO_ERR_NO_SESSION = 119


class Nas:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model"))  # "DS220+"
        self.hostname = self.model.replace("+", "plus")  # DSM's default server name: "DS220plus"
        firmware = str(ident(node, "firmware"))  # "DSM 7.2.1-69057"
        version, _, build = firmware.removeprefix("DSM ").partition("-")
        parts = (version.split(".") + ["0", "0"])[:3]
        self.version_major, self.version_minor, self.version_micro = parts
        self.build = build or "0"
        self.serial = str(ident(node, "serial"))
        self.mac = str(ident(node, "mac")).lower()
        self.username = str(ident(node, "username", "admin"))
        self.password = str(ident(node, "password", ""))
        self.logins = 0

    def login_page(self, _req: Request) -> Response:
        return Response(
            200,
            "<!DOCTYPE html>\n<html class=\"img-no-drag\">\n<head>\n"
            "<meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n"
            "<meta name=\"description\" content=\"Synology DiskStation provides a full-featured network "
            "attached storage (NAS) solution to help you manage, backup and share data among Windows, Mac "
            "and Linux easily.\" />\n"
            f"<title>{self.hostname}&nbsp;-&nbsp;Synology&nbsp;DiskStation</title>\n"
            f"<link rel=\"stylesheet\" type=\"text/css\" href=\"/webman/resources/css/desktop.css?v={self.build}\" />"
            f"\n</head>\n<body>\n<script type=\"text/javascript\" src=\"/webman/login.js?v={self.build}\">"
            "</script>\n</body>\n</html>\n",
            content_type="text/html; charset=\"UTF-8\"",
        )

    @staticmethod
    def syno_error(code: int) -> Response:
        return json_response(json.dumps({"error": {"code": code}, "success": False}))

    def query_cgi(self, req: Request) -> Response:
        """``SYNO.API.Info`` query: which web APIs exist and where (no login needed)."""
        query = req.query
        if query.get("api") != "SYNO.API.Info":
            return self.syno_error(SYNO_ERR_NO_API)
        wanted = query.get("query", "all")
        names = list(SYNO_API_INFO) if wanted == "all" else [n for n in wanted.split(",") if n in SYNO_API_INFO]
        return json_response(json.dumps({"data": {n: SYNO_API_INFO[n] for n in names}, "success": True}))

    def entry_cgi(self, req: Request) -> Response:
        """``SYNO.API.Auth`` login (account/passwd) and nothing else without a session."""
        params = dict(req.query)
        if req.method == "POST" and req.body:
            params.update(dict(parse_qsl(req.body.decode("latin-1"), keep_blank_values=True)))
        api = params.get("api", "")
        if api not in SYNO_API_INFO:
            return self.syno_error(SYNO_ERR_NO_API)
        if api == "SYNO.API.Auth" and params.get("method") == "login":
            self.logins += 1
            self.node.bump("dsm_logins")
            if params.get("account") == self.username and params.get("passwd") == self.password:
                sid = self.node.rng.randbytes(16).hex()
                return json_response(json.dumps({"data": {"sid": sid}, "success": True}))
            return self.syno_error(SYNO_ERR_BAD_LOGIN)
        return self.syno_error(SYNO_ERR_NO_SESSION)

    def upnp_description(self) -> ssdp.UpnpDescription:
        mac_hex = self.mac.replace(":", "")
        version = f"{self.version_major}.{self.version_minor}"
        return ssdp.UpnpDescription(
            device_type="urn:schemas-upnp-org:device:Basic:1",
            friendly_name=f"{self.hostname} ({self.model})",
            manufacturer="Synology",
            manufacturer_url="http://www.synology.com",
            model_description="Synology NAS",
            model_name=self.model,
            model_number=f"{self.model} {version}-{self.build}",
            model_url="http://www.synology.com",
            serial_number=self.serial,
            # Synology UDNs spell "synodsm" in hex, then the MAC.
            udn=f"uuid:73796E6F-6473-6D00-0000-{mac_hex}",
            presentation_url=f"http://{self.node.spec.ip}:5000/",
        )

    def mdns_services(self) -> list[mdns.MdnsService]:
        dsm_txt = {
            "vendor": "Synology", "model": self.model, "serial": self.serial,
            "version_major": self.version_major, "version_minor": self.version_minor,
            "version_build": self.build, "admin_port": "5000", "secure_admin_port": "5001",
            "mac_address": self.mac,
        }
        return [
            mdns.MdnsService("_http._tcp.local.", self.hostname, 5000, dsm_txt),
            mdns.MdnsService("_smb._tcp.local.", self.hostname, 445, {}),
        ]


NAS_DESCRIPTION_PATH = "/ssdp/desc-DSM-eth0.xml"


async def build_nas(node: Node) -> None:
    nas = Nas(node)
    router = Router()
    router.get("/", nas.login_page)
    router.get("/webman/index.cgi", nas.login_page)
    router.get("/webapi/query.cgi", nas.query_cgi)
    router.prefix("*", "/webapi/entry.cgi", nas.entry_cgi)
    router.prefix("*", "/webapi/auth.cgi", nas.entry_cgi)
    description = nas.upnp_description()
    ssdp.mount_description(router, description, NAS_DESCRIPTION_PATH)
    style = ServerStyle(server="nginx", extra_headers=[("X-Content-Type-Options", "nosniff"),
                                                       ("X-XSS-Protection", "1; mode=block")])
    await node.http(5000, TextProtocolServer(router, style, name="http"))
    await node.http(5001, TextProtocolServer(router, style, name="https"), tls=device_tls(node))
    await silent_tcp(node, 445)
    await ssdp.SsdpResponder(node, description, server=f"Synology/DSM/{node.spec.ip}", http_port=5000,
                             path=NAS_DESCRIPTION_PATH).start()
    mdns.advertise(node, nas.hostname, nas.mdns_services())
    node.control("nas", lambda _m: {"ok": True, "logins": nas.logins})


# ---- staff PC ------------------------------------------------------------------------------------
BROWSE_INTERVAL_S = 8.0
UPLOAD_INTERVAL_S = 90.0
PAGE_BYTES = (30_000, 300_000)
DOCUMENT_BYTES = (1_400_000, 1_600_000)
BROWSING: tuple[tuple[str, str], ...] = (
    ("www.baidu.com", "/s?ie=utf-8&wd=%E5%BF%AB%E9%80%92%E6%9F%A5%E8%AF%A2"),
    ("www.taobao.com", "/"),
    ("mail.qq.com", "/cgi-bin/frame_html"),
)
MAIL_HOST = "mail.qq.com"
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class StaffPc:
    """A Windows PC whose user browses ordinary sites and now and then mails a document."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def browse_once(self) -> int:
        """GET one page over HTTPS from a random site; returns the HTTP status (0: unreachable)."""
        host, path = self.node.rng.choice(BROWSING)
        size = self.node.rng.randint(*PAGE_BYTES)
        sep = "&" if "?" in path else "?"
        conn = await self.node.open(host, 443, tls=True)
        if conn is None:
            return 0
        reader, writer = conn
        try:
            status = await behaviour.http_request(
                reader, writer, "GET", host, f"{path}{sep}size={size}",
                headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*", "Accept-Encoding": "identity"},
            )
        finally:
            writer.close()
        if 200 <= status < 300:
            self.node.bump("pages_browsed")
            self.node.bump("page_bytes", size)
        return status

    def document(self) -> bytes:
        """A .docx-shaped body (a ZIP local header, then filler): large, and not a picture."""
        size = self.node.rng.randint(*DOCUMENT_BYTES)
        header = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml"
        return header + self.node.rng.randbytes(size - len(header))

    async def upload_once(self) -> int:
        """POST one ~1.5 MB document to QQ Mail as a single request; returns the HTTP status."""
        conn = await self.node.open(MAIL_HOST, 443, tls=True)
        if conn is None:
            return 0
        reader, writer = conn
        body = self.document()
        try:
            status = await behaviour.http_request(
                reader, writer, "POST", MAIL_HOST, "/cgi-bin/uploadfile?f=json&ef=js", body,
                headers={"User-Agent": USER_AGENT, "Content-Type": DOCX,
                         "Content-Disposition": 'attachment; filename="weekly-report.docx"'},
            )
        finally:
            writer.close()
        if 200 <= status < 300:
            self.node.bump("documents_uploaded")
            self.node.bump("document_bytes", len(body))
        return status

    async def browse(self) -> None:
        await self.browse_once()

    async def upload(self) -> None:
        await self.upload_once()


async def build_pc(node: Node) -> None:
    pc = StaffPc(node)
    await silent_tcp(node, 445)
    await silent_tcp(node, 135)
    node.every(BROWSE_INTERVAL_S, pc.browse, jitter=0.3)
    node.every(UPLOAD_INTERVAL_S, pc.upload, jitter=0.2, first=node.rng.uniform(20.0, UPLOAD_INTERVAL_S))


# ---- POS -------------------------------------------------------------------------------------------
PAYMENT_HOST = "openapi.alipay.com"
PAYMENT_INTERVAL_S = 15.0
PAYMENT_BODY_PAD = 440  # the JSON document ends up ~500 bytes


async def build_pos(node: Node) -> None:
    """No listening port at all; a small payment-status POST every ~15 s."""
    behaviour.https_poll(node, PAYMENT_HOST, 443, interval=PAYMENT_INTERVAL_S, path="/gateway.do",
                         body_bytes=PAYMENT_BODY_PAD)
