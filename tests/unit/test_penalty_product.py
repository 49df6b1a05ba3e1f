"""The penalty multiplier is the product of the rulebook's factors as the
decimals it writes them, so the ranking engine gets 0.32, not 0.32000000000000006."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from projections.penalties import product


def test_factors_multiply_as_decimals() -> None:
    assert product([0.8, 0.8, 0.5]) == 0.32
    assert product([0.9, 0.9, 0.9]) == 0.729
    assert product([]) == 1.0


@given(st.lists(st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]), max_size=6))
def test_the_product_is_the_closest_float_to_the_exact_decimal_product(
    factors: list[float],
) -> None:
    exact = Decimal(1)
    for factor in factors:
        exact *= Decimal(repr(factor))
    assert product(factors) == float(exact)
