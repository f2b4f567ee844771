"""The sequencer: money facts from the outbox into the log, in batches.

Modules that make money facts announce them in the outbox (ARCHITECTURE.md); for each such
topic a *fact reader* turns a batch of messages into facts (the module that owns the topic
writes its reader, so the ledger imports none of them). The sequencer claims undelivered
messages of those topics in id order, names each account by its commitment, appends the
entries with their tiles and marks the messages delivered, all in one transaction: a fact is
logged once, even across crashes, and two workers never append at once (the append lock).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.db import one_of
from zhkh.core.outbox import OutboxMessage
from zhkh.ledger import store
from zhkh.ledger.commitments import commitment, salts
from zhkh.ledger.entries import Fact, entry_data
from zhkh.ledger.tiles import MAX_ENTRY_SIZE

log = logging.getLogger("zhkh.ledger")

FactReader = Callable[[Session, Sequence[dict[str, Any]]], list[Fact]]


class UnreadableFact(RuntimeError):
    """A message whose facts cannot be read: the log stops there rather than skip a money fact.
    ``appended``: the entries this run logged before it (earlier batches stay logged)."""

    appended: int = 0


@dataclass
class Sequencer:
    readers: Mapping[str, FactReader]
    batch: int = 20_000  # messages per append; a billing run's million accounts in fifty appends

    def run_once(self, factory: Callable[[], Session]) -> int:
        """Append everything pending; returns the number of entries appended."""
        appended = 0
        while True:
            with factory() as session, session.begin():
                if not store.take_lock(session, wait=False):
                    return appended  # another worker is appending
                messages = self._claim(session)
                if not messages:
                    return appended
                try:
                    appended += self._append(session, messages)
                except UnreadableFact as exc:
                    exc.appended = appended
                    raise

    def _claim(self, session: Session) -> list[Row[Any]]:
        """The oldest undelivered messages of the readers' topics (rows, not ORM objects: a
        batch is twenty thousand of them); the partial index on undelivered ids finds them."""
        query = (
            select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.payload)
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.topic.in_(list(self.readers)))
            .order_by(OutboxMessage.id)
            .limit(self.batch)
        )
        return list(session.execute(query))

    def _append(self, session: Session, messages: list[Row[Any]]) -> int:
        with garbage_collection_paused():
            return self._append_batch(session, messages)

    def _append_batch(self, session: Session, messages: list[Row[Any]]) -> int:
        facts: list[Fact] = []
        spans: list[tuple[str, int]] = []  # each group of messages and the number of its facts
        # Consecutive messages of one topic are read together; the log keeps the outbox's order.
        for topic, run in groupby(messages, key=lambda m: m.topic):
            group = list(run)
            span = f"{group[0].id}..{group[-1].id}" if len(group) > 1 else str(group[0].id)
            try:
                read = self.readers[topic](session, [m.payload for m in group])
            except Exception as exc:
                raise UnreadableFact(f"outbox message(s) {span} ({topic}) could not be read: {exc}") from exc
            facts.extend(read)
            spans.append((f"{span} ({topic})", len(read)))
        entries = prepare(session, facts, store.tree_size(session))
        _check_sizes(entries, spans)
        head = store.append(session, entries)
        ids = [m.id for m in messages]
        session.execute(
            update(OutboxMessage)
            .where(one_of(OutboxMessage.id, ids, session))
            .values(delivered_at=utc_now(), attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        log.info("ledger: %d messages, %d entries, size %d", len(messages), len(facts), head.size)
        return len(facts)


def _check_sizes(entries: Sequence[store.NewEntry], spans: Sequence[tuple[str, int]]) -> None:
    """An entry bundle prefixes each entry with a uint16 length (tlog-tiles): a longer entry
    could be appended but never served, exported or verified, and the log cannot drop it."""
    start = 0
    for span, count in spans:
        for entry in entries[start : start + count]:
            if len(entry.data) > MAX_ENTRY_SIZE:
                raise UnreadableFact(
                    f"outbox message(s) {span} make an entry of {len(entry.data)} bytes; "
                    f"an entry is at most {MAX_ENTRY_SIZE} bytes (tlog-tiles)"
                )
        start += count


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """A batch builds a few hundred thousand small dicts and none of them form cycles; Python's
    collector would scan them again and again as they are made (a third of the time to build
    entries). Reference counting still frees everything; the collector runs again after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare(session: Session, facts: Sequence[Fact], start: int) -> list[store.NewEntry]:
    """The facts as entries from leaf index ``start`` on: each account named by its commitment,
    nothing else about it; a correction names the index of each accrual entry it corrects,
    whether logged before or earlier in this batch."""
    account_salts = salts(session, {f.account_id for f in facts if f.account_id is not None})
    committed = [
        commitment(account_salts[f.account_id], f.account_number)
        if f.account_id is not None and f.account_number is not None
        else None
        for f in facts
    ]
    accruals = store.accrual_entries(
        session, {(c, period) for f, c in zip(facts, committed, strict=True) if c for period in f.corrects}
    )
    entries = []
    for index, (fact, account) in enumerate(zip(facts, committed, strict=True), start=start):
        corrected = {p: accruals[(account, p)] for p in fact.corrects if account and (account, p) in accruals}
        entries.append(store.NewEntry(entry_data(fact, account, corrected), account, fact.period))
        if fact.type == "accrual" and account and fact.period:
            accruals.setdefault((account, fact.period), index)
    return entries
