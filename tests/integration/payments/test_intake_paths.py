"""The intake paths end to end on the database: bank statement, agent registry, cash desk."""

from __future__ import annotations

import gc
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import BIC, MANAGER_INN, organisation
from tests.integration.payments.conftest import Charge, day
from zhkh.core.errors import InvalidInput, NotFound, ProblemsFound
from zhkh.housing.models import Account
from zhkh.payments.intake import import_agent_registry, import_bank_statement, record_cash
from zhkh.payments.models import Payment, PaymentSource, UnmatchedPayment

OUR_ACCOUNT = organisation()["bank_account"]


def document(
    number: int, amount: str, purpose: str, payer: str = "Смирнов Олег Петрович", payee: str = OUR_ACCOUNT
) -> str:
    payer_account = f"4081781040000000{number:04d}"
    return "\n".join(
        [
            "СекцияДокумент=Платежное поручение",
            f"Номер={number}",
            "Дата=26.05.2026",
            f"Сумма={amount}",
            f"ПлательщикСчет={payer_account}",
            f"Плательщик={payer}",
            f"Плательщик1={payer}",
            f"ПлательщикБИК={BIC}",
            "ДатаСписано=25.05.2026",
            f"ПолучательСчет={payee}",
            'Получатель=ООО "УК"',
            f"ПолучательИНН={MANAGER_INN}",
            f"ПолучательБИК={BIC}",
            "ДатаПоступило=26.05.2026",
            f"НазначениеПлатежа={purpose}",
            "КонецДокумента",
        ]
    )


def statement(*documents: str, account: str = OUR_ACCOUNT, incoming: str, outgoing: str = "0.00") -> bytes:
    opening = 100000
    closing = opening + float(incoming) - float(outgoing)  # test data only; the parser uses kopecks
    lines = [
        "1CClientBankExchange",
        "ВерсияФормата=1.03",
        "Кодировка=Windows",
        f"РасчСчет={account}",
        "СекцияРасчСчет",
        "ДатаНачала=25.05.2026",
        "ДатаКонца=31.05.2026",
        f"РасчСчет={account}",
        f"НачальныйОстаток={opening:.2f}",
        f"ВсегоПоступило={incoming}",
        f"ВсегоСписано={outgoing}",
        f"КонечныйОстаток={closing:.2f}",
        "КонецРасчСчет",
        *documents,
        "КонецФайла",
    ]
    return "\r\n".join(lines).encode("cp1251")


