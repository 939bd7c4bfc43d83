"""The netns lab as a store network: L2 with vendor MACs, multicast discovery, DNS and routing
to the fake internet, a mirror port that sees the uploads, clean teardown. Real clients (scapy
ARP, the wsdiscovery library, zeroconf, raw SADP/DHIP sockets) run in the inspector namespace."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netaddr import EUI

from scanner.lab import lab, topology
from tests.labfixtures import NETNS_LAB_ID, camsweep, in_inspector

pytestmark = pytest.mark.root

OUI_ORG = {
    "Hikvision": "Hikvision",
    "Dahua": "Dahua",
    "Uniview": "Uniview",
    "Axis": "Axis",
    "Tuya": "Tuya",
    "HP": "Hewlett Packard",
    "Synology": "Synology",
    "Dell": "Dell",
    "Intel": "Intel",
}


def test_every_device_has_a_vendor_mac_and_a_store_address(netns_lab):
    subnet = ipaddress.ip_network("198.51.100.0/24")
    internet = ipaddress.ip_network("203.0.113.0/24")
    assert len(netns_lab["devices"]) >= 16
    for device in netns_lab["devices"]:
        assert ipaddress.ip_address(device["ip"]) in subnet
        for cloud in device["clouds"]:
            assert ipaddress.ip_address(cloud["ip"]) in internet
        org = EUI(device["mac"]).oui.registration().org
        if device["vendor"] in OUI_ORG:
            assert OUI_ORG[device["vendor"]] in org, (device["name"], org)


ARP_SWEEP = r"""
import json, sys, logging
logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import ARP, Ether, srp, conf
conf.verb = 0
answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="198.51.100.0/24"), iface="eth0", timeout=2)
print(json.dumps({r[ARP].psrc: r[ARP].hwsrc for _, r in answered}))
"""


def test_arp_from_the_inspector_sees_every_device_mac(netns_lab):
    seen = in_inspector(NETNS_LAB_ID, ARP_SWEEP)
    for device in netns_lab["devices"]:
        assert seen.get(device["ip"]) == device["mac"], device["name"]
    assert seen.get("198.51.100.1")  # the gateway


WSD = r"""
import json, time
from wsdiscovery.discovery import ThreadedWSDiscovery
wsd = ThreadedWSDiscovery()
wsd.start()
try:
    services = wsd.searchServices(timeout=3)
    out = {}
    for s in services:
        for x in s.getXAddrs():
            out[x.split("/")[2].split(":")[0]] = [str(sc) for sc in s.getScopes()]
finally:
    wsd.stop()
print(json.dumps(out))
"""


def test_ws_discovery_multicast_finds_every_onvif_device_with_scopes(netns_lab):
    found = in_inspector(NETNS_LAB_ID, WSD)
    onvif = [d for d in netns_lab["devices"] if "ws-discovery" in d["discovery"]]
    assert len(onvif) >= 9
    for device in onvif:
        assert device["ip"] in found, device["name"]
        scopes = " ".join(found[device["ip"]])
        assert "onvif://www.onvif.org/hardware/" in scopes
    for device in netns_lab["devices"]:
        if "ws-discovery" not in device["discovery"]:
            assert device["ip"] not in found


SADP_AND_DHIP = r"""
import json, socket, struct, time, uuid
def collect(sock, seconds):
    out = []
    end = time.time() + seconds
    while time.time() < end:
        sock.settimeout(max(0.05, end - time.time()))
        try:
            data, addr = sock.recvfrom(65535)
        except OSError:
            continue
        out.append((addr[0], data))
    return out
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("198.51.100.250"))
s.bind(("198.51.100.250", 0))
probe = f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{uuid.uuid4()}</Uuid><Types>inquiry</Types></Probe>'
s.sendto(probe.encode(), ("239.255.255.250", 37020))
sadp = {ip: data.decode(errors="replace") for ip, data in collect(s, 1.5)}
body = b'{"method":"DHDiscover.search","params":{"mac":"","uni":1}}\n'
header = struct.pack("<I4s8sIIII", 0x20, b"DHIP", b"\0" * 8, len(body), 0, len(body), 0)
s.sendto(header + body, ("239.255.255.251", 37810))
dhip = {ip: data[32:].decode(errors="replace") for ip, data in collect(s, 1.5)}
print(json.dumps({"sadp": sadp, "dhip": dhip}))
"""


def test_vendor_multicast_discovery_sadp_and_dhip(netns_lab):
    replies = in_inspector(NETNS_LAB_ID, SADP_AND_DHIP)
    hik = {d["ip"]: d for d in netns_lab["devices"] if d["vendor"] == "Hikvision"}
    dahua = {d["ip"]: d for d in netns_lab["devices"] if d["vendor"] == "Dahua"}
    assert set(replies["sadp"]) == set(hik)
    for ip, xml in replies["sadp"].items():
        assert f"<DeviceDescription>{hik[ip]['model']}</DeviceDescription>" in xml
    assert set(replies["dhip"]) == set(dahua)
    for ip, body in replies["dhip"].items():
        assert dahua[ip]["model"] in body and dahua[ip]["serial"] in body


MDNS = r"""
import json, time
from zeroconf import Zeroconf, ServiceBrowser
zc = Zeroconf(interfaces=["198.51.100.250"])
found = {}
class L:
    def add_service(self, z, t, n):
        info = z.get_service_info(t, n, 2000)
        if info:
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            found[n] = {"addrs": info.parsed_addresses(), "props": props}
    def update_service(self, *a): pass
    def remove_service(self, *a): pass
