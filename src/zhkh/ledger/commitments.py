"""Accounts in the log are salted commitments, never numbers or names.

An entry names an account by ``SHA-256(salt || account_number)`` (LEDGER.md). The 32-byte salt
is random per account, kept only in this database and given to the account's holders (printed
on their bill), so they, and nobody else, can find their entries and check the opening.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from zhkh.core.bulk import insert_new_rows
from zhkh.core.db import lookup_chunk, one_of
from zhkh.ledger.models import AccountSalt

SALT_SIZE = 32


def commitment(salt: bytes, account_number: str) -> bytes:
    """The public name of an account in the log."""
    return hashlib.sha256(salt + account_number.encode()).digest()


def salts(session: Session, account_ids: Collection[int]) -> dict[int, bytes]:
    """The salt of every account in ``account_ids``, created for those that have none yet.
    Safe when two processes create them at once: a salt written first is the one kept."""
    wanted = sorted(set(account_ids))
    found = _existing(session, wanted)
    missing = [account_id for account_id in wanted if account_id not in found]
    if missing:
        rows = [{"account_id": account_id, "salt": secrets.token_bytes(SALT_SIZE)} for account_id in missing]
        insert_new_rows(session, AccountSalt, rows, returning=[cast(Table, AccountSalt.__table__).c.account_id])
        found.update(_existing(session, missing))
    return found


def _existing(session: Session, account_ids: list[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    size = lookup_chunk(session)
    for start in range(0, len(account_ids), size):
        chunk = account_ids[start : start + size]
        rows = session.execute(
            select(AccountSalt.account_id, AccountSalt.salt).where(one_of(AccountSalt.account_id, chunk, session))
        )
        found.update({account_id: bytes(salt) for account_id, salt in rows})
    return found
