"""Xiongmai 34569 discovery (protocols.md §4.3): the 20-byte ``<BBHIIHHI`` header with msg 1530
we send, the msg 1531 NetWork.NetCommon reply we read, hostile bytes, and a unicast search to a
lab XMEye camera."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import xm
from tests.discovery.helpers import assert_well_behaved, lab_context, mutations
from tests.lab.harness import running_device

REPLY_BODY = (
    b'{ "Name" : "NetWork.NetCommon", '
    b'"NetWork.NetCommon" : { '
    b'"HostIP" : "0x4001A8C0", '  # 192.168.1.64 as a little-endian u32 in hex
    b'"HostName" : "LocalHost", '
    b'"HttpPort" : 80, '
    b'"MAC" : "00:12:41:5d:0b:7e", '
    b'"SN" : "8f4a12c09b1e77d2", '
    b'"SSLPort" : 8443, '
    b'"TCPPort" : 34567, '  # the DVRIP control port
    b'"UDPPort" : 34568, '
    b'"UseHSDownLoad" : false }, '
    b'"Ret" : 100, "SessionID" : "0x00000000" }'
    b"\n\x00"  # every XM JSON body ends with newline + NUL
)


def xm_packet(body: bytes, *, msg_id: int = 1531, head: int = 0xFF, length: int | None = None) -> bytes:
    """The §4.3 header, one field per line, then the body."""
    return struct.pack(
        "<BBHIIHHI",
        head,  # head, 0xFF
        0,  # version
        0,  # reserved
        0,  # session id
        0,  # sequence number
        0,  # channel / packet flags
        msg_id,  # message id: 1531 = discovery reply
        len(body) if length is None else length,  # body length
    ) + body


REPLY = xm_packet(REPLY_BODY)


def test_probe_is_a_bare_1530_header():
    """§4.3: 20 bytes, head 0xFF, msg id 1530 at offset 14, body length 0."""
    probe = xm.build_probe()
    assert len(probe) == 20
    head, version, reserved, session, sequence, flags, msg_id, length = struct.unpack("<BBHIIHHI", probe)
    assert head == 0xFF
    assert (version, reserved, session, sequence, flags) == (0, 0, 0, 0, 0)
    assert msg_id == 1530
    assert length == 0


def test_reply_normalised_fields():
    obs = xm.parse_reply(REPLY, "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert (obs.source, obs.port, obs.transport) == ("xm", 34569, "udp")
    assert obs.fields["mac"] == "00:12:41:5d:0b:7e"
    assert obs.fields["serial"] == "8f4a12c09b1e77d2"
    assert obs.fields["hostname"] == "LocalHost"
    assert obs.fields["http_port"] == "80"
    assert obs.fields["tcp_port"] == "34567"


def test_raw_net_common_fields_are_kept():
    obs = xm.parse_reply(REPLY, "192.168.1.64")
    assert obs is not None
    assert obs.fields["xm.HostIP"] == "0x4001A8C0"
    assert obs.fields["xm.UDPPort"] == "34568"
    assert obs.fields["xm.UseHSDownLoad"] == "false"
    assert "Ret" not in " ".join(obs.fields)  # only NetCommon's keys are raw fields


def test_body_without_trailing_nul_and_with_junk_after_it():
    bare = REPLY_BODY.rstrip(b"\n\x00")
    for body in (bare, bare + b"\x00garbage\xff", b"  " + bare + b"\n"):
        obs = xm.parse_reply(xm_packet(body), "192.168.1.64")
        assert obs is not None and obs.status == "success"


def test_our_own_request_is_not_a_reply():
    assert xm.parse_reply(xm.build_probe(), "192.168.1.64") is None


def test_wrong_head_byte_is_a_protocol_error():
    obs = xm.parse_reply(xm_packet(REPLY_BODY, head=0xFE), "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


def test_short_datagram_is_a_protocol_error():
    obs = xm.parse_reply(b"\xff\x00\x00", "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


def test_reply_without_net_common_is_a_protocol_error():
    obs = xm.parse_reply(xm_packet(b'{"Ret": 102}\n\x00'), "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_arbitrary_bytes(data):
    assert_well_behaved(xm.parse_reply, data, "xm")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1))
def test_parse_never_raises_behind_a_valid_head(body, length, msg_id):
    assert_well_behaved(xm.parse_reply, xm_packet(body, msg_id=msg_id, length=length), "xm")


@settings(max_examples=300, deadline=None)
@given(mutations(REPLY))
def test_parse_never_raises_on_damaged_replies(data):
    assert_well_behaved(xm.parse_reply, data, "xm")


def test_unicast_search_finds_the_lab_xiongmai_camera(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        found = asyncio.run(xm.discover(lab_context(dev), [dev.ip], multicast=False, timeout=2.0))
        assert len(found) == 1
        obs = found[0]
        assert obs.ip == dev.ip and obs.status == "success"
        assert obs.fields["mac"] == dev.manifest_device["mac"]
        assert obs.fields["serial"] == dev.manifest_device["serial"]
        assert obs.fields["tcp_port"] == "34567"
        assert dev.control({"cmd": "status"})["counters"]["xm_discovery_probes"] == 1
