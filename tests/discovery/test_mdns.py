"""mDNS without a network: service-type spelling, and how resolved instances become one Observation
per address (protocols.md §7). Browsing itself runs in the netns lab (tests/discovery/test_netns.py):
multicast never leaves the host namespace in these tests."""

from __future__ import annotations

from scanner.discovery import mdns


def test_service_types_are_completed_for_zeroconf():
    assert mdns._fqdn_type("_axis-video._tcp") == "_axis-video._tcp.local."
    assert mdns._fqdn_type("_http._tcp.local.") == "_http._tcp.local."
    assert mdns._fqdn_type("_http._tcp.local") == "_http._tcp.local."
    assert mdns._short_type("_ipp._tcp.local.") == "_ipp._tcp"


def test_default_types_cover_cameras_and_the_usual_office_devices():
    wanted = {"_axis-video._tcp", "_axis-nvr._tcp", "_rtsp._tcp", "_ipp._tcp", "_printer._tcp", "_http._tcp",
              "_smb._tcp", "_hap._tcp", "_googlecast._tcp", "_device-info._tcp", "_workstation._tcp"}
    assert set(mdns.DEFAULT_SERVICE_TYPES) == wanted
    assert mdns.DEFAULT_SERVICE_TYPES[0] == "_axis-video._tcp"  # the camera type names the instance


def _resolver_with(hosts: dict[str, mdns._Host]) -> mdns._Resolver:
    resolver = mdns._Resolver(aiozc=None, priority=list(mdns.DEFAULT_SERVICE_TYPES), deadline=0.0)  # type: ignore[arg-type]
    resolver.hosts = hosts
    return resolver


def test_one_observation_per_address_with_the_camera_service_naming_it():
    axis = mdns._Host(
        services={"_http._tcp": 80, "_rtsp._tcp": 554, "_axis-video._tcp": 80},
        names={"_http._tcp": "web page", "_rtsp._tcp": "stream", "_axis-video._tcp": "AXIS P3245-LV - ACCC8E0A0B0C"},
        hostname="axis-accc8e0a0b0c.local",
        txt={"macaddress": "ACCC8E0A0B0C", "path": "/"},
    )
    [obs] = _resolver_with({"198.51.100.20": axis}).observations()
    assert (obs.ip, obs.source, obs.port, obs.transport, obs.status) == ("198.51.100.20", "mdns", 5353, "udp",
                                                                          "success")
    assert obs.fields["services"] == "_axis-video._tcp _rtsp._tcp _http._tcp"
    assert obs.fields["service_ports"] == "_axis-video._tcp:80 _rtsp._tcp:554 _http._tcp:80"
    assert obs.fields["name"] == "AXIS P3245-LV - ACCC8E0A0B0C"
    assert obs.fields["hostname"] == "axis-accc8e0a0b0c.local"
    assert obs.fields["txt.macaddress"] == "ACCC8E0A0B0C"
    assert obs.fields["txt.path"] == "/"
    assert obs.fields["mac"] == "ac:cc:8e:0a:0b:0c"


def test_unknown_types_sort_after_known_ones_and_no_mac_without_a_mac_key():
    nas = mdns._Host(services={"_zzz._tcp": 1, "_smb._tcp": 445}, names={"_smb._tcp": "ds220", "_zzz._tcp": "z"},
                     txt={"mac": "not a mac"})
    [obs] = _resolver_with({"198.51.100.30": nas}).observations()
    assert obs.fields["services"] == "_smb._tcp _zzz._tcp"
    assert obs.fields["name"] == "ds220"
    assert "mac" not in obs.fields and "hostname" not in obs.fields
