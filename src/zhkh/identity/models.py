from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, func
from sqlalchemy.orm import Mapped, mapped_column

from zhkh.core.db import Base
from zhkh.core.models import BigId
from zhkh.core.types import UtcDateTime


class ApiToken(Base):
    """A machine credential. Only the SHA-256 of the secret is stored: the secret has 256 bits of
    entropy, so a slow password hash would add nothing but latency to every request."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings, to tell tokens apart
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # Whose token it is when it acts for one party only, e.g. "account:1001" for a resident.
    subject: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
