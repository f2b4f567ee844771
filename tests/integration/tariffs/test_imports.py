"""The tariff catalogue imports on both databases: created / unchanged / updated by natural key,
history kept, every bad row refused with its line and reason, nothing written then."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import MANAGER_INN, SUPPLIER_INN, import_rows, organisation, registry
from zhkh.core.errors import ProblemsFound
from zhkh.core.requisites import with_inn_check_digits
from zhkh.housing.imports import OrganisationsImport
from zhkh.tariffs.imports import BenefitsImport, MultipliersImport, NormsImport, SuppliersImport, TariffsImport
from zhkh.tariffs.models import Benefit, BenefitLimit, Multiplier, Norm, ServiceSupplier, Tariff

SOCIAL_INN = with_inn_check_digits("770000003")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def catalogue_registry(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    import_rows(
        session,
        tmp_path,
        OrganisationsImport(),
        [
            organisation(),
            organisation(inn=SUPPLIER_INN, role="supplier"),
            organisation(
                inn=SOCIAL_INN, role="social_protection", bank_account="", bic="", bank_name="", corr_account=""
            ),
        ],
    )


def tariff(**overrides: Any) -> dict[str, Any]:
    row = {
        "service": "cold_water",
        "zone": "",
        "price": "55.12",
        "unit": "m3",
        "valid_from": "2026-01-01",
        "valid_to": "",
        "building_id": "",
    }
    return row | overrides


def problems(excinfo: pytest.ExceptionInfo[ProblemsFound]) -> list[str]:
    return [str(problem) for problem in excinfo.value.problems]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_tariffs_for_every_building_and_one_building_reimport_unchanged(
    session: Session, tmp_path: Path, catalogue_registry: None
) -> None:
    rows = [
        tariff(),
        tariff(price="58.70", valid_from="2026-07-01"),
        tariff(price="60", building_id="B-1"),
        tariff(service="Электроэнергия", zone="T1", price="7,12", unit="кВт·ч"),
        tariff(service="electricity", zone="2", price="3.48", unit="kWh"),
    ]
    first = import_rows(session, tmp_path, TariffsImport(), rows)
    assert (first.created, first.updated, first.unchanged) == (5, 0, 0)
    # The key has empty parts (every building, single-rate): matched null-safely, not duplicated.
    again = import_rows(session, tmp_path, TariffsImport(), rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)

    rows[0]["valid_to"] = "2026-06-30"
    changed = import_rows(session, tmp_path, TariffsImport(), rows)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 4)
    assert count(session, Tariff) == 5
    day = session.scalars(select(Tariff).where(Tariff.service == "electricity").order_by(Tariff.zone)).all()
    assert [(t.zone, t.price, t.unit) for t in day] == [(1, Decimal("7.12"), "kWh"), (2, Decimal("3.48"), "kWh")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (tariff(service="water"), "service: unknown service 'water'"),
        (tariff(zone="1"), "zone: zone 1: only electricity has zones"),
        (tariff(service="electricity", unit="kWh", zone="4"), "zone: zone 4: empty for single-rate, or 1 to 3"),
        (tariff(price="-1"), "price: -1 is negative"),
        (tariff(unit="kWh"), "unit: cold_water is priced per m3, not per kWh"),
        (tariff(service="waste", unit="m3"), "unit: waste is priced per person or m2, not per m3"),
        (tariff(valid_to="2025-12-31"), "valid_to: 2025-12-31 is before valid_from 2026-01-01"),
        (tariff(valid_from="01/01/2026"), "valid_from: not a date"),
        (tariff(building_id="NOPE"), "building_id: no building 'NOPE'; import buildings first"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_bad_tariff_row_imports_nothing(
    session: Session, tmp_path: Path, catalogue_registry: None, row: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, TariffsImport(), [tariff(service="hot_water"), row])
    assert len(excinfo.value.problems) == 1
    assert problems(excinfo)[0].startswith(f"line 3: {message}")
    assert count(session, Tariff) == 0


def test_a_tariff_twice_in_one_file_is_refused(session: Session, tmp_path: Path, catalogue_registry: None) -> None:
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, TariffsImport(), [tariff(), tariff(price="1")])
    assert problems(excinfo) == [
        "line 3: service / zone / building / valid_from cold_water / 0 / None / 2026-01-01 already appears on line 2"
    ]


def test_suppliers_by_building_and_inn(session: Session, tmp_path: Path, catalogue_registry: None) -> None:
    rows = [
        {
            "building_id": "B-1",
            "service": "ХВС",
            "supplier_inn": SUPPLIER_INN,
            "valid_from": "01.01.2026",
            "valid_to": "",
        },
        {
            "building_id": "B-1",
            "service": "maintenance",
            "supplier_inn": MANAGER_INN,
            "valid_from": "2026-01-01",
            "valid_to": "",
        },
    ]
    assert import_rows(session, tmp_path, SuppliersImport(), rows).created == 2
    rows.append({**rows[0], "valid_from": "2027-01-01", "supplier_inn": MANAGER_INN})
    summary = import_rows(session, tmp_path, SuppliersImport(), rows)
    assert (summary.created, summary.unchanged) == (1, 2)
    assert session.scalars(select(ServiceSupplier.service).order_by(ServiceSupplier.id)).all() == [
        "cold_water",
        "maintenance",
        "cold_water",
    ]

    bad = [{**rows[0], "supplier_inn": with_inn_check_digits("770000009")}, {**rows[0], "building_id": "B-9"}]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, SuppliersImport(), bad)
    assert [message.split(":")[0] + ":" + message.split(":")[1] for message in problems(excinfo)] == [
        "line 2: supplier_inn",
        "line 3: building_id",
    ]
    assert "no organisation with INN" in problems(excinfo)[0]


def test_norms_including_the_social_norm_by_household_size(
    session: Session, tmp_path: Path, catalogue_registry: None
) -> None:
    rows = [
        {
            "service": "cold_water",
            "value": "6.935",
            "unit": "м3/чел",
            "valid_from": "2017-01-01",
            "valid_to": "",
            "building_id": "",
        },
        {
            "service": "heating",
            "value": "0,0208",
            "unit": "Гкал/м2",
            "valid_from": "2017-01-01",
            "valid_to": "",
            "building_id": "B-1",
        },
        {
            "service": "social_area",
            "value": "33",
            "unit": "m2/person",
            "valid_from": "2005-01-01",
            "valid_to": "",
            "building_id": "",
            "residents": "1",
        },
        {
            "service": "social_area",
            "value": "18",
            "unit": "m2/person",
            "valid_from": "2005-01-01",
            "valid_to": "",
            "building_id": "",
            "residents": "",
        },
    ]
    assert import_rows(session, tmp_path, NormsImport(), rows).created == 4
    assert import_rows(session, tmp_path, NormsImport(), rows).unchanged == 4
    assert session.scalar(select(Norm.unit).where(Norm.service == "heating")) == "Gcal/m2"

    bad = [
        {**rows[0], "unit": "m3"},
        {**rows[0], "unit": "kWh/person"},
        {**rows[0], "service": "maintenance", "unit": "m2/person"},
        {**rows[0], "residents": "2"},
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, NormsImport(), bad)
    assert problems(excinfo) == [
        "line 2: unit: a norm's unit is a quantity per unit, like m3/person or Гкал/м2, got 'm3'",
        "line 3: unit: the norm of cold_water is in m3/person, not kWh/person",
        "line 4: service: maintenance has no consumption norm; it is billed by its tariff",
        "line 5: residents: only the social norm of area is set per household size (1 or more)",
    ]


def test_federal_multipliers_come_with_the_schema_and_more_can_be_imported(
    session: Session, tmp_path: Path, catalogue_registry: None
) -> None:
    cold = session.scalars(
        select(Multiplier.value).where(Multiplier.service == "cold_water").order_by(Multiplier.valid_from)
    )
    assert list(cold) == [Decimal("1.5"), Decimal("3")]
    rows = [{"service": "heating", "value": "1.5", "valid_from": "2026-01-01", "valid_to": ""}]
    assert import_rows(session, tmp_path, MultipliersImport(), rows).created == 1
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(
            session,
            tmp_path,
            MultipliersImport(),
            [{**rows[0], "service": "gas"}, {**rows[0], "value": "0.5"}],
        )
    assert problems(excinfo) == [
        "line 2: service: gas has no multiplier (ПП 354: only cold and hot water, electricity and heating)",
        "line 3: value: 0.5 is below 1; a multiplier raises the norm",
    ]


def benefit(**overrides: Any) -> dict[str, Any]:
    row = {
        "account": "1001",
        "service": "maintenance",
        "percent": "50",
        "limit": "social_norm",
        "valid_from": "2026-01-01",
        "valid_to": "",
        "granted_by_inn": SOCIAL_INN,
    }
    return row | overrides


def test_benefits_granted_by_social_protection(session: Session, tmp_path: Path, catalogue_registry: None) -> None:
    rows = [benefit(), benefit(account="1002", service="cold_water", limit="consumption_norm", persons="1")]
    assert import_rows(session, tmp_path, BenefitsImport(), rows).created == 2
    stored = session.scalar(select(Benefit).where(Benefit.service == "cold_water"))
    assert stored is not None
    assert (stored.percent, stored.limit, stored.persons) == (Decimal("50"), BenefitLimit.CONSUMPTION_NORM, 1)

    bad = [
        benefit(account="9999"),
        benefit(granted_by_inn=SUPPLIER_INN),
        benefit(percent="120"),
        benefit(limit="some"),
        benefit(service="cold_water"),
        benefit(service="maintenance", limit="consumption_norm"),
        benefit(persons="0"),
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, BenefitsImport(), bad)
    assert problems(excinfo) == [
        "line 2: account: no personal account '9999'",
        f"line 3: granted_by_inn: no social protection organisation with INN {SUPPLIER_INN}; import it with role social_protection",
        "line 4: percent: 120 is not a percentage above 0 and at most 100",
        "line 5: limit: 'some'; expected social_norm or consumption_norm",
        "line 6: service: cold_water has no area to limit by the social norm (maintenance, capital_repair, heating, waste)",
        "line 7: service: maintenance has no consumption norm per person to limit by",
        "line 8: persons: 0: a benefit covers at least one person",
    ]
    assert count(session, Benefit) == 2


def test_the_example_files_import(session: Session, tmp_path: Path) -> None:
    from tests.builders import import_file
    from zhkh.housing.imports import BuildingsImport, PremisesImport

    for name, importer in [
        ("organisations", OrganisationsImport()),
        ("buildings", BuildingsImport()),
        ("premises", PremisesImport()),
        ("suppliers", SuppliersImport()),
        ("tariffs", TariffsImport()),
        ("norms", NormsImport()),
        ("multipliers", MultipliersImport()),
        ("benefits", BenefitsImport()),
    ]:
        summary = import_file(session, EXAMPLES / f"{name}.csv", importer)
        assert summary.created > 0, name
