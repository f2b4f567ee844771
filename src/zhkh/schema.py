"""The whole database schema: every module's tables, and the migrations that build them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

import zhkh.alarms.models
import zhkh.billing.models
import zhkh.core.outbox
import zhkh.finance.models
import zhkh.housing.models
import zhkh.identity.models
import zhkh.ledger.models
import zhkh.metering.models
import zhkh.notify.models
import zhkh.payments.models
import zhkh.tariffs.models  # noqa: F401  (imported for their tables)
from zhkh.core.db import Base

METADATA: MetaData = Base.metadata
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    script_location = PROJECT_ROOT / "migrations"
    if not script_location.is_dir():
        raise RuntimeError(f"migrations not found at {script_location}; run zhkh from a source checkout")
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(script_location))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at ``engine`` to ``revision`` (the newest by default)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
