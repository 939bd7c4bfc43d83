"""Printer, NAS, staff PC and POS emulation: banners real clients see, and the traffic they send.

The behaviour tests run the device next to the real fake-internet node (``build_clouds``): the
device resolves the cloud names through that node's DNS and talks TLS to its sinks, so the
cloud's own counters show what went over the wire.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import zeroconf
from defusedxml import ElementTree as SafeET

from scanner.lab.clouds import build_clouds
from scanner.lab.devices import mdns, office
from scanner.lab.plan import make_plan
from scanner.lab.profiles import CLOUD_BY_HOST, PROFILE_BY_KEY
from scanner.lab.runtime.node import Node, NodeSpec
from scanner.lab.runtime.tlsutil import write_self_signed
from tests.lab.harness import PORT_OFFSET, NodeHandle, running_device
from tests.lab.test_axis import fetch_location, msearch

UPNP = {"u": "urn:schemas-upnp-org:device-1-0"}

# ---- a device next to the fake internet ------------------------------------------------------------
# 127.79.x.y: apart from the harness's 127.77/127.78 ranges; the block moves with the pid so two
# test processes on one machine do not collide.
_block = itertools.count(os.getpid() % 200)


@dataclass
class CloudLab:
    device: NodeHandle
    clouds: Node

    def stats(self, host: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            return dict(self.clouds.state.get("clouds", {}).get(host, {}))

        result: dict[str, Any] = self.device.call(read())
        return result

    def wait_for(self, condition: Callable[[], bool], timeout: float = 8.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return condition()


@contextmanager
def running_with_clouds(profile_key: str, tmp_path: Path, *, seed: int = 1) -> Iterator[CloudLab]:
    """Start the fake-internet node for the profile's clouds, then the device resolving through it."""
    block = f"127.79.{next(_block) % 200 + 20}."
    profile = PROFILE_BY_KEY[profile_key]
    hosts = [use.host for use in profile.clouds]
    cloud_ips = {host: f"{block}{100 + i}" for i, host in enumerate(hosts)}
    certfile, keyfile = write_self_signed(tmp_path, hosts)
    clouds = Node(NodeSpec(
        name="clouds", role="cloud", ip=f"{block}2", mode="loopback", statedir=str(tmp_path), seed=seed,
        port_offset=PORT_OFFSET, clouds=cloud_ips, certfile=str(certfile), keyfile=str(keyfile),
        cloud_endpoints=[{"host": h, "ip": ip, "port": CLOUD_BY_HOST[h].port, "kind": CLOUD_BY_HOST[h].kind}
                         for h, ip in cloud_ips.items()],
    ))
    planned = next(d for d in make_plan(0, "loopback", seed).devices if d.name == profile_key)
    identity = {"mac": planned.mac, "serial": planned.serial, "username": profile.username,
                "password": planned.password, "vendor": profile.vendor, "model": profile.model,
                "firmware": profile.firmware, "device_type": profile.device_type, "gateway": f"{block}1",
                "clouds": [{"host": u.host, "port": u.port, "purpose": u.purpose} for u in profile.clouds]}
    device = Node(NodeSpec(
        name=profile_key, role="device", ip=f"{block}10", mode="loopback", statedir=str(tmp_path), seed=seed,
        profile=profile_key, resolver=f"{block}2", port_offset=PORT_OFFSET, identity=identity,
        visitor_interval=0.0,
    ))
    module_name, func = profile.builder.split(":")
    build = getattr(importlib.import_module(module_name), func)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(build_clouds(clouds), loop).result(10)
        asyncio.run_coroutine_threadsafe(build(device), loop).result(10)
        handle = NodeHandle(device, loop, device.spec.ip, {"mac": planned.mac, "serial": planned.serial,
                                                          "password": planned.password})
        yield CloudLab(handle, clouds)
    finally:
        asyncio.run_coroutine_threadsafe(device.close(), loop).result(10)
        asyncio.run_coroutine_threadsafe(clouds.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def port_open(ip: str, port: int) -> bool:
    """Whether ``port`` accepts; when it does, half-close and wait for the device to close too
    (so the device's handler really ran before the test tears the node down)."""
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
            return True
    except ConnectionRefusedError:
        return False


# ---- IPP helpers ------------------------------------------------------------------------------------
def ipp_request(operation: int, request_id: int, printer_uri: str) -> bytes:
    def attr(tag: int, name: str, value: bytes) -> bytes:
        return struct.pack(">BH", tag, len(name)) + name.encode() + struct.pack(">H", len(value)) + value

    return (struct.pack(">BBHI", 2, 0, operation, request_id) + b"\x01"
            + attr(0x47, "attributes-charset", b"utf-8") + attr(0x48, "attributes-natural-language", b"en")
            + attr(0x45, "printer-uri", printer_uri.encode()) + b"\x03")


def ipp_parse(body: bytes) -> tuple[int, int, dict[str, bytes]]:
    """(status, request-id, {name: first value}) of an IPP response."""
    _major, _minor, status, request_id = struct.unpack(">BBHI", body[:8])
    attrs: dict[str, bytes] = {}
    i = 8
    while i < len(body):
        tag = body[i]
        i += 1
        if tag == 0x03:
            break
        if tag < 0x10:  # a group delimiter
            continue
        (name_len,) = struct.unpack(">H", body[i:i + 2])
        name = body[i + 2:i + 2 + name_len].decode()
        i += 2 + name_len
        (value_len,) = struct.unpack(">H", body[i:i + 2])
        attrs.setdefault(name, body[i + 2:i + 2 + value_len])
        i += 2 + value_len
    return status, request_id, attrs


# ---- printer ----------------------------------------------------------------------------------------
def test_printer_banner_title_and_ledm(tmp_path):
    with running_device("printer", tmp_path) as dev:
        serial = dev.manifest_device["serial"]
        page = requests.get(f"http://{dev.ip}:{dev.port(80)}/", timeout=5)
        assert page.status_code == 200
        assert page.headers["Server"] == (
            f"HP HTTP Server; HP LaserJet Pro M404dn - W1A53A; Serial Number: {serial}; "
            "Built: Thu Jun 08, 2023 02:36:55PM {DOBFWNXXXN002.2306A.00}")
        assert f"<title>HP LaserJet Pro M404dn&nbsp;&nbsp;&nbsp;{dev.ip}</title>" in page.text
        ledm = requests.get(f"http://{dev.ip}:{dev.port(80)}/DevMgmt/ProductConfigDyn.xml", timeout=5)
        root = SafeET.fromstring(ledm.content)
        dd = {"dd": "http://www.hp.com/schemas/imaging/con/dictionaries/1.0/"}
        assert root.findtext(".//dd:SerialNumber", namespaces=dd) == serial
        assert root.findtext(".//dd:ProductNumber", namespaces=dd) == "W1A53A"


def test_printer_ipp_attributes_and_refused_jobs(tmp_path):
    with running_device("printer", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(631)}/ipp/print"
        headers = {"Content-Type": "application/ipp"}
        reply = requests.post(url, data=ipp_request(0x000B, 4242, f"ipp://{dev.ip}/ipp/print"), headers=headers,
                              timeout=5)
        assert reply.status_code == 200
        assert reply.headers["Content-Type"] == "application/ipp"
        assert reply.headers["Server"].startswith("HP HTTP Server; HP LaserJet Pro M404dn")
        status, request_id, attrs = ipp_parse(reply.content)
        assert (status, request_id) == (0x0000, 4242)
        assert attrs["printer-make-and-model"] == b"HP LaserJet Pro M404dn"
        assert attrs["printer-state"] == struct.pack(">i", 3)
        assert attrs["printer-firmware-string-version"] == b"002_2306A"
        job = requests.post(url, data=ipp_request(0x0002, 7, f"ipp://{dev.ip}/ipp/print") + b"%PDF-1.4",
                            headers=headers, timeout=5)
        assert ipp_parse(job.content)[:2] == (0x0401, 7)
        assert dev.control({"cmd": "printer"})["job_requests"] == 1
        assert requests.post(url, data=b"garbage", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 400


def test_printer_jetdirect_pjl_info_id_and_byte_count(tmp_path):
    with running_device("printer", tmp_path) as dev:
        query = b"\x1b%-12345X@PJL INFO ID\r\n\x1b%-12345X"
        with socket.create_connection((dev.ip, dev.port(9100)), timeout=5) as s:
            s.sendall(query)
            reply = s.recv(4096)
            s.sendall(b"not a PJL command\r\n")
            s.settimeout(0.5)
            with pytest.raises(TimeoutError):
                s.recv(4096)
        assert reply == b'@PJL INFO ID\r\n"HP LaserJet Pro M404dn"\r\n\x0c'
        assert dev.control({"cmd": "printer"})["jetdirect_bytes"] == len(query) + len(b"not a PJL command\r\n")


def test_printer_ssdp_and_mdns_records(tmp_path):
    with running_device("printer", tmp_path) as dev:
        answers = msearch(dev, "urn:schemas-upnp-org:device:Printer:1")
        assert len(answers) == 1
        description = fetch_location(dev, answers[0]["LOCATION"])
        device = SafeET.fromstring(description.content).find("u:device", UPNP)
        assert device is not None
        assert device.findtext("u:manufacturer", namespaces=UPNP) == "HP"
        assert device.findtext("u:modelName", namespaces=UPNP) == "HP LaserJet Pro M404dn"
        assert device.findtext("u:serialNumber", namespaces=UPNP) == dev.manifest_device["serial"]
        printer = office.Printer(dev.node)
        mac6 = dev.manifest_device["mac"].replace(":", "")[-6:].upper()
        infos = {i.type: i for i in mdns.service_infos(dev.node, printer.hostname, printer.mdns_services())}
        ipp = infos["_ipp._tcp.local."]
        assert ipp.name == f"HP LaserJet Pro M404dn [{mac6}]._ipp._tcp.local."
        assert ipp.server == f"HP{mac6}.local."
        assert ipp.port == 631
        assert ipp.properties[b"rp"] == b"ipp/print"
        assert ipp.properties[b"ty"] == b"HP LaserJet Pro M404dn"
        assert infos["_printer._tcp.local."].port == 0  # LPD off: name placeholder (Bonjour Printing)
        assert infos["_pdl-datastream._tcp.local."].port == 9100
        for info in infos.values():
            zeroconf.service_type_name(info.name)


# ---- NAS ----------------------------------------------------------------------------------------------
def test_nas_login_page_webapi_and_tls(tmp_path):
    with running_device("nas", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(5000)}"
        page = requests.get(f"{base}/", timeout=5)
        assert page.headers["Server"] == "nginx"
        assert "<title>DS220plus&nbsp;-&nbsp;Synology&nbsp;DiskStation</title>" in page.text
        info = requests.get(f"{base}/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=all",
                            timeout=5).json()
        assert info["success"] is True
        assert info["data"]["SYNO.API.Auth"]["path"] == "entry.cgi"
        login = f"{base}/webapi/entry.cgi?api=SYNO.API.Auth&version=6&method=login&account=admin"
        assert requests.get(f"{login}&passwd=wrong", timeout=5).json() == {"error": {"code": 400}, "success": False}
        good = requests.get(f"{login}&passwd={dev.manifest_device['password']}", timeout=5).json()
        assert good["success"] is True and len(good["data"]["sid"]) == 32
        assert dev.control({"cmd": "nas"})["logins"] == 2
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((dev.ip, dev.port(5001)), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {dev.ip}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert b"Server: nginx" in data and b"Synology&nbsp;DiskStation" in data
        assert port_open(dev.ip, dev.port(445))
        assert not port_open(dev.ip, dev.port(80))


def test_nas_ssdp_description_and_mdns_txt(tmp_path):
    with running_device("nas", tmp_path) as dev:
        answers = msearch(dev, "ssdp:all")
        assert len(answers) == 3
        assert {a["SERVER"] for a in answers} == {f"Synology/DSM/{dev.ip}"}
        location = answers[0]["LOCATION"]
        assert location == f"http://{dev.ip}:5000/ssdp/desc-DSM-eth0.xml"
        device = SafeET.fromstring(fetch_location(dev, location).content).find("u:device", UPNP)
        assert device is not None
        mac = dev.manifest_device["mac"].replace(":", "")
        assert device.findtext("u:manufacturer", namespaces=UPNP) == "Synology"
        assert device.findtext("u:modelName", namespaces=UPNP) == "DS220+"
        assert device.findtext("u:UDN", namespaces=UPNP) == f"uuid:73796E6F-6473-6D00-0000-{mac}"
        nas = office.Nas(dev.node)
        infos = {i.type: i for i in mdns.service_infos(dev.node, nas.hostname, nas.mdns_services())}
        web = infos["_http._tcp.local."]
        assert web.name == "DS220plus._http._tcp.local."
        assert web.port == 5000
        assert web.properties[b"vendor"] == b"Synology"
        assert web.properties[b"model"] == b"DS220+"
        assert web.properties[b"version_build"] == b"69057"
        assert web.properties[b"mac_address"] == dev.manifest_device["mac"].encode()
        assert infos["_smb._tcp.local."].port == 445


# ---- staff PC -------------------------------------------------------------------------------------------
def test_staff_pc_listens_on_smb_and_rpc_only(tmp_path):
    with running_device("staff-pc", tmp_path) as dev:
        assert port_open(dev.ip, dev.port(445))
        assert port_open(dev.ip, dev.port(135))
        assert not port_open(dev.ip, dev.port(80))
        assert not port_open(dev.ip, dev.port(3389))


def test_staff_pc_browses_over_https_and_mails_one_large_document(tmp_path):
    browsing = ("www.baidu.com", "mail.qq.com", "www.taobao.com")
    with running_with_clouds("staff-pc", tmp_path) as lab:
        # The periodic browse fires within ~1.5 s of start: pages come back and are counted.
        assert lab.wait_for(lambda: sum(lab.stats(h).get("requests", 0) for h in browsing) >= 1)
        counters = lab.device.node.counters
        assert lab.wait_for(lambda: counters.get("pages_browsed", 0) >= 1)
        pages = counters["pages_browsed"]
        assert 30_000 * pages <= counters["page_bytes"] <= 300_000 * pages
        visited = [h for h in browsing if lab.stats(h).get("requests")]
        assert visited and all(lab.stats(h)["snis"] == [h] for h in visited)
        assert all(lab.stats(h)["pictures"] == 0 for h in visited)
        before = lab.stats("mail.qq.com")
        status = lab.device.call(office.StaffPc(lab.device.node).upload_once(), timeout=20)
        assert status == 200
        after = lab.stats("mail.qq.com")
        uploaded = after["bytes_in"] - before.get("bytes_in", 0)
        assert 1_400_000 <= uploaded <= 1_600_000
        assert after["pictures"] == 0
        assert "/cgi-bin/uploadfile" in after["paths"]
        assert counters["documents_uploaded"] == 1


# ---- POS ---------------------------------------------------------------------------------------------------
def test_pos_listens_nowhere_and_posts_small_payment_status(tmp_path):
    with running_with_clouds("pos", tmp_path) as lab:
        for port in (80, 443, 445, 8080, 9100):
            assert not port_open(lab.device.ip, lab.device.port(port))
        assert lab.wait_for(lambda: lab.stats("openapi.alipay.com").get("requests", 0) >= 1)
        stats = lab.stats("openapi.alipay.com")
        per_request = stats["bytes_in"] / stats["requests"]
        assert 450 <= per_request <= 600
        assert stats["paths"] == ["/gateway.do"]
        assert stats["snis"] == ["openapi.alipay.com"]
        assert stats["pictures"] == 0
