import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.billing.payment_qr import (
    ENCODING_KEY,
    SEPARATORS,
    PaymentQr,
    build_payload,
    choose_separator,
    parse_payload,
)
from zhkh.core.requisites import with_account_key, with_inn_check_digits

# Public requisites of Sberbank (PAO); the payee's account is made to match its BIC.
BIC, CORR = "044525225", "30101810400000000225"
ACCOUNT = with_account_key("40702810000000012345", BIC)
PAYEE_INN = with_inn_check_digits("770000001")


def make_qr(**overrides: object) -> PaymentQr:
    fields: dict[str, object] = {
        "name": "ООО «УК Солнечный берег»",
        "personal_acc": ACCOUNT,
        "bank_name": "ПАО Сбербанк",
        "bic": BIC,
        "corresp_acc": CORR,
        "payee_inn": PAYEE_INN,
        "kpp": "770101001",
        "sum_kopecks": 523_417,
        "purpose": "Оплата ЖКУ ЛС 1000234 за 03.2026",
        "pers_acc": "1000234",
        "paym_period": "032026",
        "last_name": "Иванова",
        "payer_address": "г. Москва, ул. Садовая, д. 5, кв. 12",
    }
    fields.update(overrides)
    return PaymentQr(**fields)  # type: ignore[arg-type]


def test_payload_for_housing_services() -> None:
    assert build_payload(make_qr()) == (
        "ST00012|Name=ООО «УК Солнечный берег»"
        f"|PersonalAcc={ACCOUNT}|BankName=ПАО Сбербанк|BIC=044525225|CorrespAcc=30101810400000000225"
        f"|PayeeINN={PAYEE_INN}|KPP=770101001|Sum=523417|Purpose=Оплата ЖКУ ЛС 1000234 за 03.2026"
        "|PersAcc=1000234|PaymPeriod=032026|LastName=Иванова"
        "|PayerAddress=г. Москва, ул. Садовая, д. 5, кв. 12|TechCode=02"
    )


def test_empty_optional_fields_are_left_out() -> None:
    payload = build_payload(make_qr(kpp="", last_name="", payer_address="", purpose=""))
    assert "KPP=" not in payload
    assert "LastName=" not in payload
    assert "PayerAddress=" not in payload
    assert "Purpose=" not in payload
    assert payload.endswith("|TechCode=02")


def test_mandatory_fields_come_first_in_order() -> None:
    keys = [key for key in parse_payload(build_payload(make_qr())) if key != ENCODING_KEY]
    assert keys[:5] == ["Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc"]


def test_separator_switches_when_a_value_contains_it() -> None:
    payload = build_payload(make_qr(name="ТСЖ «Дом|Сад»"))
    assert payload.startswith("ST00012#Name=ТСЖ «Дом|Сад»#PersonalAcc=")
    assert parse_payload(payload)["Name"] == "ТСЖ «Дом|Сад»"


def test_separator_skips_every_character_in_use() -> None:
    payload = build_payload(make_qr(name="А|Б#В", purpose="за 03.2026; кв. 5"))
    assert payload[7] == ":"
    parsed = parse_payload(payload)
    assert parsed["Name"] == "А|Б#В"
    assert parsed["Purpose"] == "за 03.2026; кв. 5"


