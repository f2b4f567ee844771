"""``zhkh import``: load registry tables from CSV or XLSX files, all or nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from zhkh.cli.output import console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(
    help="Import registry files (CSV in UTF-8 or Windows-1251, or XLSX). A file with any bad row "
    "imports nothing; every bad row is listed with its line number. Formats: docs/formats.md."
)

FileArgument = typer.Argument(..., help="CSV or XLSX file", show_default=False)
DryRunOption = typer.Option(False, "--dry-run", help="check the file and count changes, write nothing")


class _DryRun(Exception):
    """Raised inside the transaction so a dry run rolls back what it wrote."""


@contextmanager
def writing(dry_run: bool) -> Iterator[tuple[Session, Callable[[str], None]]]:
    """A transaction and a way to report its summary: committed normally, rolled back (and
    said so) for a dry run."""
    from zhkh.core.db import session_scope

    said: list[str] = []
    try:
        with session_scope() as session:
            yield session, said.append
            if dry_run:
                raise _DryRun
    except _DryRun:
        console.print(f"dry run, nothing written: {said[-1]}")
        return
    console.print(said[-1])


def _command(name: str, importer: str, columns: str) -> None:
    """Register ``zhkh import NAME``; ``importer`` is "module:Class", loaded when it runs."""

    def command(file: Path = FileArgument, dry_run: bool = DryRunOption) -> None:
        from zhkh.core.importing import run_import
        from zhkh.core.tabular import open_table

        module, _, cls = importer.partition(":")
        instance = getattr(importlib.import_module(module), cls)()
        with writing(dry_run) as (session, report), open_table(file, instance.spec) as reader:
            report(run_import(session, reader, instance).describe())

    command.__doc__ = f"Import {name}. Required columns: {columns}."
    app.command(name)(command)


_command(
    "organisations",
    "zhkh.housing.imports:OrganisationsImport",
    "inn, name, role (kpp for a 10-digit INN; bank_account, bic, bank_name, corr_account for managers and suppliers)",
)
_command(
    "buildings",
    "zhkh.housing.imports:BuildingsImport",
    "building_id, address (optional total_area_m2, common_area_m2, manager_inn)",
)
_command(
    "premises",
    "zhkh.housing.imports:PremisesImport",
    "account, building_id, premise, area_m2, residents (optional payer, kind, meter_possible)",
)
_command(
    "owners",
    "zhkh.housing.imports:OwnersImport",
    "building_id, premise, owner, share; lists all owners of each premises it names",
)
_command(
    "meters",
    "zhkh.metering.imports:MetersImport",
    "serial, service, building_id, account (empty: a building meter), zones, installed_on, verified_until",
)

_command(
    "suppliers",
    "zhkh.tariffs.imports:SuppliersImport",
    "building_id, service, supplier_inn, valid_from, valid_to (empty: open-ended)",
)
_command(
    "tariffs",
    "zhkh.tariffs.imports:TariffsImport",
    "service, zone (empty: single-rate), price, unit, valid_from, valid_to, building_id (empty: every building)",
)
_command(
    "norms",
    "zhkh.tariffs.imports:NormsImport",
    "service, value, unit (e.g. m3/person, Gcal/m2), valid_from, valid_to, building_id (optional residents)",
)
_command("multipliers", "zhkh.tariffs.imports:MultipliersImport", "service, value, valid_from, valid_to")
_command(
    "benefits",
    "zhkh.tariffs.imports:BenefitsImport",
    "account, service, percent, limit (social_norm or consumption_norm), valid_from, valid_to, granted_by_inn",
)


@app.command("readings")
def readings_command(file: Path = FileArgument, dry_run: bool = DryRunOption) -> None:
    """Import readings: serial, date, value (or value_t1, value_t2, value_t3), optional source.

    A malformed row refuses the file; a reading that fails validation is stored as rejected with its reason."""
    from zhkh.core.tabular import open_table
    from zhkh.metering.imports import READINGS_SPEC, check_readings_file, import_readings

    with open_table(file, READINGS_SPEC) as reader:
        check_readings_file(reader)
    with writing(dry_run) as (session, report), open_table(file, READINGS_SPEC) as reader:
        report(import_readings(session, reader).describe())
