"""Dahua DHIP (protocols.md §2.1): the 32-byte header + DHDiscover.search we send, the
client.notifyDevInfo we read (JSON followed by NUL/newline), hostile bytes, and a unicast search
to a lab Dahua camera."""

from __future__ import annotations

import asyncio
import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import dhip
from tests.discovery.helpers import assert_well_behaved, lab_context, mutations
from tests.lab.harness import running_device

REPLY_BODY = (
    b'{"mac":"3c:ef:8c:41:6c:ce",'  # the sender's MAC, top level
    b'"method":"client.notifyDevInfo",'
    b'"params":{"deviceInfo":{'
    b'"DeviceClass":"IPC",'  # IPC | NVR | VTO | VTH
    b'"DeviceType":"IPC-HDW5421S",'  # the model (OEMs put theirs)
    b'"HttpPort":80,'
    b'"Port":37777,'  # SDK port (Lorex: 35000)
    b'"IPv4Address":{"DhcpEnable":false,"IPAddress":"192.168.1.108","SubnetMask":"255.255.255.0"},'
    b'"MachineName":"cam-entrance",'
    b'"SerialNo":"4M0123456789ABC",'
    b'"Vendor":"General",'  # General | Dahua | Lorex
    b'"Version":"2.800.0000016.0.R",'
    b'"Init":1}}}'
    b"\n\x00"  # real replies may end with newline and NUL (§2.1, §9)
)


def dhip_packet(body: bytes, declared: int | None = None) -> bytes:
    """The §2.1 framing, one field per line."""
    length = len(body) if declared is None else declared
    return (
        struct.pack("<I", 0x20)  # 0x00 u32 LE header length (32)
        + b"DHIP"  # 0x04 magic
        + b"\x00" * 8  # 0x08 reserved
        + struct.pack("<I", length)  # 0x10 u32 LE body length
        + struct.pack("<I", 0)  # 0x14 u32 0
        + struct.pack("<I", length)  # 0x18 u32 LE body length, repeated
        + struct.pack("<I", 0)  # 0x1C u32 0
        + body
    )


REPLY = dhip_packet(REPLY_BODY)


def test_probe_header_layout():
    """§2.1: u32 32, "DHIP", 8 zero bytes, u32 len, u32 0, u32 len, u32 0, then the JSON body."""
    probe = dhip.build_probe()
    body = probe[32:]
    assert probe[0:4] == struct.pack("<I", 32)
    assert probe[4:8] == b"DHIP"
    assert probe[8:16] == b"\x00" * 8
    assert struct.unpack_from("<IIII", probe, 16) == (len(body), 0, len(body), 0)
    assert json.loads(body) == {"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}
    assert body.endswith(b"\n")


def test_reply_normalised_fields():
    obs = dhip.parse_reply(REPLY, "192.168.1.108")
    assert obs is not None and obs.status == "success"
    assert (obs.source, obs.port, obs.transport) == ("dhip", 37810, "udp")
    assert obs.fields["model"] == "IPC-HDW5421S"
    assert obs.fields["serial"] == "4M0123456789ABC"
    assert obs.fields["mac"] == "3c:ef:8c:41:6c:ce"
    assert obs.fields["firmware"] == "2.800.0000016.0.R"
    assert obs.fields["device_class"] == "IPC"
    assert obs.fields["vendor_raw"] == "General"
    assert obs.fields["http_port"] == "80"


def test_raw_fields_flattened_with_dots():
    obs = dhip.parse_reply(REPLY, "192.168.1.108")
    assert obs is not None
    assert obs.fields["dhip.Port"] == "37777"
    assert obs.fields["dhip.MachineName"] == "cam-entrance"
    assert obs.fields["dhip.IPv4Address.IPAddress"] == "192.168.1.108"
    assert obs.fields["dhip.IPv4Address.DhcpEnable"] == "false"  # JSON false -> "false"
    assert obs.fields["dhip.Init"] == "1"


def test_trailing_nul_and_newline_do_not_matter():
    """§2.1/§9: "JSON followed by NUL/newline" -- with, without, or with junk after it."""
    bare = REPLY_BODY.rstrip(b"\n\x00")
    for body in (bare, bare + b"\x00", bare + b"\n", bare + b"\x00\x00\x00\xffjunk"):
        obs = dhip.parse_reply(dhip_packet(body), "192.168.1.108")
        assert obs is not None and obs.status == "success", body[-8:]
        assert obs.fields["serial"] == "4M0123456789ABC"


def test_declared_length_longer_than_the_datagram_uses_what_arrived():
    obs = dhip.parse_reply(dhip_packet(REPLY_BODY, declared=60000), "192.168.1.108")
    assert obs is not None and obs.status == "success"


def test_declared_length_shorter_than_the_body_is_a_protocol_error():
    obs = dhip.parse_reply(dhip_packet(REPLY_BODY, declared=20), "192.168.1.108")
    assert obs is not None and obs.status == "protocol-error"


def test_mac_falls_back_to_device_info():
    body = REPLY_BODY.replace(b'"mac":"3c:ef:8c:41:6c:ce",', b"")
    body = body.replace(b'"Init":1', b'"Init":1,"MAC":"3C-EF-8C-41-6C-CF"')
    obs = dhip.parse_reply(dhip_packet(body), "192.168.1.108")
    assert obs is not None and obs.fields["mac"] == "3c:ef:8c:41:6c:cf"


def test_a_search_request_is_not_a_reply():
    assert dhip.parse_reply(dhip.build_probe(), "192.168.1.108") is None


def test_no_header_is_a_protocol_error():
    obs = dhip.parse_reply(REPLY_BODY, "192.168.1.108")
    assert obs is not None and obs.status == "protocol-error" and obs.error == "no DHIP header"


def test_json_without_device_info_is_a_protocol_error():
    obs = dhip.parse_reply(dhip_packet(b'{"method":"client.notifyDevInfo","params":{}}'), "192.168.1.108")
    assert obs is not None and obs.status == "protocol-error"


def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error():
    obs = dhip.parse_reply(dhip_packet(b"[" * 60000), "192.168.1.108")
    assert obs is not None and obs.status == "protocol-error"
    deep = b'{"params":{"deviceInfo":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}}"
    obs = dhip.parse_reply(dhip_packet(deep), "192.168.1.108")
    assert obs is not None  # a success with a bounded summary of the list, or a protocol error


def test_empty_is_ignored():
    assert dhip.parse_reply(b"", "192.168.1.108") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_arbitrary_bytes(data):
    assert_well_behaved(dhip.parse_reply, data, "dhip")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_parse_never_raises_on_arbitrary_bodies_behind_a_valid_header(body):
    assert_well_behaved(dhip.parse_reply, dhip_packet(body), "dhip")


@settings(max_examples=300, deadline=None)
@given(mutations(REPLY))
def test_parse_never_raises_on_damaged_replies(data):
    assert_well_behaved(dhip.parse_reply, data, "dhip")


def test_unicast_search_finds_the_lab_dahua_camera(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        found = asyncio.run(dhip.discover(lab_context(dev), [dev.ip], multicast=False, timeout=2.0))
        assert len(found) == 1
        obs = found[0]
        assert obs.ip == dev.ip and obs.status == "success"
        assert obs.fields["mac"] == dev.manifest_device["mac"]
        assert obs.fields["serial"] == dev.manifest_device["serial"]
        assert obs.fields["model"] == "IPC-HFW2431S-S-S2"
        assert obs.fields["device_class"] == "IPC"
        assert dev.control({"cmd": "status"})["counters"]["dhip_probes"] == 1
