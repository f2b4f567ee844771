"""Money is integer kopecks; this module is the only place where it meets ``Decimal``.

Pure: no I/O, no database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

KOPECKS_PER_RUBLE = 100
_RUBLES_PATTERN = re.compile(r"^(-)?(\d+)(?:\.(\d{1,2}))?$")


def to_kopecks(rubles: Decimal) -> int:
    """A computed amount in rubles becomes money once, here, rounded half-up to the kopeck."""
    if not isinstance(rubles, Decimal):
        raise TypeError(f"to_kopecks takes a Decimal, not {type(rubles).__name__}")
    if not rubles.is_finite():
        raise ValueError(f"not a finite amount: {rubles}")
    return int((rubles * KOPECKS_PER_RUBLE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_rubles(kopecks: int) -> str:
    """12345 -> "123.45"; -5 -> "-0.05". The form used in CSV files and the API."""
    sign = "-" if kopecks < 0 else ""
    rubles, cents = divmod(abs(kopecks), KOPECKS_PER_RUBLE)
    return f"{sign}{rubles}.{cents:02d}"


def parse_rubles(text: str) -> int:
    """ "1234.56", "1234,5", "1 234,56" or "-7" -> kopecks; more than two decimals is an error,
    because silently rounding a money amount that somebody typed would lose their kopecks."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    match = _RUBLES_PATTERN.match(cleaned)
    if not match:
        raise ValueError(f"not an amount in rubles with at most 2 decimals: {text!r}")
    sign, whole, fraction = match.groups()
    kopecks = int(whole) * KOPECKS_PER_RUBLE + int((fraction or "0").ljust(2, "0"))
    return -kopecks if sign else kopecks


def allocate(total: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Split ``total`` kopecks in proportion to ``weights`` by the largest remainder method.

    Every part gets the floor of its exact share; the kopecks left over go one each to the parts
    with the largest remainders, ties to the earlier part. The parts always sum to ``total``.
    Weights must be non-negative and not all zero. A negative total is split as the mirror of
    the positive one, so a reversal cancels the original part by part.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    # Exact rational shares: integer weights (kopecks, the common case) as integer numerators
    # over their sum; Decimal weights through Fraction. No rounding either way.
    if all(type(w) is int for w in weights):
        numerators, denominator = [int(w) for w in weights], 1
    else:
        exact = [Fraction(w) for w in weights]
        denominator = math.lcm(*(w.denominator for w in exact))
        numerators = [int(w * denominator) for w in exact]
    if any(n < 0 for n in numerators):
        raise ValueError("allocate weights must not be negative")
    weight_sum = sum(numerators)
    if weight_sum == 0:
        raise ValueError("allocate weights must not all be zero")

    parts: list[int] = []
    remainders: list[int] = []
    for numerator in numerators:
        floor, remainder = divmod(total * numerator, weight_sum)  # share = floor + remainder / weight_sum
        parts.append(floor)
        remainders.append(remainder)

    leftover = total - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts
