"""The signatures identify every lab device from what it really sends (loopback, in-process nodes).

Each lab profile is started with the lab's own test harness; the test then asks it what a scan
would ask (HTTP pages and 401 challenges, RTSP OPTIONS/DESCRIBE, SADP/DHIP/XM/WS-Discovery
probes, RPC2_Login, VAPIX, UPnP descriptions; ISAPI/LAPI/ONVIF with the lab's credentials, as
a user-supplied login would), turns each answer into an Observation the way the probe modules
are meant to (field names from scanner/observations.py), and checks the matches against the
profile's ground truth:

* no signature claims a wrong vendor, model, serial or face capability (firmware claims are a
  prefix of the truth: DHIP carries the version without the build date);
* the most certain device_type / is_camera claim is right, and present for every device that
  answers anything but its OUI;
* the vendor is found wherever the manifest says it is observable, and nothing names a vendor
  for the devices that hide theirs (ULUCU's box, the unbranded sales-office box).

The mini probes below are test scaffolding, not the product's probes.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import uuid
from typing import Any

import netaddr
import pytest
import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from scanner.lab.profiles import PROFILE_BY_KEY, PROFILES
from scanner.observations import Observation
from scanner.signatures import Match, load_signatures
from tests.lab.harness import NodeHandle, running_device

SIGS = load_signatures()
TIMEOUT = 5.0
HTTP_PATHS = ("/", "/ISAPI/System/deviceInfo", "/cgi-bin/magicBox.cgi?action=getSystemInfo",
              "/LAPI/V1.0/System/DeviceInfo", "/axis-cgi/param.cgi?action=list")
REALM_RE = re.compile(r'realm="([^"]*)"', re.IGNORECASE)
TITLE_RE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
SOAP = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        "<s:Body>{}</s:Body></s:Envelope>")


# ---- mini probes ---------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def raw_exchange(ip: str, port: int, request: bytes) -> bytes:
    with socket.create_connection((ip, port), timeout=TIMEOUT) as s:
        s.sendall(request)
        chunks = []
        try:
            while data := s.recv(65536):
                chunks.append(data)
                if sum(map(len, chunks)) > 256 * 1024:
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def head_fields(text: str) -> dict[str, str]:
    """status_code, headers, server, realm, auth_scheme, public from an HTTP/RTSP response head."""
    head, _, _ = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    fields = {"headers": head + "\r\n"}
    parts = lines[0].split(" ")
    if len(parts) > 1:
        fields["status_code"] = parts[1]
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key == "server":
            fields["server"] = value.strip()
        elif key == "www-authenticate":
            found = REALM_RE.search(value)
            if found and "realm" not in fields:
                fields["realm"] = found.group(1)
                fields["auth_scheme"] = value.strip().split(" ")[0]
        elif key == "public":
            fields["public"] = value.strip()
    return fields


def http_observations(dev: NodeHandle, port: int, source: str = "http") -> list[Observation]:
    out = []
    for path in HTTP_PATHS:
        try:
            reply = raw_exchange(dev.ip, dev.port(port), f"GET {path} HTTP/1.1\r\nHost: {dev.ip}\r\n"
                                 "Connection: close\r\n\r\n".encode()).decode("utf-8", "replace")
        except OSError:
            return out
        fields = head_fields(reply)
        body = reply.partition("\r\n\r\n")[2][:8192]
        if body:
            fields["body"] = body
        title = TITLE_RE.search(body)
        if title:
            fields["title"] = title.group(1).strip()
        out.append(Observation(dev.ip, source, port=port, fields=fields, raw=reply[:2048]))
    return out


def rtsp_observation(dev: NodeHandle) -> Observation | None:
    try:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=TIMEOUT) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode("utf-8", "replace")
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode("utf-8", "replace")
    except OSError:
        return None
    fields = head_fields(describe)
    fields.update({k: v for k, v in head_fields(options).items() if k in ("public", "server")})
    return Observation(dev.ip, "rtsp", port=554, fields=fields, raw=describe[:2048])


def udp_ask(dev: NodeHandle, port: int, datagram: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        s.sendto(datagram, (dev.ip, dev.port(port)))
        try:
            return s.recvfrom(65535)[0]
        except TimeoutError:
            return None


def sadp_observation(dev: NodeHandle) -> Observation | None:
    probe = (f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{str(uuid.uuid4()).upper()}</Uuid>'
             "<Types>inquiry</Types></Probe>").encode()
    reply = udp_ask(dev, 37020, probe)
    if reply is None:
        return None
    root = SafeET.fromstring(reply)
    fields = {f"sadp.{child.tag}": (child.text or "").strip() for child in root}
    return Observation(dev.ip, "sadp", port=37020, transport="udp", fields=fields, raw=reply.decode()[:2048])


def dhip_observation(dev: NodeHandle) -> Observation | None:
    body = json.dumps({"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}).encode()
    packet = struct.pack("<I4s8xIIII", 32, b"DHIP", len(body), 0, len(body), 0) + body
    reply = udp_ask(dev, 37810, packet)
    if reply is None:
        return None
    doc = json.loads(reply[32:].rstrip(b"\x00\n"))
    info = doc["params"]["deviceInfo"]
    fields = {f"dhip.{k}": str(v) for k, v in info.items() if not isinstance(v, dict)}
    fields["mac"] = doc.get("mac", "")
    return Observation(dev.ip, "dhip", port=37810, transport="udp", fields=fields, raw=reply[32:].decode()[:2048])


def xm_observation(dev: NodeHandle) -> Observation | None:
    reply = udp_ask(dev, 34569, struct.pack("<BBHIIHHI", 0xFF, 0, 0, 0, 0, 0, 1530, 0))
    if reply is None:
        return None
    doc = json.loads(reply[20:].split(b"\x00", 1)[0])
    common = doc.get("NetWork.NetCommon", {})
    fields = {f"xm.{k}": str(v) for k, v in common.items()}
    return Observation(dev.ip, "xm", port=34569, transport="udp", fields=fields, raw=reply[20:].decode()[:2048])


def wsd_observation(dev: NodeHandle) -> Observation | None:
    probe = (
        '<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header>'
        f"<w:MessageID>uuid:{uuid.uuid4()}</w:MessageID><w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
        "<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>"
        "<e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>"
    ).encode()
    reply = udp_ask(dev, 3702, probe)
    if reply is None:
        return None
    root = SafeET.fromstring(reply)
    fields = {}
    for el in root.iter():
        if _local(el.tag) in ("Types", "Scopes", "XAddrs"):
            fields[_local(el.tag).lower()] = " ".join((el.text or "").split())
    return Observation(dev.ip, "wsd", port=3702, transport="udp", fields=fields, raw=reply.decode()[:2048])


def onvif_observations(dev: NodeHandle, port: int, password: str, user: str) -> list[Observation]:
    """GetDeviceInformation and the analytics names, with the user's credentials (HTTP digest)."""
    base = f"http://{dev.ip}:{dev.port(port)}/onvif"
    auth = HTTPDigestAuth(user, password)

    def call(service: str, body: str) -> Any:
        reply = requests.post(f"{base}/{service}", data=SOAP.format(body), auth=auth, timeout=TIMEOUT)
        return SafeET.fromstring(reply.content) if reply.status_code == 200 else None

    out = []
    info = call("device_service", '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>')
    if info is not None:
        names = {"Manufacturer": "manufacturer", "Model": "model", "FirmwareVersion": "firmware",
                 "SerialNumber": "serial", "HardwareId": "hardware_id"}
        fields = {names[_local(el.tag)]: (el.text or "").strip() for el in info.iter() if _local(el.tag) in names}
        out.append(Observation(dev.ip, "onvif", port=port, fields=fields))
    analytics: dict[str, str] = {}
    rules = call("analytics_service", '<GetSupportedRules xmlns="http://www.onvif.org/ver20/analytics/wsdl"/>')
    modules = call("analytics_service",
                   '<GetSupportedAnalyticsModules xmlns="http://www.onvif.org/ver20/analytics/wsdl"/>')
    events = call("event_service", '<GetEventProperties xmlns="http://www.onvif.org/ver10/events/wsdl"/>')
    for key, doc in (("rules", rules), ("modules", modules)):
        if doc is not None:
            analytics[f"analytics.{key}"] = " ".join(el.get("Name", "") for el in doc.iter() if el.get("Name"))
    if events is not None:
        analytics["analytics.topics"] = " ".join(_local(el.tag) for el in events.iter())
    if analytics:
        out.append(Observation(dev.ip, "onvif", port=port, fields=analytics))
    return out