def test_a_statement_is_matched_by_purpose_and_payer_and_the_rest_waits(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1002", "2026-04", heating=30000)
    charge("1002", "2026-05", heating=30000)
    data = statement(
        document(1, "1500.00", "Оплата ЖКУ ЛС 1001 за 05.2026"),
        document(2, "300.00", "ST00012|Name=УК|PersAcc=1002|PaymPeriod=052026|Sum=30000"),
        document(3, "200.00", "Оплата коммунальных услуг", payer="ИВАНОВ ИВАН ИВАНОВИЧ"),
        document(4, "100.00", "ЛС 7777 квартплата"),
        document(5, "50.00", "Возврат", payee="40702810900000000001"),  # not to us: outgoing side
        incoming="2100.00",
    )
    result = import_bank_statement(session, data, "2026-05-31.txt")

    assert result.payments_in_file == 4
    assert result.result.counts() == {"recorded": 2, "duplicates": 0, "queued": 2}
    payments = {p.account_id: p for p in session.scalars(select(Payment))}
    assert payments[accounts["1001"]].amount == 150000
    assert payments[accounts["1001"]].paid_on == date(2026, 5, 25)  # the day the payer's bank debited them
    assert payments[accounts["1002"]].period == date(2026, 5, 1)
    reasons = {u.amount: u.reason for u in session.scalars(select(UnmatchedPayment))}
    # Every premise of the test registry has the payer "Иванов Иван Иванович": not one account.
    assert reasons == {
        20000: "no personal account in the purpose, and the payer's name identifies no single account",
        10000: "account 7777 named in the purpose is not in the registry",
    }

    again = import_bank_statement(session, data, "2026-05-31 (again).txt")
    assert again.result.counts() == {"recorded": 0, "duplicates": 4, "queued": 0}
    assert session.scalar(select(func.count()).select_from(Payment)) == 2


def test_a_unique_payer_name_matches_without_an_account_number(session: Session, accounts: dict[str, int]) -> None:
    account = session.get_one(Account, accounts["1003"])
    account.payer = "Ёлкина Анна Сергеевна"
    session.flush()
    data = statement(document(7, "99.00", "коммуналка", payer="ЕЛКИНА АННА СЕРГЕЕВНА"), incoming="99.00")
    import_bank_statement(session, data, "st.txt")
    assert session.scalars(select(Payment.account_id)).one() == accounts["1003"]


def test_a_statement_of_somebody_elses_account_is_refused(session: Session, accounts: dict[str, int]) -> None:
    other = "40702810900000000001"
    data = statement(document(1, "10.00", "ЛС 1001", payee=other), account=other, incoming="10.00")
    with pytest.raises(InvalidInput, match=f"account {other} of this statement is not the bank account"):
        import_bank_statement(session, data, "other.txt")


def test_a_broken_statement_imports_nothing(session: Session, accounts: dict[str, int]) -> None:
    data = statement(document(1, "10.00", "ЛС 1001"), incoming="99.00")  # turnover does not add up
    with pytest.raises(ProblemsFound) as refused:
        import_bank_statement(session, data, "bad.txt")
    assert "ВсегоПоступило" in str(refused.value.problems[0])
    assert session.scalar(select(func.count()).select_from(Payment)) == 0


def registry(*lines: str, summary: str) -> bytes:
    return "\n".join([*lines, summary]).encode("cp1251")


def test_an_agent_registry_is_recorded_and_an_unknown_account_waits(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1001", "2026-05", cold_water=10000)
    data = registry(
        "PB-1;01.06.2026;1001;052026;100,00;Иванов Иван Иванович",
        "PB-2;01.06.2026;5555;052026;25.50",
        summary="=2;125.50",
    )
    result = import_agent_registry(session, data, "pochta-2026-06-01.txt")
    assert result.result.counts() == {"recorded": 1, "duplicates": 0, "queued": 1}
    assert session.scalars(select(UnmatchedPayment.reason)).one() == "account 5555 is not in the registry"
    assert import_agent_registry(session, data, "again.txt").result.duplicates == 2


def test_an_agent_registry_whose_totals_do_not_add_up_imports_nothing(
    session: Session, accounts: dict[str, int]
) -> None:
    data = registry("PB-1;01.06.2026;1001;052026;100.00", summary="=1;90.00")
    with pytest.raises(ProblemsFound) as refused:
        import_agent_registry(session, data, "bad.txt")
    assert "total" in str(refused.value.problems[0])
    assert session.scalar(select(func.count()).select_from(Payment)) == 0


def test_the_cash_desk(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1001", "2026-05", waste=5000)
    result = record_cash(session, "1001", 5000, day("2026-06-02"), "КО-17", operator="cashier@uk")
    assert len(result.recorded) == 1
    stored = session.scalars(select(Payment)).one()
    assert (stored.source, stored.external_id, stored.recorded_by) == (PaymentSource.CASH_DESK, "КО-17", "cashier@uk")
    assert record_cash(session, "1001", 5000, day("2026-06-02"), "КО-17", operator="cashier@uk").duplicates == 1
    with pytest.raises(InvalidInput, match="receipt number"):
        record_cash(session, "1001", 5000, day("2026-06-02"), " ", operator="cashier@uk")
    with pytest.raises(NotFound, match="account 4040 is not in the registry"):
        record_cash(session, "4040", 5000, day("2026-06-02"), "КО-18", operator="cashier@uk")


def test_a_statement_is_imported_with_the_cycle_collector_paused(session: Session, accounts: dict[str, int]) -> None:
    """A parsed statement holds millions of objects; collector passes over them cost a tenth of
    the import (zhkh.core.runtime). 300 documents allocate enough for passes to start unpaused."""
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    documents = [document(n, "10.00", f"ЛС 7{n:03d}") for n in range(1, 301)]
    data = statement(*documents, incoming="3000.00")
    gc.collect()  # so that the few allocations before the pause starts cannot start a pass
    gc.callbacks.append(count)
    try:
        result = import_bank_statement(session, data, "large.txt")
        during = len(passes)
    finally:
        gc.callbacks.remove(count)
    assert result.result.counts()["queued"] == 300
    assert during <= 1  # the pass that the end of the pause lets start; unpaused, 6 to 11 run
