"""Every probe against REAL lab devices (in-process, unprivileged, on 127.77.x addresses).

What a device's firmware really answers is in scanner/lab/devices/*; the expected values here come
from protocols.md (cited per test) and from the device's manifest entry (MAC, serial), so a probe
that parses the wrong header, follows the wrong marker or loses a field fails here.
"""

from __future__ import annotations

import re

from scanner.lab.profiles import PROFILE_BY_KEY
from scanner.net import NetContext
from scanner.observations import Observation
from scanner.probes import axis, dahua, http, onvif, rtsp, uniview, upnp
from tests.lab.harness import NodeHandle
from tests.probes.util import device_fixture, lab_context, run

hik = device_fixture("hik-face")
dahua_face = device_fixture("dahua-face")
axis_cam = device_fixture("axis-cam")
uniview_cam = device_fixture("uniview-cam")
xm_cam = device_fixture("xm-cam")
salesbox = device_fixture("salesbox")
ulucu = device_fixture("ulucu-flow")
printer = device_fixture("printer")


def only(observations: list[Observation], source: str, path: str | None = None) -> Observation:
    found = [o for o in observations if o.source == source and (path is None or o.fields.get("path") == path)]
    assert len(found) == 1, [(o.source, o.fields.get("path")) for o in observations]
    return found[0]


def assert_gentle(ctx: NetContext, dev: NodeHandle) -> None:
    """At most two connections at a time, no login attempt, no write (the device counts both)."""
    assert ctx.max_per_host_seen and max(ctx.max_per_host_seen.values()) <= 2
    auth = dev.control({"cmd": "auth"})
    if auth.get("ok"):  # devices with a login report their attempts and refused writes
        assert auth["attempts"] == 0, auth
        assert auth.get("writes", 0) == 0, auth


# ---- Hikvision face camera (§1.2, §1.7, §1.8, §5) ------------------------------------------------------
def test_hikvision_http_markers_redirect_and_isapi_realm(hik: NodeHandle):
    ctx = lab_context(hik)
    observations = run(http.probe(ctx, hik.ip, 80))
    assert [o.fields["path"] for o in observations] == ["/", "/doc/page/login.asp?_1617000000000",
                                                        "/ISAPI/System/deviceInfo"]
    assert all(o.source == "http" and o.status == "success" and o.port == 80 for o in observations)
    root, login, isapi = observations
    assert root.fields["server"] == "App-webs/"
    assert root.fields["location"] == "/doc/page/login.asp?_1617000000000"  # meta refresh
    assert "Hikvision Digital Technology" in login.fields["body"]
    assert "X-Frame-Options: SAMEORIGIN" in login.fields["headers"]
    assert isapi.fields["status_code"] == "401"
    assert isapi.fields["auth_scheme"] == "Digest"
    assert re.fullmatch(r"IP Camera\(\w+\)", isapi.fields["realm"])
    assert_gentle(ctx, hik)


def test_hikvision_https_is_the_same_server(hik: NodeHandle):
    ctx = lab_context(hik)
    observations = run(http.probe(ctx, hik.ip, 443, tls=True))
    assert [(o.source, o.status) for o in observations] == [("https", "success")] * 3
    assert observations[0].fields["server"] == "App-webs/"
    assert re.fullmatch(r"IP Camera\(\w+\)", observations[2].fields["realm"])


def test_hikvision_rtsp_has_no_server_a_double_space_date_and_the_realm(hik: NodeHandle):
    ctx = lab_context(hik)
    (obs,) = run(rtsp.probe(ctx, hik.ip, 554))
    assert (obs.source, obs.status, obs.port) == ("rtsp", "success", 554)
    assert obs.fields["no_server"] == "true" and "server" not in obs.fields
    assert obs.fields["date"].startswith("  ") and obs.fields["date_double_space"] == "true"
    assert obs.fields["public"] == "OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, SET_PARAMETER, GET_PARAMETER"
    assert obs.fields["options_status_code"] == "200" and obs.fields["status_code"] == "401"
    assert re.fullmatch(r"IP Camera\(\w+\)", obs.fields["realm"])
    assert_gentle(ctx, hik)


def test_hikvision_onvif_pre_auth_answers_and_device_information_refused(hik: NodeHandle):
    ctx = lab_context(hik)
    (obs,) = run(onvif.probe(ctx, hik.ip, 80, hints={"xaddrs": f"http://{hik.ip}/onvif/device_service"}))
    assert (obs.source, obs.status) == ("onvif", "unauthorized")
    assert obs.fields["device_info"] == "unauthorized"
    assert "manufacturer" not in obs.fields and "serial" not in obs.fields
    assert obs.fields["server"] == "App-webs/"  # §5.2
    assert re.fullmatch(r"IP Camera\(\w+\)", obs.fields["realm"])
    assert obs.fields["analytics.supported"] == "true"
    assert obs.fields["capabilities"] == "Analytics Device Events Media"
    assert "http://www.onvif.org/ver20/analytics/wsdl" in obs.fields["namespaces"].split()
    assert abs(int(obs.fields["clock_skew_s"])) <= 2
    assert obs.fields["time_source"] == "NTP"
    assert_gentle(ctx, hik)


