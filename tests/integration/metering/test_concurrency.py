"""Two transactions writing readings of one meter at once (PostgreSQL: consumers sharing a
subscription, parallel API calls): the second waits for the first and is judged against it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import metered_registry
from tests.conftest import PostgresServer
from zhkh.core import db
from zhkh.metering.intake import IncomingReading, Outcome, ingest
from zhkh.metering.models import Reading

NOW = datetime(2026, 3, 26, tzinfo=UTC)
MARCH_10 = datetime(2026, 3, 10, 9, tzinfo=UTC)


def test_a_second_transaction_waits_and_sees_the_first(
    postgres: PostgresServer, postgres_template: str, tmp_path: Path
) -> None:
    engine = db.create_db_engine(postgres.create(template=postgres_template))
    try:
        with Session(engine) as setup, setup.begin():
            metered_registry(setup, tmp_path)
        first = Session(engine)
        first.begin()
        [accepted] = ingest(first, [IncomingReading(MARCH_10, Decimal("200"), 1, "CW-1001")], now=NOW).outcomes
        assert accepted.status.value == "accepted"

        outcomes: list[Outcome] = []

        def second_transaction() -> None:
            with Session(engine) as second, second.begin():
                readings = [
                    IncomingReading(MARCH_10, Decimal("150"), 1, "CW-1001"),
                    IncomingReading(datetime(2026, 3, 12, tzinfo=UTC), Decimal("160"), 1, "CW-1001"),
                ]
                outcomes.extend(ingest(second, readings, now=NOW).outcomes)

        thread = threading.Thread(target=second_transaction)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second transaction waits for the first to commit"
        first.commit()
        first.close()
        thread.join(30)
        assert [(o.status.value, o.reason) for o in outcomes] == [
            ("rejected", "conflicting_reading"),
            ("rejected", "below_previous"),
        ]
        with Session(engine) as check:
            accepted_values = check.scalars(select(Reading.value).where(Reading.status == "accepted")).all()
        assert accepted_values == [Decimal("200")]
    finally:
        engine.dispose()
