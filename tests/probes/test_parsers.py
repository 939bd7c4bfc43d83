"""Reply parsers on canned bytes (no sockets). Packets are built inline, one field per line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.probes import PROBE_NAMES, load_probe, normalise_mac
from scanner.probes.axis import parse_basic_device_info
from scanner.probes.dahua import parse_challenge_reply, redacted
from scanner.probes.http import (
    HttpResponse,
    Page,
    ProbeError,
    auth_fields,
    html_title,
    meta_refresh_url,
    parse_challenge,
    parse_head,
    parse_isapi_device_info,
    request_target,
    same_host_target,
    vendor_markers,
)
from scanner.probes.onvif import parse_capabilities, parse_date_time, parse_soap, service_path
from scanner.probes.rtsp import rtsp_fields
from scanner.probes.uniview import parse_lapi_envelope
from scanner.probes.upnp import parse_description, parse_location


def page(head: bytes, body: str = "", path: str = "/") -> Page:
    response = parse_head(head)
    response.body = body.encode()
    return Page(path, response, body)


# ---- HTTP head and auth ----------------------------------------------------------------------------
def test_parse_head_keeps_header_values_raw_and_names_as_sent():
    response = parse_head(
        b"HTTP/1.1 401 Unauthorized\r\n"
        b"CONTENT-LENGTH: 0\r\n"                                   # Dahua upper-case names (§2.3)
        b"WWW-Authenticate: Digest qop=\"auth\", realm=\"IP Camera(C2183)\", nonce=\"abc\", stale=\"FALSE\"\r\n"
        b"X-Folded: first\r\n"
        b"\tsecond\r\n"                                           # obsolete line folding
        b"no colon here\r\n"
        b"\r\n")
    assert (response.protocol, response.status_code, response.reason) == ("HTTP/1.1", 401, "Unauthorized")
    assert response.header("content-length") == "0"
    assert response.header("x-folded") == "first second"
    assert auth_fields(response) == {"auth_scheme": "Digest", "realm": "IP Camera(C2183)"}
    assert response.headers_text.startswith("CONTENT-LENGTH: 0\nWWW-Authenticate: Digest")


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 2000 OK", b"HTTP/1.1 OK", b"SIP/2.0 200 OK",
                                         b"HTTP/1.1 \xb2\xb2\xb2 x"])
def test_parse_head_rejects_bad_status_lines(status_line: bytes):
    with pytest.raises(ProbeError) as info:
        parse_head(status_line + b"\r\n\r\n")
    assert info.value.status == "protocol-error"


def test_old_hikvision_dvr_sends_two_challenges():
    response = parse_head(
        b"RTSP/1.0 401 Unauthorized\r\n"
        b"WWW-Authenticate: Digest realm=\"Hikvision\", nonce=\"1\"\r\n"   # §1.8 older DVR
        b"WWW-Authenticate: Basic realm=\"/\"\r\n"
        b"\r\n", "RTSP")
    assert auth_fields(response) == {"auth_scheme": "Digest", "realm": "Hikvision", "auth_schemes": "Digest, Basic"}


def test_parse_challenge_handles_commas_and_escapes_in_quotes():
    assert parse_challenge('Digest realm="a, \\"b\\"", nonce=x') == ("Digest", {"realm": 'a, "b"', "nonce": "x"})
    assert parse_challenge('realm="bare"') == ("", {"realm": "bare"})
    assert parse_challenge("") == ("", {})


# ---- HTML -------------------------------------------------------------------------------------------
def test_title_and_meta_refresh():
    hik_index = '<html><head><meta http-equiv="Refresh" content="0;url=/doc/page/login.asp?_1617000000000"/></head>'
    assert meta_refresh_url(hik_index) == "/doc/page/login.asp?_1617000000000"
    axis_index = "<meta content='0; URL=/camera/index.html' http-equiv=refresh>"
    assert meta_refresh_url(axis_index) == "/camera/index.html"
    assert meta_refresh_url('<meta http-equiv="Content-Type" content="text/html">') is None
    assert html_title("<TITLE>\n HP LaserJet&nbsp;&nbsp;M404 </TITLE>") == "HP LaserJet M404"
    assert html_title("<title></title>") == ""
    assert html_title("no title") is None


def test_same_host_target_only_follows_the_same_scheme_address_and_port():
    assert same_host_target("/doc/page/login.asp?x=1", "10.0.0.5", 80, False) == "/doc/page/login.asp?x=1"
    assert same_host_target("http://10.0.0.5/index.asp", "10.0.0.5", 80, False) == "/index.asp"
    assert same_host_target("http://10.0.0.5:80/a", "10.0.0.5", 80, False) == "/a"
    assert same_host_target("index.html", "10.0.0.5", 80, False) == "/index.html"
    assert same_host_target("https://10.0.0.5/a", "10.0.0.5", 80, False) is None
    assert same_host_target("http://10.0.0.6/a", "10.0.0.5", 80, False) is None
    assert same_host_target("http://10.0.0.5:8080/a", "10.0.0.5", 80, False) is None
    assert same_host_target("http://[bad/a", "10.0.0.5", 80, False) is None
    assert request_target("/a b\r\nX: y#frag") == "/a%20b%0D%0AX:%20y"


# ---- follow-up choice -----------------------------------------------------------------------------
def test_vendor_markers():
    hik = page(b"HTTP/1.1 200 OK\r\nServer: App-webs/\r\n\r\n")
    assert vendor_markers([hik]) == ["hikvision"]
    dahua = page(b"HTTP/1.1 200 OK\r\n\r\n", "<title>WEB SERVICE</title><div class='ui-dialog-content'>")
    assert vendor_markers([dahua]) == ["dahua"]
    ulucu = page(b"HTTP/1.1 200 OK\r\nServer: Boa/0.94.14rc21\r\n\r\n", "<title>WEB SERVICE</title><form>")
    assert vendor_markers([ulucu]) == []  # the title alone is not Dahua
    axis = page(b"HTTP/1.1 200 OK\r\n\r\n", "<title>AXIS</title>")
    assert vendor_markers([axis]) == ["axis"]
    unv = page(b"HTTP/1.1 200 OK\r\n\r\n", "&copy; Zhejiang Uniview Technologies")
    assert vendor_markers([unv]) == ["uniview"]
    printer = page(b"HTTP/1.1 200 OK\r\nServer: HP HTTP Server; HP LaserJet\r\n\r\n", "<title>HP</title>")
    assert vendor_markers([printer]) == []
    assert vendor_markers([printer], {"vendor": "Hikvision"}) == ["hikvision"]
    everything = page(b"HTTP/1.1 401 x\r\nServer: DNVRS-Webs\r\nWWW-Authenticate: Basic realm=\"UNV\"\r\n\r\n",
                      "<title>AXIS</title> /RPC2_Login")
    assert vendor_markers([everything]) == ["hikvision", "dahua", "axis"]  # at most 3


# ---- vendor documents ---------------------------------------------------------------------------------
def test_isapi_device_info_either_namespace():
    doc = (b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
           b'<DeviceInfo version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\r\n'   # §1.2 NVR namespace
           b"<deviceName>nvr</deviceName>\r\n"
           b"<model>DS-7608NXI-I2/8P/S</model>\r\n"
           b"<serialNumber>DS-7608NXI0120200101AAWR</serialNumber>\r\n"
           b"<macAddress>a6:63:9e:f8:01:09</macAddress>\r\n"
           b"<firmwareVersion>V4.62.210</firmwareVersion>\r\n"
           b"<firmwareReleasedDate>build 220101</firmwareReleasedDate>\r\n"
           b"<deviceType>NVR</deviceType>\r\n"
           b"</DeviceInfo>\r\n")
    assert parse_isapi_device_info(doc) == {
        "model": "DS-7608NXI-I2/8P/S", "serial": "DS-7608NXI0120200101AAWR", "device_type": "NVR", "name": "nvr",
        "firmware": "V4.62.210 build 220101", "mac": "a6:63:9e:f8:01:09"}
    assert parse_isapi_device_info(b"<userCheck><statusValue>401</statusValue></userCheck>") == {}


def test_dahua_challenge_reply_with_trailing_nul():
    reply = (b'{"error":{"code":268632079,"message":"Component error: login challenge!"},"id":1,'   # §2.3
             b'"params":{"authorization":"a1b2","encryption":"Default","mac":"3CEF8C6101C0",'
             b'"random":"3734299","realm":"Login to AMC000N49SSV0M2U46"},"result":false,"session":1005027323}\n\x00')
    assert parse_challenge_reply(reply) == {"mac": "3c:ef:8c:61:01:c0", "realm": "Login to AMC000N49SSV0M2U46",
                                            "serial": "AMC000N49SSV0M2U46", "encryption": "Default",
                                            "rpc2.error_code": "268632079"}
    assert "3734299" not in redacted(reply) and "a1b2" not in redacted(reply)
    assert parse_challenge_reply(b'{"result":false,"params":null}') == {}
    assert parse_challenge_reply(b'[1,2]') == {}


def test_axis_properties_and_errors():
    fields, error = parse_basic_device_info(
        b'{"apiVersion":"1.3","data":{"propertyList":{"Brand":"AXIS","ProdNbr":"M1014","ProdShortName":"AXIS M1014",'
        b'"ProdType":"Network Camera","SerialNumber":"ACCC8E270AD8","Version":"5.50.1","HardwareID":7}}}')
    assert error is None
    assert fields == {"vendor": "AXIS", "model_number": "M1014", "firmware": "5.50.1", "serial": "ACCC8E270AD8",
                      "device_type": "Network Camera", "model": "AXIS M1014"}  # non-string HardwareID ignored
    fields, error = parse_basic_device_info(
        b'{"apiVersion":"1.0","error":{"code":2004,"message":"Method not supported"}}')
    assert fields == {"vapix.error_code": "2004"} and error == "VAPIX error: Method not supported"


def test_lapi_envelope():
    body = (b'{"Response":{"ResponseURL":"/LAPI/V1.0/System/DeviceInfo","ResponseCode":0,"ResponseString":"Succeed",'
            b'"StatusCode":0,"Data":{"DeviceName":"NVR302-16S2","DeviceModel":"NVR302-16S2",'      # §3 example
            b'"SerialNumber":"210235XAX93239000081","FirmwareVersion":"NVR-B3601.37.45.230825"}}}')
    assert parse_lapi_envelope(body) == {
        "lapi.response_code": "0", "lapi.response_string": "Succeed", "model": "NVR302-16S2", "name": "NVR302-16S2",
        "serial": "210235XAX93239000081", "firmware": "NVR-B3601.37.45.230825"}
    assert parse_lapi_envelope(b'{"Response":{"ResponseCode":1,"Data":null}}') == {"lapi.response_code": "1"}
    assert parse_lapi_envelope(b"<html>") == {}


def test_upnp_description_and_location():
    doc = (b'<?xml version="1.0"?>\r\n'
           b'<root xmlns="urn:schemas-upnp-org:device-1-0">\r\n'                  # §7 (Axis mock shape)
           b"<specVersion><major>1</major><minor>0</minor></specVersion>\r\n"
           b"<device>\r\n"
           b"<deviceType>urn:schemas-upnp-org:device:Basic:1</deviceType>\r\n"
           b"<friendlyName>AXIS M1014 - ACCC8E270AD8</friendlyName>\r\n"
           b"<manufacturer>AXIS</manufacturer>\r\n"
           b"<modelName>AXIS M1014</modelName>\r\n"
           b"<modelNumber>M1014</modelNumber>\r\n"
           b"<serialNumber>ACCC8E270AD8</serialNumber>\r\n"
           b"<UDN>uuid:Upnp-BasicDevice-1_0-ACCC8E270AD8</UDN>\r\n"
           b"<deviceList><device><manufacturer>not the root</manufacturer></device></deviceList>\r\n"
           b"</device>\r\n"
           b"</root>\r\n")
    assert parse_description(doc) == {
        "upnp.deviceType": "urn:schemas-upnp-org:device:Basic:1", "upnp.friendlyName": "AXIS M1014 - ACCC8E270AD8",
        "upnp.manufacturer": "AXIS", "upnp.modelName": "AXIS M1014", "upnp.modelNumber": "M1014",
        "upnp.serialNumber": "ACCC8E270AD8", "upnp.UDN": "uuid:Upnp-BasicDevice-1_0-ACCC8E270AD8"}
    assert parse_description(b"<html/>") == {}
    assert parse_location("http://10.0.0.5:49152/desc.xml?x=1", "10.0.0.5") == (49152, "/desc.xml?x=1", False)
    assert parse_location("http://10.0.0.6/desc.xml", "10.0.0.5") == \
        "LOCATION points at another host ('10.0.0.6'), not 10.0.0.5"


# ---- ONVIF -------------------------------------------------------------------------------------------------
ENV = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
       b'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
       b"<env:Body>%s</env:Body></env:Envelope>")


def soap_response(status: int, body: bytes) -> HttpResponse:
    response = parse_head(b"HTTP/1.1 %d X\r\n\r\n" % status)
    response.body = ENV % body
    return response


def test_onvif_clock_capabilities_and_faults():
    reply = parse_soap(soap_response(200, (
        b"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        b"<tt:DateTimeType>Manual</tt:DateTimeType>"
        b"<tt:UTCDateTime>"
        b"<tt:Time><tt:Hour>10</tt:Hour><tt:Minute>1</tt:Minute><tt:Second>2</tt:Second></tt:Time>"
        b"<tt:Date><tt:Year>2020</tt:Year><tt:Month>5</tt:Month><tt:Day>14</tt:Day></tt:Date>"
        b"</tt:UTCDateTime>"
        b"</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")))
    assert reply.body is not None and reply.fault is None and not reply.unauthorized
    when, source = parse_date_time(reply.body)
    assert when is not None and when.isoformat() == "2020-05-14T10:01:02+00:00" and source == "Manual"

    caps = parse_soap(soap_response(200, (
        b"<tds:GetCapabilitiesResponse><tds:Capabilities>"
        b"<tt:Device><tt:XAddr>http://10.0.0.5/onvif/device_service</tt:XAddr></tt:Device>"
        b"<tt:Media><tt:XAddr>http://10.0.0.5/onvif/media_service</tt:XAddr></tt:Media>"
        b"</tds:Capabilities></tds:GetCapabilitiesResponse>")))
    assert caps.body is not None
    assert parse_capabilities(caps.body) == {"capabilities": "Device Media", "analytics.supported": "false"}

    fault = parse_soap(soap_response(400, (
        b"<env:Fault><env:Code><env:Value>env:Sender</env:Value>"
        b"<env:Subcode><env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code>"   # §5.3 token-only device
        b"<env:Reason><env:Text>Sender not Authorized</env:Text></env:Reason></env:Fault>")))
    assert fault.unauthorized and fault.fault == "env:Sender ter:NotAuthorized: Sender not Authorized"

    bad_date = parse_soap(soap_response(200, b"<tt:UTCDateTime><tt:Date><tt:Year>2020</tt:Year><tt:Month>13</tt:Month>"
                                             b"<tt:Day>1</tt:Day></tt:Date><tt:Time><tt:Hour>0</tt:Hour>"
                                             b"<tt:Minute>0</tt:Minute><tt:Second>0</tt:Second></tt:Time>"
                                             b"</tt:UTCDateTime>"))
    assert bad_date.body is not None and parse_date_time(bad_date.body) == (None, None)


def test_onvif_service_path_from_xaddrs():
    hints = {"xaddrs": "http://10.0.0.9/onvif/device_service http://10.0.0.5:8899/onvif/dev "
                       "http://10.0.0.5/onvif/Device http://[fe80::1/x"}
    assert service_path(hints, "10.0.0.5", 80, False) == "/onvif/Device"
    assert service_path(hints, "10.0.0.5", 8899, False) == "/onvif/dev"
    assert service_path(hints, "10.0.0.5", 2020, False) == "/onvif/dev"  # same host, any port
    assert service_path(None, "10.0.0.5", 80, False) == "/onvif/device_service"


# ---- RTSP ---------------------------------------------------------------------------------------------------
def test_rtsp_fields_hikvision_shape():
    options = parse_head(
        b"RTSP/1.0 200 OK\r\n"
        b"CSeq: 1\r\n"
        b"Public: OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, SET_PARAMETER, GET_PARAMETER\r\n"  # §1.8
        b"Date:  Thu, May 14 2020 10:01:02 GMT\r\n"                                              # two spaces
        b"\r\n", "RTSP")
    describe = parse_head(
        b"RTSP/1.0 401 Unauthorized\r\n"
        b"CSeq: 2\r\n"
        b"WWW-Authenticate: Digest realm=\"IP Camera(C2875)\", nonce=\"n\", stale=\"FALSE\"\r\n"
        b"Date:  Thu, May 14 2020 10:01:02 GMT\r\n"
        b"\r\n", "RTSP")
    fields = rtsp_fields(options, describe)
    fields.pop("headers")
    assert fields == {
        "status_code": "401", "options_status_code": "200", "no_server": "true",
        "public": "OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, SET_PARAMETER, GET_PARAMETER",
        "auth_scheme": "Digest", "realm": "IP Camera(C2875)", "date": "  Thu, May 14 2020 10:01:02 GMT",
        "date_double_space": "true"}


# ---- package --------------------------------------------------------------------------------------------
def test_normalise_mac_and_probe_registry():
    assert normalise_mac("3CEF8C6101C0") == "3c:ef:8c:61:01:c0"
    assert normalise_mac("3c-ef-8c-61-01-c0") == "3c:ef:8c:61:01:c0"
    assert normalise_mac("3cef.8c61.01c0") == "3c:ef:8c:61:01:c0"
    assert normalise_mac("3CEF8C6101") is None and normalise_mac("zz:ef:8c:61:01:c0") is None
    for name in PROBE_NAMES:
        assert callable(load_probe(name))
    with pytest.raises(KeyError):
        load_probe("nmap")


# ---- parsers of untrusted bytes never raise (python-zeroconf / zgrab2 fuzzing style) -------------------------
SEEDS = st.sampled_from([b"{", b'{"params":{"mac":5,"realm":null}}', b'{"data":{"propertyList":[]}}',
                         b'{"Response":{"Data":{"MAC":{}}}}', b"<root><device>", b"<?xml version='1.0'?>"])
SEEDED = SEEDS.flatmap(lambda seed: st.binary(max_size=64).map(lambda tail: seed + tail))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode), SEEDED))
def test_reply_parsers_never_raise(data: bytes):
    parse_challenge_reply(data)
    redacted(data)
    parse_basic_device_info(data)
    parse_lapi_envelope(data)
    parse_description(data)
    parse_isapi_device_info(data)
    text = data.decode("latin-1")
    html_title(text)
    meta_refresh_url(text)
    parse_challenge(text)
    same_host_target(text, "10.0.0.5", 80, False)
    parse_location(text, "10.0.0.5")
    service_path({"xaddrs": text}, "10.0.0.5", 80, False)
    try:
        response = parse_head(b"HTTP/1.1 200 OK\r\n" + data + b"\r\n\r\n")
    except ProbeError:
        return
    auth_fields(response)
    response.body = data
    response.text()
    reply = parse_soap(response)
    if reply.body is not None:
        parse_date_time(reply.body)
        parse_capabilities(reply.body)
