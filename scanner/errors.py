"""User-facing errors.

Every error a user can cause or meet is one of these; the CLI prints ``str(error)`` as one line
on stderr and exits with ``error.exit_code`` (a traceback only with ``--debug``)::

    CamsweepError                 exit 3 (runtime failure)
    ├── UsageError                exit 2: bad target, bad option, bad input file
    ├── PrivilegeError            exit 2: needs root / CAP_NET_ADMIN / CAP_NET_RAW
    └── LabError                  exit 3: the lab could not be built, reached or removed

Network outcomes of probes are never exceptions: they are data (a status string).
"""

from __future__ import annotations

from scanner.status import ExitStatus


class CamsweepError(Exception):
    """Base class: a failure the user should read as one line."""

    exit_code: int = ExitStatus.RUNTIME_FAILURE


class UsageError(CamsweepError):
    """The command line or an input file is wrong."""

    exit_code = ExitStatus.USAGE


class PrivilegeError(CamsweepError):
    """The operation needs privileges this process does not have."""

    exit_code = ExitStatus.USAGE


class LabError(CamsweepError):
    """The emulated store network could not be built, reached or removed."""

    exit_code = ExitStatus.RUNTIME_FAILURE
