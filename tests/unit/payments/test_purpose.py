from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.payments.purpose import PurposeHints, account_candidate, purpose_hints

MAY = date(2026, 5, 1)
APRIL = date(2026, 4, 1)


@pytest.mark.parametrize(
    ("purpose", "accounts", "period"),
    [
        # the forms people and banks write
        ("Оплата ЖКУ ЛС 1000001 за 05.2026", ("1000001",), MAY),
        ("Оплата ЖКУ Л/С 1000001 за 05/2026. Без НДС", ("1000001",), MAY),
        ("Коммунальные услуги л.с. 1000001 за май 2026", ("1000001",), MAY),
        ("Квартплата, л/сч 1000001, за мая 2026г", ("1000001",), MAY),
        ("Оплата по лицевой счет № 1000001 за май 2026 г.", ("1000001",), MAY),
        ("ОПЛАТА ЖКУ ЛИЦ. СЧЕТ 1000001 ЗА МАЙ 2026", ("1000001",), MAY),
        ("ЛС:1000001 период 052026", ("1000001",), MAY),
        ("ЛИЦЕВОЙ СЧЕТ: 1000001; ПЕРИОД: 05.2026; ФИО: ИВАНОВ И.И.", ("1000001",), MAY),
        ("Оплата по лицевому счёту №1000001 за апрель 2026 года", ("1000001",), APRIL),
        ("ЖКУ ЛС1000001 ПЕРИОД ОПЛАТЫ 0526", ("1000001",), MAY),
        ("Оплата ЖКУ лиц.сч. 1000001 за 5.2026", ("1000001",), MAY),
        ("Оплата ЖКУ ЛС 1000001 05.2026", ("1000001",), MAY),  # a bare MM.YYYY
        ("л/счет 12-345 за Апрель 2026", ("12-345",), APRIL),
        # ГОСТ Р 56042 fields copied from the bill's QR code
        ("PersAcc=1000003|PaymPeriod=052026|Оплата ЖКУ", ("1000003",), MAY),
        ("Name=ООО УК Наш Дом;persacc=1000003;paymperiod=04.2026", ("1000003",), APRIL),
        ("Оплата ЖКУ PERSACC=1000003 PAYMPERIOD=052026 Без НДС", ("1000003",), MAY),
        ("PersAcc=1000003|PaymPeriod=052026|Purpose=ЖКУ за апрель 2026", ("1000003",), MAY),  # the field wins
        # two accounts in one payment
        ("Оплата ЛС 1000001 и ЛС 1000002 за 05.2026", ("1000001", "1000002"), MAY),
        ("PersAcc=1000001|Purpose=Оплата ЖКУ ЛС 1000001", ("1000001",), None),
        # the account is there but the period is not, or is ambiguous
        ("Оплата ЖКУ ЛС 1000001", ("1000001",), None),
        ("Оплата ЖКУ ЛС 1000001 за апрель-май 2026", ("1000001",), None),
        ("Оплата ЖКУ ЛС 1000001 за 04.2026 и 05.2026", ("1000001",), None),
        ("ЛС 1000001 за декабрь 2025 и январь 2026", ("1000001",), None),
        # a date is not a period, an INN, a bank account or a date is not an account
        ("Оплата ЛС 1000001 по квитанции от 15 мая 2026", ("1000001",), None),
        ("Оплата по счету № 15 от 01.05.2026 за 1000 руб", (), None),
        ("ЛС 7701234560 оплата за 05.2026", (), MAY),  # 10 digits: an INN
        ("Л/С 770123456703", (), None),  # 12 digits: an INN of a person
        ("л/с 40817810400000005678 Иванов", (), None),  # a bank account
        ("ЛС 01.05.2026 оплата", (), None),  # a date
        ("ЛС ИНН 7701234560 КПП 770101001", (), None),
        # nothing to find
        ("Перевод средств по договору № 12-ХВС от 01.01.2026. Без НДС", (), None),
        ("Возврат ошибочно перечисленных средств. НДС не облагается", (), None),
        ("Оплата по счету 123 от 15.05.2026 за материалы, в т.ч. НДС 20% 1500.00", (), None),
        ("Заработная плата за май", (), None),  # no year
        ("Пополнение счета. ИНН 770123456703. р/с 40702810500000001234", (), None),
        ("Иванова Ласточка оплата услуг", (), None),
        ("", (), None),
    ],
)
def test_purpose_hints(purpose: str, accounts: tuple[str, ...], period: date | None) -> None:
    hints = purpose_hints(purpose)
    assert hints.accounts == accounts
    assert hints.period == period
    assert hints.services == ()


def test_service_codes_only_when_explicit() -> None:
    assert purpose_hints("PersAcc=1000001|service=cold_water|SERVICE=hot_water,heating") == PurposeHints(
        accounts=("1000001",), period=None, services=("cold_water", "hot_water", "heating")
    )
    assert purpose_hints("Оплата за холодную воду ЛС 1000001").services == ()
    assert purpose_hints("service=coffee").services == ()  # not a service of the catalogue


@pytest.mark.parametrize(
    ("token", "account"),
    [
        ("1000001", "1000001"),
        ("1000001.", "1000001"),  # the end of a sentence
        ("99АБ123456", "99АБ123456"),
        ("12-345", "12-345"),
        ("7701234560", None),
        ("770123456703", None),
        ("40817810400000005678", None),
        ("01.05.2026", None),
        ("05/2026", None),
        ("ИНН", None),
    ],
)
def test_account_candidate(token: str, account: str | None) -> None:
    assert account_candidate(token) == account


@given(st.text(st.sampled_from("ЛлСсЧч./№:-= 0123456789мая2026ИНН|PersAcc")))
def test_never_an_inn_bank_account_or_date(purpose: str) -> None:
    for account in purpose_hints(purpose).accounts:
        assert not (account.isdigit() and len(account) in (10, 12, 20))
        assert "." not in account
        assert "/" not in account
        assert any(c.isdigit() for c in account)