# ---- Dahua face camera (§2.3, §2.4) ----------------------------------------------------------------------
def test_dahua_web_page_leads_to_the_rpc2_challenge_with_mac_and_serial(dahua_face: NodeHandle):
    ctx = lab_context(dahua_face)
    observations = run(http.probe(ctx, dahua_face.ip, 80))
    root = only(observations, "http", "/")
    assert root.fields["title"] == "WEB SERVICE" and "server" not in root.fields  # no Server on Dahua web
    assert "CONTENT-LENGTH:" in root.fields["headers"]  # upper-case header names
    challenge = only(observations, "dahua-rpc2", "/RPC2_Login")
    assert challenge.status == "success"
    assert challenge.fields["mac"] == dahua_face.manifest_device["mac"]
    assert challenge.fields["serial"] == dahua_face.manifest_device["serial"]
    assert challenge.fields["realm"] == f"Login to {dahua_face.manifest_device['serial']}"
    assert challenge.fields["encryption"] == "Default"
    assert challenge.fields["rpc2.error_code"] == "268632079"
    assert '"random": "..."' in challenge.raw  # the nonce is not kept
    assert len(observations) == 2
    assert_gentle(ctx, dahua_face)


def test_dahua_probe_directly(dahua_face: NodeHandle):
    ctx = lab_context(dahua_face)
    (obs,) = run(dahua.probe(ctx, dahua_face.ip, 80))
    assert obs.status == "success" and obs.fields["mac"] == dahua_face.manifest_device["mac"]
    assert_gentle(ctx, dahua_face)


def test_dahua_rtsp_server_banner(dahua_face: NodeHandle):
    ctx = lab_context(dahua_face)
    (obs,) = run(rtsp.probe(ctx, dahua_face.ip, 554))
    assert obs.fields["server"] == "Dahua Rtsp Server"
    assert "no_server" not in obs.fields and "date_double_space" not in obs.fields
    assert obs.fields["realm"] == f"Login to {dahua_face.manifest_device['serial']}"


def test_dahua_onvif_clock_is_two_hours_fast(dahua_face: NodeHandle):
    ctx = lab_context(dahua_face)
    (obs,) = run(onvif.probe(ctx, dahua_face.ip, 80))
    assert obs.status == "unauthorized"
    assert abs(int(obs.fields["clock_skew_s"]) - 7200) <= 2
    assert_gentle(ctx, dahua_face)


# ---- Axis (§4.3, §6, §7) ---------------------------------------------------------------------------------
def test_axis_vapix_gives_model_firmware_serial(axis_cam: NodeHandle):
    profile = PROFILE_BY_KEY["axis-cam"]
    mac_hex = axis_cam.manifest_device["mac"].replace(":", "").upper()
    ctx = lab_context(axis_cam)
    observations = run(http.probe(ctx, axis_cam.ip, 80))
    assert only(observations, "http", "/").fields["title"] == "AXIS"
    vapix = only(observations, "vapix")
    assert vapix.status == "success"
    assert vapix.fields["vendor"] == "AXIS"
    assert vapix.fields["model"] == profile.model
    assert vapix.fields["model_number"] == profile.model.removeprefix("AXIS ")
    assert vapix.fields["firmware"] == profile.firmware
    assert vapix.fields["serial"] == mac_hex
    assert vapix.fields["device_type"] == "Network Camera"
    (direct,) = run(axis.probe(ctx, axis_cam.ip, 80))
    assert direct.fields == vapix.fields
    assert_gentle(ctx, axis_cam)


def test_axis_rtsp_realm_and_upnp_description(axis_cam: NodeHandle):
    mac_hex = axis_cam.manifest_device["mac"].replace(":", "").upper()
    ctx = lab_context(axis_cam)
    (stream,) = run(rtsp.probe(ctx, axis_cam.ip, 554))
    assert stream.fields["realm"] == f"AXIS_WS_{mac_hex}"
    assert stream.fields["public"] == "DESCRIBE, GET_PARAMETER, PAUSE, PLAY, SETUP, SET_PARAMETER, TEARDOWN"
    description = run(upnp.fetch_description(ctx, axis_cam.ip, f"http://{axis_cam.ip}:80/description.xml"))
    assert (description.source, description.status, description.port) == ("upnp", "success", 80)
    assert description.fields["upnp.manufacturer"] == "AXIS"
    assert description.fields["upnp.modelName"] == PROFILE_BY_KEY["axis-cam"].model
    assert description.fields["upnp.serialNumber"] == mac_hex
    assert description.fields["upnp.UDN"] == f"uuid:Upnp-BasicDevice-1_0-{mac_hex}"
    (hinted,) = run(upnp.probe(ctx, axis_cam.ip, 80, hints={"location": f"http://{axis_cam.ip}/description.xml"}))
    assert hinted.fields == description.fields
    assert_gentle(ctx, axis_cam)