def test_no_separator_left() -> None:
    with pytest.raises(ValueError, match="every separator"):
        choose_separator(["".join(SEPARATORS)])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sum_kopecks": 0}, "Sum"),
        ({"sum_kopecks": -100}, "Sum"),
        ({"personal_acc": "4070281000000001234"}, "PersonalAcc"),
        ({"personal_acc": "40702810100000012345"}, "PersonalAcc"),  # wrong control key
        ({"bic": "04452522"}, "BIC"),
        ({"bic": "04452522X"}, "BIC"),
        ({"corresp_acc": "3010181040000000022"}, "CorrespAcc"),
        ({"payee_inn": "770000001"}, "PayeeINN"),
        ({"kpp": "77010100"}, "KPP"),
        ({"paym_period": "132026"}, "PaymPeriod"),
        ({"paym_period": "03.2026"}, "PaymPeriod"),
        ({"tech_code": "2"}, "TechCode"),
        ({"name": " "}, "Name"),
        ({"bank_name": ""}, "BankName"),
        ({"bank_name": "Б" * 46}, "BankName"),
        ({"purpose": "строка\nвторая"}, "Purpose"),
    ],
)
def test_malformed_fields_are_refused_by_name(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_payload(make_qr(**overrides))


def test_sum_must_be_an_integer() -> None:
    with pytest.raises(ValueError, match="Sum"):
        build_payload(make_qr(sum_kopecks=True))


def test_parse_accepts_keys_in_any_case() -> None:
    parsed = parse_payload(
        "ST00012|name=ООО «Ромашка»|PERSONALACC=40702810938000000001|bankname=ПАО Сбербанк"
        "|bic=044525225|correspacc=30101810400000000225|sum=100|payeeinn=7707083893|persacc=15|techcode=02"
    )
    assert parsed == {
        ENCODING_KEY: "2",
        "Name": "ООО «Ромашка»",
        "PersonalAcc": "40702810938000000001",
        "BankName": "ПАО Сбербанк",
        "BIC": "044525225",
        "CorrespAcc": "30101810400000000225",
        "Sum": "100",
        "PayeeINN": "7707083893",
        "PersAcc": "15",
        "TechCode": "02",
    }


def test_parse_accepts_a_trailing_separator_and_keeps_unknown_keys() -> None:
    parsed = parse_payload(
        "ST00011|Name=А|PersonalAcc=40702810938000000001|BankName=Б|BIC=044525225"
        "|CorrespAcc=30101810400000000225|X-Custom=да|"
    )
    assert parsed[ENCODING_KEY] == "1"
    assert parsed["X-Custom"] == "да"
    assert parsed["CorrespAcc"] == "30101810400000000225"


def test_parse_records_koi8_flag_and_other_separator() -> None:
    parsed = parse_payload("ST00013;Name=А;PersonalAcc=1;BankName=Б;BIC=2;CorrespAcc=3;Purpose=a=b")
    assert parsed[ENCODING_KEY] == "3"
    assert parsed["Purpose"] == "a=b"  # only the first "=" separates key from value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ST0002|Name=А", "ST0001"),
        ("Name=А|BIC=1", "ST0001"),
        ("", "ST0001"),
        ("ST00014|Name=А", "encoding flag"),
        ("ST00012", "separator"),
        ("ST00012|Name=А|PersonalAcc=1|BankName=Б|BIC=2|CorrespAcc=3|Sum", "Key=Value"),
        ("ST00012|Name=А|name=Б|PersonalAcc=1|BankName=Б|BIC=2|CorrespAcc=3", "twice"),
        ("ST00012|Name=А|PersonalAcc=1|BankName=Б|BIC=2", "CorrespAcc"),
    ],
)
def test_parse_refuses_malformed_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_payload(text)


# Printable text with no line breaks or other control characters: what a name or address can be.
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
    max_size=60,
)


@given(
    name=_text.filter(str.strip),
    bank_name=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=45).filter(
        str.strip
    ),
    sum_kopecks=st.integers(min_value=1, max_value=10**15),
    purpose=_text,
    pers_acc=st.from_regex(r"\A[0-9A-Z\-]{0,20}\Z"),
    month=st.integers(min_value=1, max_value=12),
    year=st.integers(min_value=2000, max_value=2099),
    last_name=_text,
    payer_address=_text,
)
def test_round_trip(
    name: str,
    bank_name: str,
    sum_kopecks: int,
    purpose: str,
    pers_acc: str,
    month: int,
    year: int,
    last_name: str,
    payer_address: str,
) -> None:
    qr = make_qr(
        name=name,
        bank_name=bank_name,
        sum_kopecks=sum_kopecks,
        purpose=purpose,
        pers_acc=pers_acc,
        paym_period=f"{month:02d}{year}",
        last_name=last_name,
        payer_address=payer_address,
    )
    values = [value for _, value in qr.pairs()]
    if all(any(separator in value for value in values) for separator in SEPARATORS):
        with pytest.raises(ValueError, match="every separator"):
            build_payload(qr)
        return
    parsed = parse_payload(build_payload(qr))
    assert parsed.pop(ENCODING_KEY) == "2"
    assert parsed == dict(qr.pairs())  # every non-empty field survives, in order, and only those
    assert list(parsed) == [key for key, _ in qr.pairs()]
