"""The fragile camera survives the probes as the engine runs them (perf_style.md A.2, DESIGN "Gentle by default").

``fragile-cam`` hangs for good when it sees a third simultaneous TCP connection (counted across
its ports) or bytes of the wrong protocol on a port. The engine runs http on 80 and rtsp on 554
at the same time, and then the ONVIF probe; the probes must keep the camera answering. The last
test shows the check can fail: with three slots per host the same probes hang it.
"""

from __future__ import annotations

import asyncio
import time

from scanner.observations import Observation
from scanner.probes import http, onvif, rtsp
from tests.lab.harness import NodeHandle, running_device
from tests.probes.util import lab_context, run


def fragile_state(dev: NodeHandle) -> dict[str, object]:
    return dev.control({"cmd": "fragile"})


def wait_until_idle(dev: NodeHandle, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while fragile_state(dev)["open_connections"] != 0:
        assert time.monotonic() < deadline, fragile_state(dev)
        time.sleep(0.05)


def test_fragile_camera_survives_http_and_rtsp_probes_at_once(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        ctx = lab_context(dev)

        async def scan() -> list[list[Observation]]:
            results: list[list[Observation]] = []
            for _ in range(3):  # three rounds, back to back, as a re-scan would
                results.extend(await asyncio.gather(http.probe(ctx, dev.ip, 80), rtsp.probe(ctx, dev.ip, 554)))
                results.append(await onvif.probe(ctx, dev.ip, 80))
            return results

        results = run(scan())
        state = fragile_state(dev)
        assert state["hung"] is None, state
        assert state["max_concurrent_seen"] == 2  # both probes really ran at the same time
        assert ctx.max_per_host_seen == {dev.ip: 2}
        for page in results[0::3]:
            assert page[0].status == "success" and page[0].fields["server"] == "Hipcam", page
            assert page[0].fields["title"] == "IPCAM"
        for stream in results[1::3]:
            assert stream[0].status == "success", stream
            assert stream[0].fields["server"] == "HiIpcam/V100R003 VodServer/1.0.0"
            assert stream[0].fields["realm"] == "HIipCamera"
        for service in results[2::3]:
            assert service[0].status == "not-found", service
        wait_until_idle(dev)
        # and it still answers a fresh probe
        (stream,) = run(rtsp.probe(lab_context(dev), dev.ip, 554))
        assert stream.status == "success"


def test_probes_close_before_releasing_their_slot(tmp_path):
    """Many short probes through two slots: the camera never sees a third connection."""
    with running_device("fragile-cam", tmp_path) as dev:
        ctx = lab_context(dev)

        async def burst() -> None:
            await asyncio.gather(*(http.probe(ctx, dev.ip, 80) for _ in range(6)),
                                 *(rtsp.probe(ctx, dev.ip, 554) for _ in range(6)))

        run(burst())
        state = fragile_state(dev)
        assert state["hung"] is None, state
        assert state["max_concurrent_seen"] <= 2
        assert ctx.max_per_host_seen == {dev.ip: 2}


def test_the_check_can_fail_three_slots_hang_the_camera(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        ctx = lab_context(dev, per_host=3, read_timeout=0.5)

        async def too_many() -> list[list[Observation]]:
            return list(await asyncio.gather(http.probe(ctx, dev.ip, 80), rtsp.probe(ctx, dev.ip, 554),
                                             rtsp.probe(ctx, dev.ip, 554)))

        results = run(too_many())
        assert fragile_state(dev)["hung"] is not None
        assert ctx.max_per_host_seen == {dev.ip: 3}
        # a hung device is data too: every probe came back with a status
        assert all(obs for obs in results)
