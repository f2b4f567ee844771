"""Building the demo town in a database through the same imports operators use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from zhkh.core.db import session_scope
from zhkh.core.importing import Importer, ImportSummary, run_import
from zhkh.core.tabular import rows_from_records
from zhkh.demo.billing import BillingReport, run_billing_demo
from zhkh.demo.ledger import LEDGER_DIR, LedgerReport, forget_witnesses, run_ledger_demo
from zhkh.demo.metering import MeteringReport, run_metering_demo
from zhkh.demo.payments import BILLS_DIR, PaymentsReport, run_payments_demo
from zhkh.demo.town import build_town
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, OwnersImport, PremisesImport
from zhkh.housing.models import Account, Building, Organisation, Ownership, Premise
from zhkh.schema import METADATA, upgrade


@dataclass(frozen=True)
class BuildingSummary:
    code: str
    address: str
    premises: int
    accounts: int
    residents: int
    owners: int
    area_m2: str


@dataclass(frozen=True)
class DemoReport:
    imports: list[ImportSummary]
    organisations: list[tuple[str, str, str]]  # name, role, INN
    buildings: list[BuildingSummary]
    metering: MeteringReport
    billing: BillingReport
    payments: PaymentsReport
    ledger: LedgerReport


def reset_database(engine: Engine) -> None:
    """Drop every table of the schema (and Alembic's bookkeeping) so the demo starts over."""
    METADATA.drop_all(engine)
    if inspect(engine).has_table("alembic_version"):
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))


def run_demo(
    engine: Engine, *, reset: bool = False, bills_dir: Path = BILLS_DIR, ledger_dir: Path = LEDGER_DIR
) -> DemoReport:
    if reset:
        reset_database(engine)
        forget_witnesses(ledger_dir)
    upgrade(engine)
    town = build_town()
    steps: list[tuple[Importer, list[dict[str, object]]]] = [
        (OrganisationsImport(), town.organisations),
        (BuildingsImport(), town.buildings),
        (PremisesImport(), town.premises),
        (OwnersImport(), town.owners),
    ]
    with session_scope(engine) as session:
        summaries = [
            run_import(session, rows_from_records(importer.spec, records, f"demo {importer.spec.what}"), importer)
            for importer, records in steps
        ]
    metering = run_metering_demo(engine, town)
    billing = run_billing_demo(engine, town)
    payments = run_payments_demo(engine, bills_dir)
    ledger = run_ledger_demo(engine, ledger_dir)
    with session_scope(engine) as session:
        return DemoReport(summaries, _organisations(session), _buildings(session), metering, billing, payments, ledger)


def _organisations(session: Session) -> list[tuple[str, str, str]]:
    rows = session.execute(select(Organisation.name, Organisation.role, Organisation.inn).order_by(Organisation.id))
    return [(name, str(role), inn) for name, role, inn in rows]


def _buildings(session: Session) -> list[BuildingSummary]:
    premises = (
        select(
            Premise.building_id,
            func.count(Premise.id).label("premises"),
        )
        .group_by(Premise.building_id)
        .subquery()
    )
    accounts = (
        select(
            Premise.building_id,
            func.count(Account.id).label("accounts"),
            func.sum(Account.residents).label("residents"),
        )
        .join(Account, Account.premise_id == Premise.id)
        .group_by(Premise.building_id)
        .subquery()
    )
    owners = (
        select(Premise.building_id, func.count(func.distinct(Ownership.owner)).label("owners"))
        .join(Ownership, Ownership.premise_id == Premise.id)
        .group_by(Premise.building_id)
        .subquery()
    )
    rows = session.execute(
        select(Building, premises.c.premises, accounts.c.accounts, accounts.c.residents, owners.c.owners)
        .outerjoin(premises, premises.c.building_id == Building.id)
        .outerjoin(accounts, accounts.c.building_id == Building.id)
        .outerjoin(owners, owners.c.building_id == Building.id)
        .order_by(Building.code)
    )
    return [
        BuildingSummary(
            building.code,
            building.address,
            premises_count or 0,
            accounts_count or 0,
            residents or 0,
            owners_count or 0,
            str(building.total_area_m2 or ""),
        )
        for building, premises_count, accounts_count, residents, owners_count in rows
    ]
