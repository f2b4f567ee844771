"""The log's tables.

- ``ledger_entries``: the log itself, one row per leaf, in leaf order. Append-only (on PostgreSQL
  triggers refuse UPDATE and DELETE). ``commitment`` and ``period`` are copies of what the entry
  says, kept so a resident's entries are found by index rather than by reading the whole log.
- ``ledger_tiles``: the tlog-tiles hash tiles (height 8). They are derived from the entries and
  are checked by every verifier against the signed root; a partial tile at the right edge grows
  in place (each version is a prefix of the next), which is why this table is not append-only.
- ``ledger_checkpoints``: the checkpoints the log published, each with the log's signature and
  the witnesses' cosignatures of its quorum. Append-only.
- ``ledger_account_salts``: the random salt of each account's commitment. It never leaves the
  database except to the account's holders (on their bill), who need it to find their entries.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, LargeBinary, SmallInteger, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from zhkh.core.clock import utc_now
from zhkh.core.db import Base
from zhkh.core.types import UtcDateTime


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index(
            "ix_ledger_entries_commitment",
            "commitment",
            "period",
            postgresql_where=text("commitment IS NOT NULL"),
            sqlite_where=text("commitment IS NOT NULL"),
        ),
    )

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # the canonical JSON, exactly as hashed
    commitment: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    period: Mapped[date | None] = mapped_column(Date)  # the billing period the entry concerns


class LedgerTile(Base):
    __tablename__ = "ledger_tiles"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    width: Mapped[int] = mapped_column(SmallInteger)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)  # width × 32 bytes


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)  # the signed note: body, log signature, cosignatures
    cosigners: Mapped[int] = mapped_column(SmallInteger)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class AccountSalt(Base):
    __tablename__ = "ledger_account_salts"

    # A foreign key by name only: the ledger sits beside ``housing`` and does not import it.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
