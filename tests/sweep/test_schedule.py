"""--every and --cron: parsing, when the next sweep is due, and the loop (a fake clock, no sleeping)."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from scanner.errors import UsageError
from scanner.sweep.schedule import Cron, Every, parse_every, run_schedule


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("1d", 86400), (" 2H ", 7200), ("1.5h", 5400)])
def test_intervals(text, seconds):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h 30", "30m1", "-5m", "0s", "1h-", "m30"])
def test_bad_intervals_are_usage_errors(text):
    with pytest.raises(UsageError, match="--every"):
        parse_every(text)


def test_every_counts_from_the_start_of_the_previous_sweep_and_never_queues_missed_slots():
    every = Every(3600)
    assert every.first(1000.0) == 1000.0
    assert every.after(started=1000.0, now=1300.0) == 4600.0  # a 5-minute sweep: the next on the hour
    assert every.after(started=1000.0, now=8000.0) == 8000.0  # ran past two slots: one sweep now, not a burst


def test_cron_fires_on_the_next_matching_minute_in_local_time():
    cron = Cron("30 2 * * *")
    start = datetime(2025, 3, 10, 1, 0, 0).astimezone().timestamp()
    due = datetime.fromtimestamp(cron.first(start))
    assert (due.day, due.hour, due.minute) == (10, 2, 30)
    again = datetime.fromtimestamp(cron.after(started=cron.first(start), now=cron.first(start) + 120))
    assert (again.day, again.hour, again.minute) == (11, 2, 30)


@pytest.mark.parametrize("expr", ["", "* * *", "61 * * * *", "every night", "0 25 * * *"])
def test_bad_cron_expressions_are_usage_errors(expr):
    with pytest.raises(UsageError, match="bad --cron expression"):
        Cron(expr)


class FakeClock:
    """Time that moves only when the loop waits (through the stop event) or a job runs."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class ClockEvent(threading.Event):
    def __init__(self, clock: FakeClock, waits: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.waits = waits

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(round(timeout, 3))
        self.clock.now += timeout
        return self.is_set()


def test_the_loop_sweeps_on_schedule_until_stopped():
    clock = FakeClock(1000.0)
    waits: list[float] = []
    stop = ClockEvent(clock, waits)
    started: list[float] = []

    def job() -> bool:
        started.append(clock.now)
        clock.now += 40.0  # each sweep takes 40 s
        if len(started) == 3:
            stop.set()
        return True

    run_schedule(Every(100), job, stop=stop, clock=clock)
    assert started == [1000.0, 1100.0, 1200.0]
    assert waits == [60.0, 60.0]


def test_a_job_that_asks_to_stop_ends_the_loop():
    clock = FakeClock(0.0)
    calls = []
    run_schedule(Every(10), lambda: calls.append(clock.now) is not None and False,
                 stop=ClockEvent(clock, []), clock=clock)
    assert calls == [0.0]


def test_ctrl_c_while_waiting_reaches_the_caller():
    class Interrupted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_schedule(Cron("0 2 * * *"), lambda: True, stop=Interrupted())
