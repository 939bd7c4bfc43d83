"""Discovery: who is on the store network, and what do they say about themselves unasked.

One module per protocol (DESIGN.md, zgrab2 style), each behind the same small interface:

* UDP vendor/standard discovery -- ``sadp`` (Hikvision, protocols.md §1.1), ``dhip`` (Dahua,
  §2.1), ``xm`` (Xiongmai 34569, §4.3), ``wsd`` (ONVIF WS-Discovery, §5.1), ``ssdp`` (UPnP, §7)::

      build_probe(...) -> bytes
      parse_reply(data: bytes, ip: str) -> Observation | None      # never raises
      async discover(ctx, hosts, *, multicast: bool, timeout: float) -> list[Observation]

* ``mdns.discover(ctx, *, timeout, service_types=None)`` (zeroconf browser, §7),
* ``arp.arp_sweep(iface, network)`` (scapy, needs CAP_NET_RAW), ``arp.neighbours(iface)`` (the
  unprivileged fallback: the kernel neighbour table), ``arp.oui_observation(ip, mac)``,
* ``tcp.sweep(ctx, hosts, ports, *, timeout)`` (connect-only port sweep, liveness).

This package module holds what the UDP modules share:

* ``ParseErrorLog`` -- python-zeroconf's rule for untrusted bytes: a parser never raises; the
  first occurrence of each distinct error is logged at debug, repeats are not, and the set of
  seen errors is bounded (FIFO) so a hostile or chatty network cannot grow memory;
* ``never_raises`` -- the decorator every ``parse_reply`` wears (last line of that defence);
* small lenient normalisers (MAC addresses, booleans, bounded field values);
* ``udp_discovery`` -- send probes (multicast/broadcast and unicast, each datagram paced by the
  global rate limiter), collect and de-duplicate replies per (ip, source) until the time is up.

Unicast probes to every live host are not optional extras: multicast loss on store switches (IGMP
snooping, Wi-Fi bridges, VLANs) is the top complaint about existing discovery tools (peers.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from scanner.net import NetContext
from scanner.observations import Observation, excerpt

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535  # a UDP payload cannot be larger; parsers look at no more than this
MAX_FIELDS = 128  # raw vendor fields kept per reply (sadp.*, dhip.*, xm.*, txt.*)
MAX_VALUE = 512  # characters kept per field value
MAX_KEY = 64  # characters kept per raw field name
RAW_EXCERPT = 1024  # characters of a reply kept as evidence in ``Observation.raw``
MAX_REASSEMBLY = 65536  # bytes a reassembled reply may have (split ProbeMatch, §5.1)
MAX_FRAGMENTS = 4  # unparsed datagrams remembered per address
MAX_FRAGMENT_ADDRESSES = 1024  # addresses with unparsed datagrams remembered
SEEN_ERRORS_LIMIT = 512  # python-zeroconf's bound on the seen-set
EARLY_EXIT_GRACE = 0.2  # seconds to keep listening once every unicast host has answered

Parser = Callable[[bytes, str], Observation | None]


_DIGITS = re.compile(r"\d+")


class ParseErrorLog:
    """Log each distinct parse error once, at debug; remember at most ``limit`` of them (FIFO)."""

    def __init__(self, logger: logging.Logger, limit: int = SEEN_ERRORS_LIMIT) -> None:
        self.logger = logger
        self.limit = limit
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen (until it is evicted)."""
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True

    def error(self, source: str, ip: str, message: str, *, exc: BaseException | None = None) -> None:
        """Log ``message`` unless the same error (numbers aside: line/column, lengths) was seen."""
        key = f"{source}:{_DIGITS.sub('#', message[:200])}"
        if self.first_time(key):
            self.logger.debug("%s reply from %s not understood: %s", source, ip, message,
                              exc_info=exc if exc is not None else False)

    def __len__(self) -> int:
        return len(self._seen)


PARSE_ERRORS = ParseErrorLog(log)


def protocol_error(ip: str, source: str, port: int, data: bytes, message: str,
                   *, exc: BaseException | None = None) -> Observation:
    """The Observation for an answer that is not a well-formed reply (and log it, quietly)."""
    PARSE_ERRORS.error(source, ip, message, exc=exc)
    return Observation(ip=ip, source=source, port=port, transport="udp", status="protocol-error",
                       raw=excerpt(data[:RAW_EXCERPT]), error=message[:MAX_VALUE])


