"""Settings read from the environment (prefix ``ZHKH_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/zhkh.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHKH_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL; ``postgresql://`` URLs are served by psycopg 3."""

    api_page_limit_max: int = 500
    """The largest page the read API hands out in one response."""

    timezone: str = "Europe/Moscow"
    """The local time of the buildings: periods, reading windows and dates are in this zone."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
