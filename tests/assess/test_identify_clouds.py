"""identify.py turns the SADP HCPlatformEnable flag into a discovery CloudLink (the scan-side
input of the face-cloud-enabled and video-cloud rules)."""

from __future__ import annotations

from scanner.identify import DISCOVERY_CLOUD_CONFIDENCE, discovery_clouds, resolve
from scanner.observations import Observation
from scanner.passive.clouds import shipped
from scanner.signatures import load_signatures


def sadp(**fields: str) -> Observation:
    """A SADP inquiry answer as scanner/discovery/sadp.py reports it (protocols.md §1.1 field names)."""
    base = {
        "mac": "44:19:b6:12:34:56",
        "vendor": "Hikvision",
        "model": "iDS-2CD7146G0-IZS",
        "sadp.DeviceDescription": "iDS-2CD7146G0-IZS",
        "sadp.SupportHCPlatform": "true",
    }
    base.update(fields)
    return Observation(ip="198.51.100.48", source="sadp", port=37020, transport="udp", fields=base)


def test_hc_platform_enabled_becomes_a_hik_connect_discovery_link():
    links = discovery_clouds([sadp(**{"sadp.HCPlatformEnable": "true", "cloud.hik_connect_enabled": "TRUE"})])
    assert len(links) == 1
    link = links[0]
    signature = shipped().by_id("hik-connect-device")
    assert signature is not None
    assert (link.source, link.operator, link.category) == ("discovery", signature.operator, signature.category)
    assert (link.host, link.ip, link.port) == (None, None, None)  # the flag does not say which server
    assert link.confidence == DISCOVERY_CLOUD_CONFIDENCE < signature.score  # a flag, not traffic
    assert [(e.source, e.field) for e in link.evidence] == [("sadp", "cloud")]
    assert "cloud.hik_connect_enabled=TRUE" in link.evidence[0].detail


def test_flag_false_the_firmware_typo_or_a_missing_flag_make_no_link():
    for value in ("false", "flase", "", "yes please"):
        assert discovery_clouds([sadp(**{"cloud.hik_connect_enabled": value})]) == []
    assert discovery_clouds([sadp()]) == []
    failed = sadp(**{"cloud.hik_connect_enabled": "true"})
    failed.status = "protocol-error"
    assert discovery_clouds([failed]) == []


def test_repeated_answers_give_one_link_and_resolve_attaches_it_to_the_device():
    answers = [sadp(**{"cloud.hik_connect_enabled": "true"}), sadp(**{"cloud.hik_connect_enabled": "true"})]
    device = resolve("198.51.100.48", answers, load_signatures())
    assert [(c.source, c.operator) for c in device.clouds] == [("discovery", "Hik-Connect (Hikvision)")]
    assert device.vendor == "Hikvision"
