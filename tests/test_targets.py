"""Target parsing and the scope guard."""

from __future__ import annotations

import ipaddress

import pytest

from scanner.errors import UsageError
from scanner.targets import parse_local_networks, parse_targets, read_target_file


def test_cidr_range_address_and_dedup():
    ts = parse_targets(["198.51.100.0/30", "198.51.100.1-3", "198.51.100.9"])
    assert ts.hosts == ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.9"]
    assert ts.networks == [ipaddress.IPv4Network("198.51.100.0/30")]


def test_full_range_and_loopback():
    assert parse_targets(["127.77.3.10-127.77.3.12"]).hosts == ["127.77.3.10", "127.77.3.11", "127.77.3.12"]


def test_auto_uses_the_interface_subnet():
    ts = parse_targets(["auto"], iface_network=ipaddress.IPv4Network("198.51.100.0/29"))
    assert ts.hosts == [f"198.51.100.{i}" for i in range(1, 7)]


def test_auto_without_an_interface_is_a_usage_error():
    with pytest.raises(UsageError, match="needs --iface"):
        parse_targets(["auto"])


@pytest.mark.parametrize("public", ["8.8.8.8", "1.1.1.0/30", "114.114.114.114"])
def test_public_addresses_are_refused(public):
    with pytest.raises(UsageError, match="public address"):
        parse_targets([public])


def test_public_allowed_when_asked():
    assert parse_targets(["8.8.8.8"], allow_public=True).hosts == ["8.8.8.8"]


def test_lab_ranges_are_not_public():
    assert len(parse_targets(["203.0.113.0/24"]).hosts) == 254


def test_more_than_max_hosts_is_refused():
    with pytest.raises(UsageError, match="more than 4096"):
        parse_targets(["10.0.0.0/16"])
    assert len(parse_targets(["10.0.0.0/20"], max_hosts=5000).hosts) == 4094


@pytest.mark.parametrize("bad", ["198.51.100.0/33", "198.51.100.9-3", "not a host!", "300.1.1.1"])
def test_bad_targets_are_one_line_usage_errors(bad):
    with pytest.raises(UsageError) as info:
        parse_targets([bad])
    assert "\n" not in str(info.value)


def test_target_file_with_comments(tmp_path):
    f = tmp_path / "targets.txt"
    f.write_text("# store 12\n198.51.100.5  # the NVR\n\n198.51.100.7 198.51.100.8\n")
    assert read_target_file(f) == ["198.51.100.5", "198.51.100.7", "198.51.100.8"]
    with pytest.raises(UsageError, match="cannot read target list"):
        read_target_file(tmp_path / "missing.txt")


def test_local_networks_are_normalised():
    assert parse_local_networks(["192.168.1.7/24", "10.1.0.0/16,fd00::/8", " 172.16.5.5 "]) == [
        "192.168.1.0/24", "10.1.0.0/16", "fd00::/8", "172.16.5.5/32"]
    assert parse_local_networks(None) is None and parse_local_networks([]) is None


@pytest.mark.parametrize("bad", ["192.168.1.0/33", "store-lan", "10.0.0.0/8,nope"])
def test_bad_local_networks_are_one_line_usage_errors(bad):
    with pytest.raises(UsageError, match="--local .* is not a network"):
        parse_local_networks([bad])


@pytest.mark.parametrize("command", [["analyze", "missing.pcap"], ["listen", "--iface", "lo", "--seconds", "1"]])
def test_a_bad_local_network_on_the_command_line_is_a_one_line_error(command):
    from tests.labfixtures import camsweep

    proc = camsweep(*command, "--local", "store-lan", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("camsweep: error: --local 'store-lan' is not a network (want a CIDR such as "
                                   "192.168.1.0/24)")
