from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.core.money import allocate, format_rubles, parse_rubles, to_kopecks


@pytest.mark.parametrize(
    ("rubles", "kopecks"),
    [
        ("385.84", 38584),
        ("0.005", 1),  # half a kopeck rounds up
        ("0.00499", 0),
        ("-0.005", -1),  # half-up rounds ties away from zero, so a reversal mirrors the charge
        ("1151.2345", 115123),
        ("7", 700),
    ],
)
def test_to_kopecks_rounds_half_up(rubles: str, kopecks: int) -> None:
    assert to_kopecks(Decimal(rubles)) == kopecks


def test_to_kopecks_refuses_float() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        to_kopecks(0.1)  # type: ignore[arg-type]


def test_to_kopecks_refuses_infinity() -> None:
    with pytest.raises(ValueError, match="finite"):
        to_kopecks(Decimal("Infinity"))


@pytest.mark.parametrize(
    ("kopecks", "text"), [(123456, "1234.56"), (5, "0.05"), (-5, "-0.05"), (0, "0.00"), (100, "1.00")]
)
def test_format_rubles(kopecks: int, text: str) -> None:
    assert format_rubles(kopecks) == text


@pytest.mark.parametrize(
    ("text", "kopecks"),
    [("1234.56", 123456), ("1234,5", 123450), ("1 234,56", 123456), ("-7", -700), ("0.05", 5), ("1\u00a0000", 100000)],
)
def test_parse_rubles(text: str, kopecks: int) -> None:
    assert parse_rubles(text) == kopecks


@pytest.mark.parametrize("text", ["12.345", "abc", "", "1.2.3", "--1"])
def test_parse_rubles_refuses_what_would_lose_kopecks(text: str) -> None:
    with pytest.raises(ValueError, match="rubles"):
        parse_rubles(text)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_and_parse_round_trip(kopecks: int) -> None:
    assert parse_rubles(format_rubles(kopecks)) == kopecks


def test_allocate_worked_example() -> None:
    """100 kopecks over 1:1:1 is 33.33 each; the one kopeck left goes to the first of the tied
    remainders: 34, 33, 33."""
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_allocate_gives_leftover_to_largest_remainders() -> None:
    """1000 over 385.84 / 612.30 / 1.86 (a bill's services): exact shares 385.84..., 612.30...,
    1.86... of 1000 total 1000 -> floors 385, 612, 1 leave 2 kopecks, to the two largest
    remainders (0.84 and 0.86)."""
    weights = [Decimal("385.84"), Decimal("612.30"), Decimal("1.86")]
    assert allocate(1000, weights) == [386, 612, 2]


def test_allocate_negative_total_mirrors_positive() -> None:
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


@pytest.mark.parametrize(("weights", "message"), [([], "at least one"), ([0, 0], "all be zero"), ([1, -1], "negative")])
def test_allocate_refuses_bad_weights(weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(100, weights)


@given(
    st.integers(min_value=-(10**10), max_value=10**10),
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30).filter(any),
)
def test_allocate_parts_sum_to_total_and_stay_within_a_kopeck(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, weight_sum)
        assert abs(part - exact) < 1


@given(
    st.integers(min_value=0, max_value=10**8),
    st.lists(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False), min_size=1, max_size=10).filter(any),
)
def test_allocate_decimal_weights(total: int, weights: list[Decimal]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(part == 0 for part, weight in zip(parts, weights, strict=True) if weight == 0)
