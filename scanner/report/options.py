"""The report options every result-producing command shares, declared once.

``scan``, ``analyze``, ``listen`` (and ``sweep``) take the same ``--json --csv --html --lang
--jurisdiction --fail-on --premises --operator --case-id`` options by using these ``Annotated``
aliases, then build an ``OutputOptions`` with ``report_options(...)``. Values are checked by
``OutputOptions.check`` (one-line errors, exit 2), not by typer, so every command words them alike.
"""

from __future__ import annotations

from typing import Annotated

import typer

from scanner.report.output import OutputOptions

PANEL = "Reports"

JsonOut = Annotated[str | None, typer.Option(
    "--json", metavar="PATH|-", rich_help_panel=PANEL,
    help="Write the result document (JSON, scanner/schema/result.schema.json) to PATH, or - for stdout.")]
CsvOut = Annotated[str | None, typer.Option(
    "--csv", metavar="PATH|-", rich_help_panel=PANEL,
    help="Write a spreadsheet table to PATH (or - for stdout): one row per cloud destination and per finding.")]
HtmlOut = Annotated[str | None, typer.Option(
    "--html", metavar="PATH", rich_help_panel=PANEL,
    help="Write a self-contained HTML report for a case file, its evidence sealed with a SHA-256.")]
Lang = Annotated[str, typer.Option(
    "--lang", envvar="CAMSWEEP_LANG", metavar="en|zh", rich_help_panel=PANEL, help="Report language.")]
Jurisdiction = Annotated[str, typer.Option(
    "--jurisdiction", envvar="CAMSWEEP_JURISDICTION", rich_help_panel=PANEL,
    help="Whose law the findings' legal references cite (e.g. cn, eu, us-il).")]
FailOn = Annotated[str | None, typer.Option(
    "--fail-on", envvar="CAMSWEEP_FAIL_ON", metavar="high|medium|low", rich_help_panel=PANEL,
    help="Exit 1 when a finding is at or above this severity (for scheduled jobs).")]
Premises = Annotated[str | None, typer.Option(
    "--premises", envvar="CAMSWEEP_PREMISES", rich_help_panel=PANEL,
    help="The premises inspected (name, address), for the HTML report.")]
Operator = Annotated[str | None, typer.Option(
    "--operator", envvar="CAMSWEEP_OPERATOR", rich_help_panel=PANEL,
    help="Who ran the inspection, for the HTML report.")]
CaseId = Annotated[str | None, typer.Option(
    "--case-id", envvar="CAMSWEEP_CASE_ID", rich_help_panel=PANEL, help="Case or file number, for the HTML report.")]


def report_options(*, json_out: str | None, csv_out: str | None, html_out: str | None, lang: str,
                   jurisdiction: str, fail_on: str | None, premises: str | None, operator: str | None,
                   case_id: str | None, assess: bool | None = None) -> OutputOptions:
    """The checked ``OutputOptions`` (UsageError for a bad value or an unwritable path)."""
    options = OutputOptions(json_path=json_out, csv_path=csv_out, html_path=html_out, lang=lang,
                            jurisdiction=jurisdiction, fail_on=fail_on, premises=premises, operator=operator,
                            case_id=case_id, assess=assess)
    options.check()
    return options
