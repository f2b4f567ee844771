"""What the read API returns. Decimals are serialised as strings, so no digit is lost."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from zhkh.housing.models import PremiseKind


class BuildingOut(BaseModel):
    building_id: str = Field(description="the operator's identifier of the building")
    address: str
    total_area_m2: Decimal | None = Field(description="total area of all premises, m²")
    common_area_m2: Decimal | None = Field(description="area of the common property, m²")
    manager_inn: str | None


class BuildingDetail(BuildingOut):
    premises: int
    accounts: int
    residents: int


class PremiseOut(BaseModel):
    building_id: str
    premise: str
    kind: PremiseKind
    area_m2: Decimal
    meter_possible: bool


class AccountOut(BaseModel):
    account: str
    building_id: str
    premise: str
    payer: str | None
    residents: int
    area_m2: Decimal
    kind: PremiseKind
    meter_possible: bool


class OwnerOut(BaseModel):
    owner: str
    share: str = Field(description="an exact fraction such as 1/3")


class AccountDetail(AccountOut):
    address: str
    owners: list[OwnerOut]
