"""``camsweep signatures validate | list | test``: the signature database from the command line.

Registered in ``scanner/cli.py`` as ``app.add_typer(sig_app, name="signatures")``. Exit codes:
0 clean, 2 (``ExitStatus.USAGE``) when the signatures or the given observation are invalid.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from scanner.signatures.loader import SignatureError, default_root, load_signatures, observation_from_dict, validate
from scanner.signatures.matcher import SignatureSet
from scanner.signatures.model import MODEL_SOURCE, SOURCES, Signature
from scanner.status import ExitStatus

sig_app = typer.Typer(
    help="Device signatures (signatures/**/<id>.yaml): check them, list them, try them on an observation.",
    no_args_is_help=True,
)

PathOption = Annotated[
    Path | None,
    typer.Option("--path", envvar="CAMSWEEP_SIGNATURES", file_okay=False,
                  help="Signature directory (default: the one shipped with camsweep)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=int(ExitStatus.USAGE))


def _signatures(path: Path | None) -> SignatureSet:
    try:
        return load_signatures(path)
    except SignatureError as exc:
        raise _fail(str(exc)) from None


def _claims_text(sig: Signature) -> str:
    parts = [f"{k}={json.dumps(v)}" for k, v in sig.claims.items()]
    parts += [f"{e.claim}=<{e.type}>" for e in sig.extractors if e.claim not in sig.claims]
    return ", ".join(dict.fromkeys(parts))


@sig_app.command("validate")
def validate_command(path: PathOption = None) -> None:
    """Check every signature (schema, identifiers, regexes, examples as tests) and print every problem."""
    from scanner.passive.clouds import validate_cloud_signatures

    root = path or default_root()
    problems = validate(root)
    if (root / "clouds").is_dir():
        problems += [f"clouds: {p}" for p in validate_cloud_signatures(root / "clouds")]
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise _fail(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {root}")
    sigs = load_signatures(root)
    examples = sum(len(s.examples) + len(s.counter_examples) for s in sigs)
    typer.echo(f"{len(sigs)} signatures, {examples} examples: all pass ({root}, version {sigs.version})")


@sig_app.command("list")
def list_command(
    source: Annotated[str | None, typer.Option("--source", help="Only signatures for this observation source.")] = None,
    path: PathOption = None,
    as_json: JsonOption = False,
) -> None:
    """List signatures: id, sources, certainty and what they claim."""
    if source is not None and source not in SOURCES and source != MODEL_SOURCE:
        raise _fail(f"unknown source {source!r} (known: {', '.join((*SOURCES, MODEL_SOURCE))})")
    sigs = _signatures(path)
    rows = [s for s in sigs if source is None or source in s.source]
    if as_json:
        typer.echo(json.dumps([{"id": s.id, "name": s.info.name, "source": list(s.source), "certainty": s.certainty,
                                "claims": s.claims, "extracts": [e.claim for e in s.extractors],
                                "examples": len(s.examples)} for s in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} signatures", show_lines=False)
    table.add_column("id", overflow="fold", min_width=min(40, max((len(s.id) for s in rows), default=2)))
    table.add_column("sources", overflow="fold")
    table.add_column("certainty", justify="right")
    table.add_column("claims", overflow="fold")
    for sig in rows:
        table.add_row(Text(sig.id), Text(", ".join(sig.source)), f"{sig.certainty:.2f}", Text(_claims_text(sig)))
    Console().print(table)


def _read_observations(spec: str) -> list[Any]:
    try:
        text = sys.stdin.read() if spec == "-" else Path(spec).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {spec}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _fail(f"{spec}: not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _fail(f"{spec}: no observation")
    return items


@sig_app.command("test")
def test_command(
    observation: Annotated[str, typer.Argument(
        help='JSON file (or - for stdin) with one observation or a list, e.g. '
             '{"source": "http", "fields": {"server": "App-webs/"}}; source "model" with fields '
             '{vendor, model} tries the model knowledge.')],
    path: PathOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show which signatures match an observation, with their claims."""
    sigs = _signatures(path)
    items = _read_observations(observation)
    problems: list[str] = []
    observations = [observation_from_dict(item, problems, label=f"observation {i}")
                    for i, item in enumerate(items, 1)]
    if problems:
        raise _fail("\n".join(problems))
    results = [(obs, sigs.match(obs)) for obs in observations if obs is not None]
    if as_json:
        typer.echo(json.dumps([{"source": obs.source, "matches": [dataclasses.asdict(m) for m in matches]}
                               for obs, matches in results], indent=2))
        return
    console = Console()
    for index, (obs, matches) in enumerate(results, 1):
        if not matches:
            console.print(Text(f"observation {index} ({obs.source}): no signature matched"))
            continue
        table = Table(title=f"observation {index} ({obs.source}): {len(matches)} matching signatures")
        table.add_column("signature", overflow="fold", min_width=min(40, max(len(m.signature_id) for m in matches)))
        table.add_column("certainty", justify="right")
        table.add_column("claims", overflow="fold")
        table.add_column("matched", overflow="fold")
        for m in matches:
            claims = ", ".join(f"{k}={json.dumps(v)}" for k, v in m.claims.items())
            table.add_row(Text(m.signature_id), f"{m.certainty:.2f}", Text(claims), Text(m.detail))
        console.print(table)
