"""Hikvision SADP (protocols.md §1.1): the inquiry we send, the ProbeMatch we read, hostile bytes,
and a unicast inquiry to a lab Hikvision camera."""

from __future__ import annotations

import asyncio
import logging
import uuid

from defusedxml import ElementTree as SafeET
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import MAX_FIELDS, sadp
from tests.discovery.helpers import assert_well_behaved, lab_context, mutations
from tests.lab.harness import running_device

# A ProbeMatch the way real firmware sends it (§1.1): CRLF line endings, dash-separated MAC,
# no space before "build", and the "flase" typo in HCPlatformEnable.
PROBE_MATCH = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b"<ProbeMatch>\r\n"
    b"<Uuid>9A3F0C6E-27B4-4D1B-9E51-0C8A7F1E2D33</Uuid>\r\n"  # echo of the probe's UUID
    b"<Types>inquiry</Types>\r\n"  # echo of the probe's Types
    b"<DeviceType>142624</DeviceType>\r\n"  # numeric class code (meaning undocumented)
    b"<DeviceDescription>DS-2CD2386G2-IU</DeviceDescription>\r\n"  # the model string
    b"<DeviceSN>DS-2CD2386G2-IU20210628AACHJ06812415</DeviceSN>\r\n"  # model + date + batch + serial
    b"<CommandPort>8000</CommandPort>\r\n"  # SDK port
    b"<HttpPort>80</HttpPort>\r\n"
    b"<MAC>44-B2-95-C4-01-31</MAC>\r\n"  # dash-separated, upper case here
    b"<IPv4Address>192.168.1.64</IPv4Address>\r\n"
    b"<IPv4SubnetMask>255.255.255.0</IPv4SubnetMask>\r\n"
    b"<DHCP>false</DHCP>\r\n"
    b"<AnalogChannelNum>0</AnalogChannelNum>\r\n"
    b"<DigitalChannelNum>1</DigitalChannelNum>\r\n"
    b"<SoftwareVersion>V5.5.800build 210628</SoftwareVersion>\r\n"  # no space before "build"
    b"<DSPVersion>V7.3build 210601</DSPVersion>\r\n"
    b"<Activated>true</Activated>\r\n"
    b"<SupportHCPlatform>true</SupportHCPlatform>\r\n"  # Hik-Connect supported (UNCERTAIN meaning)
    b"<HCPlatformEnable>flase</HCPlatformEnable>\r\n"  # the real-firmware typo: false
    b"</ProbeMatch>\r\n"
)


def test_probe_is_an_inquiry_with_the_given_uuid():
    """§1.1: ``<Probe><Uuid>…</Uuid><Types>inquiry</Types></Probe>``, UTF-8 XML."""
    root = SafeET.fromstring(sadp.build_probe("0F2E3D4C-0000-4000-8000-000000000001"))
    assert root.tag == "Probe"
    assert root.findtext("Uuid") == "0F2E3D4C-0000-4000-8000-000000000001"
    assert root.findtext("Types") == "inquiry"


def test_probe_uuid_is_fresh_and_upper_case():
    first, second = (SafeET.fromstring(sadp.build_probe()).findtext("Uuid") for _ in range(2))
    assert first != second
    assert first == first.upper() and len(first) == 36


