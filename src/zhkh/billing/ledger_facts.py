"""A closed period's accruals as facts for the transparent ledger.

Closing a period announces each account's lines in the outbox (``billing.accrued``). Each
account gets up to three entries for the period: ``accrual`` (its charges), ``benefit`` (what
social protection covered) and ``recalculation`` (corrections of earlier periods), each with
the amounts per supplier (by INN) and service, and its total. Lines are summed per supplier,
service and, for recalculations, the corrected period; meter zones and line ids stay in the
books, which the entries' totals can be checked against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from zhkh.core.periods import Period
from zhkh.housing.repository import account_numbers, organisation_inns
from zhkh.ledger.entries import Fact

TOPIC = "billing.accrued"
FACT_TYPES = {"charge": "accrual", "benefit": "benefit", "recalculation": "recalculation"}


def read_facts(session: Session, payloads: Sequence[dict[str, Any]]) -> list[Fact]:
    """The outbox reader of ``billing.accrued`` (``ledger.sequencer.FactReader``)."""
    numbers = account_numbers(session, {int(p["account_id"]) for p in payloads})
    inns = organisation_inns(session, {int(line["supplier_id"]) for p in payloads for line in p["lines"]})
    facts = []
    for payload in payloads:
        account_id = int(payload["account_id"])
        period = Period.parse(payload["period"])
        for kind, lines in _by_kind(payload["lines"]).items():
            shown = _summed(lines, inns)
            body = {"period": str(period), "lines": shown, "total": sum(line["kopecks"] for line in shown)}
            corrects = tuple(sorted({Period.parse(line["corrects"]).first_day for line in shown if "corrects" in line}))
            facts.append(Fact(FACT_TYPES[kind], body, account_id, numbers[account_id], period.first_day, corrects))
    return facts


def _by_kind(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        grouped[line["kind"]].append(line)
    return {kind: grouped[kind] for kind in FACT_TYPES if kind in grouped}


def _summed(lines: list[dict[str, Any]], inns: dict[int, str]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for line in lines:
        totals[(inns[int(line["supplier_id"])], line["service"], line.get("corrects_period"))] += int(line["amount"])
    shown = []
    for (supplier, service, corrects), kopecks in sorted(
        totals.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
    ):
        line = {"supplier": supplier, "service": service, "kopecks": kopecks}
        if corrects is not None:
            line["corrects"] = corrects
        shown.append(line)
    return shown
