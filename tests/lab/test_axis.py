"""Axis emulation answers real clients the way protocols.md §4.3, §6 and §7 describe."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
import zeroconf
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from scanner.lab.devices import axis, mdns
from tests.lab.harness import NodeHandle, running_device

UPNP = {"u": "urn:schemas-upnp-org:device-1-0"}


def mac_hex(dev: NodeHandle) -> str:
    return str(dev.manifest_device["mac"]).replace(":", "").upper()


def msearch(dev: NodeHandle, st: str, *, mx: str | None = "1", wait: float = 2.5,
            before: list[bytes] | None = None) -> list[dict[str, str]]:
    """Send a unicast M-SEARCH (after any ``before`` datagrams) to the device; parsed answers."""
    lines = ["M-SEARCH * HTTP/1.1", "HOST: 239.255.255.250:1900", 'MAN: "ssdp:discover"', f"ST: {st}"]
    if mx is not None:
        lines.append(f"MX: {mx}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    answers: list[dict[str, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        for datagram in before or []:
            s.sendto(datagram, (dev.ip, dev.port(1900)))
        s.sendto(request, (dev.ip, dev.port(1900)))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except TimeoutError:
                break
            head = data.decode("latin-1").split("\r\n")
            headers = {"_status": head[0]}
            for line in head[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().upper()] = value.strip()
            answers.append(headers)
    return answers


def fetch_location(dev: NodeHandle, location: str) -> requests.Response:
    """GET a LOCATION URL, mapping its protocol port to the port the test node really bound."""
    url = urlsplit(location)
    assert url.hostname == dev.ip
    return requests.get(f"http://{dev.ip}:{dev.port(url.port or 80)}{url.path}", timeout=5)


def test_basicdeviceinfo_unrestricted_properties_without_login(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(80)}/axis-cgi/basicdeviceinfo.cgi"
        reply = requests.post(url, json={"apiVersion": "1.0", "context": "camsweep",
                                         "method": "getAllUnrestrictedProperties"}, timeout=5)
        assert reply.status_code == 200
        assert "Server" not in reply.headers
        doc = reply.json()
        assert doc["context"] == "camsweep"
        props = doc["data"]["propertyList"]
        assert props["Brand"] == "AXIS"
        assert props["ProdShortName"] == "AXIS P3245-LV"
        assert props["ProdNbr"] == "P3245-LV"
        assert props["SerialNumber"] == mac_hex(dev)
        assert props["Version"] == "10.12.114"
        assert "Architecture" not in props  # only the unrestricted set
        restricted = requests.post(url, json={"apiVersion": "1.0", "method": "getAllProperties"}, timeout=5)
        assert restricted.status_code == 401
        bad = requests.post(url, data=b"{not json", timeout=5).json()
        assert bad["error"]["code"] == 4000


def test_param_cgi_needs_digest_and_refuses_writes(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}/axis-cgi/param.cgi"
        anon = requests.get(f"{base}?action=list&group=Properties", timeout=5)
        assert anon.status_code == 401
        assert f'realm="AXIS_{mac_hex(dev)}"' in anon.headers["WWW-Authenticate"]
        assert anon.headers["WWW-Authenticate"].startswith("Digest ")
        wrong = requests.get(f"{base}?action=list&group=Properties", auth=HTTPDigestAuth("root", "nope"), timeout=5)
        assert wrong.status_code == 401
        auth = HTTPDigestAuth("root", dev.manifest_device["password"])
        listed = requests.get(f"{base}?action=list&group=Properties", auth=auth, timeout=5)
        assert listed.status_code == 200
        lines = listed.text.splitlines()
        assert f"root.Properties.System.SerialNumber={mac_hex(dev)}" in lines
        assert "root.Properties.Firmware.Version=10.12.114" in lines
        assert all(line.startswith("root.Properties.") for line in lines)
        brand = requests.get(f"{base}?action=list&group=root.Brand.ProdShortName", auth=auth, timeout=5).text
        assert brand.strip() == "root.Brand.ProdShortName=AXIS P3245-LV"
        assert dev.control({"cmd": "auth"})["writes"] == 0
        update = requests.get(f"{base}?action=update&Network.UPnP.Enabled=no", auth=auth, timeout=5)
        assert "Permission denied" in update.text
        assert dev.control({"cmd": "auth"})["writes"] == 1


def test_web_root_title_is_axis(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        page = requests.get(f"http://{dev.ip}:{dev.port(80)}/", timeout=5)
        assert page.status_code == 200
        assert "<title>AXIS</title>" in page.text
        assert "Server" not in page.headers


def test_upnp_description_fields(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        reply = requests.get(f"http://{dev.ip}:{dev.port(80)}/description.xml", timeout=5)
        assert reply.status_code == 200
        device = SafeET.fromstring(reply.content).find("u:device", UPNP)
        assert device is not None
        mac = mac_hex(dev)
        assert device.findtext("u:manufacturer", namespaces=UPNP) == "AXIS"
        assert device.findtext("u:modelName", namespaces=UPNP) == "AXIS P3245-LV"
        assert device.findtext("u:modelNumber", namespaces=UPNP) == "P3245-LV"
        assert device.findtext("u:serialNumber", namespaces=UPNP) == mac
        assert device.findtext("u:friendlyName", namespaces=UPNP) == f"AXIS P3245-LV - {mac}"
        assert device.findtext("u:UDN", namespaces=UPNP) == f"uuid:Upnp-BasicDevice-1_0-{mac}"
        assert device.findtext("u:deviceType", namespaces=UPNP) == "urn:schemas-upnp-org:device:Basic:1"


def test_rtsp_realm_and_public_list(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}:554 RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode()
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/axis-media/media.amp RTSP/1.0\r\nCSeq: 2\r\n"
                      "Accept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode()
        assert options.startswith("RTSP/1.0 200 OK")
        assert "Public: DESCRIBE, GET_PARAMETER, PAUSE, PLAY, SETUP, SET_PARAMETER, TEARDOWN\r\n" in options
        assert describe.startswith("RTSP/1.0 401")
        assert f'realm="AXIS_WS_{mac_hex(dev)}"' in describe


def test_ssdp_unicast_msearch_location_fetches_description(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        answers = msearch(dev, "upnp:rootdevice")
        assert len(answers) == 1
        answer = answers[0]
        mac = mac_hex(dev)
        assert answer["_status"] == "HTTP/1.1 200 OK"
        assert answer["ST"] == "upnp:rootdevice"
        assert answer["USN"] == f"uuid:Upnp-BasicDevice-1_0-{mac}::upnp:rootdevice"
        assert answer["SERVER"] == "Linux/4.14.173-axis8, UPnP/1.0, Portable SDK for UPnP devices/1.6.22"
        assert answer["CACHE-CONTROL"] == "max-age=1800"
        assert "EXT" in answer
        assert answer["LOCATION"] == f"http://{dev.ip}:80/description.xml"
        description = fetch_location(dev, answer["LOCATION"])
        assert f"<serialNumber>{mac}</serialNumber>" in description.text
        everything = msearch(dev, "ssdp:all")
        assert sorted(a["ST"] for a in everything) == sorted(
            ["upnp:rootdevice", f"uuid:Upnp-BasicDevice-1_0-{mac}", "urn:schemas-upnp-org:device:Basic:1"])


def test_ssdp_ignores_garbage_and_foreign_targets_and_keeps_answering(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    with running_device("axis-cam", tmp_path) as dev:
        garbage = [
            b"\x00\xff\xfe" * 100,
            b"M-SEARCH * HTTP/1.1\r\n",  # no MAN, no ST
            b'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\nST: ssdp:all\r\nMX: abc\r\n\r\n',  # bad MX
            b'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\nST: ssdp:all\r\nMX: \xb2\r\n\r\n',  # latin-1 "2"
            b'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\nST: ssdp:all\r\nMX: -1\r\n\r\n',
            b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\n" + b"X" * 60000,
            "M-SEARCH * HTTP/1.1\r\nST: \u00e9\u00e9\r\n\r\n".encode(),
        ]
        assert msearch(dev, "urn:schemas-upnp-org:device:MediaServer:1", wait=1.5, before=garbage) == []
        answers = msearch(dev, "urn:schemas-upnp-org:device:Basic:1", mx=None)
        assert [a["ST"] for a in answers] == ["urn:schemas-upnp-org:device:Basic:1"]
        assert dev.node.counters["ssdp_searches"] == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # no handler crashed


def test_ws_discovery_probe_scopes(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        probe = (
            '<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
            'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header>'
            f"<w:MessageID>uuid:{uuid.uuid4()}</w:MessageID>"
            "<w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
            "<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>"
            "<e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>"
        ).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            s.sendto(probe, (dev.ip, dev.port(3702)))
            reply, _ = s.recvfrom(65535)
        scopes_el = SafeET.fromstring(reply).find(".//{http://schemas.xmlsoap.org/ws/2005/04/discovery}Scopes")
        assert scopes_el is not None
        scopes = (scopes_el.text or "").split()
        assert "onvif://www.onvif.org/name/AXIS" in scopes
        assert "onvif://www.onvif.org/hardware/P3245-LV" in scopes


def test_onvif_device_information_with_digest(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        soap = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
                '<s:Body><GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body>'
                "</s:Envelope>")
        url = f"http://{dev.ip}:{dev.port(80)}/onvif/device_service"
        headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
        assert requests.post(url, data=soap, headers=headers, timeout=5).status_code == 401
        auth = HTTPDigestAuth("root", dev.manifest_device["password"])
        reply = requests.post(url, data=soap, headers=headers, auth=auth, timeout=5)
        assert reply.status_code == 200
        ns = {"tds": "http://www.onvif.org/ver10/device/wsdl"}
        root = SafeET.fromstring(reply.content)
        assert root.findtext(".//tds:Manufacturer", namespaces=ns) == "AXIS"
        assert root.findtext(".//tds:Model", namespaces=ns) == "P3245-LV"
        assert root.findtext(".//tds:SerialNumber", namespaces=ns) == mac_hex(dev)


def test_mdns_registration_records(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        camera = axis.Axis(dev.node)
        mac = mac_hex(dev)
        infos = {info.type: info for info in mdns.service_infos(dev.node, camera.mdns_hostname,
                                                                 camera.mdns_services())}
        video = infos["_axis-video._tcp.local."]
        assert video.name == f"AXIS P3245-LV - {mac}._axis-video._tcp.local."
        assert video.server == f"axis-{mac.lower()}.local."
        assert video.port == 80
        assert video.properties[b"macaddress"] == mac.encode()
        assert video.parsed_addresses() == [dev.ip]
        for info in infos.values():
            zeroconf.service_type_name(info.name)  # raises on a malformed DNS-SD name
        # Loopback mode never touches multicast: nothing is registered.
        before = len(mdns.ADVERTISERS)
        assert mdns.advertise(dev.node, camera.mdns_hostname, camera.mdns_services()) is None
        assert len(mdns.ADVERTISERS) == before
        assert "mdns_services" not in dev.node.counters


@pytest.mark.parametrize("method", ["getAllUnrestrictedProperties", "getSupportedVersions"])
def test_basicdeviceinfo_echoes_method(tmp_path, method):
    with running_device("axis-cam", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(80)}/axis-cgi/basicdeviceinfo.cgi"
        doc = requests.post(url, json={"apiVersion": "1.0", "method": method}, timeout=5).json()
        assert doc["method"] == method
        assert "error" not in doc
