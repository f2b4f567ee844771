"""``zhkh import``: load registry tables from CSV or XLSX files, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from zhkh.cli.metering import import_readings_file
from zhkh.cli.output import console
from zhkh.core.db import session_scope
from zhkh.core.importing import Importer, run_import
from zhkh.core.tabular import open_table
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, OwnersImport, PremisesImport
from zhkh.metering.imports import MetersImport

app = typer.Typer(
    help="Import registry files (CSV in UTF-8 or Windows-1251, or XLSX). A file with any bad row "
    "imports nothing; every bad row is listed with its line number. Formats: docs/formats.md."
)

FileArgument = typer.Argument(..., help="CSV or XLSX file", show_default=False)
DryRunOption = typer.Option(False, "--dry-run", help="check the file and count changes, write nothing")


class _DryRun(Exception):
    """Raised inside the transaction so a dry run rolls back what it staged."""


def import_file(path: Path, importer: Importer, dry_run: bool) -> None:
    try:
        with session_scope() as session, open_table(path, importer.spec) as reader:
            summary = run_import(session, reader, importer)
            if dry_run:
                raise _DryRun
    except _DryRun:
        console.print(f"dry run, nothing written: {summary.describe()}")
        return
    console.print(summary.describe())


def _command(name: str, importer: Callable[[], Importer], columns: str) -> None:
    def command(file: Path = FileArgument, dry_run: bool = DryRunOption) -> None:
        import_file(file, importer(), dry_run)

    command.__doc__ = f"Import {name}. Required columns: {columns}."
    app.command(name)(command)


_command("organisations", OrganisationsImport, "inn, kpp, name, role, bank_account, bic, bank_name, corr_account")
_command("buildings", BuildingsImport, "building_id, address (optional total_area_m2, common_area_m2, manager_inn)")
_command(
    "premises",
    PremisesImport,
    "account, building_id, premise, area_m2, residents (optional payer, kind, meter_possible)",
)
_command("owners", OwnersImport, "building_id, premise, owner, share; lists all owners of each premises it names")
_command(
    "meters",
    MetersImport,
    "serial, service, building_id, account (empty: a building meter), zones, installed_on, verified_until",
)


@app.command("readings")
def readings_command(file: Path = FileArgument, dry_run: bool = DryRunOption) -> None:
    """Import readings: serial, date, value (or value_t1, value_t2, value_t3), optional source.

    A malformed row refuses the file; a reading that fails validation is stored as rejected with its reason."""
    import_readings_file(file, dry_run)
