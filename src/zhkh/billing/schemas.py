"""API shapes of billing: a line as in the CSV export, with its explanation."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LineOut(BaseModel):
    account: str
    period: str = Field(description="YYYY-MM")
    service: str
    zone: str = Field(description="empty for a single-rate line, else 1-3")
    supplier_inn: str
    method: str
    quantity: str
    unit: str
    price: str
    multiplier: str
    amount: str = Field(description="the charge, rubles with two decimals")
    benefit: str = Field(description="a benefit line's amount (negative)")
    recalculation: str = Field(description="a recalculation line's amount")
    total: str = Field(description="the line's effect on the bill")
    explanation: str


class AccountBill(BaseModel):
    account: str
    period: str
    status: str = Field(description="open (a draft the next run may change) or closed")
    lines: list[LineOut]
    total: str