# ---- Uniview (§3) ----------------------------------------------------------------------------------------
def test_uniview_page_leads_to_the_lapi_challenge(uniview_cam: NodeHandle):
    ctx = lab_context(uniview_cam)
    observations = run(http.probe(ctx, uniview_cam.ip, 80))
    assert [o.source for o in observations] == ["http", "lapi"]
    lapi = observations[1]
    assert (lapi.status, lapi.fields["status_code"]) == ("success", "401")
    assert lapi.fields["path"] == "/LAPI/V1.0/System/DeviceInfo"
    assert lapi.fields["realm"] == "UNV" and lapi.fields["auth_scheme"] == "Digest"
    (direct,) = run(uniview.probe(ctx, uniview_cam.ip, 80))
    assert direct.fields["realm"] == "UNV"
    (stream,) = run(rtsp.probe(ctx, uniview_cam.ip, 554))
    assert stream.fields["realm"] == "UNV"
    assert_gentle(ctx, uniview_cam)


# ---- Xiongmai (§4.3, §6) -----------------------------------------------------------------------------------
def test_xiongmai_web_rtsp_and_token_only_onvif(xm_cam: NodeHandle):
    ctx = lab_context(xm_cam)
    observations = run(http.probe(ctx, xm_cam.ip, 80))
    assert len(observations) == 1  # nothing in the page asks for a follow-up
    assert observations[0].fields["server"] == "uc-httpd 1.0.0"
    assert observations[0].fields["title"] == "NETSurveillance WEB"
    (stream,) = run(rtsp.probe(ctx, xm_cam.ip, 554))
    assert stream.fields["server"] == "H264DVR 1.0"
    assert "date" not in stream.fields
    (service,) = run(onvif.probe(ctx, xm_cam.ip, 8899))  # XM's ONVIF port; UsernameToken only (§5.3)
    assert (service.status, service.fields["device_info"]) == ("unauthorized", "unauthorized")
    assert "realm" not in service.fields  # a NotAuthorized fault, not an HTTP 401
    assert service.fields["analytics.supported"] == "true"
    assert_gentle(ctx, xm_cam)


# ---- unbranded boxes and office equipment ----------------------------------------------------------------
def test_salesbox_is_onvif_only(salesbox: NodeHandle):
    ctx = lab_context(salesbox)
    observations = run(http.probe(ctx, salesbox.ip, 80))
    assert len(observations) == 1
    assert observations[0].status == "success"
    assert observations[0].fields["status_code"] == "404"
    assert observations[0].fields["server"] == "gSOAP/2.8"
    (service,) = run(onvif.probe(ctx, salesbox.ip, 80))
    assert service.status == "unauthorized"
    assert service.fields["realm"] == "IPC"
    assert service.fields["analytics.supported"] == "true"
    assert abs(int(service.fields["clock_skew_s"])) <= 2
    assert_gentle(ctx, salesbox)


def test_ulucu_web_service_title_alone_does_not_trigger_dahua(ulucu: NodeHandle):
    ctx = lab_context(ulucu)
    observations = run(http.probe(ctx, ulucu.ip, 80))
    assert [(o.source, o.fields["path"]) for o in observations] == [("http", "/")]
    assert observations[0].fields["title"] == "WEB SERVICE"
    assert observations[0].fields["server"] == "Boa/0.94.14rc21"
    (stream,) = run(rtsp.probe(ctx, ulucu.ip, 554))
    assert stream.fields["realm"] == "IPCAM"
    (service,) = run(onvif.probe(ctx, ulucu.ip, 80))
    assert service.fields["analytics.supported"] == "false"
    assert_gentle(ctx, ulucu)


def test_printer_hp_banner_and_no_camera_services(printer: NodeHandle):
    model = PROFILE_BY_KEY["printer"].model
    ctx = lab_context(printer)
    observations = run(http.probe(ctx, printer.ip, 80))
    assert len(observations) == 1
    page = observations[0]
    assert page.fields["server"].startswith(f"HP HTTP Server; {model} - ")
    assert f"Serial Number: {printer.manifest_device['serial']}" in page.fields["server"]
    assert page.fields["title"] == f"{model} {printer.ip}"
    (stream,) = run(rtsp.probe(ctx, printer.ip, 554))
    assert stream.status == "connection-refused" and stream.fields == {}
    (service,) = run(onvif.probe(ctx, printer.ip, 80))
    assert (service.status, service.fields["status_code"]) == ("not-found", "404")
    assert ctx.max_per_host_seen[printer.ip] <= 2
