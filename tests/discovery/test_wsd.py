"""ONVIF WS-Discovery (protocols.md §5.1): the SOAP 1.2 Probe we send (two types, each twice), the
ProbeMatches we read (scopes URL-decoded into name/hardware), hostile bytes, a ProbeMatch split over
two datagrams, and unicast probes to lab ONVIF cameras."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from defusedxml import ElementTree as SafeET
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import wsd
from scanner.net import NetContext, NetOptions
from tests.discovery.helpers import CountingLimiter, assert_well_behaved, lab_context, mutations
from tests.lab.harness import running_device

SOAP12 = "{http://www.w3.org/2003/05/soap-envelope}"
WSA = "{http://schemas.xmlsoap.org/ws/2004/08/addressing}"
WSD = "{http://schemas.xmlsoap.org/ws/2005/04/discovery}"

PROBE_MATCHES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    b' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    b' xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery"'
    b' xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
    b"<env:Header>"
    b"<wsa:MessageID>urn:uuid:5f1c2d3e-0000-4000-8000-00000000aaaa</wsa:MessageID>"
    b"<wsa:RelatesTo>uuid:0a0b0c0d-0000-4000-8000-000000000001</wsa:RelatesTo>"  # our probe's MessageID
    b"<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
    b"<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"
    b'<wsdd:AppSequence InstanceId="1" MessageNumber="7"/>'
    b"</env:Header>"
    b"<env:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>"
    b"<wsa:EndpointReference><wsa:Address>urn:uuid:8a1f2b3c-4d5e-11b2-8000-c056e370eb94</wsa:Address>"
    b"</wsa:EndpointReference>"
    b"<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>"
    b"<wsdd:Scopes>"
    b"onvif://www.onvif.org/type/video_encoder "
    b"onvif://www.onvif.org/Profile/Streaming "
    b"onvif://www.onvif.org/hardware/DS-2CD2386G2-IU "  # usually the model
    b"onvif://www.onvif.org/name/HIKVISION%20DS-2CD2386G2-IU "  # URL-encoded space
    b"onvif://www.onvif.org/location/city/hangzhou "
    b"onvif://www.onvif.org/MacAddress/c0-56-e3-70-eb-94 "
    b"onvif://www.onvif.org/SerialNumber/DS-2CD2386G2-IU20210628AACHJ06812415 "
    b"http://www.example.com/vendor/scope"  # another scheme: kept in scopes, not decoded
    b"</wsdd:Scopes>"
    b"<wsdd:XAddrs>http://192.168.1.64/onvif/device_service http://[fe80::1]/onvif/device_service</wsdd:XAddrs>"
    b"<wsdd:MetadataVersion>1</wsdd:MetadataVersion>"
    b"</wsdd:ProbeMatch></wsdd:ProbeMatches></env:Body></env:Envelope>"
)


def test_probe_is_a_soap12_ws_discovery_probe():
    """§5.1: SOAP 1.2 envelope, wsa:Action …/discovery/Probe, wsa:To the discovery URN, one d:Types."""
    root = SafeET.fromstring(wsd.build_probe("tds:Device", "uuid:0a0b0c0d-0000-4000-8000-000000000001"))
    assert root.tag == f"{SOAP12}Envelope"
    header = root.find(f"{SOAP12}Header")
    assert header.findtext(f"{WSA}Action") == "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
    assert header.findtext(f"{WSA}To") == "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
    assert header.findtext(f"{WSA}MessageID") == "uuid:0a0b0c0d-0000-4000-8000-000000000001"
    assert root.find(f"{SOAP12}Body/{WSD}Probe").findtext(f"{WSD}Types") == "tds:Device"


def test_default_probe_asks_for_network_video_transmitters_with_a_fresh_message_id():
    first, second = (SafeET.fromstring(wsd.build_probe()) for _ in range(2))
    assert first.find(f"{SOAP12}Body/{WSD}Probe").findtext(f"{WSD}Types") == "dn:NetworkVideoTransmitter"
    ids = {r.find(f"{SOAP12}Header").findtext(f"{WSA}MessageID") for r in (first, second)}
    assert len(ids) == 2


def test_probe_matches_fields():
    obs = wsd.parse_reply(PROBE_MATCHES, "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert (obs.source, obs.port, obs.transport) == ("wsd", 3702, "udp")
    assert obs.fields["endpoint"] == "urn:uuid:8a1f2b3c-4d5e-11b2-8000-c056e370eb94"
    assert obs.fields["types"] == "dn:NetworkVideoTransmitter tds:Device"
    assert obs.fields["xaddrs"] == "http://192.168.1.64/onvif/device_service http://[fe80::1]/onvif/device_service"
    scopes = obs.fields["scopes"].split(" ")
    assert len(scopes) == 8
    assert "onvif://www.onvif.org/name/HIKVISION%20DS-2CD2386G2-IU" in scopes  # kept as sent


def test_scopes_are_url_decoded_into_name_and_hardware():
    """§5.1: vendors put the maker in name/ and the model in hardware/; values are URL-encoded."""
    obs = wsd.parse_reply(PROBE_MATCHES, "192.168.1.64")
    assert obs is not None
    assert obs.fields["name"] == "HIKVISION DS-2CD2386G2-IU"
    assert obs.fields["hardware"] == "DS-2CD2386G2-IU"
    assert obs.fields["location"] == "city/hangzhou"
    assert obs.fields["mac"] == "c0:56:e3:70:eb:94"
    assert obs.fields["serial"] == "DS-2CD2386G2-IU20210628AACHJ06812415"


def test_decode_scopes_first_of_each_category_wins_and_other_schemes_are_ignored():
    fields = wsd.decode_scopes([
        "http://www.example.com/name/Other",
        "onvif://www.onvif.org/name/First",
        "onvif://www.onvif.org/name/Second",
        "ONVIF://WWW.ONVIF.ORG/Hardware/IPC%2DX",
        "onvif://www.onvif.org/MacAddress/not-a-mac",
    ])
    assert fields == {"name": "First", "hardware": "IPC-X"}


def test_hello_has_the_same_shape():
    hello = PROBE_MATCHES.replace(b"ProbeMatches</wsa:Action>", b"Hello</wsa:Action>")
    hello = hello.replace(b"<wsdd:ProbeMatches><wsdd:ProbeMatch>", b"<wsdd:Hello>")
    hello = hello.replace(b"</wsdd:ProbeMatch></wsdd:ProbeMatches>", b"</wsdd:Hello>")
    obs = wsd.parse_reply(hello, "192.168.1.64")
    assert obs is not None and obs.status == "success" and obs.fields["hardware"] == "DS-2CD2386G2-IU"


def test_another_clients_probe_is_not_a_reply():
    assert wsd.parse_reply(wsd.build_probe(), "192.168.1.64") is None


def test_soap_fault_is_an_answer_with_protocol_error():
    """§5.1: unsupported MatchBy in a unicast probe -> SOAP fault d:MatchingRuleNotSupported."""
    fault = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault>'
             b"<e:Code><e:Value>e:Sender</e:Value></e:Code>"
             b"<e:Reason><e:Text>d:MatchingRuleNotSupported</e:Text></e:Reason>"
             b"</e:Fault></e:Body></e:Envelope>")
    obs = wsd.parse_reply(fault, "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"
    assert obs.error == "SOAP fault: d:MatchingRuleNotSupported"


def test_half_a_probe_match_is_a_protocol_error():
    obs = wsd.parse_reply(PROBE_MATCHES[:700], "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


def test_xml_without_probe_match_is_a_protocol_error():
    obs = wsd.parse_reply(b"<html><body>hello</body></html>", "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_arbitrary_bytes(data):
    assert_well_behaved(wsd.parse_reply, data, "wsd")


@settings(max_examples=300, deadline=None)
@given(mutations(PROBE_MATCHES))
def test_parse_never_raises_on_damaged_replies(data):
    assert_well_behaved(wsd.parse_reply, data, "wsd")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=20))
def test_decode_scopes_never_raises(scopes):
    fields = wsd.decode_scopes(scopes)
    assert all(isinstance(v, str) and v for v in fields.values())


# ---- the collector, against a scripted responder on 127.0.0.1 -------------------------------------
class ScriptedResponder(asyncio.DatagramProtocol):
    """A fake ONVIF device: records probes and answers each with the datagrams ``answer`` returns."""

    def __init__(self, answer: Callable[[bytes], list[bytes]]) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received.append(data)
        for datagram in self.answer(data):
            self.transport.sendto(datagram, addr)


async def run_against(answer: Callable[[bytes], list[bytes]], *, timeout: float = 1.0):
    loop = asyncio.get_running_loop()
    responder = ScriptedResponder(answer)
    transport, _ = await loop.create_datagram_endpoint(lambda: responder, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        ctx = NetContext(NetOptions(source_ip="127.0.0.1", port_map={3702: port}))
        ctx.limiter = CountingLimiter(300.0)
        found = await wsd.discover(ctx, ["127.0.0.1"], multicast=False, timeout=timeout)
    finally:
        transport.close()
    return found, responder.received, ctx.limiter.acquired


def test_each_probe_type_goes_out_twice_to_a_silent_host_paced_by_the_limiter():
    """§5.1 + perf_style A.3: NVT and tds:Device probes, each repeated (SOAP-over-UDP), one
    limiter token per datagram; the repeat reuses the MessageID."""
    found, received, acquired = asyncio.run(run_against(lambda _d: []))
    assert found == []
    assert len(received) == 4 and acquired == 4
    types = sorted(SafeET.fromstring(d).find(f"{SOAP12}Body/{WSD}Probe").findtext(f"{WSD}Types") for d in received)
    assert types == ["dn:NetworkVideoTransmitter", "dn:NetworkVideoTransmitter", "tds:Device", "tds:Device"]
    assert len(set(received)) == 2  # the repeats are byte-identical (same MessageID)


def test_a_host_that_answered_gets_no_repeat_and_duplicates_collapse():
    found, received, _ = asyncio.run(run_against(lambda _d: [PROBE_MATCHES, PROBE_MATCHES]))
    assert len(received) == 2  # one per type; no repeat round for a host that answered
    assert len(found) == 1 and found[0].fields["hardware"] == "DS-2CD2386G2-IU"


def test_a_probe_match_split_over_two_datagrams_is_reassembled():
    """§5.1 (Axis M1034-W report): a large ProbeMatches may arrive in two datagrams."""
    half = len(PROBE_MATCHES) // 2
    found, _, _ = asyncio.run(run_against(lambda _d: [PROBE_MATCHES[:half], PROBE_MATCHES[half:]]))
    assert len(found) == 1
    assert found[0].status == "success" and found[0].fields["name"] == "HIKVISION DS-2CD2386G2-IU"


def test_reassembly_is_not_confused_by_junk_before_the_pair():
    half = len(PROBE_MATCHES) // 3
    found, _, _ = asyncio.run(run_against(lambda _d: [b"<junk", PROBE_MATCHES[:half], PROBE_MATCHES[half:]]))
    assert [(o.status, o.fields.get("hardware")) for o in found] == [("success", "DS-2CD2386G2-IU")]


def test_garbage_alone_is_reported_as_protocol_error():
    found, _, _ = asyncio.run(run_against(lambda _d: [b"\x00\x01not soap"], timeout=0.6))
    assert [o.status for o in found] == ["protocol-error"]


# ---- the lab ----------------------------------------------------------------------------------
def test_unicast_probe_finds_the_lab_axis_camera(tmp_path):
    with running_device("axis-cam", tmp_path) as dev:
        found = asyncio.run(wsd.discover(lab_context(dev), [dev.ip], multicast=False, timeout=2.0))
        assert len(found) == 1
        obs = found[0]
        assert obs.ip == dev.ip and obs.status == "success"
        assert obs.fields["name"] == "AXIS"
        assert obs.fields["hardware"] == "P3245-LV"
        assert "tds:Device" in obs.fields["types"].split()
        assert obs.fields["xaddrs"].startswith(f"http://{dev.ip}")
        assert obs.fields["endpoint"].startswith("urn:uuid:")


def test_unicast_probe_finds_the_lab_hikvision_camera(tmp_path):
    with running_device("hik-cam", tmp_path) as dev:
        found = asyncio.run(wsd.discover(lab_context(dev), [dev.ip], multicast=False, timeout=2.0))
        assert [o.fields.get("hardware") for o in found] == ["DS-2CD2386G2-IU"]
