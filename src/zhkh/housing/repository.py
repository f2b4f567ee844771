"""Queries of the housing registry."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhkh.core.db import AnySelect, lookup_chunk, one_of
from zhkh.housing.models import Account, Building, Organisation, Ownership, Premise


def buildings_query() -> AnySelect:
    return select(
        Building.id,
        Building.code.label("building_id"),
        Building.address,
        Building.total_area_m2,
        Building.common_area_m2,
        Organisation.inn.label("manager_inn"),
    ).outerjoin(Organisation, Organisation.id == Building.manager_id)


def building_by_code(session: Session, code: str) -> Any:
    return session.execute(buildings_query().where(Building.code == code)).one_or_none()


def building_counts(session: Session, building_id: int) -> tuple[int, int, int]:
    premises = session.scalar(select(func.count()).where(Premise.building_id == building_id)) or 0
    accounts, residents = session.execute(
        select(func.count(Account.id), func.coalesce(func.sum(Account.residents), 0))
        .join(Premise, Premise.id == Account.premise_id)
        .where(Premise.building_id == building_id)
    ).one()
    return premises, accounts, residents


def premises_query(building_code: str | None = None) -> AnySelect:
    statement = select(
        Premise.id,
        Building.code.label("building_id"),
        Premise.number.label("premise"),
        Premise.kind,
        Premise.area_m2,
        Premise.meter_possible,
    ).join(Building, Building.id == Premise.building_id)
    return statement.where(Building.code == building_code) if building_code else statement


def accounts_query(building_code: str | None = None) -> AnySelect:
    statement = (
        select(
            Account.id,
            Account.number.label("account"),
            Building.code.label("building_id"),
            Building.address,
            Premise.number.label("premise"),
            Account.payer,
            Account.residents,
            Premise.area_m2,
            Premise.kind,
            Premise.meter_possible,
            Premise.id.label("premise_pk"),
        )
        .join(Premise, Premise.id == Account.premise_id)
        .join(Building, Building.id == Premise.building_id)
    )
    return statement.where(Building.code == building_code) if building_code else statement


def account_by_number(session: Session, number: str) -> Any:
    return session.execute(accounts_query().where(Account.number == number)).one_or_none()


def owners_of(session: Session, premise_id: int) -> list[Ownership]:
    return list(session.scalars(select(Ownership).where(Ownership.premise_id == premise_id).order_by(Ownership.owner)))


def account_numbers(session: Session, account_ids: Collection[int]) -> dict[int, str]:
    """The number of each account in ``account_ids``, looked up in chunks (a bulk path's helper)."""
    wanted = sorted(set(account_ids))
    numbers: dict[int, str] = {}
    size = lookup_chunk(session)
    for start in range(0, len(wanted), size):
        query = select(Account.id, Account.number).where(one_of(Account.id, wanted[start : start + size], session))
        numbers.update(session.execute(query).all())
    return numbers


def organisation_inns(session: Session, organisation_ids: Collection[int]) -> dict[int, str]:
    """The INN of each organisation in ``organisation_ids`` (there are few organisations)."""
    query = select(Organisation.id, Organisation.inn).where(one_of(Organisation.id, sorted(organisation_ids), session))
    return dict(session.execute(query).all())  # Rows: (id, inn) pairs; a Result would pass for a mapping
