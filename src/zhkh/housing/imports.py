"""Imports of the housing registry from operators' tables (see docs/formats.md).

Every importer stages the file, checks it as a whole and merges it by natural key:
organisations by INN, buildings by building_id, premises rows by account number, owners by
premises and owner name.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from zhkh.core.errors import Problem
from zhkh.core.importing import (
    Importer,
    ImportSummary,
    RowError,
    Upsert,
    duplicate_problems,
    parsed,
    required,
)
from zhkh.core.requisites import (
    bank_account_problem,
    bic_problem,
    corr_account_problem,
    inn_problem,
    kpp_problem,
)
from zhkh.core.tabular import Column as FileColumn
from zhkh.core.tabular import TableSpec
from zhkh.core.types import ExactDecimal
from zhkh.core.values import (
    format_share,
    parse_bool,
    parse_non_negative_decimal,
    parse_non_negative_int,
    parse_positive_decimal,
    parse_share,
)
from zhkh.housing.models import Account, Building, Organisation, OrganisationRole, Ownership, Premise, PremiseKind

_ROLE_ALIASES = {
    "manager": OrganisationRole.MANAGER,
    "ук": OrganisationRole.MANAGER,
    "управляющая организация": OrganisationRole.MANAGER,
    "тсж": OrganisationRole.MANAGER,
    "жск": OrganisationRole.MANAGER,
    "supplier": OrganisationRole.SUPPLIER,
    "рсо": OrganisationRole.SUPPLIER,
    "ресурсоснабжающая организация": OrganisationRole.SUPPLIER,
    "social_protection": OrganisationRole.SOCIAL_PROTECTION,
    "осзн": OrganisationRole.SOCIAL_PROTECTION,
    "соцзащита": OrganisationRole.SOCIAL_PROTECTION,
}
_KIND_ALIASES = {
    "residential": PremiseKind.RESIDENTIAL,
    "жилое": PremiseKind.RESIDENTIAL,
    "non_residential": PremiseKind.NON_RESIDENTIAL,
    "non-residential": PremiseKind.NON_RESIDENTIAL,
    "нежилое": PremiseKind.NON_RESIDENTIAL,
}


def _digits(text: str, expected_lengths: tuple[int, ...]) -> str:
    """Spreadsheets drop leading zeros of numeric cells (INN 0274... becomes 274...); restore
    them when the length shows exactly that happened."""
    for length in expected_lengths:
        if text.isdigit() and len(text) == length - 1:
            return "0" + text
    return text


def _checked(value: str, problem: str | None, column: str) -> str:
    if problem:
        raise RowError(problem, column)
    return value


def _choice(values: Mapping[str, str], column: str, aliases: Mapping[str, Any], default: Any = None) -> Any:
    text = values.get(column, "").strip().lower()
    if not text:
        if default is not None:
            return default
        raise RowError("is empty but required", column)
    if text not in aliases:
        allowed = ", ".join(sorted({str(v) for v in aliases.values()}))
        raise RowError(f"unknown value {values[column]!r}; expected one of {allowed}", column)
    return aliases[text]


# --- organisations -----------------------------------------------------------------------------


class OrganisationsImport(Importer):
    spec = TableSpec(
        "organisations",
        (
            FileColumn("inn", ("ИНН",)),
            FileColumn("kpp", ("КПП",), required=False),
            FileColumn("name", ("Наименование", "Название", "Организация")),
            FileColumn("role", ("Роль", "Тип организации")),
            FileColumn("bank_account", ("Расчетный счет", "Р/с", "Рс", "Счет"), required=False),
            FileColumn("bic", ("БИК",), required=False),
            FileColumn("bank_name", ("Банк", "Наименование банка"), required=False),
            FileColumn("corr_account", ("Корреспондентский счет", "Корр. счет", "К/с", "Кс"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("inn", String(12)),
            Column("kpp", String(9)),
            Column("name", String(500)),
            Column("role", String(32)),
            Column("bank_account", String(20)),
            Column("bic", String(9)),
            Column("bank_name", String(500)),
            Column("corr_account", String(20)),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        inn = _digits(required(values, "inn"), (10, 12))
        _checked(inn, inn_problem(inn), "inn")
        kpp = values.get("kpp") or None
        if len(inn) == 10 and kpp is None:
            raise RowError("is required for an organisation (10-digit INN)", "kpp")
        if kpp is not None:
            kpp = _checked(_digits(kpp, (9,)), kpp_problem(_digits(kpp, (9,))), "kpp")
        role = _choice(values, "role", _ROLE_ALIASES)
        bank = self._bank_details(values, needed=role is not OrganisationRole.SOCIAL_PROTECTION)
        return {"inn": inn, "kpp": kpp, "name": required(values, "name"), "role": role.value, **bank}

    @staticmethod
    def _bank_details(values: Mapping[str, str], *, needed: bool) -> dict[str, str | None]:
        """Managers and suppliers receive money, so their bank details are required and checked
        (an account that does not match its BIC would send residents' payments nowhere)."""
        fields = ("bank_account", "bic", "bank_name", "corr_account")
        given = {name: values.get(name, "") for name in fields}
        if not any(given.values()) and not needed:
            return dict.fromkeys(fields)
        for name in fields:
            required(values, name)
        bic = _checked(_digits(given["bic"], (9,)), bic_problem(_digits(given["bic"], (9,))), "bic")
        return {
            "bank_account": _checked(
                given["bank_account"], bank_account_problem(given["bank_account"], bic), "bank_account"
            ),
            "bic": bic,
            "bank_name": given["bank_name"],
            "corr_account": _checked(
                given["corr_account"], corr_account_problem(given["corr_account"], bic), "corr_account"
            ),
        }

    def check(self, session: Session) -> list[Problem]:
        return duplicate_problems(session, self.staging, [self.staging.c.inn], "INN")

    def merge(self, session: Session) -> ImportSummary:
        optional = {c: c for c in ("kpp", "bank_account", "bic", "bank_name", "corr_account")}
        source = select(
            self.staging.c.inn, self.staging.c.name, self.staging.c.role, *(self.staging.c[c] for c in optional)
        )
        upsert = self.upsert(Organisation.__table__, source.subquery(), ("inn",), ("name", "role"), optional)
        return upsert.run(session, "organisations")


# --- buildings ---------------------------------------------------------------------------------


class BuildingsImport(Importer):
    file_names: ClassVar[Mapping[str, str]] = {"code": "building_id"}
    spec = TableSpec(
        "buildings",
        (
            FileColumn("building_id", ("Код дома", "ID дома", "Идентификатор дома", "Дом")),
            FileColumn("address", ("Адрес",)),
            FileColumn("total_area_m2", ("Общая площадь помещений", "Общая площадь", "S общ"), required=False),
            FileColumn("common_area_m2", ("Площадь общего имущества", "Площадь МОП", "S ОИ"), required=False),
            FileColumn("manager_inn", ("ИНН УК", "ИНН управляющей организации"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("code", String(64)),
            Column("address", String(500)),
            Column("total_area_m2", ExactDecimal),
            Column("common_area_m2", ExactDecimal),
            Column("manager_inn", String(12)),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        manager_inn = values.get("manager_inn") or None
        if manager_inn is not None:
            manager_inn = _digits(manager_inn, (10, 12))
            _checked(manager_inn, inn_problem(manager_inn), "manager_inn")
        return {
            "code": required(values, "building_id"),
            "address": required(values, "address"),
            "total_area_m2": parsed(values, "total_area_m2", parse_positive_decimal, optional=True),
            "common_area_m2": parsed(values, "common_area_m2", parse_non_negative_decimal, optional=True),
            "manager_inn": manager_inn,
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        problems = duplicate_problems(session, stage, [stage.c.code], "building_id")
        unknown = (
            select(stage.c.line, stage.c.manager_inn)
            .where(stage.c.manager_inn.is_not(None))
            .where(
                ~exists().where(
                    and_(Organisation.inn == stage.c.manager_inn, Organisation.role == OrganisationRole.MANAGER)
                )
            )
        )
        problems += [
            Problem(
                row.line,
                "unknown_reference",
                f"manager_inn: no managing organisation with INN {row.manager_inn}; import it first",
            )
            for row in session.execute(unknown)
        ]
        return problems

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        source = (
            select(
                stage.c.code,
                stage.c.address,
                stage.c.total_area_m2,
                stage.c.common_area_m2,
                Organisation.id.label("manager_id"),
            )
            .select_from(stage.outerjoin(Organisation, Organisation.inn == stage.c.manager_inn))
            .subquery()
        )
        optional = {"total_area_m2": "total_area_m2", "common_area_m2": "common_area_m2", "manager_id": "manager_inn"}
        return self.upsert(Building.__table__, source, ("code",), ("address",), optional).run(session, "buildings")


# --- premises and their personal accounts ------------------------------------------------------


class PremisesImport(Importer):
    file_names: ClassVar[Mapping[str, str]] = {"number": "account", "building_code": "building_id"}

    """One row per personal account: the account, its premises and the premises' attributes.
    A premises shared by several accounts (a communal flat) appears on several rows, which must
    agree on its area, kind and whether a meter can be installed."""

    spec = TableSpec(
        "premises",
        (
            FileColumn("account", ("Лицевой счет", "ЛС", "Номер лицевого счета")),
            FileColumn("building_id", ("Код дома", "ID дома", "Идентификатор дома", "Дом")),
            FileColumn("premise", ("Помещение", "Квартира", "Номер помещения", "Кв")),
            FileColumn("area_m2", ("Площадь", "Общая площадь", "Площадь м2")),
            FileColumn("residents", ("Проживает", "Зарегистрировано", "Количество проживающих", "Жильцов")),
            FileColumn("payer", ("Плательщик", "ФИО плательщика", "ФИО"), required=False),
            FileColumn("kind", ("Тип помещения", "Вид помещения"), required=False),
            FileColumn("meter_possible", ("Возможность установки ИПУ", "ИПУ возможен"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("number", String(32)),
            Column("building_code", String(64)),
            Column("premise", String(32)),
            Column("area_m2", ExactDecimal),
            Column("residents", Integer),
            Column("payer", String(500)),
            Column("kind", String(32)),
            Column("meter_possible", Boolean),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        return {
            "number": required(values, "account"),
            "building_code": required(values, "building_id"),
            "premise": required(values, "premise"),
            "area_m2": parsed(values, "area_m2", parse_positive_decimal),
            "residents": parsed(values, "residents", parse_non_negative_int),
            "payer": values.get("payer") or None,
            "kind": _choice(values, "kind", _KIND_ALIASES, default=PremiseKind.RESIDENTIAL).value,
            "meter_possible": parsed(values, "meter_possible", parse_bool, optional=True) is not False,
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        problems = duplicate_problems(session, stage, [stage.c.number], "account")
        unknown = (
            select(stage.c.line, stage.c.building_code)
            .where(~exists().where(Building.code == stage.c.building_code))
            .order_by(stage.c.line)
        )
        problems += [
            Problem(
                row.line, "unknown_reference", f"building_id: no building {row.building_code!r}; import buildings first"
            )
            for row in session.execute(unknown)
        ]
        return problems + self._disagreeing_premises(session)

    def _disagreeing_premises(self, session: Session) -> list[Problem]:
        """Rows of one premises that disagree with its first row about the premises itself."""
        stage = self.staging
        group = (stage.c.building_code, stage.c.premise)
        attributes = ("area_m2", "kind", "meter_possible")
        first = {
            name: func.first_value(stage.c[name]).over(partition_by=group, order_by=stage.c.line).label(f"first_{name}")
            for name in attributes
        }
        first_line = func.min(stage.c.line).over(partition_by=group).label("first_line")
        ranked = select(stage, first_line, *first.values()).subquery()
        differs = [ranked.c[name].is_distinct_from(ranked.c[f"first_{name}"]) for name in attributes]
        rows = session.execute(select(ranked).where(or_(*differs)).order_by(ranked.c.line))
        problems = []
        for row in rows:
            mismatched = [name for name in attributes if getattr(row, name) != getattr(row, f"first_{name}")]
            problems.append(
                Problem(
                    row.line,
                    "conflict",
                    f"premises {row.premise} of building {row.building_code}: {', '.join(mismatched)} "
                    f"differ from line {row.first_line}",
                )
            )
        return problems

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        premise_values = ("kind", "area_m2", "meter_possible")
        premises_source = (
            select(
                Building.id.label("building_id"),
                stage.c.premise.label("number"),
                *(stage.c[name] for name in premise_values),
            )
            .distinct()
            .select_from(stage.join(Building, Building.code == stage.c.building_code))
            .subquery()
        )
        premises = self.upsert(
            Premise.__table__,
            premises_source,
            ("building_id", "number"),
            ("area_m2",),
            {"kind": "kind", "meter_possible": "meter_possible"},
        )
        summary = self._count_rows(session)
        premises.apply(session)
        accounts_source = (
            select(stage.c.number, Premise.id.label("premise_id"), stage.c.payer, stage.c.residents)
            .select_from(
                stage.join(Building, Building.code == stage.c.building_code).join(
                    Premise, and_(Premise.building_id == Building.id, Premise.number == stage.c.premise)
                )
            )
            .subquery()
        )
        self.upsert(
            Account.__table__, accounts_source, ("number",), ("premise_id", "residents"), {"payer": "payer"}
        ).apply(session)
        return summary

    def _optional_same(self, stage: Any) -> list[Any]:
        """Comparisons of the optional columns the file has (those it lacks change nothing)."""
        optional = {
            "payer": Account.payer.is_not_distinct_from(stage.c.payer),
            "kind": Premise.kind == stage.c.kind,
            "meter_possible": Premise.meter_possible == stage.c.meter_possible,
        }
        return [comparison for column, comparison in optional.items() if self.given(column)]

    def _count_rows(self, session: Session) -> ImportSummary:
        """A row is unchanged when neither its account nor its premises would change."""
        stage = self.staging
        known = (
            select(
                stage.c.line,
                and_(
                    Account.residents == stage.c.residents,
                    Building.code == stage.c.building_code,
                    Premise.number == stage.c.premise,
                    Premise.area_m2 == stage.c.area_m2,
                    *self._optional_same(stage),
                ).label("same"),
            )
            .select_from(
                stage.join(Account, Account.number == stage.c.number)
                .join(Premise, Premise.id == Account.premise_id)
                .join(Building, Building.id == Premise.building_id)
            )
            .subquery()
        )
        total = session.execute(select(func.count()).select_from(stage)).scalar_one()
        existing, unchanged = session.execute(
            select(func.count(), func.coalesce(func.sum(case((known.c.same, 1), else_=0)), 0))
        ).one()
        return ImportSummary("premises", created=total - existing, updated=existing - unchanged, unchanged=unchanged)


# --- owners ------------------------------------------------------------------------------------


class OwnersImport(Importer):
    """The owners of each premises the file mentions, as a complete list: an owner of such a
    premises who is not in the file is removed (the file is the current extract of the register).
    Premises the file does not mention keep their owners."""

    file_names: ClassVar[Mapping[str, str]] = {
        "building_code": "building_id",
        "share_numerator": "share",
        "share_denominator": "share",
    }

    spec = TableSpec(
        "owners",
        (
            FileColumn("building_id", ("Код дома", "ID дома", "Идентификатор дома", "Дом")),
            FileColumn("premise", ("Помещение", "Квартира", "Номер помещения", "Кв")),
            FileColumn("owner", ("Собственник", "ФИО собственника", "Владелец")),
            FileColumn("share", ("Доля", "Доля в праве", "Доля собственности")),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("building_code", String(64)),
            Column("premise", String(32)),
            Column("owner", String(500)),
            Column("share_numerator", Integer),
            Column("share_denominator", Integer),
            Column("premise_id", BigInteger),  # resolved in merge()
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        share: Fraction = parsed(values, "share", parse_share)
        return {
            "building_code": required(values, "building_id"),
            "premise": required(values, "premise"),
            "owner": " ".join(required(values, "owner").split()),
            "share_numerator": share.numerator,
            "share_denominator": share.denominator,
        }

    def _with_premise(self) -> Any:
        stage = self.staging
        return (
            select(stage, Premise.id.label("found_premise_id"))
            .select_from(
                stage.outerjoin(Building, Building.code == stage.c.building_code).outerjoin(
                    Premise, and_(Premise.building_id == Building.id, Premise.number == stage.c.premise)
                )
            )
            .subquery()
        )

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        problems = duplicate_problems(session, stage, [stage.c.building_code, stage.c.premise, stage.c.owner], "owner")
        located = self._with_premise()
        unknown = select(located).where(located.c.found_premise_id.is_(None)).order_by(located.c.line)
        problems += [
            Problem(
                row.line,
                "unknown_reference",
                f"premise: no premises {row.premise!r} in building {row.building_code!r}; import premises first",
            )
            for row in session.execute(unknown)
        ]
        return problems + self._excess_shares(session)

    def _excess_shares(self, session: Session) -> list[Problem]:
        """The shares listed for one premises may not add up to more than 1. Summed exactly in
        Python over the file's rows, streamed in premises order."""
        stage = self.staging
        rows = session.execute(
            select(
                stage.c.line, stage.c.building_code, stage.c.premise, stage.c.share_numerator, stage.c.share_denominator
            )
            .order_by(stage.c.building_code, stage.c.premise, stage.c.line)
            .execution_options(yield_per=10_000)
        )
        problems: list[Problem] = []
        current: tuple[str, str] | None = None
        total, lines = Fraction(0), list[int]()
        for row in itertools.chain(rows, [None]):
            key = None if row is None else (row.building_code, row.premise)
            if key != current:
                if current is not None and total > 1:
                    problems.append(
                        Problem(
                            lines[0],
                            "shares_exceed_one",
                            f"the shares of premises {current[1]} in building {current[0]} add up to "
                            f"{format_share(total)}, more than 1 (lines {', '.join(map(str, lines))})",
                        )
                    )
                current, total, lines = key, Fraction(0), []
            if row is not None:
                total += Fraction(row.share_numerator, row.share_denominator)
                lines.append(row.line)
        return problems

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        # Resolve each row's premises once, into the indexed staging table, so the removal below
        # is an index lookup per ownership rather than a join per ownership.
        premise_id = (
            select(Premise.id)
            .join(Building, Building.id == Premise.building_id)
            .where(Building.code == stage.c.building_code, Premise.number == stage.c.premise)
            .scalar_subquery()
        )
        session.execute(update(stage).values(premise_id=premise_id))
        source = select(
            stage.c.premise_id, stage.c.owner, stage.c.share_numerator, stage.c.share_denominator
        ).subquery()
        upsert = Upsert(Ownership.__table__, source, ("premise_id", "owner"), ("share_numerator", "share_denominator"))  # type: ignore[arg-type]
        summary = upsert.count(session, "owners")
        mentioned = select(stage.c.premise_id)
        listed = select(stage.c.line).where(
            stage.c.premise_id == Ownership.premise_id, stage.c.owner == Ownership.owner
        )
        removal = delete(Ownership).where(Ownership.premise_id.in_(mentioned)).where(~exists(listed))
        summary.removed = cast(CursorResult[Any], session.execute(removal)).rowcount
        upsert.apply(session)
        return summary

    def staging_indexes(self) -> list[Index]:
        return [Index("ix_stage_owners_premise_owner", self.staging.c.premise_id, self.staging.c.owner)]
