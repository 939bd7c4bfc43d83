"""Everything a command does with a finished result: assess, write JSON/CSV/HTML, print, exit status.

``scan``, ``analyze``, ``listen`` (and ``demo``, ``sweep``) build an ``OutputOptions`` from the
shared report options, call ``options.check()`` before any work starts (bad values and unwritable
paths fail fast with a one-line UsageError, exit 2), and end with ``emit``::

    status = emit(result, options, out, err)   # ExitStatus.FINDINGS (1) when --fail-on is met
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from scanner.errors import UsageError
from scanner.models import SEVERITIES, Finding, ScanResult
from scanner.report.i18n import LANGS
from scanner.status import ExitStatus

FAIL_ON_LEVELS = ("high", "medium", "low")


@dataclass
class OutputOptions:
    """Where the result goes and how it is judged. ``"-"`` as a path means stdout (one output at most)."""

    json_path: str | None = None
    csv_path: str | None = None
    html_path: str | None = None
    lang: str = "en"
    jurisdiction: str = "cn"
    fail_on: str | None = None  # high | medium | low; None: never exit 1 for findings
    premises: str | None = None
    operator: str | None = None
    case_id: str | None = None
    # None: assess unless the caller already put findings on the result; True: always; False: never.
    assess: bool | None = None

    def check(self) -> None:
        """Raise UsageError (one line) for a bad value or a path that cannot be written."""
        if self.lang not in LANGS:
            raise UsageError(f"--lang must be one of {', '.join(LANGS)}, not {self.lang!r}")
        if self.fail_on is not None and self.fail_on not in FAIL_ON_LEVELS:
            raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON_LEVELS)}, not {self.fail_on!r}")
        if self.assess is not False:
            from scanner.assess import JURISDICTIONS

            if self.jurisdiction not in JURISDICTIONS:
                raise UsageError(f"--jurisdiction must be one of {', '.join(JURISDICTIONS)}, "
                                 f"not {self.jurisdiction!r}")
        stdout = [flag for flag, path in self._paths() if path == "-"]
        if len(stdout) > 1:
            raise UsageError(f"only one output can go to stdout, not {' and '.join(stdout)}")
        seen: dict[str, str] = {}
        for flag, path in self._paths():
            if path is None or path == "-":
                continue
            if not path:
                raise UsageError(f"{flag} needs a file path (or - for stdout)")
            _check_writable(flag, Path(path))
            key = os.path.abspath(path)
            if key in seen:
                raise UsageError(f"{seen[key]} and {flag} name the same file {path}")
            seen[key] = flag

    def _paths(self) -> list[tuple[str, str | None]]:
        return [("--json", self.json_path), ("--csv", self.csv_path), ("--html", self.html_path)]

    @property
    def to_stdout(self) -> bool:
        return any(path == "-" for _, path in self._paths())


def _check_writable(flag: str, path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"cannot write {flag} {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {flag} {path}: no directory {parent}")
    if path.exists() and not os.access(path, os.W_OK) or not path.exists() and not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {flag} {path}: permission denied")


def _write(flag: str, path: str, data: str, out: Console, *, bom: bool = False) -> None:
    if path == "-":
        out.file.write(data)
        out.file.flush()
        return
    try:
        Path(path).write_text(data, encoding="utf-8-sig" if bom else "utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write {flag} {path}: {exc.strerror or exc}") from exc


def fails(result: ScanResult, fail_on: str | None) -> bool:
    """Whether a finding is at or above ``fail_on`` (never when ``fail_on`` is None)."""
    return bool(at_or_above(result, fail_on))


def at_or_above(result: ScanResult, fail_on: str | None) -> list[Finding]:
    """The findings at or above ``fail_on`` (a finding with an unknown severity, from a file, never counts)."""
    if fail_on is None:
        return []
    from scanner.assess import severity_at_least

    return [f for f in result.findings if f.severity in SEVERITIES and severity_at_least(f.severity, fail_on)]


def emit(result: ScanResult, options: OutputOptions, out: Console, err: Console) -> int:
    """Assess (see ``OutputOptions.assess``), write the requested outputs, print the terminal tables
    (unless an output went to stdout) and return the exit status: ``ExitStatus.FINDINGS`` when a
    finding is at or above ``--fail-on``, else ``ExitStatus.OK``."""
    options.check()
    if options.assess or (options.assess is None and not result.findings):
        from scanner.assess import assess

        result.findings = assess(result, jurisdiction=options.jurisdiction)
    if options.json_path:
        _write("--json", options.json_path, result.to_json() + "\n", out)
    if options.csv_path:
        from scanner.report.csv import csv_text

        _write("--csv", options.csv_path, csv_text(result), out, bom=options.csv_path != "-")
    if options.html_path:
        from scanner.report.html import CaseInfo, render_html

        case = CaseInfo(premises=options.premises, operator=options.operator, case_id=options.case_id)
        _write("--html", options.html_path, render_html(result, lang=options.lang, case=case,
                                                         generated=time.time()), out)
    if not options.to_stdout:
        print_tables(result, out, options.lang)
    failing = at_or_above(result, options.fail_on)
    if failing:
        err.print(f"camsweep: {len(failing)} finding(s) at or above --fail-on {options.fail_on}", highlight=False)
        return ExitStatus.FINDINGS
    return ExitStatus.OK


def print_tables(result: ScanResult, out: Console, lang: str = "en") -> None:
    """Devices (when identified, or when nothing else is there), cloud destinations (when any), findings."""
    from scanner.report.table import print_clouds, print_devices, print_findings

    has_clouds = any(d.clouds for d in result.devices)
    identified = any(d.evidence or d.vendor or d.device_type for d in result.devices)
    if identified or not has_clouds:
        print_devices(out, result)
    if has_clouds:
        print_clouds(out, result)
    print_findings(out, result.findings, lang)