def observations(key: str, dev: NodeHandle) -> list[Observation]:
    profile = PROFILE_BY_KEY[key]
    creds = dev.manifest_device
    out: list[Observation] = []
    mac = creds["mac"]
    out.append(Observation(dev.ip, "oui", fields={"mac": mac, "oui_org": netaddr.EUI(mac).oui.registration().org}))
    for service in profile.services:  # open ports as a TCP sweep would report them (the profile lists them)
        out.append(Observation(dev.ip, "tcp", port=int(service.split("/")[1]), status="success"))
    ports = {s.split("/")[0]: int(s.split("/")[1]) for s in profile.services}
    if "http" in ports:
        out += http_observations(dev, ports["http"])
    if "rtsp" in ports:
        found = rtsp_observation(dev)
        out += [found] if found else []
    multicast = set(profile.multicast)
    for name, probe in (("sadp", sadp_observation), ("dhip", dhip_observation), ("xm-34569", xm_observation),
                        ("ws-discovery", wsd_observation)):
        if name in multicast:
            found = probe(dev)
            assert found is not None, f"{key}: no {name} answer"
            out.append(found)
    auth = HTTPDigestAuth(creds["username"], creds["password"])
    vendor = profile.vendor
    if vendor == "Hikvision":
        reply = requests.get(f"http://{dev.ip}:{dev.port(80)}/ISAPI/System/deviceInfo", auth=auth, timeout=TIMEOUT)
        out.append(Observation(dev.ip, "http", port=80, fields={"status_code": str(reply.status_code)},
                               raw=reply.text[:2048]))
    if vendor == "Dahua":
        reply = requests.post(f"http://{dev.ip}:{dev.port(80)}/RPC2_Login", timeout=TIMEOUT, data=json.dumps(
            {"method": "global.login", "params": {"userName": "admin", "password": "", "clientType": "Web3.0"},
             "id": 1}))
        out.append(Observation(dev.ip, "dahua-rpc2", port=80, raw=reply.text[:2048]))
    if vendor == "Uniview":
        reply = requests.get(f"http://{dev.ip}:{dev.port(80)}/LAPI/V1.0/System/DeviceInfo", auth=auth,
                             timeout=TIMEOUT)
        out.append(Observation(dev.ip, "lapi", port=80, raw=reply.text[:2048]))
    if vendor == "Axis":
        reply = requests.post(f"http://{dev.ip}:{dev.port(80)}/axis-cgi/basicdeviceinfo.cgi", timeout=TIMEOUT,
                              json={"apiVersion": "1.0", "method": "getAllUnrestrictedProperties"})
        out.append(Observation(dev.ip, "vapix", port=80, raw=reply.text[:2048]))
    for path, port in (("/description.xml", 80), ("/ssdp/desc-DSM-eth0.xml", 5000)):
        if port in ports.values() and ("ssdp" in multicast):
            reply = requests.get(f"http://{dev.ip}:{dev.port(port)}{path}", timeout=TIMEOUT)
            if reply.status_code == 200:
                root = SafeET.fromstring(reply.content)
                device = next(el for el in root.iter() if _local(el.tag) == "device")
                fields = {f"upnp.{_local(el.tag)}": (el.text or "").strip() for el in device}
                out.append(Observation(dev.ip, "upnp", port=port, fields=fields))
    if "ws-discovery" in multicast and key != "xm-cam":  # XM's ONVIF takes UsernameToken only
        out += onvif_observations(dev, 80, creds["password"], creds["username"])
    return out


