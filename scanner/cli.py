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
from scanner.errors import CamsweepError, UsageError
from scanner.signatures.commands import sig_app
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
app.add_typer(sig_app, name="signatures")

# Not a terminal (CI logs, pipes): wide enough that the device table stays readable.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

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


def _parse_ports(text: str | None) -> list[int] | None:
    if not text:
        return None
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            if not (lo.isdigit() and hi.isdigit()):
                raise UsageError(f"bad port range {part!r}")
            ports.extend(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            ports.append(int(part))
        else:
            raise UsageError(f"bad port {part!r} in --ports")
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise UsageError("--ports needs port numbers between 1 and 65535")
    return sorted(set(ports))


def _parse_port_map(text: str | None) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        src, sep, dst = part.partition("=")
        if not sep or not src.strip().isdigit() or not dst.strip().isdigit():
            raise UsageError(f"bad --port-map entry {part!r} (want PORT=PORT)")
        mapping[int(src)] = int(dst)
    return mapping


@app.command()
def scan(
    targets: Annotated[list[str] | None, typer.Argument(help="CIDR, range (a.b.c.d-e), address, host name or auto.")]
    = None,
    target_file: Annotated[Path | None, typer.Option("-iL", "--target-file", help="Read targets from a file.")]
    = None,
    iface: Annotated[str | None, typer.Option("--iface", "-i", envvar="CAMSWEEP_IFACE",
                                              help="Interface to scan from (and whose subnet 'auto' means).")]
    = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the result document to PATH, or - for stdout.")]
    = None,
    ports: Annotated[str | None, typer.Option(help="TCP ports to check, e.g. 80,554,8000-8010.")] = None,
    allow_public: Annotated[bool, typer.Option("--allow-public", help="Allow public addresses (off: refused).")]
    = False,
    max_hosts: Annotated[int, typer.Option("--max-hosts", help="Refuse more hosts than this.")] = 4096,
    rate: Annotated[float, typer.Option(envvar="CAMSWEEP_RATE", help="New connections/datagrams per second.")]
    = 300.0,
    multicast: Annotated[bool | None, typer.Option("--multicast/--no-multicast",
                                                   help="Multicast discovery (default: on the local segment).")]
    = None,
    port_map: Annotated[str | None, typer.Option("--port-map", help="Reach PORT at another port, e.g. 80=10080 "
                                                  "(port-forwarded setups, the unprivileged lab).")] = None,
    listen: Annotated[float, typer.Option("--listen", metavar="SECONDS", help="Also listen passively this long "
                                          "(root): which device uploads what to which cloud.")] = 0.0,
    listen_iface: Annotated[str | None, typer.Option("--listen-iface", envvar="CAMSWEEP_LISTEN_IFACE",
                                                     help="Interface to listen on (a mirror/SPAN port; default "
                                                     "--iface).")] = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks for --listen "
                                                    "(CIDR; default: private and documentation ranges).")] = None,
) -> None:
    """Discover every device, and identify cameras, vendor, model, firmware and face capability."""
    from scanner import engine
    from scanner.report.table import print_devices
    from scanner.targets import read_target_file

    specs = list(targets or [])
    if target_file is not None:
        specs.extend(read_target_file(target_file))
    options = engine.ScanOptions(
        targets=specs, iface=iface, ports=_parse_ports(ports), allow_public=allow_public, max_hosts=max_hosts,
        rate=rate, multicast=multicast, port_map=_parse_port_map(port_map),
        listen_seconds=listen, listen_iface=listen_iface, local_networks=local or None,
    )
    if listen < 0:
        raise UsageError("--listen must be a positive number of seconds")
    with _progress() as progress:
        result = engine.scan(options, progress)
    if json_out == "-":
        sys.stdout.write(result.to_json() + "\n")
    else:
        if json_out:
            _write_text(Path(json_out), result.to_json() + "\n")
        print_devices(out, result)
    for note in result.scan.notes:
        err.print(f"note: {note}", highlight=False)
    if result.scan.interrupted:
        err.print("camsweep: interrupted; the partial result above was kept", highlight=False)
        raise typer.Exit(ExitStatus.INTERRUPTED)


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


