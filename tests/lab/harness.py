"""Run one lab node in-process (a background event loop) on a loopback address, for unit tests.

The node is built exactly as ``camsweep lab up`` builds it, from a profile and a NodeSpec, so
tests talk to it with real clients (requests, wsdiscovery, raw sockets) over 127.x.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.lab.plan import make_plan
from scanner.lab.profiles import CLOUD_BY_HOST, PROFILE_BY_KEY
from scanner.lab.runtime.node import Node, NodeSpec
from scanner.lab.runtime.tlsutil import write_self_signed
from tests.labfixtures import WORKER_COUNT, WORKER_INDEX

_counter = itertools.count(10)
PORT_OFFSET = 0 if os.geteuid() == 0 else 20000


@dataclass
class NodeHandle:
    node: Node
    loop: asyncio.AbstractEventLoop
    ip: str
    manifest_device: dict[str, Any]

    def port(self, port: int) -> int:
        return self.node.port(port)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def control(self, message: dict[str, Any]) -> dict[str, Any]:
        async def go() -> dict[str, Any]:
            return await self.node._dispatch_control(message)

        result: dict[str, Any] = self.call(go())
        return result


@contextmanager
def running_device(profile_key: str, tmp_path: Path, *, seed: int = 1,
                   identity_overrides: dict[str, Any] | None = None) -> Iterator[NodeHandle]:
    """Start the device ``profile_key`` on a fresh 127.77.2xx.y address."""
    # Each pytest process gets its own 127.77.X block (X from the pid, within its xdist worker's
    # share of 200-249), so parallel runs never contend for the same address and port.
    n = next(_counter)
    share = 50 // max(WORKER_COUNT, 1)
    lab_id = 200 + share * WORKER_INDEX + (os.getpid() + n // 200) % share
    ip = f"127.77.{lab_id}.{n % 200 + 20}"
    plan = make_plan(0, "loopback", seed)
    device = next(d for d in plan.devices if d.name == profile_key)
    profile = PROFILE_BY_KEY[profile_key]
    (tmp_path / "nodes").mkdir(exist_ok=True)
    write_self_signed(tmp_path, ["lab.test"])
    identity: dict[str, Any] = {
        "mac": device.mac, "serial": device.serial, "username": profile.username, "password": device.password,
        "vendor": profile.vendor, "model": profile.model, "firmware": profile.firmware,
        "firmware_build": profile.firmware_build,
        "device_type": profile.device_type, "face_capable": profile.face_capable,
        "face_capture_enabled": profile.face_capture_enabled, "lock_after": profile.lock_after,
        "clock_skew_s": profile.clock_skew_s, "gateway": "127.0.0.1", "outside_resolver": "127.0.0.1",
        "subnet": f"127.77.{lab_id}.0/24",
        "clouds": [{"host": u.host, "port": u.port, "purpose": u.purpose, "configured": u.configured,
                    "what": u.what} for u in profile.clouds],
    }
    identity.update(identity_overrides or {})
    spec = NodeSpec(
        name=profile_key, role="device", ip=ip, mode="loopback", statedir=str(tmp_path), seed=seed,
        profile=profile_key, resolver="127.0.0.1", port_offset=PORT_OFFSET, identity=identity,
        clouds={h: "127.0.0.1" for h, c in CLOUD_BY_HOST.items() if c.no_dns}, visitor_interval=0.0,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    node = Node(spec)
    module_name, func = profile.builder.split(":")
    build = getattr(importlib.import_module(module_name), func)
    asyncio.run_coroutine_threadsafe(build(node), loop).result(10)
    manifest_device = {"ip": ip, "mac": device.mac, "serial": device.serial, "password": device.password,
                       "username": profile.username}
    try:
        yield NodeHandle(node, loop, ip, manifest_device)
    finally:
        asyncio.run_coroutine_threadsafe(node.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