def never_raises(source: str, port: int) -> Callable[[Parser], Parser]:
    """Wrap a ``parse_reply``: any exception still escaping it becomes a protocol-error Observation.

    The parsers catch what they expect themselves; this is the guarantee for what nobody expected
    (RecursionError from a deeply nested JSON document, a MemoryError, a library bug).
    """

    def decorate(parse: Parser) -> Parser:
        @functools.wraps(parse)
        def guarded(data: bytes, ip: str) -> Observation | None:
            try:
                return parse(data, ip)
            except Exception as exc:  # noqa: BLE001 - hostile bytes must never reach the receive loop
                return protocol_error(ip, source, port, data[:MAX_DATAGRAM], f"{type(exc).__name__}: {exc}"[:200],
                                      exc=exc)

        return guarded

    return decorate


# ---- lenient normalisers ------------------------------------------------------------------------
_HEX12 = re.compile(r"[0-9a-f]{12}")


def normalise_mac(text: str) -> str | None:
    """``44-B2-95-C4-01-31``, ``44:b2:95:c4:01:31``, ``44b2.95c4.0131``, ``44B295C40131`` ->
    ``44:b2:95:c4:01:31``; None for anything that is not 48 bits of hex (or all zero)."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    digits = re.sub(r"[\s:.\-]", "", text.strip().lower())
    if not _HEX12.fullmatch(digits) or digits == "0" * 12:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


_TRUE = frozenset({"true", "1", "yes", "on", "enable", "enabled"})
_FALSE = frozenset({"false", "flase", "0", "no", "off", "disable", "disabled"})  # "flase": real SADP typo (§1.1)


def lenient_bool(text: object) -> str | None:
    """``"true"``/``"false"`` for the many spellings firmware uses (incl. ``flase``); None if unsure."""
    if isinstance(text, bool):
        return "true" if text else "false"
    if isinstance(text, int | float):
        return "true" if text else "false"
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    if value in _TRUE:
        return "true"
    if value in _FALSE:
        return "false"
    return None


def clean_value(value: object, limit: int = MAX_VALUE) -> str:
    """A field value as a bounded, printable string (booleans lower-case, like the wire)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = text[:limit].strip()
    return "".join(ch if ch.isprintable() else " " for ch in text)


def clean_key(key: str) -> str | None:
    """A raw field name usable in ``<proto>.<Key>``; None for empty or absurd names."""
    key = key.strip()
    if not key or len(key) > MAX_KEY or not all(ch.isprintable() and not ch.isspace() for ch in key):
        return None
    return key


