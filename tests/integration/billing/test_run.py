"""The billing run on both databases: every method on a small town, a repeatable draft, problems
reported while the rest is billed, closing, and recalculations of closed periods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.builders import import_rows, premise
from tests.integration.billing.conftest import APRIL, MARCH, MAY, SOCIAL_INN, Read, local, tariff_row
from zhkh.billing.errors import PeriodClosed, PeriodOutOfOrder
from zhkh.billing.models import AccrualLine, BillingProblemRow
from zhkh.billing.service import close_period, export_rows, record_absence, run_billing
from zhkh.core.errors import NotFound
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.housing.imports import PremisesImport
from zhkh.housing.models import Account
from zhkh.metering.models import Consumption, Meter
from zhkh.metering.service import bind_device, register_device, save_device_model
from zhkh.tariffs.imports import BenefitsImport, SuppliersImport, TariffsImport


def lines(session: Session, period: Period, account: str) -> dict[tuple[str, int, str], tuple[str, Decimal, int]]:
    """(service, zone, kind) -> (method, quantity, amount)."""
    rows = session.execute(
        select(AccrualLine)
        .join(Account, Account.id == AccrualLine.account_id)
        .where(AccrualLine.period == period.first_day, Account.number == account)
        .order_by(AccrualLine.id)
    )
    return {(line.service, line.zone, line.kind): (line.method, line.quantity, line.amount) for (line,) in rows}


def test_every_account_is_billed_by_its_method(session: Session, march_readings: None) -> None:
    """Hand-computed (tariffs 30 ₽/m², 50 ₽/m³ cold, 200 hot, 40 wastewater, 6/3 ₽ electricity
    zones, 5 single-rate; multipliers in March 2026: cold 3, hot and electricity 1.5):

    1001: maintenance 45.6 × 30 = 1368.00; cold 7 × 50 = 350.00; hot 2 × 200 = 400.00;
    wastewater (7 + 2) × 40 = 360.00; electricity, no meter: 2 × 110 × 1.5 × 5 = 1650.00.
    1002: electricity t1 150 × 6 = 900.00, t2 80 × 3 = 240.00; cold by norm: 2 × 6.935 =
    13.87 × 3 × 50 = 2080.50.
    1003: hot 2 × 4.745 = 9.49 × 1.5 × 200 = 2847.00; wastewater (13.87 + 9.49) × 40 = 934.40.
    Common cold water: V = 100 − (7 + 13.87 + 13.87) = 65.26 m³, share 45.6 / 3000.5 =
    0.991787 m³, capped at 0.0269 × 540 × 45.6 / 3000.5 = 0.220758 m³ × 50 = 11.04 ₽."""
    summary = run_billing(session, MARCH)
    assert summary.accounts == 3
    assert summary.problems == []
    first = lines(session, MARCH, "1001")
    assert first[("maintenance", 0, "charge")] == ("area", Decimal("45.6"), 136800)
    assert first[("cold_water", 0, "charge")] == ("meter", Decimal(7), 35000)
    assert first[("hot_water", 0, "charge")] == ("meter", Decimal(2), 40000)
    assert first[("wastewater", 0, "charge")] == ("water_sum", Decimal(9), 36000)
    assert first[("electricity", 0, "charge")] == ("norm_multiplied", Decimal(220), 165000)
    assert first[("common_cold_water", 0, "charge")] == ("common_share", Decimal("0.220758"), 1104)
    second = lines(session, MARCH, "1002")
    assert second[("electricity", 1, "charge")] == ("meter", Decimal(150), 90000)
    assert second[("electricity", 2, "charge")] == ("meter", Decimal(80), 24000)
    assert second[("cold_water", 0, "charge")] == ("norm_multiplied", Decimal("13.87"), 208050)
    third = lines(session, MARCH, "1003")
    assert third[("hot_water", 0, "charge")] == ("norm_multiplied", Decimal("9.49"), 284700)
    assert third[("wastewater", 0, "charge")] == ("water_sum", Decimal("23.36"), 93440)
    assert summary.total == sum(
        amount for account in ("1001", "1002", "1003") for _, _, amount in lines(session, MARCH, account).values()
    )


def test_running_again_replaces_the_draft_with_the_same_lines(session: Session, march_readings: None) -> None:
    run_billing(session, MARCH)
    before = list(export_rows(session, MARCH))
    run_billing(session, MARCH)
    assert list(export_rows(session, MARCH)) == before
    assert session.scalar(select(func.count()).select_from(AccrualLine)) == len(before)


def test_one_building_run_replaces_only_its_draft(session: Session, march_readings: None) -> None:
    run_billing(session, MARCH)
    count = session.scalar(select(func.count()).select_from(AccrualLine))
    run_billing(session, MARCH, "B-1")
    assert session.scalar(select(func.count()).select_from(AccrualLine)) == count
    with pytest.raises(NotFound, match="no building 'B-9'"):
        run_billing(session, MARCH, "B-9")


def test_an_account_that_cannot_be_billed_is_a_problem_and_the_rest_is_billed(
    session: Session, tmp_path: Path, march_readings: None
) -> None:
    """Gas is supplied but has no tariff: every account gets a problem for gas, and its other
    services are billed."""
    from tests.builders import SUPPLIER_INN

    row = {"building_id": "B-1", "service": "gas", "supplier_inn": SUPPLIER_INN, "valid_from": "2025-01-01"}
    import_rows(session, tmp_path, SuppliersImport(), [row | {"valid_to": ""}])
    summary = run_billing(session, MARCH)
    assert sorted((p.account_id, p.code) for p in summary.problems) == sorted(
        (account_id, "no_tariff") for account_id in session.scalars(select(Account.id))
    )
    stored = session.scalars(select(BillingProblemRow.message)).all()
    assert stored == ["no tariff in force for gas"] * 3
    assert lines(session, MARCH, "1001")[("cold_water", 0, "charge")][2] == 35000


def test_closing_freezes_the_period_and_announces_each_account(session: Session, march_readings: None) -> None:
    with pytest.raises(NotFound, match="has not been run"):
        close_period(session, MARCH)
    summary = run_billing(session, MARCH)
    closed = close_period(session, MARCH)
    assert (closed.accounts, closed.lines, closed.total) == (3, summary.lines, summary.total)
    messages = session.scalars(select(OutboxMessage.payload).where(OutboxMessage.topic == "billing.accrued")).all()
    assert len(messages) == 3
    assert sum(message["total"] for message in messages) == summary.total
    assert all(sum(line["amount"] for line in m["lines"]) == m["total"] for m in messages)
    with pytest.raises(PeriodClosed, match="is closed"):
        run_billing(session, MARCH)
    with pytest.raises(PeriodClosed, match="already closed"):
        close_period(session, MARCH)
    with pytest.raises(PeriodOutOfOrder, match="2026-03 is already closed"):
        run_billing(session, Period(2026, 2))


def test_periods_close_in_order(session: Session, march_readings: None) -> None:
    run_billing(session, MARCH)
    run_billing(session, APRIL)
    with pytest.raises(PeriodOutOfOrder, match="2026-03 is still open"):
        close_period(session, APRIL)


def recalculations(session: Session, period: Period) -> list[tuple[str, str, int, str | None]]:
    rows = session.execute(
        select(Account.number, AccrualLine.service, AccrualLine.amount, AccrualLine.reason)
        .join(Account, Account.id == AccrualLine.account_id)
        .where(AccrualLine.period == period.first_day, AccrualLine.kind == "recalculation")
        .order_by(Account.number, AccrualLine.service)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_corrected_tariff_recalculates_the_closed_period_once(
    session: Session, tmp_path: Path, march_readings: None
) -> None:
    """Cold water 50 → 52 ₽ from the same day: March's cold water is recalculated in April:
    1001 7 m³ × 2 ₽ = 14.00; 1002 and 1003 13.87 m³ × 3 × 2 ₽ = 83.22; and only once."""
    run_billing(session, MARCH)
    close_period(session, MARCH)
    import_rows(session, tmp_path, TariffsImport(), [tariff_row("cold_water", "", "52", "m3")])
    summary = run_billing(session, APRIL)
    expected = [
        ("1001", "cold_water", 1400, "price"),
        ("1002", "cold_water", 8322, "price"),
        ("1003", "cold_water", 8322, "price"),
    ]
    assert recalculations(session, APRIL) == expected
    assert summary.recalculations == 3
    line = session.scalar(select(AccrualLine).where(AccrualLine.kind == "recalculation").limit(1))
    assert line is not None
    original = session.get(AccrualLine, line.corrects_line_id)
    assert original is not None
    assert (original.period, original.service, original.account_id) == (MARCH.first_day, "cold_water", line.account_id)
    assert line.corrects_period == MARCH.first_day
    assert line.inputs["was"]["price"] == "50"
    assert line.inputs["now"]["price"] == "52"

    run_billing(session, APRIL)  # the draft again: the same recalculations, not twice
    assert recalculations(session, APRIL) == expected
    close_period(session, APRIL)
    run_billing(session, MAY)
    assert recalculations(session, MAY) == []  # March is now what it should be


def test_a_late_reading_recalculates_what_was_estimated(session: Session, town: None, read: Read) -> None:
    """March without a reading of CW-1001 (no history: by norm, 2 × 6.935 = 13.87 m³ × 50 =
    693.50 ₽). The March reading arrives after March is closed: 7 m³ = 350.00 ₽, so April
    carries −343.50 ₽ for cold water and (9 − 15.87) m³ × 40 = −274.80 ₽ for wastewater."""
    read("CW-1001", "100", local(20, 2))
    read("HW-1001", "50", local(20, 2))
    read("HW-1001", "52", local(20, 3))
    run_billing(session, MARCH)
    assert lines(session, MARCH, "1001")[("cold_water", 0, "charge")] == ("norm", Decimal("13.87"), 69350)
    close_period(session, MARCH)
    read("CW-1001", "107", local(20, 3))
    run_billing(session, APRIL)
    found = {(number, service): (amount, reason) for number, service, amount, reason in recalculations(session, APRIL)}
    assert found[("1001", "cold_water")] == (-34350, "method, quantity")
    assert found[("1001", "wastewater")] == (-27480, "quantity")


def test_a_benefit_granted_later_is_recalculated_for_the_closed_period(
    session: Session, tmp_path: Path, march_readings: None
) -> None:
    """50 % of maintenance for 1001 (2 residents, 45.6 m², social norm 18 m² each = 36 m²) from
    March, imported after March closed: 1368.00 × 36 / 45.6 × 0.5 = 540.00 ₽ off, in April."""
    run_billing(session, MARCH)
    close_period(session, MARCH)
    benefit = {
        "account": "1001",
        "service": "maintenance",
        "percent": "50",
        "limit": "social_norm",
        "valid_from": "2026-03-01",
        "valid_to": "",
        "granted_by_inn": SOCIAL_INN,
    }
    import_rows(session, tmp_path, BenefitsImport(), [benefit])
    run_billing(session, APRIL)
    assert recalculations(session, APRIL) == [("1001", "maintenance", -54000, "new")]
    assert lines(session, APRIL, "1001")[("maintenance", 0, "benefit")] == ("benefit", Decimal(36), -54000)


def test_the_registry_as_billed_is_kept_and_absence_recalculates(
    session: Session, tmp_path: Path, march_readings: None
) -> None:
    """1003 made a premises where no meter can be installed, 2 residents: hot water by plain norm
    9.49 m³ × 200 = 1898.00 ₽. After March closes, a third resident registers (the registry
    changes: March is not recalculated for that) and an absence of one resident who left on
    March 1 and came back on March 18 is reported (16 full days, the 2nd to the 17th):
    9.49 × (2 × 31 − 16) / (2 × 31) = 436.54 / 62 = 7.040968 m³ × 200 = 1408.19 ₽ (1408.1936);
    April carries 1408.19 − 1898.00 = −489.81 ₽ for hot water."""
    changed = premise(account="1003", premise="3", meter_possible="no")
    import_rows(session, tmp_path, PremisesImport(), [changed])
    run_billing(session, MARCH)
    assert lines(session, MARCH, "1003")[("hot_water", 0, "charge")] == ("norm", Decimal("9.49"), 189800)
    close_period(session, MARCH)
    import_rows(session, tmp_path, PremisesImport(), [changed | {"residents": "3"}])
    record_absence(session, "1003", local(1, 3).date(), local(18, 3).date())
    run_billing(session, APRIL)
    found = {(n, s): a for n, s, a, _ in recalculations(session, APRIL)}
    assert found[("1003", "hot_water")] == -48981
    assert lines(session, APRIL, "1003")[("hot_water", 0, "charge")][1] == Decimal("14.235")  # 3 × 4.745


def _consumption_rows(session: Session, serial: str, period: Period) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Consumption.id, Consumption.provenance)
        .join(Meter, Meter.id == Consumption.meter_id)
        .where(Meter.serial == serial, Consumption.period == period.first_day)
    )
    return [(row_id, provenance) for row_id, provenance in rows]


def test_a_hand_read_meter_missing_its_reading_is_not_recomputed_by_every_run(
    session: Session, town: None, read: Read
) -> None:
    """CW-1001 has no March reading: the first run computes its March as ``missing``; no
    reading arrives, so the next run keeps that row instead of computing it again."""
    read("HW-1001", "50", local(20, 2))
    read("HW-1001", "52", local(20, 3))
    run_billing(session, MARCH)
    [(first_id, provenance)] = _consumption_rows(session, "CW-1001", MARCH)
    assert provenance == "missing"
    # marked, so that a recomputed row (deleted and inserted again) would show
    marked = datetime(2026, 4, 1, tzinfo=UTC)
    session.execute(update(Consumption).where(Consumption.id == first_id).values(computed_at=marked))
    run_billing(session, MARCH)
    assert _consumption_rows(session, "CW-1001", MARCH) == [(first_id, "missing")]
    assert session.scalar(select(Consumption.computed_at).where(Consumption.id == first_id)) == marked
    assert lines(session, MARCH, "1001")[("cold_water", 0, "charge")] == ("norm", Decimal("13.87"), 69350)


def test_an_automatic_meter_missing_its_period_end_is_completed_by_the_run(
    session: Session, town: None, read: Read
) -> None:
    """CW-1001 measured by a device: its March needs a reading after March 31. The one of April
    2 arrives in April, so the worker computes April only; the run completes March by
    interpolation: 100 on Feb 28 12:00 and 106 on Mar 30 12:00 (local) give 100.1 on Mar 1 00:00
    (half a day of 0.2 m³/day); 106 → 108 from Mar 30 12:00 to Apr 2 12:00 gives 107 on Apr 1
    00:00 (a day and a half of 2/3 m³/day): 6.9 m³."""
    save_device_model(session, "pulse-v1", "chirpstack", {"channels": {"volume_m3": {}}})
    register_device(session, "pulse-v1", "70B3D57ED0051234")
    bind_device(session, "chirpstack", "70b3d57ed0051234", "volume_m3", "CW-1001", since=local(1, 2))
    read([("CW-1001", "100", local(28, 2), 1), ("CW-1001", "106", local(30, 3), 1)])
    run_billing(session, MARCH)
    assert [provenance for _, provenance in _consumption_rows(session, "CW-1001", MARCH)] == ["missing"]
    read("CW-1001", "108", local(2, 4))
    run_billing(session, MARCH)
    [(_, provenance)] = _consumption_rows(session, "CW-1001", MARCH)
    assert provenance == "interpolated"
    method, quantity, _ = lines(session, MARCH, "1001")[("cold_water", 0, "charge")]
    assert method == "meter"
    assert quantity == Decimal("107") - Decimal("100.1")
