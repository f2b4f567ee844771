"""The billing run with its chunks computed in worker processes (PostgreSQL): the same lines as
the plain reference on random towns of several buildings, committed (the workers read what is
committed), one building per chunk; and a failing worker fails the whole run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.billing_reference import reference_lines
from tests.conftest import PostgresServer
from tests.integration.billing.test_reference import (
    PERIODS,
    READ_MONTHS,
    TownBuilder,
    building_spec,
    comparable,
    production_lines,
    town_spec,
)
from zhkh.billing import service
from zhkh.billing.models import AccrualLine, BilledAccount
from zhkh.billing.service import close_period, run_billing
from zhkh.core import db

# The reference test's towns, with two to four buildings: chunks for more than one worker.
towns = town_spec.flatmap(
    lambda town: st.lists(building_spec, min_size=2, max_size=4).map(lambda buildings: {**town, "buildings": buildings})
)
NewDatabase = Callable[[], Engine]


@pytest.fixture
def new_database(postgres: PostgresServer, postgres_template: str) -> Iterator[NewDatabase]:
    """Makes an empty, migrated PostgreSQL database that the test commits to (one per
    hypothesis example: the workers read only what is committed)."""
    engines: list[Engine] = []

    def create() -> Engine:
        engine = db.create_db_engine(postgres.create(template=postgres_template))
        engines.append(engine)
        return engine

    yield create
    for engine in engines:
        engine.dispose()


def _build(engine: Engine, town: dict[str, Any]) -> None:
    with Session(engine) as session, session.begin():
        builder = TownBuilder(session)
        builder.catalogue(town)
        for number, building in enumerate(town["buildings"], start=1):
            builder.building(number, building)


@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(town=towns)
def test_worker_processes_bill_random_towns_exactly_like_the_reference(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch, town: dict[str, Any]
) -> None:
    monkeypatch.setattr(service, "WORKER_CHUNK_BUILDINGS", 1)  # a chunk per building, several workers
    engine = new_database()
    _build(engine, town)
    for period in PERIODS:
        with Session(engine) as session, session.begin():
            summary = run_billing(session, period, jobs=2)
            assert "waiting" in summary.stages, "the chunks went to worker processes"
        with Session(engine) as session, session.begin():
            expected = reference_lines(session, period)
            assert comparable(production_lines(session, period)) == comparable(expected), period
            assert summary.lines == len(expected)
            close_period(session, period)


FAILING_TRIGGER = """
CREATE FUNCTION refuse_consumption() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'consumption refused by the test'; END $$;
CREATE TRIGGER refuse_consumption BEFORE INSERT ON consumption
FOR EACH STATEMENT EXECUTE FUNCTION refuse_consumption();
"""


def test_a_failing_worker_fails_the_run_and_nothing_is_written(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "WORKER_CHUNK_BUILDINGS", 1)
    engine = new_database()
    town = {**_plain_town(), "buildings": [_plain_building()] * 3}
    _build(engine, town)
    with Session(engine) as session, session.begin():
        run_billing(session, PERIODS[0], jobs=2)  # a first draft, which the failed run must keep
    before = _written(engine)
    with engine.begin() as connection:
        connection.execute(text(FAILING_TRIGGER))
    refused = pytest.raises(Exception, match="consumption refused by the test")  # as carried back from the worker
    with refused, Session(engine) as session, session.begin():
        run_billing(session, PERIODS[0], recompute_consumption=True, jobs=2)  # the workers insert consumption
    assert before[0] == 3
    assert before[1], "the first run wrote lines"
    assert _written(engine) == before, "the draft before the failed run is intact"


def _written(engine: Engine) -> tuple[int, list[tuple[Any, ...]]]:
    with Session(engine) as session:
        accounts = session.scalar(select(func.count()).select_from(BilledAccount)) or 0
        lines = session.execute(select(AccrualLine.id, AccrualLine.amount).order_by(AccrualLine.id)).all()
    return accounts, [tuple(line) for line in lines]


def _plain_town() -> dict[str, Any]:
    price = Decimal("10.00")
    return {
        "prices": dict.fromkeys(
            (
                "maintenance",
                "cold_water",
                "hot_water",
                "wastewater",
                "electricity",
                "electricity_1",
                "electricity_2",
                "heating",
                "waste",
                "common_cold_water",
            ),
            price,
        ),
        "waste_per": "person",
        "norms": {"cold_water": Decimal("6.935"), "heating": Decimal("0.02"), "common_cold_water": Decimal("0.03")},
    }


def _plain_building() -> dict[str, Any]:
    """One flat with a cold water meter read every month."""
    meter = {
        "service": "cold_water",
        "zones": 1,
        "expires": None,
        "read": [True] * len(READ_MONTHS),
        "steps": [Decimal("3.5")] * len(READ_MONTHS),
    }
    return {
        "total_area": True,
        "heat_meter": False,
        "cold_meter": False,
        "own_maintenance": None,
        "accounts": [
            {
                "area": Decimal("45.6"),
                "residents": 2,
                "owners": 1,
                "meter_possible": True,
                "meters": [meter],
                "benefit": None,
                "absence": None,
            }
        ],
    }
