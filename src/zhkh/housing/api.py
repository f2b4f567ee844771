"""Read endpoints of the housing registry (scope ``housing:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from zhkh.core.api import Page, PageRequest, SessionDep
from zhkh.core.values import format_share
from zhkh.housing import repository
from zhkh.housing.errors import AccountNotFound, BuildingNotFound
from zhkh.housing.models import Account, Building, Premise
from zhkh.housing.schemas import AccountDetail, AccountOut, BuildingDetail, BuildingOut, OwnerOut, PremiseOut
from zhkh.identity.api import require_scope

router = APIRouter(prefix="/api/v1", tags=["housing"], dependencies=[Depends(require_scope("housing:read"))])
Paging = Annotated[PageRequest, Depends()]
BuildingFilter = Annotated[str | None, Query(description="only this building's items")]


@router.get("/buildings", response_model=Page[BuildingOut])
def list_buildings(session: SessionDep, page: Paging) -> Page[BuildingOut]:
    rows, cursor = page.fetch(session, repository.buildings_query(), Building.id)
    return Page(items=[BuildingOut.model_validate(row, from_attributes=True) for row in rows], next_cursor=cursor)


@router.get("/buildings/{building_id:path}", response_model=BuildingDetail)
def get_building(building_id: str, session: SessionDep) -> BuildingDetail:
    row = repository.building_by_code(session, building_id)
    if row is None:
        raise BuildingNotFound(f"no building {building_id!r}")
    premises, accounts, residents = repository.building_counts(session, row.id)
    return BuildingDetail(
        **BuildingOut.model_validate(row, from_attributes=True).model_dump(),
        premises=premises,
        accounts=accounts,
        residents=residents,
    )


@router.get("/premises", response_model=Page[PremiseOut])
def list_premises(session: SessionDep, page: Paging, building_id: BuildingFilter = None) -> Page[PremiseOut]:
    rows, cursor = page.fetch(session, repository.premises_query(building_id), Premise.id)
    return Page(items=[PremiseOut.model_validate(row, from_attributes=True) for row in rows], next_cursor=cursor)


@router.get("/accounts", response_model=Page[AccountOut])
def list_accounts(session: SessionDep, page: Paging, building_id: BuildingFilter = None) -> Page[AccountOut]:
    rows, cursor = page.fetch(session, repository.accounts_query(building_id), Account.id)
    return Page(items=[AccountOut.model_validate(row, from_attributes=True) for row in rows], next_cursor=cursor)


@router.get("/accounts/{account:path}", response_model=AccountDetail)
def get_account(account: str, session: SessionDep) -> AccountDetail:
    row = repository.account_by_number(session, account)
    if row is None:
        raise AccountNotFound(f"no personal account {account!r}")
    owners = [
        OwnerOut(owner=o.owner, share=format_share(o.share)) for o in repository.owners_of(session, row.premise_pk)
    ]
    return AccountDetail(
        **AccountOut.model_validate(row, from_attributes=True).model_dump(), address=row.address, owners=owners
    )
