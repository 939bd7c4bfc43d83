"""When to sweep: ``--every 1h`` (fixed rate) or ``--cron "0 2 * * *"`` (local time, cronsim).

``--every`` sweeps at once, then every interval counted from the start of the previous sweep;
a sweep that overruns its slot makes the next one start right after it (missed slots are
skipped, never queued). ``--cron`` waits for the next matching minute, like cron itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from scanner.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
MIN_INTERVAL_S = 1.0


def parse_every(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``1h30m``, ``1d`` -> seconds; UsageError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _EVERY.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact):
        raise UsageError(f"bad --every {text!r} (e.g. 90s, 30m, 1h, 1h30m, 1d)")
    if total < MIN_INTERVAL_S:
        raise UsageError(f"--every must be at least {MIN_INTERVAL_S:g}s, got {text!r}")
    return total


class Schedule(Protocol):
    def first(self, now: float) -> float:
        """Epoch time of the first sweep."""

    def after(self, started: float, now: float) -> float:
        """Epoch time of the next sweep, given when the previous one started and the time now."""

    def describe(self) -> str: ...


class Every:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def first(self, now: float) -> float:
        return now

    def after(self, started: float, now: float) -> float:
        return max(started + self.seconds, now)  # overran its slot: the next one right away, once

    def describe(self) -> str:
        return f"every {self.seconds:g}s"


class Cron:
    """A five-field cron expression in local time (cronsim: the parser healthchecks.io runs on)."""

    def __init__(self, expression: str) -> None:
        from cronsim import CronSim, CronSimError

        self.expression = expression.strip()
        try:
            CronSim(self.expression, datetime.now().astimezone())
        except (CronSimError, ValueError) as exc:
            raise UsageError(f"bad --cron expression {expression!r}: {exc}") from exc

    def _next(self, after: float) -> float:
        from cronsim import CronSim

        # The local UTC offset in force now; recomputed for every sweep, so a DST change moves
        # at most one run.
        start = datetime.fromtimestamp(after).astimezone()
        return next(CronSim(self.expression, start)).timestamp()

    def first(self, now: float) -> float:
        return self._next(now)

    def after(self, started: float, now: float) -> float:
        return self._next(max(started, now))

    def describe(self) -> str:
        return f"cron {self.expression!r} (local time)"


def run_schedule(schedule: Schedule, job: Callable[[], bool], *, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time,
                 on_wait: Callable[[float], None] | None = None) -> None:
    """Run ``job`` on ``schedule`` until it returns False or ``stop`` is set.

    Waiting happens on ``stop`` (an Event), so another thread (or a signal handler) ends the
    loop at once; KeyboardInterrupt while waiting propagates to the caller.
    """
    stop = stop or threading.Event()
    due = schedule.first(clock())
    while not stop.is_set():
        wait = due - clock()
        if wait > 0:
            if on_wait is not None:
                on_wait(due)
            if stop.wait(wait):
                return
            if clock() < due:  # woke early (clock adjusted): wait again
                continue
        started = clock()
        if not job():
            return
        due = schedule.after(started, clock())
