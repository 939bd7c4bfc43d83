"""The ``camsweep`` command line: typer declarations only; the work happens in the engine/lab."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import scanner
from scanner.audit.cli import CredsOption, load_creds_option, print_audit
from scanner.errors import CamsweepError, UsageError
from scanner.report.options import (
    CaseId,
    CsvOut,
    FailOn,
    HtmlOut,
    JsonOut,
    Jurisdiction,
    Lang,
    Operator,
    Premises,
    report_options,
)
from scanner.signatures.commands import sig_app
from scanner.status import ExitStatus
from scanner.targets import parse_local_networks

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


# The scan options every scanning command (scan, audit, sweep) shares, declared once.
Targets = Annotated[list[str] | None, typer.Argument(help="CIDR, range (a.b.c.d-e), address, host name or auto.")]
TargetFile = Annotated[Path | None, typer.Option("-iL", "--target-file", help="Read targets from a file.")]
Iface = Annotated[str | None, typer.Option("--iface", "-i", envvar="CAMSWEEP_IFACE",
                                           help="Interface to scan from (and whose subnet 'auto' means).")]
Ports = Annotated[str | None, typer.Option(help="TCP ports to check, e.g. 80,554,8000-8010.")]
AllowPublic = Annotated[bool, typer.Option("--allow-public", help="Allow public addresses (off: refused).")]
MaxHosts = Annotated[int, typer.Option("--max-hosts", help="Refuse more hosts than this.")]
Rate = Annotated[float, typer.Option(envvar="CAMSWEEP_RATE", help="New connections/datagrams per second.")]
Listen = Annotated[float, typer.Option("--listen", metavar="SECONDS", help="Also listen passively this long (root): "
                                       "which device uploads what to which cloud.")]
ListenIface = Annotated[str | None, typer.Option("--listen-iface", envvar="CAMSWEEP_LISTEN_IFACE",
                                                 help="Interface to listen on (a mirror/SPAN port; default --iface).")]


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
    targets: Targets = None,
    target_file: TargetFile = None,
    iface: Iface = None,
    json_out: JsonOut = None, csv_out: CsvOut = None, html_out: HtmlOut = None, lang: Lang = "en",
    jurisdiction: Jurisdiction = "cn", fail_on: FailOn = None, premises: Premises = None, operator: Operator = None,
    case_id: CaseId = None,
    ports: Ports = None,
    allow_public: AllowPublic = False,
    max_hosts: MaxHosts = 4096,
    rate: Rate = 300.0,
    multicast: Annotated[bool | None, typer.Option("--multicast/--no-multicast",
                                                   help="Multicast discovery (default: on the local segment).")]
    = None,
    port_map: Annotated[str | None, typer.Option("--port-map", help="Reach PORT at another port, e.g. 80=10080 "
                                                  "(port-forwarded setups, the unprivileged lab).")] = None,
    listen: Listen = 0.0,
    listen_iface: ListenIface = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks for --listen "
                                                    "(CIDR; default: private and documentation ranges).")] = None,
    creds: CredsOption = None,
) -> None:
    """Discover every device, and identify cameras, vendor, model, firmware and face capability."""
    from scanner import engine
    from scanner.report.output import emit
    from scanner.targets import read_target_file

    report = report_options(json_out=json_out, csv_out=csv_out, html_out=html_out, lang=lang,
                            jurisdiction=jurisdiction, fail_on=fail_on, premises=premises, operator=operator,
                            case_id=case_id)
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
    options.creds = load_creds_option(creds)  # --creds: audit the devices found (scanner.audit)
    with _progress() as progress:
        result = engine.scan(options, progress)
    status = emit(result, report, out, err)
    if options.creds is not None and not report.to_stdout:
        print_audit(out, result)
    for note in result.scan.notes:
        err.print(f"note: {note}", highlight=False)
    if result.scan.interrupted:
        err.print("camsweep: interrupted; the partial result above was kept", highlight=False)
        raise typer.Exit(ExitStatus.INTERRUPTED)
    if status:
        raise typer.Exit(status)


@app.command()
def audit(
    targets: Targets = None,
    creds: CredsOption = None,
    target_file: TargetFile = None,
    iface: Iface = None,
    json_out: JsonOut = None, csv_out: CsvOut = None, html_out: HtmlOut = None, lang: Lang = "en",
    jurisdiction: Jurisdiction = "cn", fail_on: FailOn = None, premises: Premises = None, operator: Operator = None,
    case_id: CaseId = None,
    ports: Ports = None,
    allow_public: AllowPublic = False,
    max_hosts: MaxHosts = 4096,
    rate: Rate = 300.0,
    port_map: Annotated[str | None, typer.Option("--port-map", help="Reach PORT at another port, e.g. 80=10080.")]
    = None,
) -> None:
    """Scan, then log in to each device with the store's own credentials (one attempt, read-only) and read
    the clouds it is configured to use and whether face capture is on."""
    if creds is None:
        raise UsageError("camsweep audit needs --creds FILE (the store's device credentials)")
    scan(targets=targets, target_file=target_file, iface=iface, json_out=json_out, csv_out=csv_out,
         html_out=html_out, lang=lang, jurisdiction=jurisdiction, fail_on=fail_on, premises=premises,
         operator=operator, case_id=case_id, ports=ports, allow_public=allow_public, max_hosts=max_hosts, rate=rate,
         port_map=port_map, creds=creds)


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
    json_out: JsonOut = None, csv_out: CsvOut = None, html_out: HtmlOut = None, lang: Lang = "en",
    jurisdiction: Jurisdiction = "cn", fail_on: FailOn = None, premises: Premises = None, operator: Operator = None,
    case_id: CaseId = None,
    scan_json: Annotated[Path | None, typer.Option("--scan", help="Merge into this scan's result document.")] = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks (CIDR; default: "
                                                    "private and documentation ranges).")] = None,
) -> None:
    """Which device sends what to which cloud: DNS, TLS SNI, HTTP heads and flow behaviour from captures."""
    from scanner.models import ScanResult
    from scanner.passive.analyze import analyze_captures, build_result
    from scanner.report.output import emit

    # assess=True: a merged scan document's findings predate the clouds seen in the capture
    report = report_options(json_out=json_out, csv_out=csv_out, html_out=html_out, lang=lang,
                            jurisdiction=jurisdiction, fail_on=fail_on, premises=premises, operator=operator,
                            case_id=case_id, assess=True)
    scan_doc = None
    if scan_json is not None:
        try:
            scan_doc = ScanResult.from_dict(json.loads(scan_json.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read scan result {scan_json}: {exc}") from exc
    started = time.time()
    table, summary = analyze_captures(list(captures), local_networks=parse_local_networks(local))
    result = build_result(table, summary, scan=scan_doc, started=started)
    result.scan.interrupted = result.scan.interrupted or summary.interrupted
    status = emit(result, report, out, err)
    for note in summary.notes():
        err.print(f"note: {note}", highlight=False)
    _finished_without_teardown.append(True)
    if summary.interrupted:
        err.print("camsweep: interrupted; the partial result above was kept", highlight=False)
        raise typer.Exit(ExitStatus.INTERRUPTED)
    if status:
        raise typer.Exit(status)


@app.command()
def listen(
    iface: Annotated[str, typer.Option("--iface", "-i", envvar="CAMSWEEP_IFACE", help="Interface to listen on "
                                       "(a mirror/SPAN port).")],
    seconds: Annotated[float, typer.Option(help="How long to listen.")] = 60.0,
    json_out: JsonOut = None, csv_out: CsvOut = None, html_out: HtmlOut = None, lang: Lang = "en",
    jurisdiction: Jurisdiction = "cn", fail_on: FailOn = None, premises: Premises = None, operator: Operator = None,
    case_id: CaseId = None,
    local: Annotated[list[str] | None, typer.Option("--local", help="The store's own networks (CIDR).")] = None,
) -> None:
    """Like analyze, live: which device sends what to which cloud, from a mirror port (root)."""
    from scanner.passive.analyze import PassiveSummary, analyze_frames, build_result
    from scanner.passive.flows import FlowTable
    from scanner.passive.live import LiveStats, capture
    from scanner.report.output import emit

    report = report_options(json_out=json_out, csv_out=csv_out, html_out=html_out, lang=lang,
                            jurisdiction=jurisdiction, fail_on=fail_on, premises=premises, operator=operator,
                            case_id=case_id)
    started = time.time()
    stats = LiveStats()
    summary = PassiveSummary(files=[f"live:{iface}"])
    table = FlowTable(local_networks=parse_local_networks(local))
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
    status = emit(result, report, out, err)
    for note in result.scan.notes:
        err.print(f"note: {note}", highlight=False)
    if status:
        raise typer.Exit(status)


@lab_app.command("up")
def lab_up(
    lab_id: LabId = 0,
    mode: Annotated[str, typer.Option(help="netns (root), loopback (no privileges) or auto.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for addresses, MACs, serials and visitors.")] = 1,
    manifest: Annotated[Path | None, typer.Option(help="Also write the ground-truth manifest here.")] = None,
    visitor_interval: Annotated[float, typer.Option(help="Mean seconds between simulated visitors.")] = 45.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    without: Annotated[list[str] | None, typer.Option("--without", metavar="DEVICE", help="Change the store: "
                                                      "leave this device out.")] = None,
    firmware: Annotated[list[str] | None, typer.Option("--firmware", metavar="DEVICE=STRING", help="Change the "
                                                       "store: this device reports another firmware.")] = None,
    upload: Annotated[list[str] | None, typer.Option("--upload", metavar="DEVICE=HOST", help="Change the store: "
                                                     "this device also sends pictures to HOST.")] = None,
    face_capture: Annotated[list[str] | None, typer.Option("--face-capture", metavar="DEVICE=on|off", help="Change "
                                                           "the store: switch face capture on or off.")] = None,
) -> None:
    """Build the store network and return once every device answers."""
    from scanner.lab import lab
    from scanner.lab.plan import LabChanges

    def pairs(items: list[str] | None, flag: str) -> dict[str, str]:
        found = dict(item.split("=", 1) for item in items or [] if "=" in item)
        if len(found) != len(items or []):
            raise UsageError(f"{flag} wants DEVICE=VALUE")
        return found

    switches = pairs(face_capture, "--face-capture")
    if any(v not in ("on", "off") for v in switches.values()):
        raise UsageError("--face-capture wants DEVICE=on or DEVICE=off")
    changes = LabChanges.build(without=without, firmware=pairs(firmware, "--firmware"),
                               uploads=pairs(upload, "--upload"),
                               face_capture={k: v == "on" for k, v in switches.items()})
    started = time.monotonic()
    doc = lab.up(lab_id, mode, seed, manifest_path=manifest, visitor_interval=visitor_interval, changes=changes)
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
    html_out: Annotated[Path, typer.Option("--html", help="Where to write the HTML report.")]
    = Path("camsweep-demo-report.html"),
    lang: Annotated[str, typer.Option("--lang", metavar="en|zh", help="Report language.")] = "en",
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="Whose law the findings cite (cn, eu, us-il).")]
    = "cn",
) -> None:
    """The whole job on the built-in lab: scan and listen while visitors walk by, findings, HTML report."""
    from scanner.lab import demo as demo_mod

    raise typer.Exit(demo_mod.run(out, err, lab_id=lab_id, mode=mode, seed=seed, json_out=json_out,
                                  html_out=html_out, lang=lang, jurisdiction=jurisdiction))


# ---- scheduled sweeps (issue 7): bodies in scanner.sweep.commands ----------------------------------
baseline_app = typer.Typer(help="The accepted state of a site: changes back to it do not alert.",
                           no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")
Db = Annotated[str | None, typer.Option("--db", envvar="CAMSWEEP_DB", metavar="URL", help="sqlite:///PATH or "
                                        "postgresql://USER@HOST/DB (default: a SQLite file in /var/lib/camsweep "
                                        "as root, else ~/.local/share/camsweep).")]
Site = Annotated[str, typer.Option("--site", envvar="CAMSWEEP_SITE", help="The premises (one database holds many).")]


def _level_option(value: str | None, flag: str) -> str | None:
    from scanner.sweep.diff import check_level

    try:
        return None if value is None else check_level(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from exc


@app.command()
def sweep(
    targets: Targets = None,
    target_file: TargetFile = None,
    iface: Iface = None,
    every: Annotated[str | None, typer.Option("--every", metavar="INTERVAL", help="Keep running: sweep now and "
                                              "then every INTERVAL (90s, 30m, 1h, 1d).")] = None,
    cron: Annotated[str | None, typer.Option("--cron", metavar="EXPR", help="Keep running: sweep on this cron "
                                             "schedule (local time), e.g. '0 2 * * *'.")] = None,
    listen: Listen = 0.0,
    listen_iface: ListenIface = None,
    db: Db = None,
    site: Site = "default",
    alert_webhook: Annotated[str | None, typer.Option("--alert-webhook", envvar="CAMSWEEP_ALERT_WEBHOOK",
                                                      metavar="URL", help="POST a JSON message about the changes "
                                                      "(retried with backoff in the background).")] = None,
    alert_level: Annotated[str, typer.Option("--alert-level", metavar="high|medium|low|info", help="Alert on "
                                             "changes at or above this level.")] = "low",
    alert_deadline: Annotated[float, typer.Option("--alert-deadline", metavar="SECONDS", help="Give up "
                                                  "delivering an alert after this long.")] = 120.0,
    fail_on: Annotated[str | None, typer.Option("--fail-on", metavar="high|medium|low|info", help="Exit 1 when a "
                                                "change is at or above this level (cron mail).")] = None,
    jurisdiction: Jurisdiction = "cn",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only changes at or above --alert-level.")]
    = False,
    ports: Ports = None,
    rate: Rate = 300.0,
    port_map: Annotated[str | None, typer.Option("--port-map", help="Reach PORT at another port, e.g. 80=10080.")]
    = None,
    allow_public: AllowPublic = False,
    creds: CredsOption = None,
) -> None:
    """Scan (and listen), store the result, report and alert on what changed since the last sweep."""
    from scanner import engine
    from scanner.sweep import commands
    from scanner.sweep.schedule import Cron, Every, parse_every
    from scanner.targets import read_target_file

    if every and cron:
        raise UsageError("--every and --cron exclude each other")
    if listen < 0 or alert_deadline <= 0:
        raise UsageError("--listen and --alert-deadline need a positive number of seconds")
    specs = list(targets or [])
    if target_file is not None:
        specs.extend(read_target_file(target_file))
    schedule = Every(parse_every(every)) if every else Cron(cron) if cron else None
    settings = commands.SweepSettings(
        scan=engine.ScanOptions(targets=specs, iface=iface, ports=_parse_ports(ports), allow_public=allow_public,
                                rate=rate, port_map=_parse_port_map(port_map), listen_seconds=listen,
                                listen_iface=listen_iface, creds=load_creds_option(creds)),
        db=db, site=site, alert_webhook=alert_webhook, alert_level=_level_option(alert_level, "--alert-level")
        or "low", alert_deadline=alert_deadline, fail_on=_level_option(fail_on, "--fail-on"),
        jurisdiction=jurisdiction, quiet=quiet)
    if alert_webhook:
        from scanner.sweep.alerts import check_webhook_url

        check_webhook_url(alert_webhook)
    raise typer.Exit(commands.run_sweeps(settings, schedule, out, err, _progress))


@app.command()
def history(
    db: Db = None,
    site: Site = "default",
    all_sites: Annotated[bool, typer.Option("--all-sites", help="Every site, with a per-site summary.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many sweeps.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """List stored sweeps, newest first."""
    from scanner.sweep import commands

    commands.history(db, site, all_sites=all_sites, limit=max(limit, 1), as_json=as_json, out=out)


@app.command()
def diff(
    sweep_a: Annotated[str | None, typer.Argument(metavar="[SWEEP_A]", help="From this sweep (number, latest, "
                                                  "baseline); default: the one before SWEEP_B.")] = None,
    sweep_b: Annotated[str | None, typer.Argument(metavar="[SWEEP_B]", help="To this sweep; default: the newest.")]
    = None,
    db: Db = None,
    site: Annotated[str | None, typer.Option("--site", envvar="CAMSWEEP_SITE", help="The premises.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Compare the accepted baseline with SWEEP_A "
                                           "(default: the newest).")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also show info-level changes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """What changed between two sweeps: devices, identity, face capture, clouds, upload volume, findings."""
    from scanner.sweep import commands

    commands.diff(db, site, sweep_a, sweep_b, against_baseline=baseline, show_all=show_all, as_json=as_json,
                  out=out)


@baseline_app.command("accept")
def baseline_accept(
    sweep_id: Annotated[str | None, typer.Argument(metavar="[SWEEP]", help="Default: the site's newest sweep.")]
    = None,
    db: Db = None,
    site: Annotated[str | None, typer.Option("--site", envvar="CAMSWEEP_SITE", help="The premises.")] = None,
    note: Annotated[str, typer.Option(help="Why (kept with the baseline).")] = "",
) -> None:
    """Accept a sweep's state: its devices, clouds and findings stop alerting when they come back."""
    from scanner.sweep import commands

    commands.baseline_accept(db, site, sweep_id, note, out)