def test_probe_match_normalised_fields():
    """§1.1 table: DeviceDescription is the model, DeviceSN the serial, MAC dash-separated."""
    obs = sadp.parse_reply(PROBE_MATCH, "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert (obs.source, obs.port, obs.transport) == ("sadp", 37020, "udp")
    assert obs.fields["model"] == "DS-2CD2386G2-IU"
    assert obs.fields["serial"] == "DS-2CD2386G2-IU20210628AACHJ06812415"
    assert obs.fields["mac"] == "44:b2:95:c4:01:31"
    assert obs.fields["firmware_raw"] == "V5.5.800build 210628"
    assert obs.fields["firmware"] == "V5.5.800 build 210628"
    assert obs.fields["device_type_code"] == "142624"
    assert obs.fields["analog_channels"] == "0"
    assert obs.fields["digital_channels"] == "1"
    assert obs.fields["http_port"] == "80"
    assert obs.fields["command_port"] == "8000"
    assert obs.fields["activated"] == "true"


def test_raw_fields_are_kept_as_sent():
    """Every raw field is kept as ``sadp.<Field>``, untouched (the typo too: it is evidence)."""
    obs = sadp.parse_reply(PROBE_MATCH, "192.168.1.64")
    assert obs is not None
    assert obs.fields["sadp.MAC"] == "44-B2-95-C4-01-31"
    assert obs.fields["sadp.HCPlatformEnable"] == "flase"
    assert obs.fields["sadp.DSPVersion"] == "V7.3build 210601"
    assert obs.fields["sadp.IPv4Address"] == "192.168.1.64"
    assert "ProbeMatch" in obs.raw


def test_flase_typo_reads_as_false():
    """§1.1: the self-test sample literally contains ``flase``; parsers must be lenient."""
    obs = sadp.parse_reply(PROBE_MATCH, "192.168.1.64")
    assert obs is not None
    assert obs.fields["cloud.hik_connect_enabled"] == "false"
    assert obs.fields["cloud.hik_connect_supported"] == "true"


def test_boolean_spellings_are_lenient():
    reply = PROBE_MATCH.replace(b"<Activated>true</Activated>", b"<Activated> FALSE </Activated>")
    reply = reply.replace(b"<HCPlatformEnable>flase", b"<HCPlatformEnable>TRUE")
    obs = sadp.parse_reply(reply, "192.168.1.64")
    assert obs is not None
    assert obs.fields["activated"] == "false"
    assert obs.fields["cloud.hik_connect_enabled"] == "true"


def test_unknown_boolean_is_left_out_but_kept_raw():
    reply = PROBE_MATCH.replace(b"<Activated>true</Activated>", b"<Activated>maybe</Activated>")
    obs = sadp.parse_reply(reply, "192.168.1.64")
    assert obs is not None
    assert "activated" not in obs.fields
    assert obs.fields["sadp.Activated"] == "maybe"


def test_firmware_that_does_not_follow_the_pattern_is_kept():
    assert sadp.normalise_firmware("V1.0Build 200101") == "V1.0 build 200101"
    assert sadp.normalise_firmware("V4.30.085 build 200916") == "V4.30.085 build 200916"
    assert sadp.normalise_firmware("  custom-7  ") == "custom-7"


def test_colon_mac_and_lf_line_endings():
    reply = PROBE_MATCH.replace(b"\r\n", b"\n").replace(b"44-B2-95-C4-01-31", b"44:b2:95:c4:01:31")
    obs = sadp.parse_reply(reply, "192.168.1.64")
    assert obs is not None and obs.fields["mac"] == "44:b2:95:c4:01:31"


def test_invalid_mac_is_left_out():
    obs = sadp.parse_reply(PROBE_MATCH.replace(b"44-B2-95-C4-01-31", b"44-B2-95"), "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert "mac" not in obs.fields


def test_non_utf8_bytes_get_a_lenient_second_try():
    """OEM firmware may put GBK text in DeviceDescription while declaring UTF-8."""
    reply = PROBE_MATCH.replace(b"DS-2CD2386G2-IU</DeviceDescription>", b"\xc9\xe3\xcf\xf1\xbb\xfa</DeviceDescription>")
    obs = sadp.parse_reply(reply, "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert obs.fields["serial"] == "DS-2CD2386G2-IU20210628AACHJ06812415"


def test_our_own_probe_is_not_a_reply():
    assert sadp.parse_reply(sadp.build_probe(), "192.168.1.64") is None


def test_empty_datagram_is_ignored():
    assert sadp.parse_reply(b"", "192.168.1.64") is None
    assert sadp.parse_reply(b"\r\n\x00", "192.168.1.64") is None


def test_garbage_is_a_protocol_error_not_an_exception():
    obs = sadp.parse_reply(b"\xff\x00garbage<<<", "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"
    assert obs.fields == {} and obs.error and obs.error.startswith("not XML")


def test_other_xml_root_is_a_protocol_error():
    obs = sadp.parse_reply(b"<Envelope><Body/></Envelope>", "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"
    assert "Envelope" in (obs.error or "")


def test_probe_match_without_device_fields_is_a_protocol_error():
    obs = sadp.parse_reply(b"<ProbeMatch><Types>inquiry</Types></ProbeMatch>", "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


def test_entity_expansion_is_refused():
    """A billion-laughs document is refused by defusedxml, reported, and never expanded."""
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><ProbeMatch><MAC>&b;</MAC></ProbeMatch>')
    obs = sadp.parse_reply(bomb, "192.168.1.64")
    assert obs is not None and obs.status == "protocol-error"


def test_field_count_is_bounded():
    many = b"<ProbeMatch><MAC>44-b2-95-c4-01-31</MAC>" + b"".join(
        b"<F%d>x</F%d>" % (i, i) for i in range(5000)) + b"</ProbeMatch>"
    obs = sadp.parse_reply(many, "192.168.1.64")
    assert obs is not None and obs.status == "success"
    assert len([k for k in obs.fields if k.startswith("sadp.")]) <= MAX_FIELDS


def test_a_parse_error_is_logged_once(caplog):
    """python-zeroconf rule (perf_style B.6): the first occurrence of an error at debug, repeats silent."""
    caplog.set_level(logging.DEBUG, logger="scanner.discovery")
    never_seen = uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))  # no digits
    unique = f"<Unexpected{never_seen}/>".encode()
    sadp.parse_reply(unique, "192.168.1.64")
    sadp.parse_reply(unique, "192.168.1.64")
    logged = [r for r in caplog.records if "sadp reply from" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.DEBUG


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_arbitrary_bytes(data):
    assert_well_behaved(sadp.parse_reply, data, "sadp")


@settings(max_examples=300, deadline=None)
@given(mutations(PROBE_MATCH))
def test_parse_never_raises_on_damaged_replies(data):
    assert_well_behaved(sadp.parse_reply, data, "sadp")


def test_unicast_inquiry_finds_the_lab_hikvision_camera(tmp_path):
    """No multicast (it is often lost on store networks): a unicast inquiry to the live host."""
    with running_device("hik-cam", tmp_path) as dev:
        ctx = lab_context(dev)
        found = asyncio.run(sadp.discover(ctx, [dev.ip], multicast=False, timeout=2.0))
        assert len(found) == 1
        obs = found[0]
        assert obs.ip == dev.ip and obs.status == "success"
        assert obs.fields["mac"] == dev.manifest_device["mac"]
        assert obs.fields["serial"] == dev.manifest_device["serial"]
        assert obs.fields["model"] == "DS-2CD2386G2-IU"
        assert obs.fields["firmware"] == "V5.7.18 build 240826"
        assert obs.fields["cloud.hik_connect_enabled"] == "false"  # hik-cam has no Hik-Connect; sent as "flase"
        assert dev.control({"cmd": "status"})["counters"]["sadp_probes"] == 1
