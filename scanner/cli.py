"""The ``camsweep`` command line: typer declarations only; the work happens in the engine/lab."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import scanner
from scanner.errors import CamsweepError
from scanner.status import ExitStatus

app = typer.Typer(
    name="camsweep",
    help="Find hidden face-capture cameras on a store network, and which cloud they upload pictures to.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(help="The emulated store network: train, test and demo without real cameras.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")

out = Console()
err = Console(stderr=True)

LabId = Annotated[int, typer.Option("--lab-id", envvar="CAMSWEEP_LAB_ID", help="Which lab (0-99); names carry it.")]


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", envvar="CAMSWEEP_DEBUG", help="Show tracebacks.")] = False,
) -> None:
    """camsweep: cameras, face capture and picture uploads on store networks."""


@app.command()
def version() -> None:
    """Print the camsweep version."""
    out.print(f"camsweep {scanner.__version__}")


@lab_app.command("up")
def lab_up(
    lab_id: LabId = 0,
    mode: Annotated[str, typer.Option(help="netns (root), loopback (no privileges) or auto.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for addresses, MACs, serials and visitors.")] = 1,
    manifest: Annotated[Path | None, typer.Option(help="Also write the ground-truth manifest here.")] = None,
    visitor_interval: Annotated[float, typer.Option(help="Mean seconds between simulated visitors.")] = 45.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build the store network and return once every device answers."""
    from scanner.lab import lab

    started = time.monotonic()
    doc = lab.up(lab_id, mode, seed, manifest_path=manifest, visitor_interval=visitor_interval)
    if as_json:
        out.print_json(json.dumps(doc))
        return
    _print_devices(doc)
    note = " (a stale lab was cleaned first)" if doc.get("stale_lab_cleaned") else ""
    out.print(f"lab {lab_id} up in {doc['mode']} mode, {len(doc['devices'])} devices, "
              f"{time.monotonic() - started:.1f}s{note}")
    for item in doc["features"]["unavailable"]:
        out.print(f"  unavailable in this mode: {item}")
    if doc["inspector"]["namespace"]:
        out.print(f"  run camsweep inside the inspector: camsweep lab exec --lab-id {lab_id} -- camsweep …")


@lab_app.command("down")
def lab_down(lab_id: LabId = 0) -> None:
    """Remove every namespace, veth and process the lab made (safe to repeat)."""
    from scanner.lab import lab

    removed = lab.down(lab_id)
    out.print(f"lab {lab_id} down" + (f" ({len(removed)} namespaces removed)" if removed else ""))


@lab_app.command("status")
def lab_status(lab_id: LabId = 0, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show whether each node answers, and what it has done (uploads, heartbeats)."""
    from scanner.lab import lab

    info = lab.status(lab_id)
    if as_json:
        out.print_json(json.dumps(info))
        return
    if not info["nodes"]:
        out.print(f"lab {lab_id} is not up")
        raise typer.Exit(ExitStatus.OK)
    table = Table(title=f"lab {lab_id} ({info['mode']}, seed {info['seed']})")
    for column in ("node", "ip", "answering", "activity"):
        table.add_column(column)
    for node in info["nodes"]:
        counters = node["counters"]
        activity = ", ".join(f"{k}={v}" for k, v in sorted(counters.items()) if k in ACTIVITY_COUNTERS)
        answering = "hung: " + node["hung"] if node["hung"] else ("yes" if node["answering"] else "NO")
        table.add_row(node["name"], node["ip"], answering, activity)
    out.print(table)


ACTIVITY_COUNTERS = {"pictures_uploaded", "heartbeats", "mqtt_pings", "p2p_registrations", "polls",
                     "config_exchanges", "video_bytes", "walkbys", "dns_queries"}


@lab_app.command("manifest")
def lab_manifest(lab_id: LabId = 0) -> None:
    """Print the ground-truth manifest of a running lab (JSON)."""
    from scanner.lab import lab

    sys.stdout.write(json.dumps(lab.load_manifest(lab_id), indent=2) + "\n")


@lab_app.command("walkby")
def lab_walkby(
    device: Annotated[str | None, typer.Argument(help="Device name or IP; default: every face camera.")] = None,
    lab_id: LabId = 0,
) -> None:
    """A simulated visitor walks past: face-capture devices upload their pictures."""
    from scanner.lab import lab

    fired = lab.walkby(lab_id, device)
    if not fired:
        out.print("no device with a face-capture behaviour")
    for name in sorted(fired):
        out.print(f"visitor walked past {name}")


@lab_app.command("watch")
def lab_watch(
    device: Annotated[str | None, typer.Argument(help="Device name or IP; default: every camera.")] = None,
    seconds: Annotated[float, typer.Option(help="How long someone watches the live view.")] = 10.0,
    lab_id: LabId = 0,
) -> None:
    """Someone opens the live view in the vendor app: video flows through the cloud relay."""
    from scanner.lab import lab

    fired = lab.watch(lab_id, device, seconds)
    for name in sorted(fired):
        out.print(f"live view of {name} for {seconds:.0f}s")


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(ctx: typer.Context, lab_id: LabId = 0) -> None:
    """Run a command in the inspector namespace (where camsweep runs): lab exec -- CMD ..."""
    from scanner.lab import lab

    raise typer.Exit(lab.exec_in_inspector(lab_id, list(ctx.args)))


@app.command()
def demo(
    lab_id: LabId = 0,
    mode: Annotated[str, typer.Option(help="netns (root), loopback or auto.")] = "auto",
    seed: Annotated[int, typer.Option(help="Lab seed.")] = 1,
) -> None:
    """Bring the built-in lab up, show what is on it, let a visitor walk by, take it down."""
    from scanner.lab import lab

    started = time.monotonic()
    doc = lab.up(lab_id, mode, seed, visitor_interval=0)
    try:
        _print_devices(doc)
        fired = lab.walkby(lab_id)
        out.print(f"a visitor walked past {len(fired)} face-capture devices; waiting for their uploads…")
        time.sleep(4)
        status = lab.status(lab_id)
        uploads = {n["name"]: n["counters"].get("pictures_uploaded", 0) for n in status["nodes"]}
        for name in sorted(n for n, count in uploads.items() if count):
            out.print(f"  {name} uploaded {uploads[name]} pictures")
    finally:
        lab.down(lab_id)
    out.print(f"demo done in {time.monotonic() - started:.1f}s (lab {lab_id}, {doc['mode']} mode, taken down)")


def _print_devices(doc: dict[str, Any]) -> None:
    table = Table(title=f"store network {doc['subnet']} (lab {doc['lab_id']}, {doc['mode']}, seed {doc['seed']})")
    for column in ("device", "ip", "mac", "vendor / model", "type", "face", "clouds"):
        table.add_column(column)
    for d in sorted(doc["devices"], key=lambda d: tuple(int(x) for x in d["ip"].split("."))):
        clouds = ", ".join(sorted({c["host"] for c in d["clouds"]})) or "-"
        table.add_row(d["name"], d["ip"], d["mac"], f"{d['vendor']} {d['model']}", d["device_type"],
                      "yes" if d["face_capable"] else "no", clouds)
    out.print(table)


def main() -> None:
    """Console entry point: one-line errors and stable exit codes (traceback only with --debug)."""
    debug = "--debug" in sys.argv or os.environ.get("CAMSWEEP_DEBUG", "").lower() in ("1", "true", "yes")
    try:
        app()
    except CamsweepError as exc:
        if debug:
            raise
        err.print(f"camsweep: error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("camsweep: interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
