"""Fixtures of the ledger's integration tests: one set of three witness processes for the whole
run (each test takes a log key they never saw), and sessions for the sequencer and publisher on
the test's rolled-back connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.integration.ledger.support import Factory, Witnesses, build_town, factory_on, running_witnesses

LOG_KEYS = 200


@pytest.fixture(scope="session")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnesses]:
    with running_witnesses(tmp_path_factory.mktemp("witnesses"), LOG_KEYS) as started:
        yield started


@pytest.fixture
def factory(session: Session) -> Factory:
    return factory_on(session)


@pytest.fixture
def town(session: Session, tmp_path: Path) -> dict[str, int]:
    """Three accounts with their payers, owners and address (``support.build_town``); account
    ids by number."""
    return build_town(session, tmp_path, catalogue=False)


@pytest.fixture
def billed_town(session: Session, tmp_path: Path) -> dict[str, int]:
    """``town`` with the billing catalogue of the billing tests: a period can be run and closed."""
    return build_town(session, tmp_path)
