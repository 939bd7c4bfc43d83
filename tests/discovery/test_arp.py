"""Layer 2 without a network: the kernel neighbour table parser, the IEEE OUI lookup (protocols.md
§10), and the privilege/scope errors of the ARP sweep (the sweep itself runs in the netns lab,
tests/discovery/test_netns.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from scanner.discovery import arp
from scanner.errors import PrivilegeError, UsageError

PROC_NET_ARP = (
    "IP address       HW type     Flags       HW address            Mask     Device\n"
    "198.51.100.10    0x1         0x2         44:19:b6:01:02:03     *        eth0\n"  # complete
    "198.51.100.11    0x1         0x0         00:00:00:00:00:00     *        eth0\n"  # incomplete (no answer)
    "198.51.100.12    0x1         0x6         AC:CC:8E:0A:0B:0C     *        eth0\n"  # complete + permanent
    "10.0.0.5         0x1         0x2         3c:ef:8c:41:6c:ce     *        wlan0\n"  # another interface
    "garbage line\n"
    "198.51.100.13    0x1         0xZZ        84:8a:59:00:00:01     *        eth0\n"  # unreadable flags
)


@pytest.fixture
def neighbour_table(tmp_path):
    path = tmp_path / "arp"
    path.write_text(PROC_NET_ARP)
    return str(path)


def test_neighbours_lists_complete_entries_only(neighbour_table):
    assert arp.neighbours(path=neighbour_table) == {
        "198.51.100.10": "44:19:b6:01:02:03",
        "198.51.100.12": "ac:cc:8e:0a:0b:0c",
        "10.0.0.5": "3c:ef:8c:41:6c:ce",
    }


def test_neighbours_of_one_interface(neighbour_table):
    assert set(arp.neighbours("eth0", path=neighbour_table)) == {"198.51.100.10", "198.51.100.12"}


def test_neighbours_without_the_file_is_empty(tmp_path):
    assert arp.neighbours(path=str(tmp_path / "missing")) == {}


def test_neighbour_observations_for_chosen_hosts(neighbour_table):
    found = arp.neighbour_observations("eth0", ["198.51.100.12", "198.51.100.99"], path=neighbour_table)
    assert [(o.ip, o.source, o.fields) for o in found] == [
        ("198.51.100.12", "arp", {"mac": "ac:cc:8e:0a:0b:0c", "arp.origin": "neighbour-table"})]


def test_the_real_proc_file_parses():
    assert isinstance(arp.neighbours(), dict)


@pytest.mark.parametrize(("mac", "organisation"), [
    ("44:19:B6:01:02:03", "Hikvision"),  # §10: Hangzhou Hikvision Digital Technology
    ("3C-EF-8C-41-6C-CE", "Dahua"),
    ("accc8e0a0b0c", "Axis"),  # bare hex
    ("84:8a:59:00:00:01", "Hisilicon"),  # the lab XM camera: the SoC maker owns the prefix
])
def test_oui_observation_names_the_registrant(mac, organisation):
    obs = arp.oui_observation("198.51.100.10", mac)
    assert (obs.source, obs.status) == ("oui", "success")
    assert obs.fields["mac"] == arp.normalise_mac(mac)
    assert obs.fields["oui"] == obs.fields["mac"][:8]
    if organisation:
        assert organisation in obs.fields["oui_org"]


def test_locally_administered_mac_has_no_registrant():
    """Bit 0x02 of the first octet: randomised/virtual MACs are owned by nobody."""
    obs = arp.oui_observation("198.51.100.10", "02:42:ac:11:00:02")
    assert obs.status == "success"
    assert obs.fields == {"mac": "02:42:ac:11:00:02", "oui": "02:42:ac"}


def test_unregistered_prefix_has_no_registrant():
    assert "oui_org" not in arp.oui_observation("198.51.100.10", "fc:ff:ff:00:00:01").fields


def test_not_a_mac_is_a_protocol_error():
    obs = arp.oui_observation("198.51.100.10", "not-a-mac")
    assert obs.status == "protocol-error" and obs.fields == {}


def test_sweep_without_raw_socket_privilege_says_what_still_works(monkeypatch):
    monkeypatch.setattr(arp, "_has_cap_net_raw", lambda: False)
    with pytest.raises(PrivilegeError) as excinfo:
        arp.arp_sweep("eth0", "198.51.100.0/24")
    message = str(excinfo.value)
    assert "CAP_NET_RAW" in message and "still work" in message and "\n" not in message
    assert excinfo.value.exit_code == 2


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop CAP_NET_RAW")
def test_sweep_without_cap_net_raw_raises_privilege_error_before_sending():
    """A process without CAP_NET_RAW (as root: the capability dropped with setpriv) is refused up front."""
    drop = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"] if os.geteuid() == 0 else []
    code = ("from scanner.discovery import arp\nfrom scanner.errors import PrivilegeError\n"
            "try:\n    arp.arp_sweep('lo', '127.0.0.0/30')\nexcept PrivilegeError:\n    print('refused')\n")
    proc = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.strip() == "refused", proc.stderr


@pytest.mark.parametrize("network", ["10.0.0.0/8", "2001:db8::/64", "not a network"])
def test_sweep_scope_is_checked_before_anything_is_sent(network):
    with pytest.raises(UsageError):
        arp.arp_sweep("eth0", network)