# ---- the UDP send/collect loop ------------------------------------------------------------------
def _is_ipv4(text: str) -> bool:
    """An IPv4 address literal (a host name would make ``sendto`` block on DNS)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Probe:
    """One datagram to send: ``payload`` to ``address`` (the *protocol* port; the lab map is applied)."""

    payload: bytes
    address: str
    port: int


class _Collector(asyncio.DatagramProtocol):
    """Receives replies, parses them, keeps one Observation per (ip, source)."""

    def __init__(self, parse: Parser, *, merge_fields: frozenset[str], reassemble: bool,
                 expected: set[str]) -> None:
        self.parse = parse
        self.merge_fields = merge_fields
        self.reassemble = reassemble
        self.expected = set(expected)  # unicast hosts still to answer
        self.results: dict[tuple[str, str], Observation] = {}
        self.answered: set[str] = set()  # addresses with at least one well-formed reply
        self.fragments: dict[str, list[bytes]] = {}  # recent unparsed datagrams per address
        self.all_answered = asyncio.Event()
        if not self.expected:
            self.all_answered.set()
        self.datagrams = 0
        self.socket_errors = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams += 1
        ip = str(addr[0])
        data = data[:MAX_DATAGRAM]
        obs = self.parse(data, ip)
        if obs is not None and obs.status != "success" and self.reassemble:
            obs = self._reassembled(ip, data) or obs
        if obs is None:
            return
        if obs.status == "success":
            self.fragments.pop(ip, None)
        self._keep(obs)

    def _reassembled(self, ip: str, data: bytes) -> Observation | None:
        """A ProbeMatch split over datagrams (§5.1): try the last 1..MAX_FRAGMENTS unparsed
        datagrams of this address followed by this one (so junk before the pair does not matter)."""
        pending = self.fragments.setdefault(ip, [])
        for start in range(len(pending) - 1, -1, -1):
            joined_bytes = b"".join(pending[start:]) + data
            if len(joined_bytes) > MAX_REASSEMBLY:
                break
            joined = self.parse(joined_bytes, ip)
            if joined is not None and joined.status == "success":
                return joined
        pending.append(data)
        del pending[:-MAX_FRAGMENTS]
        while len(self.fragments) > MAX_FRAGMENT_ADDRESSES:  # bounded across addresses too
            self.fragments.pop(next(iter(self.fragments)))
        return None

    def _keep(self, obs: Observation) -> None:
        key = (obs.ip, obs.source)
        old = self.results.get(key)
        if old is None or (old.status != "success" and obs.status == "success"):
            self.results[key] = obs
        elif old.status == "success" and obs.status == "success":
            for name in self.merge_fields:  # e.g. SSDP: one answer per ST
                new = obs.fields.get(name)
                if new and new not in old.fields.get(name, "").split():
                    merged = f"{old.fields.get(name, '')} {new}".strip()
                    if len(merged) <= MAX_VALUE:
                        old.fields[name] = merged
        if obs.status == "success":
            self.answered.add(obs.ip)
        if obs.status == "success" and obs.ip in self.expected:
            self.expected.discard(obs.ip)
            if not self.expected:
                self.all_answered.set()

    def error_received(self, exc: Exception) -> None:
        """Send errors asyncio could not raise (e.g. no route for a multicast group)."""
        self.socket_errors += 1
        if self.socket_errors == 1:
            log.warning("udp discovery socket error: %s", exc)
        else:
            log.debug("udp discovery socket error: %s", exc)


async def udp_discovery(
    ctx: NetContext,
    *,
    source: str,
    parse: Parser,
    multicast_probes: Sequence[Probe],
    unicast_probes: Callable[[str], Iterable[Probe]],
    hosts: Sequence[str],
    multicast: bool,
    timeout: float,
    broadcast: bool = False,
    repeats: int = 1,
    repeat_delay: tuple[float, float] = (0.05, 0.25),
    merge_fields: frozenset[str] = frozenset(),
    reassemble: bool = False,
) -> list[Observation]:
    """Send, collect, de-duplicate; the shared body of every UDP ``discover()``.

    * Every datagram waits for ``ctx.limiter.acquire()`` (the global packet-rate cap).
    * ``repeats`` > 1 (WS-Discovery's SOAP-over-UDP repetition, perf_style A.3) resends the
      multicast probes and the unicast probes of hosts that have not answered yet, after a random
      ``repeat_delay``.
    * Replies are collected until ``timeout`` seconds after the last datagram went out. Without
      multicast, collection ends early (after a short grace for sibling answers) once every
      unicast host has answered.
    * One Observation per (ip, source): a success replaces an earlier protocol-error; later
      successes only add new values of ``merge_fields``. Hosts that stay silent produce nothing
      (UDP silence is not evidence of anything).
    """
    loop = asyncio.get_running_loop()
    try:
        sock = ctx.udp_socket(broadcast=multicast and broadcast, multicast=multicast and not broadcast)
    except OSError as exc:
        log.warning("%s discovery: cannot open a UDP socket: %s", source, exc)
        return []
    unicast_hosts = [host for host in dict.fromkeys(hosts) if _is_ipv4(host)]
    if len(unicast_hosts) < len(set(hosts)):
        log.debug("%s discovery: skipping targets that are not IPv4 addresses", source)
    collector = _Collector(parse, merge_fields=merge_fields, reassemble=reassemble,
                           expected=set() if multicast else set(unicast_hosts))
    transport, _ = await loop.create_datagram_endpoint(lambda: collector, sock=sock)
    send_errors: set[str] = set()

    async def send(probe: Probe) -> None:
        await ctx.limiter.acquire()
        try:
            transport.sendto(probe.payload, (probe.address, ctx.port(probe.port)))
        except OSError as exc:  # e.g. no route for the multicast group; the rest still runs
            message = f"{type(exc).__name__}: {exc}"
            if message not in send_errors:
                send_errors.add(message)
                log.warning("%s discovery: sending to %s failed: %s", source, probe.address, message)

    try:
        last_send = time.monotonic()
        for round_no in range(max(1, repeats)):
            if round_no:
                await asyncio.sleep(random.uniform(*repeat_delay))
            if multicast:
                for probe in multicast_probes:
                    await send(probe)
            for host in unicast_hosts:
                if round_no and host in collector.answered:
                    continue
                for probe in unicast_probes(host):
                    await send(probe)
            last_send = time.monotonic()
        deadline = last_send + timeout
        if multicast:  # anyone may answer: listen for the whole window
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collector.all_answered.wait(), max(0.0, deadline - time.monotonic()))
                # everyone answered: a short grace for sibling datagrams (SSDP sends one per ST)
                await asyncio.sleep(min(EARLY_EXIT_GRACE, max(0.0, deadline - time.monotonic())))
    finally:
        transport.close()
    return list(collector.results.values())
