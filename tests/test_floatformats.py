"""Correct rounding to float64/float32/bfloat16/float16 (exacttransformer.floatformats).

Known bit patterns are decoded by hand from their IEEE-754 fields; random values are compared
with Python's own correctly rounded conversions (``struct`` formats ``e`` and ``f``) and, when
torch is installed, with torch's bfloat16 conversion of float32 inputs.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exacttransformer.exact.floatformats import BFLOAT16, FLOAT16, FLOAT32, FLOAT64, FORMATS, round_to


def decode(bits: int, fmt_bits: int, exp_bits: int) -> float:
    """The value of an IEEE bit pattern (sign | exponent | fraction), from its fields."""
    frac_bits = fmt_bits - 1 - exp_bits
    sign = -1 if bits >> (fmt_bits - 1) else 1
    e = (bits >> frac_bits) & ((1 << exp_bits) - 1)
    f = bits & ((1 << frac_bits) - 1)
    bias = (1 << (exp_bits - 1)) - 1
    if e == (1 << exp_bits) - 1:
        return sign * math.inf if f == 0 else math.nan
    if e == 0:
        return sign * math.ldexp(f, 1 - bias - frac_bits)
    return sign * math.ldexp((1 << frac_bits) + f, e - bias - frac_bits)


# (format, exact input, bit pattern of the correctly rounded result)
KNOWN = [
    (FLOAT16, Fraction(1), 0x3C00),
    (FLOAT16, Fraction(65504), 0x7BFF),                  # the largest finite half
    (FLOAT16, Fraction(65519), 0x7BFF),                  # just below the rounding boundary
    (FLOAT16, Fraction(65520), 0x7C00),                  # the boundary itself rounds to inf
    (FLOAT16, Fraction(1, 2**24), 0x0001),               # the smallest subnormal
    (FLOAT16, Fraction(1, 2**25), 0x0000),               # half of it: a tie, to even (zero)
    (FLOAT16, Fraction(3, 2**26), 0x0001),               # 0.75 of it rounds up
    (FLOAT16, Fraction(3, 2**25), 0x0002),               # 1.5 of it: a tie, to even (2)
    (FLOAT16, Fraction(1, 2**14), 0x0400),               # the smallest normal
    (FLOAT16, Fraction(1, 3), 0x3555),
    (FLOAT16, Fraction(-1, 10), 0xAE66),
    (FLOAT16, 1 + Fraction(1, 2**11), 0x3C00),           # a tie at 1: to even
    (FLOAT16, 1 + Fraction(3, 2**11), 0x3C02),           # a tie: to even (up)
    (FLOAT16, Fraction(162754), 0x7C00),                 # e^12 overflows
    (BFLOAT16, Fraction(1), 0x3F80),
    (BFLOAT16, 1 + Fraction(1, 2**8), 0x3F80),           # a tie: to even
    (BFLOAT16, 1 + Fraction(3, 2**8), 0x3F82),
    (BFLOAT16, Fraction(1, 3), 0x3EAB),
    (BFLOAT16, Fraction(1, 2**133), 0x0001),             # the smallest subnormal
    (BFLOAT16, (2 - Fraction(1, 2**8)) * 2**127, 0x7F80),  # the boundary: inf
    (FLOAT32, Fraction(1, 10), 0x3DCCCCCD),
    (FLOAT32, Fraction(1, 3), 0x3EAAAAAB),
    (FLOAT32, Fraction(1, 2**149), 0x00000001),
    (FLOAT32, Fraction(1, 2**150), 0x00000000),
    (FLOAT32, (2 - Fraction(1, 2**24)) * 2**127, 0x7F800000),
    (FLOAT32, (2 - Fraction(1, 2**23)) * 2**127, 0x7F7FFFFF),
]
WIDTH = {FLOAT16: (16, 5), BFLOAT16: (16, 8), FLOAT32: (32, 8)}


@pytest.mark.parametrize(("fmt", "x", "bits"), KNOWN, ids=[f"{f.name}-{x}" for f, x, _ in KNOWN])
def test_known_bit_patterns(fmt, x: Fraction, bits: int) -> None:
    assert round_to(x, fmt) == decode(bits, *WIDTH[fmt])
    assert round_to(-x, fmt) == -decode(bits, *WIDTH[fmt])


def test_specials_and_signed_zero() -> None:
    assert math.isnan(round_to(math.nan, FLOAT16))
    assert round_to(math.inf, BFLOAT16) == math.inf
    assert math.copysign(1.0, round_to(-0.0, FLOAT16)) == -1.0
    assert math.copysign(1.0, round_to(-(2.0 ** -30), FLOAT16)) == -1.0  # underflow keeps its sign
    assert round_to(Fraction(0), FLOAT32) == 0.0


def test_float64_is_the_identity_on_floats_and_rounds_fractions() -> None:
    assert round_to(0.1, FLOAT64) == 0.1
    assert round_to(Fraction(1, 10), FLOAT64) == 0.1
    assert round_to(Fraction(2**1024), FLOAT64) == math.inf
    assert round_to(Fraction(1, 2**1075), FLOAT64) == 0.0  # half the smallest subnormal: to even
    assert round_to(Fraction(3, 2**1076), FLOAT64) == 5e-324


def test_unit_roundoffs_and_ranges() -> None:
    assert [FORMATS[n].unit_roundoff for n in FORMATS] == [
        Fraction(1, 2**53), Fraction(1, 2**24), Fraction(1, 2**8), Fraction(1, 2**11)]
    assert FLOAT16.max_finite == 65504
    assert FLOAT16.smallest_subnormal == Fraction(1, 2**24)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(finite)
def test_float16_agrees_with_struct(x: float) -> None:
    try:
        expected = struct.unpack("<e", struct.pack("<e", x))[0]
    except OverflowError:
        expected = math.copysign(math.inf, x)
    assert round_to(x, FLOAT16) == expected


@given(st.floats(min_value=-3e38, max_value=3e38, allow_nan=False))
def test_float32_agrees_with_struct(x: float) -> None:
    assert round_to(x, FLOAT32) == struct.unpack("<f", struct.pack("<f", x))[0]


@given(st.fractions(max_denominator=10**6).filter(lambda q: abs(q) < 60000))
def test_rounding_is_to_nearest_and_ties_to_even(q: Fraction) -> None:
    """No value of the format is nearer to q than the result; on a tie the result's last
    significand bit is 0."""
    for fmt in (FLOAT16, BFLOAT16):
        r = Fraction(round_to(q, fmt))
        e = max(math.floor(math.log2(abs(r))) if r else fmt.emin, fmt.emin)
        step = Fraction(2) ** (e - fmt.precision + 1)
        for c in (r - step, r + step, r - step / 2):
            if Fraction(round_to(c, fmt)) == c:  # c is a value of the format
                assert abs(r - q) <= abs(c - q)
                if abs(r - q) == abs(c - q) and c != r:
                    assert (r / step).denominator == 1 and (r / step).numerator % 2 == 0


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_bfloat16_agrees_with_torch_on_float32_inputs(x: float) -> None:
    # torch converts float64 -> bfloat16 through float32 (rounding twice), so the
    # inputs are float32 values, where torch's conversion is correctly rounded.
    torch = pytest.importorskip("torch")
    expected = torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).item()
    assert round_to(x, BFLOAT16) == expected


def test_torch_double_rounds_where_round_to_does_not() -> None:
    """A float64 just past a bfloat16 halfway point that float32 rounds onto it: the direct
    rounding goes up, the float32 route ties to even (down)."""
    x = 1 + 2.0 ** -8 + 2.0 ** -30  # nearer to 1 + 2^-7 than to 1
    assert round_to(x, BFLOAT16) == 1 + 2.0 ** -7
    assert round_to(round_to(x, FLOAT32), BFLOAT16) == 1.0
