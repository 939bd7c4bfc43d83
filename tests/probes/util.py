"""Helpers for the probe tests: a NetContext aimed at one lab device, and a tiny hostile server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.net import NetContext, NetOptions
from tests.lab.harness import NodeHandle, running_device

LAB_PORTS = (80, 443, 554, 8899)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def lab_context(dev: NodeHandle, **options: Any) -> NetContext:
    """Probes as the engine would send them: from 127.0.0.1, with the loopback lab's port map."""
    port_map = {port: dev.port(port) for port in LAB_PORTS}
    return NetContext(NetOptions(source_ip="127.0.0.1", port_map=port_map, **options))


def device_fixture(profile_key: str) -> Any:
    """A module-scoped fixture running lab device ``profile_key`` (starting one takes a while)."""

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeHandle]:
        path: Path = tmp_path_factory.mktemp(profile_key)
        with running_device(profile_key, path) as dev:
            yield dev

    return fixture


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    """A local server on 127.0.0.1 running ``handler`` per connection; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def hostile_context(port: int, *, read_timeout: float = 0.5, logical_port: int = 80) -> NetContext:
    return NetContext(NetOptions(source_ip="127.0.0.1", port_map={logical_port: port}, read_timeout=read_timeout,
                                 connect_timeout=1.0))
