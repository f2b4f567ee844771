import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.core.requisites import (
    bank_account_problem,
    corr_account_problem,
    inn_problem,
    kpp_problem,
    with_account_key,
    with_inn_check_digits,
)

# Public requisites of Sberbank (PAO), printed on every one of its payment documents.
SBER_INN, SBER_BIC, SBER_CORR, SBER_ACCOUNT = "7707083893", "044525225", "30101810400000000225", "40702810938000000001"


def test_real_requisites_pass() -> None:
    assert inn_problem(SBER_INN) is None
    assert corr_account_problem(SBER_CORR, SBER_BIC) is None
    assert bank_account_problem(SBER_ACCOUNT, SBER_BIC) is None
    assert kpp_problem("773601001") is None


def test_inn_wrong_check_digit() -> None:
    assert inn_problem("7707083894") == "INN 7707083894 has a wrong check digit"


def test_individual_inn_has_two_check_digits() -> None:
    """An individual's INN 500100732259 is valid: digits 11 and 12 are both check digits."""
    assert inn_problem("500100732259") is None
    assert inn_problem("500100732258") is not None


@pytest.mark.parametrize("inn", ["12345", "77070838931", "77O7083893", ""])
def test_inn_wrong_length_or_letters(inn: str) -> None:
    assert "10 digits" in (inn_problem(inn) or "")


def test_account_must_match_bic() -> None:
    assert "wrong control key" in (bank_account_problem("40702810438000000001", SBER_BIC) or "")
    assert "20 digits" in (bank_account_problem("4070281043800000000", SBER_BIC) or "")


def test_corr_account_must_start_with_301_and_match_bic() -> None:
    assert "301" in (corr_account_problem("40101810400000000225", SBER_BIC) or "")
    assert "wrong control key" in (corr_account_problem("30101810500000000225", SBER_BIC) or "")


@pytest.mark.parametrize("kpp", ["77360100", "7736AB001X", "7736ab001"])
def test_kpp_format(kpp: str) -> None:
    assert kpp_problem(kpp) is not None


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_generated_organisation_inn_is_valid(prefix: str) -> None:
    assert inn_problem(with_inn_check_digits(prefix)) is None


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_generated_individual_inn_is_valid(prefix: str) -> None:
    assert inn_problem(with_inn_check_digits(prefix)) is None


@given(st.text(alphabet="0123456789", min_size=20, max_size=20), st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_generated_account_key_matches_bic(account: str, bic: str) -> None:
    assert bank_account_problem(with_account_key(account, bic), bic) is None
