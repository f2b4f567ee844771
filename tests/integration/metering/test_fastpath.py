"""The PostgreSQL fast path accepts exactly what the judge accepts, with the same flags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.builders import metered_registry
from zhkh.metering import fastpath, intake
from zhkh.metering.intake import IncomingReading, ingest
from zhkh.metering.models import Meter, Reading

NOW = datetime(2026, 3, 26, 12, tzinfo=UTC)

histories = st.lists(
    st.tuples(st.integers(min_value=1, max_value=2000), st.decimals(min_value=0, max_value=3000, places=3)),
    max_size=3,
)
incoming = st.tuples(
    st.sampled_from(["CW-1001", "EL-1002", "B-CW", "NOPE"]),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=-500, max_value=3000),  # hours after the last history reading
    st.one_of(
        st.decimals(min_value=-1, max_value=10_000_000, places=3),
        st.sampled_from([Decimal("99999.9"), Decimal("0.5"), Decimal("9999999.5"), Decimal("1000000")]),
    ),
)


def run(
    session: Session,
    history: list[tuple[int, Decimal]],
    batch: list[tuple[str, int, int, Decimal]],
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> list[object]:
    savepoint = session.begin_nested()
    try:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for serial in ("CW-1001", "EL-1002", "B-CW"):
            seeded, value = [], Decimal(0)
            for hours, step in sorted(history):
                value += step
                seeded.append(IncomingReading(base + timedelta(hours=hours), value, 1, serial, source="seed"))
            ingest(session, seeded, now=NOW)
        last = base + timedelta(hours=max((h for h, _ in history), default=0))
        readings = [IncomingReading(last + timedelta(hours=h), v, z, s, source="test") for s, z, h, v in batch]
        if not fast:
            monkeypatch.setattr(intake, "accept_plain", lambda *_args: [])
        outcomes = [(o.status.value, o.reason, o.flags) for o in ingest(session, readings, now=NOW).outcomes]
        monkeypatch.undo()
        stored = session.execute(
            select(Reading.meter_id, Reading.zone, Reading.taken_at, Reading.value, Reading.status, Reading.flags)
            .where(Reading.source == "test")
            .order_by(Reading.meter_id, Reading.zone, Reading.taken_at)
        ).all()
        return [outcomes, [tuple(row) for row in stored]]
    finally:
        savepoint.rollback()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(history=histories, batch=st.lists(incoming, min_size=1, max_size=6))
def test_fast_path_agrees_with_the_judge(
    postgres_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    history: list[tuple[int, Decimal]],
    batch: list[tuple[str, int, int, Decimal]],
) -> None:
    session = postgres_session
    outer = session.begin_nested()
    metered_registry(session, tmp_path)
    session.execute(update(Meter).where(Meter.serial == "CW-1001").values(verified_until=date(2026, 2, 1)))
    try:
        assert run(session, history, batch, True, monkeypatch) == run(session, history, batch, False, monkeypatch)
    finally:
        outer.rollback()


def test_plain_readings_take_the_fast_path(
    postgres_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of ordinary next readings is accepted in SQL; an odd one still gets the judge."""
    metered_registry(postgres_session, tmp_path)
    ingest(postgres_session, [IncomingReading(NOW - timedelta(days=30), Decimal("10"), 1, "CW-1001")], now=NOW)
    accepted: list[int] = []
    real = fastpath.accept_plain

    def spy(*args: object) -> list[tuple[int, int, int, str | None]]:
        result = real(*args)  # type: ignore[arg-type]
        accepted.extend(index for index, *_ in result)
        return result

    monkeypatch.setattr(intake, "accept_plain", spy)
    outcomes = ingest(
        postgres_session,
        [
            IncomingReading(NOW - timedelta(days=1), Decimal("12"), 1, "CW-1001"),
            IncomingReading(NOW - timedelta(days=1), Decimal("5"), 1, "HW-1001"),
            IncomingReading(NOW - timedelta(days=1), Decimal("1"), 3, "EL-1002"),
        ],
        now=NOW,
    ).outcomes
    assert accepted == [0, 1], "the third has no zone 3: the judge says why"
    assert [(o.status.value, o.reason) for o in outcomes] == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", "unknown_zone"),
    ]


def test_locking_refuses_a_serial_with_the_separator(postgres_session: Session, tmp_path: Path) -> None:
    """Serials travel to the lock joined by 0x1f; one containing it would split into two."""
    metered_registry(postgres_session, tmp_path)
    assert set(fastpath.lock_meters(postgres_session, ["CW-1001", "NOPE"])) == {"CW-1001"}
    with pytest.raises(ValueError, match="separator"):
        fastpath.lock_meters(postgres_session, ["CW-1001\x1fEL-1002"])
