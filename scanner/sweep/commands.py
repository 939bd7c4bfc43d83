"""Bodies of ``camsweep sweep``, ``history``, ``diff`` and ``baseline`` (cli.py only declares them).

A sweep = a scan (with passive listening when ``--listen``), assessment into findings, and one
stored row with the full result document and its changes against the site's previous sweep.
Alerts go out after the row is committed, so every alert names a sweep that exists.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.errors import UsageError
from scanner.status import ExitStatus
from scanner.sweep.alerts import RetryPolicy, WebhookSender, alert_message
from scanner.sweep.diff import CHANGE_KINDS, Change, alertable, diff_documents, highest_level, level_at_least
from scanner.sweep.schedule import Schedule, run_schedule
from scanner.sweep.store import DEFAULT_SITE, SweepRecord, SweepStore, default_db_url

ProgressFactory = Callable[[], AbstractContextManager[Any]]

_LEVEL_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


@dataclass
class SweepSettings:
    scan: Any  # engine.ScanOptions
    db: str | None = None
    site: str = DEFAULT_SITE
    alert_webhook: str | None = None
    alert_level: str = "low"
    alert_deadline: float = 120.0
    fail_on: str | None = None
    jurisdiction: str = "cn"
    quiet: bool = False


@dataclass
class SweepOutcome:
    record: SweepRecord
    changes: list[Change]
    alerts: list[Change]


def _t(value: object) -> str:
    """Device- or database-provided text, safe for the terminal and for rich markup."""
    from scanner.report.fmt import clean

    return "" if value is None else escape(clean(value))


def _when(ts: float | None) -> str:
    from scanner.report.fmt import when

    return when(ts)


def _print_json(out: Console, data: Any) -> None:
    """JSON on stdout as is (never wrapped or restyled by the terminal console)."""
    out.file.write(json.dumps(data, indent=2, default=str) + "\n")
    out.file.flush()


def open_store(db: str | None) -> SweepStore:
    return SweepStore.open(db or default_db_url())


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """systemd stops a service with SIGTERM: treat it like Ctrl-C (no partial sweep is stored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweeps(settings: SweepSettings, schedule: Schedule | None, out: Console, err: Console,
               progress: ProgressFactory) -> int:
    """``camsweep sweep``: once (exit status for cron) or on ``schedule`` until Ctrl-C/SIGTERM."""
    from scanner import engine

    if schedule is not None and settings.fail_on:
        raise UsageError("--fail-on is for single sweeps (cron, systemd timers); with --every/--cron use "
                         "--alert-webhook")
    engine.prepare(settings.scan)  # bad targets/interfaces are usage errors before anything else
    sender = None
    if settings.alert_webhook:
        def report(delivery: Any) -> None:
            if not delivery.delivered or not settings.quiet:
                err.print(_t(delivery.describe()), highlight=False, soft_wrap=True)

        sender = WebhookSender(settings.alert_webhook, policy=RetryPolicy(deadline=settings.alert_deadline),
                               on_done=report)
    store = open_store(settings.db)
    status = int(ExitStatus.OK)
    outcome: SweepOutcome | None = None
    try:
        with _sigterm_as_interrupt():
            if schedule is None:
                outcome = sweep_once(store, settings, sender, out, err, progress)
                if outcome is None:
                    status = int(ExitStatus.INTERRUPTED)
                elif settings.fail_on and any(level_at_least(c.level, settings.fail_on)
                                              for c in outcome.changes if not c.suppressed):
                    status = int(ExitStatus.FINDINGS)
                if sender is not None:  # the sweep is stored; the process waits (bounded) for its alert
                    sender.wait(settings.alert_deadline + 5.0)
            else:
                status = _scheduled(store, settings, schedule, sender, out, err, progress)
    except KeyboardInterrupt:
        if outcome is not None:
            err.print(f"camsweep: interrupted; sweep {outcome.record.id} was stored, its alert may not have been "
                      "delivered", highlight=False, soft_wrap=True)
        else:
            err.print("camsweep: interrupted; the sweep under way was not stored", highlight=False, soft_wrap=True)
        status = int(ExitStatus.INTERRUPTED)
    finally:
        if sender is not None:
            sender.close()
        store.close()
    return status


def _scheduled(store: SweepStore, settings: SweepSettings, schedule: Schedule, sender: WebhookSender | None,
               out: Console, err: Console, progress: ProgressFactory) -> int:
    interrupted = False
    busy = False  # a sweep is under way (as opposed to waiting for the next one)

    def job() -> bool:
        nonlocal interrupted, busy
        busy = True
        if sweep_once(store, settings, sender, out, err, progress) is None:
            interrupted = True
        busy = False
        return not interrupted

    def waiting(due: float) -> None:
        if not settings.quiet:
            err.print(f"next sweep {_when(due)} ({schedule.describe()}); Ctrl-C stops", highlight=False, soft_wrap=True)

    try:
        run_schedule(schedule, job, on_wait=waiting)
    except KeyboardInterrupt:
        if busy:
            raise
        err.print("camsweep: stopped between sweeps", highlight=False, soft_wrap=True)
        return int(ExitStatus.OK)
    return int(ExitStatus.INTERRUPTED if interrupted else ExitStatus.OK)


def sweep_once(store: SweepStore, settings: SweepSettings, sender: WebhookSender | None, out: Console,
               err: Console, progress: ProgressFactory) -> SweepOutcome | None:
    """Scan, assess, store, print, alert. None when the scan was interrupted (nothing stored)."""
    from scanner import engine

    with progress() as report:
        result = engine.scan(settings.scan, report)
    if result.scan.interrupted:
        err.print("camsweep: interrupted; the partial sweep was not stored", highlight=False, soft_wrap=True)
        return None
    if not result.findings:
        from scanner.assess import assess

        result.findings = assess(result, jurisdiction=settings.jurisdiction)
    listen = float(getattr(settings.scan, "listen_seconds", 0.0) or 0.0)
    result.scan.options.setdefault("listen_seconds", listen)
    doc: dict[str, Any] = json.loads(result.to_json(indent=None))

    def compare(previous: dict[str, Any] | None, known: list[tuple[str, dict[str, Any]]]) -> list[Change]:
        return [] if previous is None else diff_documents(previous, doc, known=known)

    record, changes = store.record_sweep(settings.site, doc, listen_seconds=listen, compare=compare)
    alerts = alertable(changes, settings.alert_level)
    if sender is not None and alerts:
        sender.submit(alert_message(site=record.site, sweep_id=record.id, previous_sweep_id=record.previous_sweep_id,
                                    finished_at=record.finished_at, changes=alerts, threshold=settings.alert_level))
    for note in result.scan.notes:
        if not settings.quiet:
            err.print(f"note: {_t(note)}", highlight=False, soft_wrap=True)
    if not settings.quiet or alerts:
        _print_sweep(out, store, record, changes, alerts if settings.quiet else None)
    return SweepOutcome(record, changes, alerts)


def _print_sweep(out: Console, store: SweepStore, record: SweepRecord, changes: list[Change],
                 only: list[Change] | None) -> None:
    out.print(f"sweep {record.id} of site {_t(record.site)} stored in {_t(store.where)}: {record.devices} devices, "
              f"{record.cameras} cameras, {record.face_capable} can capture faces, {record.clouds} cloud "
              f"destinations, {record.findings} findings", highlight=False, soft_wrap=True)
    if record.previous_sweep_id is None:
        out.print(f"first sweep of site {_t(record.site)}: nothing to compare with. Once it is reviewed, accept it: "
                  f"camsweep baseline accept --site {_t(record.site)}", highlight=False, soft_wrap=True)
        return
    live = [c for c in changes if not c.suppressed]
    known = len(changes) - len(live)
    note = f" ({known} more back to a known state: the baseline or a recent sweep)" if known else ""
    if not live:
        out.print(f"no change since sweep {record.previous_sweep_id}{note}", highlight=False, soft_wrap=True)
        return
    out.print(f"{len(live)} changes since sweep {record.previous_sweep_id} (highest: {highest_level(live)}){note}",
              highlight=False, soft_wrap=True)
    print_changes(out, only if only is not None else live)


def print_changes(out: Console, changes: list[Change], *, title: str | None = None) -> None:
    table = Table(title=title)
    for column in ("level", "change", "device", "what changed"):
        table.add_column(column, overflow="fold")
    for c in changes:
        style = _LEVEL_STYLE.get(c.level, "")
        level = f"[{style}]{c.level}[/]" if style else _t(c.level)
        kind = _t(c.kind) + (f" [dim](known: {_t(c.known_from)})[/]" if c.suppressed else "")
        device = _t(c.identity if c.identity.startswith("ip:") else f"{c.ip} {c.identity}")
        table.add_row(level, kind, device, _t(c.text))
    out.print(table)


# ---- history ------------------------------------------------------------------------------
def history(db: str | None, site: str, *, all_sites: bool, limit: int, as_json: bool, out: Console) -> None:
    with open_store(db) as store:
        if all_sites:
            summaries = store.site_summaries()
            records = store.sweeps(None, limit)
        else:
            summaries = []
            records = store.sweeps(site, limit)
        baselines = {s.site: s.baseline.sweep_id for s in summaries if s.baseline}
        if not all_sites:
            current = store.baseline(site)
            if current is not None:
                baselines[site] = current.sweep_id
        if as_json:
            _print_json(out, {
                "database": store.where,
                "sites": [_summary_dict(s) for s in summaries] if all_sites else None,
                "sweeps": [{**r.__dict__, "baseline": baselines.get(r.site) == r.id} for r in records],
            })
            return
        if all_sites:
            _print_sites(out, summaries)
        if not records:
            others = [] if all_sites else [s for s in store.sites() if s != site]
            hint = f"; sites in this database: {', '.join(others)} (--site NAME or --all-sites)" if others else ""
            out.print(f"no sweeps{'' if all_sites else f' of site {_t(site)}'} in {_t(store.where)}{_t(hint)}",
                      highlight=False, soft_wrap=True)
            return
        table = Table(title=f"sweeps ({'all sites' if all_sites else 'site ' + _t(site)}, newest first)")
        for column in ("sweep", "site", "finished", "targets", "devices", "cameras", "face", "clouds", "findings",
                       "changes", "highest"):
            table.add_column(column, overflow="fold")
        for r in records:
            mark = " [bold](baseline)[/]" if baselines.get(r.site) == r.id else ""
            changes = "-" if r.previous_sweep_id is None else str(r.changes)
            table.add_row(f"{r.id}{mark}", _t(r.site), _t(_when(r.finished_at)), _t(", ".join(r.targets)),
                          str(r.devices), str(r.cameras), str(r.face_capable), str(r.clouds), str(r.findings),
                          changes, _level(r.top_level))
        out.print(table)


def _level(level: str | None) -> str:
    if not level:
        return ""
    style = _LEVEL_STYLE.get(level)
    return f"[{style}]{level}[/]" if style else _t(level)


def _summary_dict(s: Any) -> dict[str, Any]:
    return {"site": s.site, "sweeps": s.sweeps, "first_at": s.first_at,
            "last": s.last.__dict__ if s.last else None,
            "baseline": s.baseline.__dict__ if s.baseline else None}


def _print_sites(out: Console, summaries: list[Any]) -> None:
    table = Table(title="sites")
    for column in ("site", "sweeps", "last sweep", "devices", "cameras", "face", "clouds", "findings",
                   "last changes", "baseline"):
        table.add_column(column, overflow="fold")
    for s in summaries:
        last = s.last
        baseline = f"sweep {s.baseline.sweep_id} ({_when(s.baseline.accepted_at)})" if s.baseline else "none"
        if last is None:
            table.add_row(_t(s.site), "0", "", "", "", "", "", "", "", _t(baseline))
            continue
        changes = "-" if last.previous_sweep_id is None else f"{last.changes} {last.top_level or ''}".strip()
        table.add_row(_t(s.site), str(s.sweeps), _t(_when(last.finished_at)), str(last.devices), str(last.cameras),
                      str(last.face_capable), str(last.clouds), str(last.findings), _t(changes), _t(baseline))
    out.print(table)


# ---- diff -----------------------------------------------------------------------------------
def _sweep_ref(store: SweepStore, ref: str, site: str | None) -> int:
    text = ref.strip().lower()
    if text.isdigit():
        return int(text)
    if text == "latest":
        found = store.sweeps(site or DEFAULT_SITE, 1)
        if not found:
            raise UsageError(f"site {site or DEFAULT_SITE!r} has no sweep in {store.where}")
        return found[0].id
    if text == "baseline":
        baseline = store.baseline(site or DEFAULT_SITE)
        if baseline is None:
            raise UsageError(f"site {site or DEFAULT_SITE!r} has no accepted baseline (camsweep baseline accept)")
        return baseline.sweep_id
    raise UsageError(f"bad sweep {ref!r}: a sweep number (camsweep history), 'latest' or 'baseline'")


def diff(db: str | None, site: str | None, sweep_a: str | None, sweep_b: str | None, *, against_baseline: bool,
         show_all: bool, as_json: bool, out: Console) -> None:
    """Changes from sweep A to sweep B (default: the site's newest sweep and the one before it)."""
    with open_store(db) as store:
        if against_baseline:
            if sweep_b is not None:
                raise UsageError("diff --baseline compares the baseline with one sweep (default: the newest)")
            b = _sweep_ref(store, sweep_a or "latest", site)
            record_b = store.sweep(b)
            a = _sweep_ref(store, "baseline", record_b.site)
        elif sweep_a is not None:
            a = _sweep_ref(store, sweep_a, site)
            b = _sweep_ref(store, sweep_b, site) if sweep_b is not None else _sweep_ref(
                store, "latest", store.sweep(a).site)
            record_b = store.sweep(b)
        else:
            b = _sweep_ref(store, "latest", site)
            record_b = store.sweep(b)
            if record_b.previous_sweep_id is None:
                raise UsageError(f"sweep {b} is the first of site {record_b.site!r}: nothing to compare with")
            a = record_b.previous_sweep_id
        site_b = record_b.site
        record_a = store.sweep(a)
        baseline = store.baseline(site_b)
        baseline_doc = store.document(baseline.sweep_id) if baseline and not against_baseline else None
        changes = diff_documents(store.document(a), store.document(b), baseline=baseline_doc)
    shown = changes if show_all else [c for c in changes if c.level != "info" or c.suppressed]
    if as_json:
        _print_json(out, {"from": record_a.__dict__, "to": record_b.__dict__,
                          "baseline_sweep": baseline.sweep_id if baseline else None,
                          "changes": [c.to_dict() for c in changes]})
        return
    hidden = len(changes) - len(shown)
    title = (f"sweep {a} ({_t(record_a.site)}, {_t(_when(record_a.finished_at))}) -> sweep {b} "
             f"({_t(site_b)}, {_t(_when(record_b.finished_at))})")
    if not changes:
        out.print(f"{title}: no change", highlight=False, soft_wrap=True)
        return
    if shown:
        print_changes(out, shown, title=title)
    else:
        out.print(title, highlight=False, soft_wrap=True)
    accepted = sum(1 for c in shown if c.suppressed)
    notes = []
    if accepted:
        notes.append(f"{accepted} marked known: the accepted baseline already shows that state, so they do not "
                     "alert")
    if hidden:
        notes.append(f"{hidden} info-level changes not shown (--all shows them)")
    for note in notes:
        out.print(note, highlight=False, soft_wrap=True)


# ---- baseline -----------------------------------------------------------------------------
def baseline_accept(db: str | None, site: str | None, sweep: str | None, note: str, out: Console) -> None:
    with open_store(db) as store:
        sweep_id = None if sweep is None else _sweep_ref(store, sweep, site)
        record = store.accept_baseline(site, sweep_id, note)
    out.print(f"baseline of site {_t(record.site)}: sweep {record.sweep_id} accepted at {_t(_when(record.accepted_at))}"
              "; changes back to this state no longer alert", highlight=False, soft_wrap=True)


def baseline_show(db: str | None, site: str, as_json: bool, out: Console) -> None:
    with open_store(db) as store:
        record = store.baseline(site)
        sweep = store.sweep(record.sweep_id) if record else None
    if as_json:
        _print_json(out, {"baseline": record.__dict__ if record else None,
                          "sweep": sweep.__dict__ if sweep else None})
        return
    if record is None or sweep is None:
        out.print(f"site {_t(site)} has no accepted baseline (camsweep baseline accept --site {_t(site)})",
                  highlight=False, soft_wrap=True)
        return
    out.print(f"baseline of site {_t(site)}: sweep {sweep.id} ({_t(_when(sweep.finished_at))}: {sweep.devices} "
              f"devices, {sweep.cameras} cameras, {sweep.face_capable} can capture faces), accepted "
              f"{_t(_when(record.accepted_at))}" + (f": {_t(record.note)}" if record.note else ""),
              highlight=False, soft_wrap=True)


def kinds_table() -> list[tuple[str, str, str]]:
    """(kind, level, meaning) rows of the change table, for docs and ``--help``."""
    return [(k.name, k.level or "finding's", k.meaning) for k in CHANGE_KINDS.values()]
