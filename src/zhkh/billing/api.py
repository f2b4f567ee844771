"""Billing endpoints: an account's lines of a period, as the CSV export has them, with their
explanation (scope ``billing:read``, or a resident's token for their own account)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from zhkh.billing.explain import explain_lines
from zhkh.billing.schemas import AccountBill, LineOut
from zhkh.billing.service import account_lines, export_rows, period_state
from zhkh.core.api import SessionDep
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.money import format_rubles
from zhkh.core.periods import Period
from zhkh.identity.api import require_scope, resident_account
from zhkh.identity.models import ApiToken

router = APIRouter(prefix="/api/v1", tags=["billing"])
PeriodQuery = Annotated[str, Query(description="the billing period, YYYY-MM", pattern=r"^\d{4}-\d{2}$")]
Language = Annotated[str, Query(description="language of the explanations", pattern="^(ru|en)$")]


def _bill(session: SessionDep, number: str, period_text: str, lang: str) -> AccountBill:
    try:
        period = Period.parse(period_text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    stored = account_lines(session, period, number)
    if not stored:
        raise NotFound(f"account {number} has no lines for {period}; the period has not been billed")
    rows = list(export_rows(session, period, number))
    sentences = explain_lines(stored, lang)
    state = period_state(session, period)
    return AccountBill(
        account=number,
        period=str(period),
        status=state.status.value if state else "open",
        lines=[LineOut(**row, explanation=sentence) for row, sentence in zip(rows, sentences[:-1], strict=True)],
        total=format_rubles(sum(line.amount for line in stored)),
    )


@router.get("/billing/accounts/{account}/lines", response_model=AccountBill)
def get_account_lines(
    account: str,
    period: PeriodQuery,
    session: SessionDep,
    _token: Annotated[ApiToken, Depends(require_scope("billing:read"))],
    lang: Language = "ru",
) -> AccountBill:
    """Every line of the account's bill for the period: method, quantity, price, multiplier,
    amount and why."""
    return _bill(session, account, period, lang)


@router.get("/me/bill", response_model=AccountBill)
def get_my_bill(
    period: PeriodQuery,
    session: SessionDep,
    token: Annotated[ApiToken, Depends(require_scope("resident"))],
    lang: Language = "ru",
) -> AccountBill:
    """The resident's own bill lines for the period."""
    return _bill(session, resident_account(token), period, lang)
