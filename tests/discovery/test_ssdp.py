"""SSDP (protocols.md §7): the M-SEARCH we send (MX 2 for multicast, no MX for unicast), the
HTTP-over-UDP answers and NOTIFYs we read, hostile bytes, and a unicast search to the lab Axis camera."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import ssdp
from tests.discovery.helpers import assert_well_behaved, lab_context, mutations
from tests.lab.harness import running_device

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"  # an M-SEARCH answer
    b"CACHE-CONTROL: max-age=1800\r\n"
    b"DATE: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"EXT:\r\n"  # empty, required by UPnP 1.0
    b"Location: http://192.168.1.90:80/description.xml\r\n"  # mixed case: header names are case-insensitive
    b"SERVER: Linux/4.14.173-axis8, UPnP/1.0, Portable SDK for UPnP devices/1.6.22\r\n"
    b"ST: upnp:rootdevice\r\n"
    b"usn: uuid:Upnp-BasicDevice-1_0-ACCC8E270AD8::upnp:rootdevice\r\n"
    b"\r\n"
)

NOTIFY = (
    b"NOTIFY * HTTP/1.1\r\n"  # an unsolicited announcement
    b"HOST: 239.255.255.250:1900\r\n"
    b"CACHE-CONTROL: max-age=1800\r\n"
    b"LOCATION: http://192.168.1.91:5000/description.xml\r\n"
    b"NT: urn:schemas-upnp-org:device:Basic:1\r\n"  # NT plays the part of ST
    b"NTS: ssdp:alive\r\n"
    b"SERVER: Synology/DSM/192.168.1.91\r\n"
    b"USN: uuid:73796E6F-6473-6D00-0000-001132aabbcc::urn:schemas-upnp-org:device:Basic:1\r\n"
    b"\r\n"
)


def _headers(message: bytes) -> tuple[str, dict[str, str]]:
    start, *lines = message.decode().split("\r\n")
    return start, {k.strip().upper(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


def test_multicast_search_carries_man_mx_and_st():
    """§7: ``M-SEARCH * HTTP/1.1``, Host 239.255.255.250:1900, Man "ssdp:discover", MX 2."""
    probe = ssdp.build_probe("upnp:rootdevice")
    start, headers = _headers(probe)
    assert start == "M-SEARCH * HTTP/1.1"
    assert headers == {"HOST": "239.255.255.250:1900", "MAN": '"ssdp:discover"', "MX": "2",
                       "ST": "upnp:rootdevice"}
    assert probe.endswith(b"\r\n\r\n")


def test_unicast_search_has_no_mx_and_names_the_host():
    """UPnP 1.1: a unicast M-SEARCH has no MX and is answered at once."""
    _, headers = _headers(ssdp.build_probe("ssdp:all", mx=None, host="192.168.1.90:1900"))
    assert "MX" not in headers
    assert headers["HOST"] == "192.168.1.90:1900"
    assert headers["ST"] == "ssdp:all"


def test_response_fields():
    obs = ssdp.parse_reply(RESPONSE, "192.168.1.90")
    assert obs is not None and obs.status == "success"
    assert (obs.source, obs.port, obs.transport) == ("ssdp", 1900, "udp")
    assert obs.fields["server"] == "Linux/4.14.173-axis8, UPnP/1.0, Portable SDK for UPnP devices/1.6.22"
    assert obs.fields["location"] == "http://192.168.1.90:80/description.xml"
    assert obs.fields["usn"] == "uuid:Upnp-BasicDevice-1_0-ACCC8E270AD8::upnp:rootdevice"
    assert obs.fields["st"] == "upnp:rootdevice"
    assert "EXT:" in obs.fields["headers"].split("\n")


def test_notify_is_read_with_nt_as_st():
    obs = ssdp.parse_reply(NOTIFY, "192.168.1.91")
    assert obs is not None and obs.status == "success"
    assert obs.fields["st"] == "urn:schemas-upnp-org:device:Basic:1"
    assert obs.fields["server"] == "Synology/DSM/192.168.1.91"


def test_lf_only_line_endings():
    obs = ssdp.parse_reply(RESPONSE.replace(b"\r\n", b"\n"), "192.168.1.90")
    assert obs is not None and obs.fields["location"] == "http://192.168.1.90:80/description.xml"


def test_a_search_request_is_not_a_reply():
    assert ssdp.parse_reply(ssdp.build_probe(), "192.168.1.90") is None


def test_error_status_is_a_protocol_error():
    obs = ssdp.parse_reply(b"HTTP/1.1 412 Precondition Failed\r\n\r\n", "192.168.1.90")
    assert obs is not None and obs.status == "protocol-error" and obs.error == "status 412"


def test_response_without_any_known_header_is_a_protocol_error():
    obs = ssdp.parse_reply(b"HTTP/1.1 200 OK\r\nX-Foo: bar\r\n\r\n", "192.168.1.90")
    assert obs is not None and obs.status == "protocol-error"


def test_not_ssdp_is_a_protocol_error():
    obs = ssdp.parse_reply(b"\x16\x03\x01\x00\x05hello", "192.168.1.90")
    assert obs is not None and obs.status == "protocol-error"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_arbitrary_bytes(data):
    assert_well_behaved(ssdp.parse_reply, data, "ssdp")


@settings(max_examples=300, deadline=None)
@given(mutations(RESPONSE))
def test_parse_never_raises_on_damaged_replies(data):
    assert_well_behaved(ssdp.parse_reply, data, "ssdp")


def test_unicast_search_finds_the_lab_axis_camera_with_every_st(tmp_path):
    """The lab answers ssdp:all with one datagram per target; the observation merges their STs."""
    with running_device("axis-cam", tmp_path) as dev:
        found = asyncio.run(ssdp.discover(lab_context(dev), [dev.ip], multicast=False, timeout=3.0))
        assert len(found) == 1
        obs = found[0]
        assert obs.ip == dev.ip and obs.status == "success"
        assert "axis" in obs.fields["server"]
        assert obs.fields["location"] == f"http://{dev.ip}:80/description.xml"
        mac_hex = dev.manifest_device["mac"].replace(":", "").upper()
        assert obs.fields["usn"].startswith(f"uuid:Upnp-BasicDevice-1_0-{mac_hex}")
        assert set(obs.fields["st"].split()) == {"upnp:rootdevice", f"uuid:Upnp-BasicDevice-1_0-{mac_hex}",
                                                 "urn:schemas-upnp-org:device:Basic:1"}
