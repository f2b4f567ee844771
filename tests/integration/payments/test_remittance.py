"""Remittance to suppliers and the reconciliation report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import SUPPLIER_INN, import_rows, organisation
from tests.integration.payments.conftest import Charge, day
from zhkh.housing.imports import OrganisationsImport
from zhkh.housing.models import Organisation
from zhkh.payments.bankfiles import parse_statement
from zhkh.payments.models import PaymentSource
from zhkh.payments.remittance import reconciliation, remit
from zhkh.payments.service import Incoming, take_in
from zhkh.payments.workdays import next_working_day


def test_collected_money_is_remitted_to_each_supplier_once(
    session: Session, tmp_path: Path, accounts: dict[str, int], supplier: int, charge: Charge
) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation(inn=SUPPLIER_INN, role="supplier")])
    water = session.scalars(select(Organisation.id).where(Organisation.inn == SUPPLIER_INN)).one()
    charge("1001", "2026-04", supplier_id=water, cold_water=10000)
    charge("1001", "2026-04", maintenance=5000)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("c-1", 15000, day("2026-06-01"), "1001")])

    before = {r.supplier_id: r for r in reconciliation(session, as_of=day("2026-06-02"))}
    assert (before[water].collected, before[water].remitted, before[water].outstanding) == (10000, 0, 10000)
    assert before[supplier].outstanding == 5000
    assert before[water].oldest_unremitted == day("2026-06-01")
    assert not before[water].held_too_long  # the next working day is 2 June: still in time
    late = {r.supplier_id: r for r in reconciliation(session, as_of=day("2026-06-03"))}
    assert late[water].held_too_long

    batch = remit(session, day("2026-06-02"))
    by_supplier = {r.supplier.id: r for r in batch.remittances}
    assert {s: r.remittance.amount for s, r in by_supplier.items()} == {water: 10000, supplier: 5000}
    assert by_supplier[water].registry_csv() == (
        "account,paid_on,period,service,component,amount\n1001,2026-06-01,2026-04,cold_water,principal,100.00\n"
    )
    orders = parse_statement(batch.payment_orders(), "orders.txt")
    assert sorted((d.payee.inn, d.amount_kopecks) for d in orders.documents) == sorted(
        [(SUPPLIER_INN, 10000), (organisation()["inn"], 5000)]
    )

    after = {r.supplier_id: r for r in reconciliation(session, as_of=day("2026-06-10"))}
    assert (after[water].collected, after[water].remitted, after[water].outstanding) == (10000, 10000, 0)
    assert not after[water].held_too_long
    assert remit(session, day("2026-06-03")).remittances == []

    charge("1002", "2026-04", supplier_id=water, cold_water=700)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("c-2", 700, day("2026-06-04"), "1002")])
    again = remit(session, day("2026-06-05"))
    assert [(r.supplier.id, r.remittance.amount, r.remittance.payments) for r in again.remittances] == [(water, 700, 1)]


def test_working_days_skip_weekends_and_holidays() -> None:
    assert next_working_day(date(2026, 6, 11)) == date(2026, 6, 15)  # 12 June (Russia Day), then the weekend
    assert next_working_day(date(2026, 6, 1)) == date(2026, 6, 2)
    assert next_working_day(date(2025, 12, 31)) == date(2026, 1, 12)  # the January holidays to 9 January
