"""Parsers of device answers: canned documents (shapes from protocols.md), and hostile bytes never raise."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.audit import dahua, hikvision, onvif, uniview, xiongmai
from scanner.audit.parsing import as_bool, clean_host, parse_xml

HIK_NS = 'xmlns="http://www.isapi.org/ver20/XMLSchema"'  # the NVR-generation namespace (§1.2)


def test_hikvision_device_info_and_lock_answer():
    info = hikvision.parse_device_info(
        f'<?xml version="1.0" encoding="UTF-8"?>\r\n<DeviceInfo version="2.0" {HIK_NS}>\r\n'
        "<model>DS-2CD2386G2-IU</model>\r\n<serialNumber>DS-2CD2386G2-IU20240826AAWRJ00000000</serialNumber>\r\n"
        "<macAddress>a6:63:9e:f8:01:09</macAddress>\r\n<firmwareVersion>V5.7.18</firmwareVersion>\r\n"
        "<firmwareReleasedDate>build 240826</firmwareReleasedDate>\r\n</DeviceInfo>\r\n".encode())
    assert info == {"model": "DS-2CD2386G2-IU", "serial": "DS-2CD2386G2-IU20240826AAWRJ00000000",
                    "mac": "a6:63:9e:f8:01:09", "firmware": "V5.7.18 build 240826"}
    locked = hikvision.is_lock_answer(
        b"<userCheck><statusValue>401</statusValue><statusString>Unauthorized</statusString>"
        b"<lockStatus>lock</lockStatus><unlockTime>1799</unlockTime></userCheck>")
    assert locked == (True, " (unlocks in 1799 s)")
    assert hikvision.is_lock_answer(b"<userCheck><statusValue>401</statusValue></userCheck>") == (False, "")


def test_hikvision_face_flags_available_versus_absent():
    caps = (f"<DeviceCap {HIK_NS}><EventCap><isSupportFaceSnap>true</isSupportFaceSnap>"
            "<isSupportFaceLib>flase</isSupportFaceLib></EventCap>"  # the real typo reads as false
            "<VideoCap><isSupportCounting>true</isSupportCounting></VideoCap></DeviceCap>").encode()
    flags = hikvision.capability_flags(caps, None, b"not xml")
    assert flags == {"isSupportFaceSnap": True, "isSupportFaceLib": False, "isSupportCounting": True}
    assert hikvision.face_capability(flags) is True
    plain = b"<DeviceCap><EventCap><isSupportFaceSnap>false</isSupportFaceSnap></EventCap></DeviceCap>"
    assert hikvision.face_capability(hikvision.capability_flags(plain)) is False
    assert hikvision.face_capability(hikvision.capability_flags(b"<DeviceCap/>")) is None


def test_hikvision_fdlib_counts_libraries_and_not_support_is_none():
    doc = (b"<FDLibBaseCfgList><FDLibBaseCfg><id>1</id><FDID>1</FDID><faceLibType>blackFD</faceLibType></FDLibBaseCfg>"
           b"<FDLibBaseCfg><id>2</id><FDID>2</FDID><faceLibType>staticFD</faceLibType></FDLibBaseCfg></FDLibBaseCfgList>")
    assert hikvision.parse_fdlib(doc) == 2
    status = (b"<ResponseStatus><requestURL>/ISAPI/Intelligent/FDLib</requestURL><statusCode>4</statusCode>"
              b"<subStatusCode>notSupport</subStatusCode></ResponseStatus>")
    assert hikvision.parse_fdlib(status) is None
    assert hikvision.is_not_supported(status)


def test_hikvision_cloud_settings():
    ezviz = hikvision.parse_ezviz(
        b"<EZVIZ><enabled>true</enabled><registerStatus>true</registerStatus><bindStatus>bind</bindStatus>"
        b"<serverAddress><addressingFormatType>hostname</addressingFormatType>"
        b"<hostName>litedev.hik-connect.com</hostName></serverAddress><verificationCode>ABCDEF</verificationCode>"
        b"</EZVIZ>")
    assert ezviz is not None and ezviz.host == "litedev.hik-connect.com" and ezviz.what == "status"
    assert "ABCDEF" not in ezviz.detail  # the verification code is a secret
    assert hikvision.parse_ezviz(b"<EZVIZ><enabled>false</enabled></EZVIZ>") is None
    ehome = hikvision.parse_ehome(
        b"<Ehome><enabled>true</enabled><addressingFormatType>ipaddress</addressingFormatType>"
        b"<ipAddress>203.0.113.9</ipAddress><portNo>7660</portNo><key>SECRETKEY</key>"
        b"<registerStatus>true</registerStatus><protocolVersion>v5.0</protocolVersion></Ehome>")
    assert ehome is not None and (ehome.host, ehome.port, ehome.protocol) == ("203.0.113.9", 7660, "isup")
    assert "SECRETKEY" not in ehome.detail
    hosts = hikvision.parse_http_hosts(
        b"<HttpHostNotificationList><HttpHostNotification><id>1</id><url>/push?token=SECRETTOKEN</url>"
        b"<protocolType>HTTPS</protocolType><parameterFormatType>JSON</parameterFormatType>"
        b"<addressingFormatType>hostname</addressingFormatType><hostName>faces.example.com</hostName>"
        b"<portNo>8443</portNo><userName>pushuser</userName></HttpHostNotification>"
        b"<HttpHostNotification><id>2</id><addressingFormatType>ipaddress</addressingFormatType>"
        b"<ipAddress>0.0.0.0</ipAddress><portNo>80</portNo></HttpHostNotification></HttpHostNotificationList>")
    assert [(h.host, h.port, h.protocol, h.what) for h in hosts] == [("faces.example.com", 8443, "https", "pictures")]
    assert "SECRETTOKEN" not in hosts[0].detail and "pushuser" not in hosts[0].detail
    picture = hikvision.parse_picture_server(json.dumps({"PictureServerInformation": {
        "pictureServerType": "cloudStorage", "addressingFormatType": "hostname", "hostName": "pic.example.net",
        "portNo": 6011, "cloudStorage": {"clouldAccessKey": "AK", "clouldSecretKey": "SK"}}}).encode())
    assert picture is not None and (picture.host, picture.port, picture.what) == ("pic.example.net", 6011, "pictures")
    none = json.dumps({"PictureServerInformation": {"pictureServerType": "none", "ipAddress": "0.0.0.0"}})
    assert hikvision.parse_picture_server(none.encode()) is None


def test_dahua_key_value_configs_rebuild_into_trees():
    body = (b"table.PictureHttpUpload.Enable=true\r\n"
            b"table.PictureHttpUpload.UploadServerList[0].Address=faces.example.cn\r\n"
            b"table.PictureHttpUpload.UploadServerList[0].Port=443\r\n"
            b"table.PictureHttpUpload.UploadServerList[1].Address=0.0.0.0\r\n"
            b"Error garbage line\r\n")
    config = dahua.table_config(dahua.parse_kv(body), "PictureHttpUpload")
    assert config == {"Enable": "true", "UploadServerList": [{"Address": "faces.example.cn", "Port": "443"},
                                                             {"Address": "0.0.0.0"}]}
    found = dahua.config_destinations("PictureHttpUpload", config, "audit:dahua-cgi:PictureHttpUpload")
    assert [(d.host, d.port, d.what) for d in found] == [("faces.example.cn", 443, "pictures")]
    off = dahua.table_config(dahua.parse_kv(b"table.T2UServer.Enable=false\r\n"
                                            b"table.T2UServer.RegisterServer.Address=p2p.example\r\n"), "T2UServer")
    assert dahua.config_destinations("T2UServer", off, "s") == []


def test_dahua_face_rules_enabled_versus_present():
    rules = dahua.table_config(dahua.parse_kv(
        b"table.VideoAnalyseRule[0][0].Type=FaceDetection\r\ntable.VideoAnalyseRule[0][0].Enable=false\r\n"
        b"table.VideoAnalyseRule[0][1].Type=CrossLineDetection\r\ntable.VideoAnalyseRule[0][1].Enable=true\r\n"),
        "VideoAnalyseRule")
    assert dahua.face_rules(rules) == [("FaceDetection", False)]
    assert dahua.rule_count(rules) == 2
    rpc = [[{"Type": "FaceRecognition", "Enable": True}]]  # the RPC2 form: JSON booleans
    assert dahua.face_rules(rpc) == [("FaceRecognition", True)]


def test_dahua_login_hash_and_versions():
    # §2.3: MD5_UPPER(user:random:MD5_UPPER(user:realm:password)), computed independently here.
    import hashlib

    inner = hashlib.md5(b"admin:Login to ABC:pw").hexdigest().upper()
    assert dahua.login_hash("admin", "pw", "Login to ABC", "123") == \
        hashlib.md5(f"admin:123:{inner}".encode()).hexdigest().upper()
    assert dahua.software_version("2.800.0000016.0.R,build:2020-06-05") == "2.800.0000016.0.R, build 2020-06-05"
    assert dahua.software_version({"version": {"Version": "2.8", "BuildDate": "2021"}}) == "2.8, build 2021"


ENVELOPE = '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>{}</s:Body></s:Envelope>'


def test_onvif_clock_capabilities_and_faults():
    when = onvif.parse_device_time(ENVELOPE.format(
        "<tds:GetSystemDateAndTimeResponse xmlns:tds='x' xmlns:tt='y'><tds:SystemDateAndTime><tt:UTCDateTime>"
        "<tt:Time><tt:Hour>10</tt:Hour><tt:Minute>0</tt:Minute><tt:Second>5</tt:Second></tt:Time>"
        "<tt:Date><tt:Year>2024</tt:Year><tt:Month>5</tt:Month><tt:Day>14</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>").encode())
    assert when == 1715680805.0  # 2024-05-14T10:00:05Z
    caps = onvif.parse_xaddrs(ENVELOPE.format(
        "<GetCapabilitiesResponse><Capabilities><Analytics><XAddr>http://198.51.100.5/onvif/analytics</XAddr>"
        "</Analytics><Events><XAddr>http://198.51.100.5:8899/onvif/events</XAddr></Events></Capabilities>"
        "</GetCapabilitiesResponse>").encode())
    assert caps == {"analytics": "http://198.51.100.5/onvif/analytics", "events": "http://198.51.100.5:8899/onvif/events"}
    fault = onvif.fault_of(ENVELOPE.format(
        "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode>"
        "</s:Code><s:Reason><s:Text>Sender not Authorized</s:Text></s:Reason></s:Fault>").encode())
    assert fault is not None and "notauthorized" in fault[0]


def test_onvif_service_addresses_are_forced_onto_the_device():
    assert onvif.same_device("http://198.51.100.5/onvif/analytics", "198.51.100.5", 80) == ("/onvif/analytics", 80,
                                                                                           False)
    # A different host in an XAddr is never contacted: only its path and port are kept.
    assert onvif.same_device("http://evil.example:8080/onvif/events", "198.51.100.5", 80) == ("/onvif/events", 8080,
                                                                                             False)
    assert onvif.same_device("ftp://x/onvif", "198.51.100.5", 80) is None
    assert onvif.same_device("http://[::1/", "198.51.100.5", 80) is None


def test_onvif_username_token_is_built_on_device_time():
    # OASIS UsernameToken profile: digest = B64(SHA1(nonce + created + password)).
    import base64
    import hashlib

    header = onvif.username_token("a<dmin", "pw", 1715680805.0, nonce=b"0123456789abcdef")
    assert "<wsu:Created>2024-05-14T10:00:05Z</wsu:Created>" in header
    assert "<wsse:Username>a&lt;dmin</wsse:Username>" in header
    digest = base64.b64encode(hashlib.sha1(b"0123456789abcdef2024-05-14T10:00:05Zpw").digest()).decode()
    assert digest in header
    assert ">pw<" not in header


def test_onvif_rules_and_topics():
    rules = onvif.parse_named(ENVELOPE.format(
        '<GetSupportedRulesResponse><SupportedRules><RuleDescription Name="tt:LineDetector"/>'
        '<RuleDescription Name="tt:FaceRecognition"/></SupportedRules></GetSupportedRulesResponse>').encode(),
        "RuleDescription")
    assert rules == ["tt:LineDetector", "tt:FaceRecognition"]
    topics = onvif.parse_topics(ENVELOPE.format(
        '<GetEventPropertiesResponse><TopicSet xmlns:wstop="http://docs.oasis-open.org/wsn/t-1">'
        '<RuleEngine><Recognition><Face wstop:topic="true"><MessageDescription/></Face></Recognition>'
        '<CellMotionDetector><Motion wstop:topic="true"/></CellMotionDetector></RuleEngine></TopicSet>'
        "</GetEventPropertiesResponse>").encode())
    assert topics == ["RuleEngine/Recognition/Face", "RuleEngine/CellMotionDetector/Motion"]
    configured = onvif.parse_configured_rules(ENVELOPE.format(
        '<GetRulesResponse><Rule Name="r1" Type="tt:FaceRecognition"/></GetRulesResponse>').encode())
    assert configured == ["tt:FaceRecognition"]


def test_uniview_envelope_and_uncertain_field_names():
    answer = {"Response": {"ResponseURL": "/LAPI/V1.0/System/DeviceInfo", "ResponseCode": 0,
                           "Data": {"DeviceModel": "IPC1"}}}
    ok, data = uniview.lapi_data(json.dumps(answer).encode())
    assert ok and uniview.parse_device_info(data) == {"model": "IPC1"}
    assert uniview.lapi_data(b'{"Response": {"ResponseCode": 1, "Data": null}}') == (False, None)
    cloud = uniview.parse_cloud({"Enable": "1", "ServerAddr": "en.ezcloud.uniview.com", "Status": "Online"})
    assert cloud is not None and cloud.host == "en.ezcloud.uniview.com"
    assert uniview.parse_cloud({"Enabled": 0, "ServerAddress": "x.example"}) is None
    assert uniview.face_flags({"IsSupportFaceDetection": 1, "Other": {"FaceRecognition": 0}, "Motion": 1}) == {
        "IsSupportFaceDetection": True, "FaceRecognition": False}


def test_xiongmai_framing_hash_and_configs():
    header = xiongmai.HEADER.pack(0xFF, 0, 0, 0x21, 3, 0, 1001, 40)
    assert xiongmai.parse_header(header) == (0x21, 1001, 40)
    assert xiongmai.parse_header(b"\x00" * 20) is None
    assert xiongmai.parse_header(xiongmai.HEADER.pack(0xFF, 0, 0, 0, 0, 0, 1001, 10 << 20)) is None  # too large
    assert xiongmai.sofia_hash("") == "tlJwpbo6"  # python-dvr's default for an empty password (§4.3 [S30])
    flags = xiongmai.face_flags({"OtherFunction": {"SupportFaceDetectV2": True, "SupportFaceRecognition": False},
                                 "AlarmFunction": {"HumanDection": True}})
    assert flags == {"SupportFaceDetectV2": True, "SupportFaceRecognition": False}
    nat = xiongmai.parse_nat({"NatEnable": True, "ServerAddr": "secu100.net", "ServerPort": 8000}, "s")
    assert nat is not None and (nat.host, nat.port, nat.operator_hint) == ("secu100.net", 8000, "XMEye (Xiongmai)")
    assert xiongmai.parse_nat({"NatEnable": False}, "s") is None


def test_small_helpers():
    assert [as_bool(v) for v in ("true", "flase", "1", 0, "maybe", None)] == [True, False, True, False, None, None]
    assert clean_host("0.0.0.0") is None and clean_host("") is None and clean_host("::") is None
    assert clean_host("http://Faces.Example.com:8080/x") == "faces.example.com"
    assert clean_host("not a host!") is None and clean_host(17) is None
    # XML bombs and external entities are refused by defusedxml: None, never an exception.
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbb"><!ENTITY c "&b;&b;&b;">]><a>&c;</a>'
    assert parse_xml(bomb) is None
    assert parse_xml(b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>') is None


BYTE_PARSERS = [
    hikvision.parse_device_info, hikvision.capability_flags, hikvision.parse_fdlib, hikvision.parse_ezviz,
    hikvision.parse_ehome, hikvision.parse_http_hosts, hikvision.parse_picture_server, hikvision.is_lock_answer,
    hikvision.is_not_supported, hikvision.parse_intelli_type, dahua.parse_kv, onvif.parse_device_time,
    onvif.parse_xaddrs, onvif.fault_of, onvif.parse_device_information, onvif.parse_scopes,
    onvif.parse_analytics_token, onvif.parse_topics, onvif.parse_configured_rules, uniview.lapi_data,
    xiongmai.parse_header,
]
XMLISH = st.one_of(
    st.binary(max_size=400),
    st.text(alphabet="<>/=\"' abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789&;!\r\n\x00",
            max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"<DeviceInfo><model>", b"<EZVIZ><enabled>true</enabled><serverAddress>",
                     b"<s:Envelope xmlns:s='x'><s:Body><s:Fault>", b"table.X[99999999999].Y=1",
                     b'{"Response": {"ResponseCode": true}}', b"\xff" * 20]),
)


@settings(max_examples=300, deadline=None)
@given(XMLISH)
def test_hostile_bytes_never_raise(data):
    for parse in BYTE_PARSERS:
        parse(data)
    kv = dahua.parse_kv(data)
    for name in dahua.CONFIGS:
        config = dahua.table_config(kv, name)
        dahua.config_destinations(name, config, "s")
        dahua.face_rules(config)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
                    max_leaves=30))
def test_hostile_json_shapes_never_raise(value):
    uniview.parse_device_info(value)
    uniview.parse_cloud(value)
    uniview.face_flags(value)
    xiongmai.face_flags(value)
    xiongmai.parse_nat(value, "s")
    dahua.face_rules(value)
    dahua.software_version(value)
    for name in dahua.CONFIG_KIND:
        dahua.config_destinations(name, value, "s")