class _progress:
    """A rich progress display on stderr while the scan runs (only on a terminal)."""

    def __enter__(self) -> Any:
        from rich.progress import Progress

        self._bar = Progress(console=err, transient=True) if err.is_terminal else None
        self._tasks: dict[str, Any] = {}
        if self._bar is not None:
            self._bar.start()
        return self.update

    def update(self, phase: str, done: int, total: int) -> None:
        if self._bar is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._bar.add_task(phase, total=max(total, 1))
        self._bar.update(self._tasks[phase], completed=done, total=max(total, 1))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
def analyze(
    captures: Annotated[list[Path], typer.Argument(help="pcap or pcapng files (e.g. from a mirror port).")],
    json_out: Annotated[str | None, typer.Option("--json", help="Write the result document to PATH, or - for stdout.")]
    = None,
    scan_json: Annotated[Path | None, typer.Option("--scan", help="Merge into this scan's result document.")] = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks (CIDR; default: "
                                                    "private and documentation ranges).")] = None,
) -> None:
    """Which device sends what to which cloud: DNS, TLS SNI, HTTP heads and flow behaviour from captures."""
    from scanner.models import ScanResult
    from scanner.passive.analyze import analyze_captures, build_result
    from scanner.report.table import print_clouds

    scan_doc = None
    if scan_json is not None:
        try:
            scan_doc = ScanResult.from_dict(json.loads(scan_json.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read scan result {scan_json}: {exc}") from exc
    started = time.time()
    table, summary = analyze_captures(list(captures), local_networks=local or None)
    result = build_result(table, summary, scan=scan_doc, started=started)
    if json_out == "-":
        sys.stdout.write(result.to_json() + "\n")
    else:
        if json_out:
            _write_text(Path(json_out), result.to_json() + "\n")
        print_clouds(out, result)
    for note in summary.notes():
        err.print(f"note: {note}", highlight=False)


@app.command()
def listen(
    iface: Annotated[str, typer.Option("--iface", "-i", envvar="CAMSWEEP_IFACE", help="Interface to listen on "
                                       "(a mirror/SPAN port).")],
    seconds: Annotated[float, typer.Option(help="How long to listen.")] = 60.0,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the result document to PATH, or - for stdout.")]
    = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks (CIDR).")] = None,
) -> None:
    """Like analyze, live: which device sends what to which cloud, from a mirror port (root)."""
    from scanner.passive.analyze import PassiveSummary, analyze_frames, build_result
    from scanner.passive.flows import FlowTable
    from scanner.passive.live import LiveStats, capture
    from scanner.report.table import print_clouds

    started = time.time()
    stats = LiveStats()
    summary = PassiveSummary(files=[f"live:{iface}"])
    table = FlowTable(local_networks=local or None)
    frames = capture(iface, seconds, stats)
    try:
        analyze_frames(table, summary, frames)
    except KeyboardInterrupt:
        summary.files[0] += " (interrupted)"
    finally:
        frames.close()
    summary.read.packets = stats.received
    result = build_result(table, summary, started=started)
    result.scan.iface = iface
    result.scan.notes.append(f"kernel: {stats.kernel_packets} packets passed the filters, {stats.kernel_drops} dropped")
    if json_out == "-":
        sys.stdout.write(result.to_json() + "\n")
    else:
        if json_out:
            _write_text(Path(json_out), result.to_json() + "\n")
        print_clouds(out, result)
    for note in result.scan.notes:
        err.print(f"note: {note}", highlight=False)


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


@lab_app.command("pcap")
def lab_pcap(
    output: Annotated[Path, typer.Argument(help="The pcap file to write.")],
    seconds: Annotated[float, typer.Option(help="How long to capture.")] = 60.0,
    walkby_every: Annotated[float, typer.Option(help="A visitor walks by every N seconds (0: never).")] = 8.0,
    watch: Annotated[list[str] | None, typer.Option(help="Open the live view of DEVICE during the capture.")]
    = None,
    lab_id: LabId = 0,
) -> None:
    """Record the lab's traffic (the mirror port in netns mode) while visitors walk by."""
    from scanner.lab.capture import record

    count = record(lab_id, output, seconds, walkby_every=walkby_every, watch=watch)
    out.print(f"{count} packets written to {output}")


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
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scan's result document here.")]
    = None,
) -> None:
    """Build the lab, scan it as an inspector would, let a visitor walk by, take the lab down."""
    from scanner.lab import demo as demo_mod

    raise typer.Exit(demo_mod.run(out, err, lab_id=lab_id, mode=mode, seed=seed, json_out=json_out))


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
