"""Bodies and answers of the payments API. Money is a string of rubles with at most two decimals
("1234.56"), read with ``core.money.parse_rubles`` at the endpoint."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

Rubles = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        description='rubles with at most two decimals, e.g. "1234.56"',
        examples=["1234.56"],
    ),
]


class OnlinePaymentIn(BaseModel):
    account: str = Field(min_length=1, max_length=50, description="the personal account number")
    amount: Rubles
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$", description="the period paid for, YYYY-MM")
    return_url: str = Field(
        max_length=2000, pattern=r"^https?://\S+$", description="where the provider sends the payer back afterwards"
    )


class OnlinePaymentOut(BaseModel):
    id: int
    provider: str
    redirect_url: str


class CashIn(BaseModel):
    account: str = Field(min_length=1, max_length=50)
    amount: Rubles
    paid_on: date
    receipt: str = Field(min_length=1, max_length=200, description="the cash receipt number")
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$", description="the period paid for, YYYY-MM")


class CashOut(BaseModel):
    payment_ids: list[int]
    duplicate: bool = Field(description="true when this receipt was recorded before; nothing was added")


class UnmatchedOut(BaseModel):
    id: int
    source: str
    external_id: str
    amount: str
    paid_on: date
    payer: str
    payer_inn: str
    purpose: str
    reason: str
    recorded_at: datetime


class AssignIn(BaseModel):
    account: str = Field(min_length=1, max_length=50)


class AssignOut(BaseModel):
    payment_id: int
    account: str
    amount: str


class WebhookOut(BaseModel):
    state: str
    payment_id: int | None
    repeated: bool = Field(description="true when this webhook had been handled before; nothing was added")


class StatementRowOut(BaseModel):
    period: str
    service: str
    supplier_inn: str
    opening: str
    accrued: str
    paid: str
    penalty: str
    closing: str


class StatementOut(BaseModel):
    account: str
    rows: list[StatementRowOut]


class LedgerProofOut(BaseModel):
    index: int
    type: str
    tlog_proof: str  # the c2sp.org/tlog-proof@v1 text: save it as a .tlog-proof file


class LedgerProofsOut(BaseModel):
    account: str
    period: str
    proofs: list[LedgerProofOut]
