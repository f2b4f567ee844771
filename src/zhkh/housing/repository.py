"""Queries of the housing registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhkh.core.db import AnySelect
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
