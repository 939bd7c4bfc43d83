"""The ``--creds`` option and the audit table, for ``camsweep audit`` and ``camsweep scan --creds``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.audit.creds import CredentialSet, load_credentials, terminal_prompt
from scanner.models import ScanResult

CREDS_HELP = ("YAML file mapping devices (ip, mac, cidr, vendor or *) to username and password, password_env "
              "or 'password: prompt'. Most specific match wins; one login attempt per device; credentials are "
              "never printed or stored.")
CredsOption = Annotated[Path | None, typer.Option("--creds", metavar="FILE", help=CREDS_HELP)]

STATUS_STYLE = {"ok": "green", "partial": "yellow", "locked": "bold red", "auth-failed": "red",
                "unreachable": "red", "unsupported": "dim", "no-credentials": "dim"}


def load_creds_option(path: Path | None) -> CredentialSet | None:
    """The credentials for ``--creds`` (prompting on a terminal if the file asks); None without the option."""
    if path is None:
        return None
    return load_credentials(path, prompt=terminal_prompt())


def print_audit(console: Console, result: ScanResult) -> None:
    """One row per device: audit status, why, face settings read, configured destinations."""
    rows = [d for d in result.devices if d.audit is not None]
    if not rows:
        return
    table = Table(title="self-audit with the store's credentials")
    for column in ("device", "vendor / model", "audit", "face capable / enabled", "configured destinations",
                   "detail"):
        table.add_column(column, overflow="fold")
    for d in rows:
        assert d.audit is not None
        style = STATUS_STYLE.get(d.audit.status, "")
        face = f"{_tri(d.face_capable)} / {_tri(d.face_capture_enabled)}" if d.audit.read else ""
        dests = [f"{c.host or c.ip or '?'}{':' + str(c.port) if c.port else ''} ({c.what}, {c.operator or '?'})"
                 for c in d.clouds if c.source == "configured"]
        table.add_row(d.ip, escape(" ".join(x for x in (d.vendor, d.model) if x)),
                      f"[{style}]{d.audit.status}[/]" if style else d.audit.status, face,
                      escape("\n".join(dests)), escape(d.audit.detail))
    console.print(table)


def _tri(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")
