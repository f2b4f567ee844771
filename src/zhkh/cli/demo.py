"""``zhkh demo``: the demo town in the embedded database."""

from __future__ import annotations

import typer
from rich.table import Table

from zhkh.cli.output import console
from zhkh.core.db import get_engine
from zhkh.demo.run import DemoReport, run_demo


def demo(reset: bool = typer.Option(False, "--reset", help="drop everything and build the town again")) -> None:
    """Build a small demo town (3 buildings, ~200 premises with owners and residents). Safe to run again."""
    engine = get_engine()
    console.print(f"[bold]zhkh demo[/] on {engine.url.render_as_string(hide_password=True)}")
    report = run_demo(engine, reset=reset)
    _print(report)


def _print(report: DemoReport) -> None:
    console.rule("Imports")
    for summary in report.imports:
        console.print("  " + summary.describe())

    organisations = Table("Organisation", "Role", "INN", title="Organisations")
    for name, role, inn in report.organisations:
        organisations.add_row(name, role, inn)
    console.print(organisations)

    buildings = Table(
        "Building", "Address", "Premises", "Accounts", "Residents", "Owners", "Area, m²", title="Buildings"
    )
    for b in report.buildings:
        street = b.address.split(", ", 1)[-1]  # the town is the same for all
        buildings.add_row(b.code, street, str(b.premises), str(b.accounts), str(b.residents), str(b.owners), b.area_m2)
    buildings.add_row(
        "total",
        "",
        str(sum(b.premises for b in report.buildings)),
        str(sum(b.accounts for b in report.buildings)),
        str(sum(b.residents for b in report.buildings)),
        str(sum(b.owners for b in report.buildings)),
        "",
        style="bold",
    )
    console.print(buildings)
    console.print(
        "Next: [bold]zhkh token create --name me --scope housing:read[/], then [bold]zhkh serve[/] "
        "and open http://127.0.0.1:8000/docs"
    )
