"""Shared test helpers: the never-raise contract, byte mutations for fuzzing, a lab NetContext."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from hypothesis import strategies as st

from scanner.discovery import MAX_FIELDS, RAW_EXCERPT
from scanner.net import NetContext, NetOptions, RateLimiter
from scanner.observations import STATUSES, Observation

Parser = Callable[[bytes, str], Observation | None]


def assert_well_behaved(parse: Parser, data: bytes, source: str) -> Observation | None:
    """The parser contract: no exception, None or a bounded Observation of the right source."""
    obs = parse(data, "127.0.0.9")
    if obs is None:
        return None
    assert obs.source == source
    assert obs.ip == "127.0.0.9"
    assert obs.status in STATUSES
    assert obs.transport == "udp"
    assert len(obs.raw) <= RAW_EXCERPT
    assert len(obs.fields) <= 2 * MAX_FIELDS + 16
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in obs.fields.items())
    if obs.status != "success":
        assert obs.fields == {} and obs.error
    return obs


@st.composite
def mutations(draw: st.DrawFn, sample: bytes) -> bytes:
    """``sample`` cut, spliced with random bytes and bit-flipped: hostile input that looks almost right."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cut", "insert", "flip", "delete"]))
        position = draw(st.integers(0, max(0, len(data))))
        if kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[position:position + draw(st.integers(1, 16))]
    return bytes(data)


def lab_context(dev: object, ports: Iterable[int] = (80, 443, 554, 1900), *, rate: float = 300.0) -> NetContext:
    """A NetContext that reaches an in-process lab device (``tests.lab.harness``) on its bound ports."""
    port = dev.port  # type: ignore[attr-defined]
    return NetContext(NetOptions(source_ip="127.0.0.1", rate=rate, port_map={p: port(p) for p in ports}))


class CountingLimiter(RateLimiter):
    """The global rate limiter, counting how many datagrams/connections went through it."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.acquired = 0

    async def acquire(self) -> None:
        self.acquired += 1
        await super().acquire()


def settle(dev: object, seconds: float = 0.3) -> None:
    """Let an in-process lab device finish handling connections we just closed before it shuts down.

    The lab's ``Node.close`` cancels every task; a connection handler cancelled before it first
    ran never closes its socket (a ResourceWarning, which this suite turns into an error).
    """
    time.sleep(seconds)
    dev.control({"cmd": "ping"})  # type: ignore[attr-defined]
