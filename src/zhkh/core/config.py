"""Settings read from the environment (prefix ``ZHKH_``) and an optional ``.env`` file."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/zhkh.db"


class WitnessEndpoint(BaseModel):
    url: str  # where its add-checkpoint endpoint lives: ``{url}/add-checkpoint``
    key: str  # its verifier key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHKH_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL; ``postgresql://`` URLs are served by psycopg 3."""

    api_page_limit_max: int = 500
    """The largest page the read API hands out in one response."""

    timezone: str = "Europe/Moscow"
    """The local time of the buildings: periods, reading windows and dates are in this zone."""

    # Alarms (see docs/alarms.md).
    alarm_leak_hours: int = 24
    alarm_spike_factor: Decimal = Decimal(3)
    alarm_spike_floor_per_day: Decimal = Decimal("0.5")
    alarm_no_data_days: int = 3
    alarm_verification_days: int = 30
    alarm_window_closing_days: int = 3

    # Notifications: e-mail over SMTP, SMS through an HTTP gateway (see docs/notifications.md).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "zhkh@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    notify_max_attempts: int = 6

    # Online payments (see docs/online-payments.md).
    public_base_url: str = "http://127.0.0.1:8000"
    """Where payers' browsers and providers reach this server: redirects and webhooks are built on it."""
    sandbox_webhook_secret: str = "sandbox-secret-change-me"  # noqa: S105 - a documented default for the sandbox
    """The HMAC-SHA256 key the built-in sandbox provider signs its webhooks with; change it."""

    # The transparent ledger (see docs/ledger.md).
    ledger_origin: str = "zhkh.localhost/ledger"
    """The log's name, first line of every checkpoint; by convention the address it is served at."""
    ledger_key_file: str = "var/ledger/log.key"
    """The log's private key (``zhkh ledger keygen``); without it entries are logged but not published."""
    ledger_witnesses: list[WitnessEndpoint] = []
    """The witnesses the log asks to cosign, as JSON: ``[{"url": "http://...", "key": "name+id+..."}]``."""
    ledger_quorum: int | None = None
    """How many witnesses must cosign before a checkpoint is published; a majority when unset."""

    @property
    def ledger_url(self) -> str:
        """Where the public ledger is served (printed on bills)."""
        return f"{self.public_base_url.rstrip('/')}/ledger"

    @property
    def witness_quorum(self) -> int:
        """The configured quorum, or a majority of the witnesses (none without witnesses)."""
        if self.ledger_quorum is not None:
            return self.ledger_quorum
        return len(self.ledger_witnesses) // 2 + 1 if self.ledger_witnesses else 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
