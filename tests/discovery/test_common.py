"""The shared discovery machinery: lenient normalisers, the bounded parse-error log (python-zeroconf's
rule, perf_style.md B.6), the never-raise guard, and unicast pacing/early exit of the UDP loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.discovery import (
    SEEN_ERRORS_LIMIT,
    ParseErrorLog,
    clean_key,
    clean_value,
    lenient_bool,
    never_raises,
    normalise_mac,
    sadp,
)
from scanner.observations import Observation
from tests.discovery.helpers import CountingLimiter, lab_context
from tests.lab.harness import running_device


@pytest.mark.parametrize("text", ["44-B2-95-C4-01-31", "44:b2:95:c4:01:31", "44b2.95c4.0131", "44B295C40131",
                                  " 44-b2-95-c4-01-31\r\n"])
def test_mac_spellings_normalise_to_lower_case_colons(text):
    assert normalise_mac(text) == "44:b2:95:c4:01:31"


@pytest.mark.parametrize("text", ["", "44-B2-95", "00:00:00:00:00:00", "zz:b2:95:c4:01:31", "44:b2:95:c4:01:31:00",
                                  "x" * 1000])
def test_not_a_mac(text):
    assert normalise_mac(text) is None


@pytest.mark.parametrize(("text", "expected"), [("true", "true"), ("TRUE", "true"), (" 1 ", "true"), ("false", "false"),
                                                ("flase", "false"), ("0", "false"), (True, "true"), (0, "false"),
                                                ("maybe", None), ("", None), (None, None)])
def test_lenient_booleans(text, expected):
    """§1.1: the ``flase`` typo of real SADP firmware reads as false."""
    assert lenient_bool(text) == expected


def test_clean_value_is_bounded_and_printable():
    assert clean_value("a\x00b\x1bc") == "a b c"
    assert len(clean_value("x" * 10000)) == 512
    assert clean_value(False) == "false" and clean_value(None) == "" and clean_value(80) == "80"


def test_clean_key_refuses_absurd_names():
    assert clean_key("DeviceSN") == "DeviceSN"
    assert clean_key("") is None and clean_key("a b") is None and clean_key("k" * 65) is None


def test_parse_error_log_logs_each_error_once(caplog):
    caplog.set_level(logging.DEBUG, logger="test.discovery")
    errors = ParseErrorLog(logging.getLogger("test.discovery"))
    for _ in range(3):
        errors.error("wsd", "10.0.0.1", "not XML: mismatched tag")
    errors.error("wsd", "10.0.0.2", "not XML: unclosed token")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_parse_error_log_memory_is_bounded():
    """A chatty or hostile network sends endless distinct errors: the seen-set stays at its limit (FIFO)."""
    errors = ParseErrorLog(logging.getLogger("test.discovery"))
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = [f"{a}{b}{c}" for a in letters for b in letters for c in letters][:SEEN_ERRORS_LIMIT * 4]
    for name in names:
        errors.error("sadp", "10.0.0.1", f"unexpected element <{name}>")
    assert len(errors) == SEEN_ERRORS_LIMIT
    assert errors.first_time("sadp:unexpected element <aaa>")  # evicted first, so new again
    assert not errors.first_time(f"sadp:unexpected element <{names[-1]}>")


def test_errors_that_differ_only_in_numbers_are_the_same_error(caplog):
    caplog.set_level(logging.DEBUG, logger="test.discovery")
    errors = ParseErrorLog(logging.getLogger("test.discovery"))
    errors.error("wsd", "10.0.0.1", "not XML: not well-formed (invalid token): line 1, column 5")
    errors.error("wsd", "10.0.0.2", "not XML: not well-formed (invalid token): line 3, column 17")
    assert len(caplog.records) == 1


def test_never_raises_turns_an_unexpected_exception_into_a_protocol_error():
    @never_raises("test", 9)
    def broken(data: bytes, ip: str) -> Observation | None:
        raise RecursionError("too deep")

    obs = broken(b"\x00" * 5000, "10.0.0.1")
    assert obs is not None and obs.status == "protocol-error"
    assert obs.error == "RecursionError: too deep"
    assert len(obs.raw) <= 1024


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalise_mac_never_raises(text):
    result = normalise_mac(text)
    assert result is None or (len(result) == 17 and result == result.lower())


def test_unicast_discovery_stops_once_every_host_answered(tmp_path):
    """Without multicast there is nobody else to wait for: the run ends right after the last answer."""
    with running_device("hik-cam", tmp_path) as dev:
        ctx = lab_context(dev)
        ctx.limiter = CountingLimiter(300.0)
        started = time.monotonic()
        found = asyncio.run(sadp.discover(ctx, [dev.ip, dev.ip], multicast=False, timeout=10.0))
        assert time.monotonic() - started < 5.0  # far below the 10 s window
        assert len(found) == 1
        assert ctx.limiter.acquired == 1  # duplicates in ``hosts`` get one datagram


def test_no_hosts_and_no_multicast_sends_nothing():
    ctx = lab_context(type("NoDevice", (), {"port": staticmethod(lambda p: p)})())
    ctx.limiter = CountingLimiter(300.0)
    assert asyncio.run(sadp.discover(ctx, [], multicast=False, timeout=5.0)) == []
    assert ctx.limiter.acquired == 0


def test_only_ipv4_literals_are_probed():
    """A host name would make sendto() block the event loop on DNS; IPv6 cannot use the IPv4 socket."""
    ctx = lab_context(type("NoDevice", (), {"port": staticmethod(lambda p: p)})())
    ctx.limiter = CountingLimiter(300.0)
    assert asyncio.run(sadp.discover(ctx, ["no-such-host.invalid", "::1"], multicast=False, timeout=0.2)) == []
    assert ctx.limiter.acquired == 0