# ---- the check -----------------------------------------------------------------------------------
def best(matches: list[Match], claim: str) -> Any:
    ranked = sorted((m for m in matches if claim in m.claims), key=lambda m: -m.certainty)
    return ranked[0].claims[claim] if ranked else None


DEVICES = [p.key for p in PROFILES]
# ground truth is reachable without multicast only through unicast answers; all of these are unicast
FACE_KNOWN = {"hik-face": True, "hik-face-idle": True, "dahua-face": True, "salesbox": True, "hik-cam": False}
HIK_CONNECT = {"hik-face", "hik-face-idle", "hik-nvr"}


@pytest.mark.parametrize("key", DEVICES)
def test_lab_device_is_identified_by_the_signatures(key, tmp_path):
    profile = PROFILE_BY_KEY[key]
    with running_device(key, tmp_path) as dev:
        obs = observations(key, dev)
        matches = [m for o in obs for m in SIGS.match(o)]
        vendor = best(matches, "vendor")
        model = best(matches, "model")
        matches += SIGS.match_model(vendor, model) if vendor and model else []
        serial = dev.manifest_device["serial"]
    claims = [(m.signature_id, k, v) for m in matches for k, v in m.claims.items()]
    for sig_id, claim, value in claims:
        if claim == "vendor":
            assert value == profile.vendor, f"{sig_id} says vendor {value!r}"
        elif claim == "model":
            assert value == profile.model, f"{sig_id} says model {value!r}"
        elif claim == "serial":
            assert value == serial, f"{sig_id} says serial {value!r}"
        elif claim == "firmware":
            assert profile.firmware.startswith(value), f"{sig_id} says firmware {value!r}"
        elif claim == "face_capable":
            assert value is profile.face_capable, f"{sig_id} says face_capable {value!r}"
    observable = profile.scan_observable
    if observable.get("vendor", True):
        assert vendor == profile.vendor
    else:
        assert vendor is None
    if observable.get("model", True) and key not in ("tuya-cam", "pos", "staff-pc", "fragile-cam"):
        assert model == profile.model
    if key not in ("tuya-cam", "pos"):  # they show nothing but an OUI (and a silent port)
        assert best(matches, "device_type") == profile.device_type
        assert best(matches, "is_camera") is profile.is_camera
    if key in FACE_KNOWN:
        assert best(matches, "face_capable") is FACE_KNOWN[key]
    else:
        assert best(matches, "face_capable") is None
    assert (best(matches, "cloud_platform") == "Hik-Connect") is (key in HIK_CONNECT)
