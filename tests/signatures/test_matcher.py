"""The matcher engine, one matcher type at a time, and its behaviour on hostile input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.observations import Observation
from scanner.signatures import load_signatures
from scanner.signatures.matcher import SignatureSet, json_path
from tests.signatures.helpers import obs, run, sig

SHIPPED = load_signatures()


# ---- word ----------------------------------------------------------------------------------------
def test_word_or_and_case():
    any_word = sig("""
        source: [http]
        matchers: [{type: word, part: server, words: [App-webs, Webs]}]
        claims: {vendor: Hikvision}
    """)
    all_words = sig("""
        source: [http]
        matchers: [{type: word, part: body, words: [global.login, RPC2_Login], condition: and}]
        claims: {vendor: Dahua}
    """)
    nocase = sig("""
        source: [http]
        matchers: [{type: word, part: title, words: [netsurveillance web], case-insensitive: true}]
        claims: {vendor: Xiongmai}
    """)
    assert run(any_word, obs(server="DNVRS-Webs")) is not None
    assert run(any_word, obs(server="nginx")) is None
    assert run(all_words, obs(body="global.login ... RPC2_Login")) is not None
    assert run(all_words, obs(body="global.login only")) is None
    assert run(nocase, obs(title="NETSurveillance WEB")) is not None
    case = sig("""
        source: [http]
        matchers: [{type: word, part: title, words: [netsurveillance web]}]
        claims: {vendor: Xiongmai}
    """)
    assert run(case, obs(title="NETSurveillance WEB")) is None


def test_word_detail_names_part_and_words():
    s = sig("""
        source: [http]
        matchers: [{type: word, part: body, words: [a, b], condition: and}]
        claims: {vendor: Dahua}
    """)
    found = run(s, obs(body="xa yb"))
    assert found is not None and found.detail == 'body~"a + b"' and found.source == "http"


# ---- regex ---------------------------------------------------------------------------------------
def test_regex_or_and_case():
    s = sig("""
        source: [rtsp]
        matchers: [{type: regex, part: realm, regex: ['^IP Camera\\(\\w+\\)$', '^Hikvision$']}]
        claims: {vendor: Hikvision}
    """)
    assert run(s, obs("rtsp", realm="IP Camera(C2875)")) is not None
    assert run(s, obs("rtsp", realm="Hikvision")) is not None
    assert run(s, obs("rtsp", realm="hikvision")) is None
    both = sig("""
        source: [http]
        matchers: [{type: regex, part: body, regex: ['^a', 'z$'], condition: and, case-insensitive: true}]
        claims: {vendor: Dahua}
    """)
    assert run(both, obs(body="A...Z")) is not None
    assert run(both, obs(body="A...y")) is None


def test_negative_matcher_passes_on_absent_part():
    """'No Server header' (protocols.md §1.8): the negative matcher passes when the part is absent."""
    s = sig("""
        source: [rtsp]
        matchers-condition: and
        matchers:
          - {type: regex, part: realm, regex: ['^IP Camera']}
          - {type: regex, part: server, regex: ['\\S'], negative: true}
        claims: {vendor: Hikvision}
    """)
    assert run(s, obs("rtsp", realm="IP Camera(1)")) is not None
    assert run(s, obs("rtsp", realm="IP Camera(1)", server="")) is not None
    assert run(s, obs("rtsp", realm="IP Camera(1)", server="Foo")) is None


def test_matchers_condition_or_and():
    s_or = sig("""
        source: [http]
        matchers-condition: or
        matchers:
          - {type: word, part: server, words: [Hipcam]}
          - {type: word, part: body, words: [/cgi-bin/hi3510/]}
        claims: {device_type: camera}
    """)
    assert run(s_or, obs(server="Hipcam")) is not None
    assert run(s_or, obs(body="<a href=/cgi-bin/hi3510/param.cgi>")) is not None
    assert run(s_or, obs(server="nginx", body="x")) is None
    s_and = sig("""
        source: [http]
        matchers-condition: and
        matchers:
          - {type: word, part: server, words: [Hipcam]}
          - {type: word, part: body, words: [/cgi-bin/hi3510/]}
        claims: {device_type: camera}
    """)
    assert run(s_and, obs(server="Hipcam")) is None
    found = run(s_and, obs(server="Hipcam", body="/cgi-bin/hi3510/"))
    assert found is not None and found.detail == 'server~"Hipcam"; body~"/cgi-bin/hi3510/"'


# ---- status --------------------------------------------------------------------------------------
def test_status_matcher():
    s = sig("""
        source: [http]
        matchers: [{type: status, status: [401, 403]}]
        claims: {vendor: Hikvision}
    """)
    assert run(s, obs(status_code="401")) is not None
    assert run(s, obs(status_code="401 Unauthorized")) is not None
    assert run(s, obs(status_code="200")) is None
    assert run(s, obs(status_code="abc")) is None
    assert run(s, obs()) is None
    other_part = sig("""
        source: [http]
        matchers: [{type: status, part: [code], status: [599]}]
        claims: {vendor: Uniview}
    """.replace("[code]", "[status_code]"))
    assert run(other_part, obs(status_code="599")) is not None


# ---- xpath ---------------------------------------------------------------------------------------
DEVICE_INFO = ('<?xml version="1.0" encoding="UTF-8"?>\r\n<DeviceInfo version="2.0" '
               'xmlns="http://www.hikvision.com/ver20/XMLSchema"><model>DS-2CD2386G2-IU</model>'
               "<deviceType>IPCamera</deviceType></DeviceInfo>\r\n")


def test_xpath_presence_value_regex_and_namespaces():
    present = sig("""
        source: [http]
        matchers: [{type: xpath, xpath: ['{*}DeviceInfo/{*}model']}]
        claims: {vendor: Hikvision}
    """)
    value = sig("""
        source: [http]
        matchers: [{type: xpath, xpath: ['{*}DeviceInfo/{*}deviceType'], value: ipcamera, case-insensitive: true}]
        claims: {is_camera: true}
    """)
    regex = sig("""
        source: [http]
        matchers: [{type: xpath, xpath: ['.//{*}model'], regex: ['^DS-2CD']}]
        claims: {device_type: camera}
    """)
    for s in (present, value, regex):
        assert run(s, obs(raw=DEVICE_INFO)) is not None, s.id
        assert run(s, obs(raw="HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n" + DEVICE_INFO)) is not None
    assert run(present, obs(raw="<ResponseStatus><statusCode>4</statusCode></ResponseStatus>")) is None
    assert run(value, obs(raw=DEVICE_INFO.replace("IPCamera", "NVR"))) is None
    found = run(present, obs(raw=DEVICE_INFO))
    assert found is not None and found.detail == '{*}DeviceInfo/{*}model="DS-2CD2386G2-IU"'


def test_xpath_on_bad_or_hostile_xml_is_no_match():
    s = sig("""
        source: [http]
        matchers: [{type: xpath, xpath: ['.//{*}model']}]
        claims: {vendor: Hikvision}
    """)
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            "<model>&lol2;</model>")
    external = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><model>&e;</model>'
    for raw in ("", "not xml", "<model>", "<a><model>x</a>", bomb, external, "<" * 100_000):
        assert run(s, obs(raw=raw)) is None, raw[:40]
    assert run(s, obs(raw="<root><model>x</model></root>\x00")) is not None


# ---- json ----------------------------------------------------------------------------------------
CHALLENGE = {"error": {"code": 268632079, "message": "Component error: login challenge!"}, "id": 1,
             "params": {"mac": "3CEF8C6101C0", "realm": "Login to AMC000N49SSV0M2U46"}, "result": False}


def test_json_presence_value_regex():
    presence = sig("""
        source: [dahua-rpc2]
        matchers: [{type: json, json: [params.mac]}]
        claims: {vendor: Dahua}
    """)
    number = sig("""
        source: [dahua-rpc2]
        matchers: [{type: json, json: [error.code], value: 268632079}]
        claims: {vendor: Dahua}
    """)
    boolean = sig("""
        source: [dahua-rpc2]
        matchers: [{type: json, json: [result], value: false}]
        claims: {vendor: Dahua}
    """)
    regex = sig("""
        source: [dahua-rpc2]
        matchers: [{type: json, json: [params.realm, params.nothing], regex: ['^Login to '], condition: and}]
        claims: {vendor: Dahua}
    """)
    raw = json.dumps(CHALLENGE)
    for s in (presence, number, boolean):
        assert run(s, obs("dahua-rpc2", raw=raw)) is not None, s.id
    assert run(regex, obs("dahua-rpc2", raw=raw)) is None  # and: the second path is absent
    assert run(presence, obs("dahua-rpc2", raw="HTTP/1.1 200 OK\r\n\r\n" + raw + "\n\x00")) is not None
    assert run(presence, obs("dahua-rpc2", raw='{"params": {}}')) is None


def test_json_paths_and_bad_json():
    doc = {"a": {"b": [{"c": 1}, {"c": None}]}}
    assert json_path(doc, "a.b.0.c") == 1
    assert json_path(doc, "a.b.1.c") is None
    assert json_path(doc, "a.b.2.c") is not None and json_path(doc, "a.b.2.c") is json_path(doc, "a.x")
    s = sig("""
        source: [lapi]
        matchers: [{type: json, json: [Response.ResponseURL]}]
        claims: {vendor: Uniview}
    """)
    for raw in ("", "{", "[1,2]", '"str"', "{" * 50_000 + "}" * 50_000, "[" * 100_000, "{\"Response\": 1}", "nan"):
        assert run(s, obs("lapi", raw=raw)) is None, raw[:20]


# ---- parts ---------------------------------------------------------------------------------------
def test_part_alternatives_prefix_and_special_parts():
    alternatives = sig("""
        source: [sadp]
        matchers: [{type: regex, part: [sadp.DeviceDescription, model], regex: ['^DS-']}]
        claims: {vendor: Hikvision}
    """)
    assert run(alternatives, obs("sadp", **{"sadp.DeviceDescription": "DS-2CD1"})) is not None
    assert run(alternatives, obs("sadp", model="DS-2CD1")) is not None
    # the first part the observation has is the one used
    assert run(alternatives, obs("sadp", model="DS-2CD1", **{"sadp.DeviceDescription": "iDS-2CD7"})) is None
    family = sig("""
        source: [onvif]
        matchers: [{type: word, part: [analytics.*], words: [Face]}]
        claims: {face_capable: true}
        info: {name: t, author: t, references: [x]}
    """)
    assert run(family, obs("onvif", **{"analytics.rules": "tt:Line", "analytics.topics": "x/Face"})) is not None
    assert run(family, obs("onvif", rules="Face")) is None
    port = sig("""
        source: [tcp]
        matchers-condition: and
        matchers:
          - {type: regex, part: port, regex: ['^37777$']}
          - {type: word, part: status, words: [success]}
        claims: {vendor: Dahua}
    """)
    assert run(port, obs("tcp", port=37777)) is not None
    assert run(port, obs("tcp", port=37777, status="connection-refused")) is None
    assert run(port, obs("tcp")) is None
    everything = sig("""
        source: [http]
        matchers: [{type: word, part: '*', words: [needle]}]
        claims: {vendor: Axis}
    """)
    assert run(everything, obs(a="hay", b="a needle")) is not None


# ---- extractors ----------------------------------------------------------------------------------
def test_extractors_group_format_fallbacks():
    s = sig("""
        source: [sadp]
        matchers: [{type: regex, part: sadp.SoftwareVersion, regex: ['.']}]
        extractors:
          - {type: regex, claim: firmware, part: sadp.SoftwareVersion,
             regex: ['^(?P<version>V[\\d.]+)\\s*build\\s*(?P<build>\\d+)'], format: "{version} build {build}"}
          - {type: regex, claim: firmware, part: sadp.SoftwareVersion, regex: ['^(\\S+)']}
          - {type: regex, claim: model, part: sadp.DeviceSN, regex: ['^(?P<m>[A-Z]+-\\w+?)(?=\\d{8})'], group: m}
          - {type: regex, claim: serial, part: sadp.DeviceSN, regex: ['\\d{8}(\\w+)$'], group: 1}
    """)
    found = run(s, obs("sadp", **{"sadp.SoftwareVersion": "V5.5.800build 210628",
                                  "sadp.DeviceSN": "DS-2CD2386G2IU20240826AAWRJ000"}))
    assert found is not None
    assert found.claims == {"firmware": "V5.5.800 build 210628", "model": "DS-2CD2386G2IU", "serial": "AAWRJ000"}
    fallback = run(s, obs("sadp", **{"sadp.SoftwareVersion": "V4.30.085 beta"}))
    assert fallback is not None and fallback.claims == {"firmware": "V4.30.085"}


def test_json_and_xpath_extractors():
    s = sig("""
        source: [dahua-rpc2]
        matchers: [{type: json, json: [params.realm]}]
        extractors:
          - {type: json, claim: serial, json: [params.realm], regex: ['^Login to (?P<serial>\\S+)$']}
          - {type: json, claim: hostname, json: [params.missing, id]}
    """)
    found = run(s, obs("dahua-rpc2", raw=json.dumps(CHALLENGE)))
    assert found is not None and found.claims == {"serial": "AMC000N49SSV0M2U46", "hostname": "1"}
    x = sig("""
        source: [http]
        matchers: [{type: xpath, xpath: ['{*}DeviceInfo']}]
        extractors: [{type: xpath, claim: model, xpath: ['{*}DeviceInfo/{*}nothing', '{*}DeviceInfo/{*}model']}]
    """)
    found = run(x, obs(raw=DEVICE_INFO))
    assert found is not None and found.claims == {"model": "DS-2CD2386G2-IU"}


def test_constant_claims_are_never_overwritten_and_claims_are_copies():
    s = sig("""
        source: [http]
        matchers: [{type: word, part: server, words: [x]}]
        claims: {vendor: Axis, is_camera: true}
    """)
    first = run(s, obs(server="x"))
    assert first is not None
    first.claims["vendor"] = "changed"
    second = run(s, obs(server="x"))
    assert second is not None and second.claims == {"vendor": "Axis", "is_camera": True}


# ---- the set -------------------------------------------------------------------------------------
def test_set_matches_in_file_order_and_by_source():
    observation = obs(server="App-webs/", realm="IP Camera(C2183)")
    ids = [m.signature_id for m in SHIPPED.match(observation)]
    assert ids == ["hikvision-http-app-webs", "hikvision-http-realm"]
    assert SHIPPED.match(obs("sadp", server="App-webs/")) == []
    assert SHIPPED.match(Observation(ip="x", source="no-such-source", fields={"server": "App-webs/"})) == []
    assert SHIPPED.get("hikvision-sadp") is not None and SHIPPED.get("nope") is None
    assert "model" in SHIPPED.sources and len(SignatureSet([])) == 0


def test_hostile_observations_never_raise():
    huge = "A" * 5_000_000
    weird: list[Observation] = [
        obs(server=huge, realm=huge, body=huge, title=huge, raw=huge),
        obs("onvif", scopes="onvif://www.onvif.org/name/" + "x" * 1_000_000, raw="<" * 1_000_000),
        obs("dahua-rpc2", raw="{" * 200_000),
        obs("lapi", raw='{"Response": {"ResponseURL": "/LAPI/' + "\ud800" + '"}}'),
        Observation(ip="x", source="http", fields={"server": 5, "realm": None, "title": ["x"]}),  # type: ignore[dict-item]
        Observation(ip="x", source="http", fields=None),  # type: ignore[arg-type]
        Observation(ip="x", source="http", raw=None),  # type: ignore[arg-type]
        Observation(ip="x", source=None),  # type: ignore[arg-type]
    ]
    for observation in weird:
        assert isinstance(SHIPPED.match(observation), list)


TEXT = st.text(max_size=300)
FIELD_NAMES = st.sampled_from(["server", "realm", "title", "body", "headers", "scopes", "types", "manufacturer",
                               "model", "firmware", "serial", "services", "oui_org", "status_code", "vendor",
                               "sadp.DeviceDescription", "sadp.SoftwareVersion", "sadp.DigitalChannelNum",
                               "dhip.DeviceClass", "dhip.Vendor", "xm.SN", "txt.ty", "upnp.manufacturer",
                               "upnp.modelName", "analytics.rules", "cloud.hik_connect_enabled"])
SOURCES = st.sampled_from(sorted(SHIPPED.sources))


@settings(max_examples=300, deadline=None)
@given(source=SOURCES, fields=st.dictionaries(FIELD_NAMES, TEXT, max_size=8), raw=TEXT,
       port=st.none() | st.integers(0, 65535))
def test_fuzzed_observations_never_raise(source, fields, raw, port):
    matches = SHIPPED.match(Observation(ip="192.0.2.1", source=source, port=port, fields=fields, raw=raw))
    for m in matches:
        assert m.source == source and 0.1 <= m.certainty <= 0.95
        assert all(isinstance(v, str | bool) for v in m.claims.values())
        assert len(m.detail) <= 240


@settings(max_examples=200, deadline=None)
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=20))
def test_fuzzed_json_documents_never_raise(doc):
    for source in ("lapi", "vapix", "dahua-rpc2"):
        assert isinstance(SHIPPED.match(obs(source, raw=json.dumps(doc))), list)
