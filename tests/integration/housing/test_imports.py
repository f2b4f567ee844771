"""The registry imports on both databases: create / update / unchanged, all-or-nothing, and
every bad input with its line number."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from tests.builders import (
    MANAGER_INN,
    SUPPLIER_INN,
    building,
    csv_text,
    import_file,
    import_rows,
    organisation,
    owner,
    premise,
    registry,
)
from zhkh.core.errors import ProblemsFound
from zhkh.core.importing import run_import
from zhkh.core.tabular import FileRejected, rows_from_records
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, OwnersImport, PremisesImport
from zhkh.housing.models import Account, Building, Organisation, OrganisationRole, Ownership, Premise, PremiseKind

WriteFile = Callable[..., Path]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def problems_of(excinfo: pytest.ExceptionInfo[ProblemsFound]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


# --- organisations -----------------------------------------------------------------------------


def test_organisations_created_then_unchanged_then_updated(session: Session, tmp_path: Path) -> None:
    rows = [organisation(), organisation(inn=SUPPLIER_INN, role="РСО", name="АО «Водоканал»")]
    first = import_rows(session, tmp_path, OrganisationsImport(), rows)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)

    again = import_rows(session, tmp_path, OrganisationsImport(), rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.describe().endswith("nothing changed")

    rows[1]["name"] = "АО «Водоканал города»"
    changed = import_rows(session, tmp_path, OrganisationsImport(), rows)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    supplier = session.scalar(select(Organisation).where(Organisation.inn == SUPPLIER_INN))
    assert supplier is not None
    assert supplier.name == "АО «Водоканал города»"
    assert supplier.role is OrganisationRole.SUPPLIER


def test_social_protection_needs_no_bank_details(session: Session, tmp_path: Path) -> None:
    row = organisation(role="ОСЗН", bank_account="", bic="", bank_name="", corr_account="")
    import_rows(session, tmp_path, OrganisationsImport(), [row])
    stored = session.scalar(select(Organisation))
    assert stored is not None
    assert stored.role is OrganisationRole.SOCIAL_PROTECTION
    assert stored.bank_account is None


def test_inn_lost_leading_zero_in_a_spreadsheet_is_restored(session: Session, tmp_path: Path) -> None:
    inn = "0274062111"  # a real-format INN of Bashkortostan (region 02), check digit valid
    import_rows(session, tmp_path, OrganisationsImport(), [organisation(inn=inn[1:], kpp="027401001")])
    assert session.scalar(select(Organisation.inn)) == inn


def test_bad_organisations_are_all_reported_and_nothing_is_written(session: Session, tmp_path: Path) -> None:
    rows = [
        organisation(),  # line 2: fine
        organisation(inn="7707083894"),  # line 3: wrong check digit
        organisation(inn=SUPPLIER_INN, role="bank"),  # line 4: unknown role
        organisation(inn=SUPPLIER_INN, bank_account="40702810438000000001"),  # line 5: account/BIC mismatch
        organisation(kpp=""),  # line 6: missing KPP, and a duplicate of line 2
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, OrganisationsImport(), rows)
    assert problems_of(excinfo) == [
        "line 3: inn: INN 7707083894 has a wrong check digit",
        "line 4: role: unknown value 'bank'; expected one of manager, social_protection, supplier",
        "line 5: bank_account: bank account 40702810438000000001 does not match BIC 044525225 (wrong control key)",
        "line 6: kpp: is required for an organisation (10-digit INN)",
    ]
    assert count(session, Organisation) == 0


def test_duplicate_inn_in_one_file(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, OrganisationsImport(), [organisation(), organisation(name="другое")])
    assert problems_of(excinfo) == [f"line 3: INN {MANAGER_INN} already appears on line 2"]


# --- buildings ---------------------------------------------------------------------------------


def test_buildings_link_their_manager_and_keep_exact_areas(session: Session, tmp_path: Path) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    summary = import_rows(session, tmp_path, BuildingsImport(), [building(total_area_m2="3000,05")])
    assert summary.created == 1
    stored = session.scalar(select(Building))
    assert stored is not None
    assert stored.total_area_m2 == Decimal("3000.05")
    assert stored.manager is not None
    assert stored.manager.inn == MANAGER_INN


def test_building_with_unknown_manager(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, BuildingsImport(), [building()])
    assert problems_of(excinfo) == [
        f"line 2: manager_inn: no managing organisation with INN {MANAGER_INN}; import it first"
    ]


def test_building_manager_must_be_a_manager_not_a_supplier(session: Session, tmp_path: Path) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation(inn=SUPPLIER_INN, role="supplier")])
    with pytest.raises(ProblemsFound, match="1 problem"):
        import_rows(session, tmp_path, BuildingsImport(), [building(manager_inn=SUPPLIER_INN)])


# --- premises ----------------------------------------------------------------------------------


def test_premises_created_unchanged_updated(session: Session, tmp_path: Path) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    rows = [premise(account="1001", premise="1"), premise(account="1002", premise="2", meter_possible="нет")]

    first = import_rows(session, tmp_path, PremisesImport(), rows)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    again = import_rows(session, tmp_path, PremisesImport(), rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    rows[0]["residents"] = "3"  # an account attribute
    rows[1]["area_m2"] = "50"  # a premises attribute
    changed = import_rows(session, tmp_path, PremisesImport(), rows)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 2, 0)

    account = session.scalar(select(Account).where(Account.number == "1002"))
    assert account is not None
    assert account.premise.area_m2 == Decimal("50")
    assert account.premise.meter_possible is False
    assert count(session, Premise) == 2


def test_communal_flat_two_accounts_one_premises(session: Session, tmp_path: Path) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    rows = [premise(account="1001", premise="7"), premise(account="1002", premise="7", payer="Петров")]
    import_rows(session, tmp_path, PremisesImport(), rows)
    assert count(session, Premise) == 1
    assert count(session, Account) == 2


def test_account_moves_to_another_premises(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    summary = import_rows(session, tmp_path, PremisesImport(), [premise(account="1001", premise="2")])
    assert summary.updated == 1
    moved = session.scalar(select(Account).where(Account.number == "1001"))
    assert moved is not None
    assert moved.premise.number == "2"


def test_bad_premises_rows_each_get_a_line_and_nothing_is_written(session: Session, tmp_path: Path) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    rows = [
        premise(account="1", premise="1"),  # 2 fine
        premise(account="2", premise="2", building_id="NOPE"),  # 3 unknown building
        premise(account="3", premise="3", area_m2="-5"),  # 4 negative area
        premise(account="4", premise="4", area_m2="0"),  # 5 zero area
        premise(account="1", premise="5"),  # 6 duplicate account
        premise(account="6", premise="1", area_m2="99"),  # 7 disagrees with line 2 about premises 1
        premise(account="7", premise="7", residents="два"),  # 8 not a number
        premise(account="8", premise="8", kind="garage"),  # 9 unknown kind
        premise(account="", premise="9"),  # 10 empty account
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, PremisesImport(), rows)
    assert problems_of(excinfo) == [
        "line 3: building_id: no building 'NOPE'; import buildings first",
        "line 4: area_m2: must be greater than zero, got '-5'",
        "line 5: area_m2: must be greater than zero, got '0'",
        "line 6: account 1 already appears on line 2",
        "line 7: premises 1 of building B-1: area_m2 differ from line 2",
        "line 8: residents: not a number: 'два'",
        "line 9: kind: unknown value 'garage'; expected one of non_residential, residential",
        "line 10: account: is empty but required",
    ]
    assert count(session, Premise) == 0
    assert count(session, Account) == 0


def test_failed_import_leaves_no_staging_table(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ProblemsFound):
        import_rows(session, tmp_path, PremisesImport(), [premise(building_id="NOPE")])
    assert not inspect(session.connection()).has_table("stage_premises")


def test_windows_1251_semicolons_decimal_comma_russian_headers(
    session: Session, tmp_path: Path, write_file: WriteFile
) -> None:
    registry(session, tmp_path, premises=0)
    content = (
        "Лицевой счёт;Код дома;Квартира;Площадь;Проживает;Плательщик;Тип помещения;Возможность установки ИПУ\n"
        "2001;B-1;12;52,3;3;Сидорова Анна;жилое;да\n"
        "2002;B-1;н1;120,75;0;ООО «Ромашка»;нежилое;нет\n"
    )
    summary = import_file(session, write_file("premises.csv", content, "cp1251"), PremisesImport())
    assert summary.created == 2
    shop = session.scalar(select(Premise).where(Premise.number == "н1"))
    assert shop is not None
    assert (shop.kind, shop.area_m2, shop.meter_possible) == (PremiseKind.NON_RESIDENTIAL, Decimal("120.75"), False)


def test_xlsx_premises(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=0)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["account", "building_id", "premise", "area_m2", "residents"])
    sheet.append([3001, "B-1", 15, 61.7, 4])
    path = tmp_path / "premises.xlsx"
    workbook.save(path)
    assert import_file(session, path, PremisesImport()).created == 1
    stored = session.scalar(select(Account).where(Account.number == "3001"))
    assert stored is not None
    assert (stored.premise.area_m2, stored.residents, stored.premise.meter_possible) == (Decimal("61.7"), 4, True)


def test_header_only_file_is_refused(session: Session, write_file: WriteFile) -> None:
    with pytest.raises(FileRejected, match="header but no data rows"):
        import_file(session, write_file("p.csv", "account,building_id,premise,area_m2,residents\n"), PremisesImport())


def test_missing_required_column_is_refused(session: Session, write_file: WriteFile) -> None:
    with pytest.raises(FileRejected, match=r"missing required column\(s\) residents"):
        import_file(session, write_file("p.csv", "account,building_id,premise,area_m2\n1,B-1,1,30\n"), PremisesImport())


# --- owners ------------------------------------------------------------------------------------


def test_owners_with_fractional_shares(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=1)
    rows = [owner(owner=name, share="1/3") for name in ("Иванов И.И.", "Иванова А.П.", "Иванов П.И.")]
    summary = import_rows(session, tmp_path, OwnersImport(), rows)
    # The registry's own owner of premises 1 is not in this file, so the file replaces it.
    assert (summary.created, summary.removed) == (3, 1)
    shares = sorted(o.share for o in session.scalars(select(Ownership)))
    assert sum(shares) == 1


def test_owner_share_update_and_unchanged(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=1)
    rows = [owner(share="1/2"), owner(owner="Петров П.П.", share="1/2")]
    import_rows(session, tmp_path, OwnersImport(), rows)
    assert import_rows(session, tmp_path, OwnersImport(), rows).unchanged == 2
    rows = [owner(share="3/4"), owner(owner="Петров П.П.", share="0,25")]
    summary = import_rows(session, tmp_path, OwnersImport(), rows)
    assert (summary.updated, summary.unchanged, summary.removed) == (2, 0, 0)


def test_shares_above_one_are_refused(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    rows = [
        owner(premise="1", owner="А", share="1/2"),
        owner(premise="1", owner="Б", share="2/3"),
        owner(premise="2", owner="В", share="1"),
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, OwnersImport(), rows)
    assert problems_of(excinfo) == [
        "line 2: the shares of premises 1 in building B-1 add up to 7/6, more than 1 (lines 2, 3)"
    ]
    assert {o.owner for o in session.scalars(select(Ownership))} == {"Иванов Иван Иванович"}


def test_owner_of_unknown_premises_and_duplicate_owner(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=1)
    rows = [owner(premise="99"), owner(share="1/2"), owner(share="1/2")]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, OwnersImport(), rows)
    assert problems_of(excinfo) == [
        "line 2: premise: no premises '99' in building 'B-1'; import premises first",
        "line 4: owner B-1 / 1 / Иванов Иван Иванович already appears on line 3",
    ]


def test_example_files_import_cleanly(session: Session) -> None:
    examples = Path(__file__).resolve().parents[3] / "examples"
    steps = [
        ("organisations.csv", OrganisationsImport()),
        ("buildings.csv", BuildingsImport()),
        ("premises.csv", PremisesImport()),
        ("premises-1c-cp1251.csv", PremisesImport()),
        ("owners.csv", OwnersImport()),
    ]
    for name, importer in steps:
        summary = import_file(session, examples / name, importer)
        assert summary.total > 0, name


def test_csv_text_builder_round_trips() -> None:
    assert csv_text([{"a": 1, "b": "x;y"}], delimiter=";") == 'a;b\n1;"x;y"\n'


def test_a_column_the_file_lacks_leaves_stored_values_alone(
    session: Session, tmp_path: Path, write_file: WriteFile
) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    import_rows(session, tmp_path, PremisesImport(), [premise(kind="non_residential", meter_possible="no")])
    path = write_file("b.csv", "building_id,address\nB-1,г. Тестовск, новый адрес\n".replace(", новый", " новый"))
    assert import_file(session, path, BuildingsImport()).updated == 1
    stored = session.scalar(select(Building))
    assert stored is not None
    assert (stored.address, stored.total_area_m2, stored.manager_id is not None) == (
        "г. Тестовск новый адрес",
        Decimal("3000.5"),
        True,
    )
    narrow = write_file("p.csv", "account,building_id,premise,area_m2,residents\n1001,B-1,1,45.6,2\n")
    assert import_file(session, narrow, PremisesImport()).unchanged == 1
    account = session.scalar(select(Account))
    assert account is not None
    assert (account.payer, account.premise.kind, account.premise.meter_possible) == (
        "Иванов Иван Иванович",
        PremiseKind.NON_RESIDENTIAL,
        False,
    )
    emptied = write_file("p2.csv", "account,building_id,premise,area_m2,residents,payer\n1001,B-1,1,45.6,2,\n")
    assert import_file(session, emptied, PremisesImport()).updated == 1, (
        "an empty cell in a present column does change it"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"account": "1" * 40}, "line 2: account: is 40 characters long, at most 32 fit"),
        ({"residents": "3000000000"}, "line 2: residents: 3000000000 is too large (at most 2147483647)"),
        ({"payer": "x\x00y"}, "line 2: payer: contains a NUL character"),
    ],
)
def test_values_the_database_cannot_hold_are_refused_on_both_engines(
    session: Session, tmp_path: Path, override: dict[str, str], message: str
) -> None:
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    importer = PremisesImport()
    with pytest.raises(ProblemsFound) as excinfo:  # records, not a file: a file with NUL is refused as binary
        run_import(session, rows_from_records(importer.spec, [premise(**override)], "records"), importer)
    assert problems_of(excinfo) == [message]


def test_owners_reimport_is_stable(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=30)
    rows = [owner(premise=str(n), owner=f"Владелец {n}-{k}", share="1/2") for n in range(1, 31) for k in (1, 2)]
    first = import_rows(session, tmp_path, OwnersImport(), rows)
    assert (first.created, first.removed) == (60, 30)
    again = import_rows(session, tmp_path, OwnersImport(), rows)
    assert (again.unchanged, again.removed) == (60, 0)