ServiceBrowser(zc, "_axis-video._tcp.local.", L())
time.sleep(3)
zc.close()
print(json.dumps(found))
"""


def test_mdns_browse_finds_the_axis_camera(netns_lab):
    found = in_inspector(NETNS_LAB_ID, MDNS)
    axis = next(d for d in netns_lab["devices"] if d["vendor"] == "Axis")
    assert any(axis["ip"] in svc["addrs"] for svc in found.values())
    macs = {svc["props"].get("macaddress", "").lower() for svc in found.values()}
    assert axis["mac"].replace(":", "").lower() in macs


DNS_AND_ROUTE = r"""
import json, socket, sys
from dnslib import DNSRecord, RCODE
def ask(name, server):
    q = DNSRecord.question(name)
    reply = DNSRecord.parse(q.send(server, 53, timeout=3))
    return [str(r.rdata) for r in reply.rr], RCODE[reply.header.rcode]
known = ask(sys.argv[1], "198.51.100.1")
unknown = ask("no-such-host.example", "198.51.100.1")
s = socket.create_connection((known[0][0], int(sys.argv[2])), timeout=3)
s.close()
print(json.dumps({"known": known, "unknown": unknown}))
"""


def test_gateway_dns_names_the_clouds_and_routes_to_them(netns_lab):
    ulucu = next(c for c in netns_lab["clouds"] if c["host"] == "entry.device.serv.ulucu.com")
    result = in_inspector(NETNS_LAB_ID, DNS_AND_ROUTE, ulucu["host"], str(ulucu["port"]))
    assert result["known"] == [[ulucu["ip"]], "NOERROR"]
    assert result["unknown"] == [[], "NXDOMAIN"]


SNIFF = r"""
import sys, logging
logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import sniff, wrpcap
packets = sniff(iface="mirror0", timeout=float(sys.argv[2]))
wrpcap(sys.argv[1], packets)
print('{"packets": %d}' % len(packets))
"""


def test_mirror_port_sees_walkby_uploads_dns_and_sni(netns_lab, tmp_path):
    from scapy.all import DNS, DNSQR, IP, TCP, PcapReader, load_layer

    load_layer("tls")
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS
    from scapy.layers.tls.session import tlsSession

    pcap = tmp_path / "mirror.pcap"
    sniffer = subprocess.Popen(
        [sys.executable, "-m", "scanner", "lab", "exec", "--lab-id", str(NETNS_LAB_ID), "--", sys.executable, "-c",
         SNIFF, str(pcap), "9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        fired = lab.walkby(NETNS_LAB_ID)
        assert {"hik-face", "dahua-face", "ulucu-flow", "salesbox"} <= set(fired)
        out, errors = sniffer.communicate(timeout=30)
    finally:
        sniffer.kill()
    assert sniffer.returncode == 0, errors
    devices = {d["name"]: d for d in netns_lab["devices"]}
    snis: set[tuple[str, str]] = set()
    dns: set[tuple[str, str]] = set()
    http_heads: list[tuple[str, bytes]] = []
    with PcapReader(str(pcap)) as reader:
        packets = list(reader)
    for pkt in packets:
        if IP not in pkt:
            continue
        if pkt.haslayer(DNSQR) and pkt[DNS].qr == 0:
            dns.add((pkt[IP].src, pkt[DNSQR].qname.decode().rstrip(".")))
        payload = bytes(pkt[TCP].payload) if TCP in pkt else b""
        if pkt[IP].dst != pkt[IP].src and payload[:1] == b"\x16" and payload[5:6] == b"\x01":  # ClientHello
            record = TLS(payload, tls_session=tlsSession())
            hello = next((m for m in getattr(record, "msg", []) if isinstance(m, TLSClientHello)), None)
            for ext in (hello.ext or []) if hello is not None else []:
                for name in getattr(ext, "servernames", []) or []:
                    snis.add((pkt[IP].src, name.servername.decode()))
        if TCP in pkt and pkt[TCP].dport == 80 and payload:
            http_heads.append((pkt[IP].src, payload[:80]))
    hik, ulucu, box = devices["hik-face"], devices["ulucu-flow"], devices["salesbox"]
    assert (hik["ip"], "storeface-pic.oss-cn-hangzhou.aliyuncs.com") in snis
    assert (box["ip"], "snap.anchang-cloud.example") in snis
    assert (devices["dahua-face"]["ip"], "iai.tencentcloudapi.com") in snis
    assert (hik["ip"], "storeface-pic.oss-cn-hangzhou.aliyuncs.com") in dns
    assert any(src == ulucu["ip"] and head.startswith(b"PUT /") for src, head in http_heads)
    # The staff PC browses but is no camera: it must not appear among the picture uploaders.
    clouds = lab.node_command(NETNS_LAB_ID, "clouds", {"cmd": "clouds"})["clouds"]
    assert clouds["storeface-pic.oss-cn-hangzhou.aliyuncs.com"]["pictures"] >= 2
    assert clouds["v0.api.upyun.com"]["pictures"] >= 2
    assert clouds["snap.anchang-cloud.example"]["pictures"] >= 2
    assert clouds["iai.tencentcloudapi.com"]["pictures"] >= 2
    assert clouds.get("mail.qq.com", {}).get("pictures", 0) == 0


def test_xiongmai_resolves_through_the_outside_resolver(netns_lab):
    xm = lab.node_command(NETNS_LAB_ID, "xm-cam", {"cmd": "status"})
    assert xm["counters"].get("dns_queries", 0) >= 1
    gateway = lab.node_command(NETNS_LAB_ID, "gateway", {"cmd": "dns"})
    clouds = lab.node_command(NETNS_LAB_ID, "clouds", {"cmd": "clouds"})
    assert clouds["dns_queries"] >= 1  # only the XM camera asks the outside resolver
    assert gateway["queries"] >= 1


def test_status_shows_every_node_answering_and_nothing_hung(netns_lab):
    proc = camsweep("lab", "status", "--lab-id", str(NETNS_LAB_ID), "--json")
    import json

    info = json.loads(proc.stdout)
    assert info["up"] and info["mode"] == "netns"
    names = {n["name"] for n in info["nodes"]}
    assert {d["name"] for d in netns_lab["devices"]} | {"gateway", "clouds"} == names
    for node in info["nodes"]:
        assert node["answering"], node["name"]
        assert node["hung"] is None, node["name"]


def test_second_lab_does_not_collide_and_down_removes_only_it(netns_lab):
    other = NETNS_LAB_ID + 3
    lab.down(other)
    try:
        doc = lab.up(other, "netns", 8, visitor_interval=0)
        assert doc["lab_id"] == other
        assert all(d["namespace"].startswith(f"csw{other}-") for d in doc["devices"])
        assert lab.status(NETNS_LAB_ID)["up"] and lab.status(other)["up"]
    finally:
        lab.down(other)
    assert topology.list_namespaces(f"csw{other}-") == []
    assert lab.status(NETNS_LAB_ID)["up"]


def test_crashed_lab_is_detected_as_stale_and_cleaned(tmp_path):
    lab_id = NETNS_LAB_ID + 2
    lab.down(lab_id)
    try:
        lab.up(lab_id, "netns", 2, visitor_interval=0)
        state = lab.LabState.load(lab_id)
        assert state is not None
        for node in state.nodes.values():  # the lab "crashes": every process dies at once
            os.kill(node.pid, signal.SIGKILL)
        time.sleep(0.3)
        assert topology.list_namespaces(f"csw{lab_id}-")  # namespaces are left behind
        doc = lab.up(lab_id, "netns", 2, visitor_interval=0)
        assert doc["stale_lab_cleaned"] is True
        assert lab.status(lab_id)["up"]
    finally:
        lab.down(lab_id)
    assert topology.list_namespaces(f"csw{lab_id}-") == []
    assert not Path(lab.statedir(lab_id)).exists()
    assert lab._node_processes(lab.statedir(lab_id)) == []


def test_lab_up_twice_is_refused_with_one_line(netns_lab):
    proc = camsweep("lab", "up", "--lab-id", str(NETNS_LAB_ID), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "already up" in proc.stderr and "Traceback" not in proc.stderr


def test_lab_pcap_records_uploads_and_watched_video_from_the_mirror(netns_lab, tmp_path):
    from scapy.all import IP, UDP, PcapReader

    pcap = tmp_path / "lab.pcap"
    proc = camsweep("lab", "pcap", str(pcap), "--lab-id", str(NETNS_LAB_ID), "--seconds", "8",
                    "--walkby-every", "3", "--watch", "dahua-cam")
    assert "packets written" in proc.stdout
    devices = {d["name"]: d for d in netns_lab["devices"]}
    clouds = {c["host"]: c for c in netns_lab["clouds"]}
    upload_bytes = video_bytes = 0
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if IP not in pkt:
                continue
            if pkt[IP].src == devices["hik-face"]["ip"] and pkt[IP].dst == clouds[
                    "storeface-pic.oss-cn-hangzhou.aliyuncs.com"]["ip"]:
                upload_bytes += len(pkt)
            if UDP in pkt and pkt[IP].src == devices["dahua-cam"]["ip"] and pkt[UDP].dport == 8800:
                video_bytes += len(pkt)
    assert upload_bytes > 30_000  # at least one walk-by's pictures
    assert video_bytes > 200_000  # seconds of P2P video at about 1.2 Mbit/s
