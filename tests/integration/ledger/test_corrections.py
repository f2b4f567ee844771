"""A correction references what it corrects: a recalculation entry names the index of the
accrual entry of each period it corrects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import registry
from tests.integration.ledger.support import factory_on
from zhkh.core.outbox import emit
from zhkh.housing.models import Account, Organisation
from zhkh.ledger.models import LedgerEntry
from zhkh.ledger.sequencer import Sequencer
from zhkh.worker import fact_readers


def accrued(account_id: int, period: str, supplier_id: int, *lines: dict[str, Any]) -> dict[str, Any]:
    """A billing.accrued payload, shaped as billing.service._announce_accruals writes it."""
    shaped = [
        {"line_id": n, "service": "cold_water", "zone": 0, "supplier_id": supplier_id, "corrects_period": None, **line}
        for n, line in enumerate(lines, start=1)
    ]
    return {"period": period, "account_id": account_id, "total": sum(x["amount"] for x in shaped), "lines": shaped}


def test_a_recalculation_entry_names_the_accrual_entries_it_corrects(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    first, second = session.scalars(select(Account.id).order_by(Account.number)).all()[:2]
    supplier = session.scalars(select(Organisation.id)).first()
    assert supplier is not None
    for account in (first, second):
        emit(session, "billing.accrued", accrued(account, "2026-03", supplier, {"kind": "charge", "amount": 10000}))
    emit(
        session,
        "billing.accrued",
        accrued(
            first,
            "2026-04",
            supplier,
            {"kind": "charge", "amount": 12000},
            {"kind": "recalculation", "amount": -3000, "corrects_period": "2026-03"},
            {"kind": "recalculation", "amount": -500, "corrects_period": "2026-02"},  # before the log began
        ),
    )
    session.flush()
    assert Sequencer(fact_readers()).run_once(factory_on(session)) == 4, "three accruals, one recalculation"

    entries = {idx: json.loads(data) for idx, data in session.execute(select(LedgerEntry.idx, LedgerEntry.data))}
    march = {idx: e for idx, e in entries.items() if e["type"] == "accrual" and e["period"] == "2026-03"}
    (recalculation,) = [e for e in entries.values() if e["type"] == "recalculation"]
    (first_march,) = [idx for idx, e in march.items() if e["account"] == recalculation["account"]]
    assert recalculation["corrects_entries"] == {"2026-03": first_march}, "February was never logged: no reference"
    assert {line["corrects"] for line in recalculation["lines"]} == {"2026-02", "2026-03"}
    assert all("corrects_entries" not in e for e in entries.values() if e["type"] != "recalculation")

    # A month later, in a batch of its own: the reference is found in the stored log.
    emit(
        session,
        "billing.accrued",
        accrued(second, "2026-05", supplier, {"kind": "recalculation", "amount": -700, "corrects_period": "2026-03"}),
    )
    session.flush()
    assert Sequencer(fact_readers()).run_once(factory_on(session)) == 1
    (later,) = [
        json.loads(data) for data in session.scalars(select(LedgerEntry.data).where(LedgerEntry.idx == len(entries)))
    ]
    (second_march,) = [idx for idx, e in march.items() if e["account"] == later["account"]]
    assert later["corrects_entries"] == {"2026-03": second_march}
    assert second_march != first_march
