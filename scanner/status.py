"""Exit codes scripts can rely on (DESIGN.md contract)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # usage or input error
    RUNTIME_FAILURE = 3  # e.g. capture could not start, lab could not be built
    INTERRUPTED = 130