@baseline_app.command("show")
def baseline_show(db: Db = None, site: Site = "default",
                  as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False) -> None:
    """Show the accepted baseline of a site."""
    from scanner.sweep import commands

    commands.baseline_show(db, site, as_json, out)


def _print_devices(doc: dict[str, Any]) -> None:
    table = Table(title=f"store network {doc['subnet']} (lab {doc['lab_id']}, {doc['mode']}, seed {doc['seed']})")
    for column in ("device", "ip", "mac", "vendor / model", "type", "face", "clouds"):
        table.add_column(column)
    for d in sorted(doc["devices"], key=lambda d: tuple(int(x) for x in d["ip"].split("."))):
        clouds = ", ".join(sorted({c["host"] for c in d["clouds"]})) or "-"
        table.add_row(d["name"], d["ip"], d["mac"], f"{d['vendor']} {d['model']}", d["device_type"],
                      "yes" if d["face_capable"] else "no", clouds)
    out.print(table)


# Set by a command whose process has nothing left to do but free memory (analyze: its flow table, numpy):
# main() then leaves at once, output flushed, instead of tearing the interpreter down object by object
# (about 45 ms after analysing 1 GB). Only with no other thread running; never for in-process callers.
_finished_without_teardown: list[bool] = []


def _leave(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): what the normal exit would ignore too
            pass
    logging.shutdown()
    os._exit(code)


def main() -> None:
    """Console entry point: one-line errors and stable exit codes (traceback only with --debug)."""
    debug = "--debug" in sys.argv or os.environ.get("CAMSWEEP_DEBUG", "").lower() in ("1", "true", "yes")
    try:
        app()
    except SystemExit as exc:
        if _finished_without_teardown and threading.active_count() == 1 and isinstance(exc.code, int | None):
            _leave(exc.code or 0)
        raise
    except CamsweepError as exc:
        if debug:
            raise
        err.print(f"camsweep: error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("camsweep: interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
