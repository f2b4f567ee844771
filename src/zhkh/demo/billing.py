"""The demo town's tariff catalogue and months of billing: closed periods, a price change in
mid-history, missing readings billed by average or norm, the replaced meter, a benefit granted
late by social protection and the recalculation it causes, and totals per supplier.
Deterministic and safe to run again: closed periods stay as they are, the open one is re-run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from zhkh.billing.explain import explain_lines
from zhkh.billing.models import BillingPeriod, PeriodStatus
from zhkh.billing.service import account_lines, close_period, run_billing
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.db import session_scope
from zhkh.core.importing import Importer, run_import
from zhkh.core.periods import Period
from zhkh.core.tabular import rows_from_records
from zhkh.demo.metering import MONTHS
from zhkh.demo.town import MANAGER_INN, Town
from zhkh.housing.models import Account, Building, Organisation, Premise
from zhkh.tariffs.imports import BenefitsImport, NormsImport, SuppliersImport, TariffsImport

WATER, HEAT, POWER, WASTE, FUND, SOCIAL = (f"66230000{n}" for n in range(2, 8))
SUPPLIERS = {
    "maintenance": MANAGER_INN[:9],
    "capital_repair": FUND,
    "cold_water": WATER,
    "wastewater": WATER,
    "common_cold_water": WATER,
    "hot_water": HEAT,
    "heating": HEAT,
    "electricity": POWER,
    "common_electricity": POWER,
    "waste": WASTE,
}
SINCE = date(2025, 1, 1)
TARIFFS = [
    ("maintenance", "", "32.40", "m2"),
    ("capital_repair", "", "14.27", "m2"),
    ("cold_water", "", "55.12", "m3"),
    ("hot_water", "", "242.18", "m3"),
    ("wastewater", "", "41.36", "m3"),
    ("electricity", "", "6.21", "kWh"),
    ("electricity", "1", "7.12", "kWh"),
    ("electricity", "2", "3.48", "kWh"),
    ("heating", "", "2987.45", "Gcal"),
    ("waste", "", "185.30", "person"),
    ("common_cold_water", "", "55.12", "m3"),
    ("common_electricity", "", "6.21", "kWh"),
]
NORMS = [
    ("cold_water", "6.935", "m3/person", ""),
    ("hot_water", "4.745", "m3/person", ""),
    ("wastewater", "11.68", "m3/person", ""),
    ("electricity", "110", "kWh/person", ""),
    ("heating", "0.0208", "Gcal/m2", ""),
    ("common_cold_water", "0.0269", "m3/m2", ""),
    ("common_electricity", "0.611", "kWh/m2", ""),
    ("social_area", "33", "m2/person", "1"),
    ("social_area", "21", "m2/person", "2"),
    ("social_area", "18", "m2/person", ""),
]
# The flat whose pensioner is granted a benefit late: social protection's decision reaches the
# manager after two months were already closed.
BENEFIT_FLAT = ("NB-003", "7")


@dataclass
class BillingReport:
    periods: list[tuple[str, str, int, int, int]] = field(
        default_factory=list
    )  # period, status, accounts, lines, total
    by_supplier: list[tuple[str, int]] = field(default_factory=list)  # of the last period
    recalculations: int = 0
    problems: int = 0
    explained_account: str = ""
    explanation: list[str] = field(default_factory=list)


def _inn(prefix: str) -> str:
    from zhkh.core.requisites import with_inn_check_digits

    return with_inn_check_digits(prefix)


def catalogue_records(town: Town, first: Period) -> list[tuple[Importer, list[dict[str, Any]]]]:
    """What the manager loads before billing: suppliers of every service of every building,
    tariffs (cold water dearer from the fourth billed month: a change in mid-history), norms."""
    buildings = [b["building_id"] for b in town.buildings]
    suppliers = [
        {"building_id": b, "service": s, "supplier_inn": _inn(inn), "valid_from": SINCE, "valid_to": ""}
        for b in buildings
        for s, inn in SUPPLIERS.items()
    ]
    tariffs = [
        {"service": s, "zone": z, "price": p, "unit": u, "valid_from": SINCE, "valid_to": "", "building_id": ""}
        for s, z, p, u in TARIFFS
    ]
    change = first.next().next().next().first_day
    tariffs.append(
        {
            "service": "cold_water",
            "zone": "",
            "price": "58.70",
            "unit": "m3",
            "valid_from": change,
            "valid_to": "",
            "building_id": "",
        }
    )
    norms = [
        {
            "service": s,
            "value": v,
            "unit": u,
            "valid_from": date(2017, 1, 1),
            "valid_to": "",
            "building_id": "",
            "residents": r,
        }
        for s, v, u, r in NORMS
    ]
    return [(SuppliersImport(), suppliers), (TariffsImport(), tariffs), (NormsImport(), norms)]


def _import(session: Any, importer: Importer, records: list[dict[str, Any]]) -> None:
    run_import(session, rows_from_records(importer.spec, records, f"demo {importer.spec.what}"), importer)


def billed_periods(now: Any) -> list[Period]:
    """The months the demo town has readings for, oldest first (the metering demo's months)."""
    current = Period.of(now.astimezone(get_settings().zone).date())
    periods = []
    for _ in range(MONTHS):
        current = current.previous()
        periods.append(current)
    return sorted(periods)


def run_billing_demo(engine: Engine, town: Town) -> BillingReport:
    periods = billed_periods(utc_now())
    with session_scope(engine) as session:
        for importer, records in catalogue_records(town, periods[0]):
            _import(session, importer, records)
    report = BillingReport()
    for period in periods[:-1]:  # all but the last are billed and closed
        with session_scope(engine) as session:
            state = session.get(BillingPeriod, period.first_day)
            if state is None or state.status is PeriodStatus.OPEN:
                run_billing(session, period)
                close_period(session, period)
    benefit_account = _grant_late_benefit(engine, periods)
    with session_scope(engine) as session:
        summary = run_billing(session, periods[-1])  # open: recalculates what the benefit changed
        report.recalculations = summary.recalculations
        report.problems = len(summary.problems)
        names = {row.id: row.name for row in session.execute(select(Organisation.id, Organisation.name))}
        report.by_supplier = [(names[s], amount) for s, amount in sorted(summary.by_supplier.items())]
        report.periods = _periods(session, periods)
        report.explained_account = benefit_account
        report.explanation = explain_lines(account_lines(session, periods[-1], benefit_account), "ru")
    return report


def _grant_late_benefit(engine: Engine, periods: list[Period]) -> str:
    """50 % of maintenance from three months before the last, imported after those were closed."""
    with session_scope(engine) as session:
        account = session.scalar(
            select(Account.number)
            .join(Premise, Premise.id == Account.premise_id)
            .join(Building, Building.id == Premise.building_id)
            .where(Building.code == BENEFIT_FLAT[0], Premise.number == BENEFIT_FLAT[1])
        )
        assert account is not None
        benefit = {
            "account": account,
            "service": "maintenance",
            "percent": "50",
            "limit": "social_norm",
            "valid_from": periods[-3].first_day,
            "valid_to": "",
            "granted_by_inn": _inn(SOCIAL),
            "persons": "1",
        }
        _import(session, BenefitsImport(), [benefit])
    return account


def _periods(session: Any, periods: list[Period]) -> list[tuple[str, str, int, int, int]]:
    from sqlalchemy import func

    from zhkh.billing.models import AccrualLine

    rows = []
    for period in periods:
        state = session.get(BillingPeriod, period.first_day)
        accounts, lines, total = session.execute(
            select(
                func.count(func.distinct(AccrualLine.account_id)),
                func.count(),
                func.coalesce(func.sum(AccrualLine.amount), 0),
            ).where(AccrualLine.period == period.first_day)
        ).one()
        rows.append((str(period), state.status.value if state else "-", accounts, lines, int(total)))
    return rows
