"""The TCP connect sweep: exactly the lab device's services, at most 2 connections per host, a
fragile camera left answering, the liveness encoding, and the global concurrency cap."""

from __future__ import annotations

import asyncio

import pytest

from scanner.discovery import tcp
from scanner.lab.profiles import PROFILE_BY_KEY
from scanner.net import NetContext, NetOptions
from tests.discovery.helpers import CountingLimiter, lab_context, settle
from tests.lab.harness import running_device


def _service_ports(profile_key: str) -> set[int]:
    return {int(s.split("/")[1]) for s in PROFILE_BY_KEY[profile_key].services}


def _by_port(found):
    open_ports = {o.port for o in found if o.port is not None}
    summary = [o for o in found if o.port is None]
    assert len(summary) == 1
    return open_ports, summary[0]


@pytest.mark.parametrize("profile_key", ["hik-cam", "dahua-cam", "xm-cam", "nas", "printer"])
def test_sweep_finds_exactly_the_listed_services(tmp_path, profile_key):
    with running_device(profile_key, tmp_path) as dev:
        ctx = lab_context(dev, tcp.DEFAULT_PORTS)
        ctx.limiter = CountingLimiter(300.0)
        found = asyncio.run(tcp.sweep(ctx, [dev.ip], tcp.DEFAULT_PORTS, timeout=2.0))
        settle(dev)
        open_ports, summary = _by_port(found)
        assert open_ports == _service_ports(profile_key)
        assert all(o.status == "success" and o.source == "tcp" and o.transport == "tcp" for o in found)
        assert summary.fields["alive"] == "true"
        assert summary.fields["open_ports"].split() == [str(p) for p in tcp.DEFAULT_PORTS if p in open_ports]
        assert int(summary.fields["refused"]) == len(tcp.DEFAULT_PORTS) - len(open_ports)
        assert ctx.max_per_host_seen[dev.ip] <= 2
        assert ctx.limiter.acquired == len(tcp.DEFAULT_PORTS)  # one token per connection attempt


def test_fragile_camera_survives_the_default_sweep(tmp_path):
    """The fragile camera hangs on >2 concurrent connections or stray bytes; a sweep sends no byte."""
    with running_device("fragile-cam", tmp_path) as dev:
        for _ in range(3):  # repeated sweeps, as a scheduled job would run them (one context per scan)
            ctx = lab_context(dev, tcp.DEFAULT_PORTS)
            found = asyncio.run(tcp.sweep(ctx, [dev.ip], tcp.DEFAULT_PORTS, timeout=2.0))
            settle(dev)
            assert _by_port(found)[0] == {80, 554}
            assert ctx.max_per_host_seen[dev.ip] <= 2
        report = dev.control({"cmd": "fragile"})
        assert report["hung"] is None
        assert report["max_concurrent_seen"] <= 2


def test_a_host_with_nothing_open_is_alive_when_it_refuses(tmp_path):
    """A RST is an answer: the POS terminal has no service, but it is there."""
    with running_device("pos", tmp_path) as dev:
        found = asyncio.run(tcp.sweep(lab_context(dev, tcp.DEFAULT_PORTS), [dev.ip], [80, 554, 8000], timeout=2.0))
        assert len(found) == 1
        summary = found[0]
        assert (summary.port, summary.status) == (None, "connection-refused")
        assert summary.fields == {"alive": "true", "refused": "3", "silent": "0"}


class SilentContext(NetContext):
    """Every connection attempt hangs (a host that drops SYNs), counting concurrency as it goes."""

    def __init__(self, options: NetOptions) -> None:
        super().__init__(options)
        self.in_flight = 0
        self.max_in_flight = 0

    async def open(self, ip, port, *, tls=False, server_hostname=None):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(3600)
        finally:
            self.in_flight -= 1
        raise AssertionError("unreachable")


def test_a_silent_host_is_reported_as_io_timeout_and_not_alive():
    ctx = SilentContext(NetOptions(source_ip="127.0.0.1", rate=0))
    found = asyncio.run(tcp.sweep(ctx, ["127.0.0.2"], [80, 554], timeout=0.2))
    assert len(found) == 1
    assert (found[0].status, found[0].fields) == ("io-timeout", {"alive": "false", "refused": "0", "silent": "2"})


def test_global_concurrency_is_capped():
    ctx = SilentContext(NetOptions(source_ip="127.0.0.1", rate=0))
    hosts = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(400)]
    found = asyncio.run(tcp.sweep(ctx, hosts, [80, 554, 8000], timeout=0.3))
    assert ctx.max_in_flight == tcp.MAX_CONCURRENT
    assert max(ctx.max_per_host_seen.values()) == 2
    assert len(found) == 400 and {o.status for o in found} == {"io-timeout"}


def test_empty_inputs():
    ctx = NetContext(NetOptions(source_ip="127.0.0.1"))
    assert asyncio.run(tcp.sweep(ctx, [], tcp.DEFAULT_PORTS, timeout=1.0)) == []
    found = asyncio.run(tcp.sweep(ctx, ["127.0.0.1"], [], timeout=1.0))
    assert [(o.status, o.fields["alive"]) for o in found] == [("io-timeout", "false")]


def test_default_ports_are_the_camera_list():
    assert tcp.DEFAULT_PORTS[:4] == [80, 443, 554, 8000]
    assert {37777, 34567, 8899, 2020, 6668, 9100, 445} <= set(tcp.DEFAULT_PORTS)
    assert len(set(tcp.DEFAULT_PORTS)) == len(tcp.DEFAULT_PORTS)
