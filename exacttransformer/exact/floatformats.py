"""Binary floating-point formats, and correct rounding of an exact number to one of them.

Layer: kernels (plain integers; no sympy).  A :class:`Format` is an IEEE-754-style binary
format given by its precision ``p`` (significand bits, the hidden bit included) and its
exponent range ``emin … emax``.  :func:`round_to` rounds any exact number (an ``int``, a
``Fraction`` or a ``float``) to the nearest value of the format, ties to even, with gradual
underflow (subnormals below ``2^emin``) and overflow to infinity, using integer arithmetic
only, so it is exact whatever the format.  The result is returned as a Python ``float``
(float64), which holds every value of the four formats exactly.

This is how the float-error audit emulates the narrower formats without torch: every
operation is done in float64 and its result rounded to the format
(:mod:`exacttransformer.floatpass`).  For ``+ - * /`` and ``sqrt`` that double rounding
gives the correctly rounded result, because float64 carries at least ``2p + 2`` bits
(Figueroa, "When is double rounding innocuous?", SIGNUM Newsletter 30(3), 1995).

>>> round_to(Fraction(1, 3), FLOAT16)
0.333251953125
>>> round_to(65519, FLOAT16), round_to(65520, FLOAT16)
(65504.0, inf)
>>> round_to(2.0 ** -25, FLOAT16), round_to(3 * 2.0 ** -26, FLOAT16) == 2.0 ** -24
(0.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: precision ``p`` (bits of significand, hidden bit
    included) and the exponents ``emin … emax`` of its normal numbers."""

    name: str
    precision: int
    emin: int
    emax: int

    @property
    def unit_roundoff(self) -> Fraction:
        """``u = 2^-p``: the largest relative error of one rounding to nearest (normal range).

        >>> FLOAT16.unit_roundoff, float(FLOAT64.unit_roundoff)
        (Fraction(1, 2048), 1.1102230246251565e-16)
        """
        return Fraction(1, 2 ** self.precision)

    @property
    def max_finite(self) -> Fraction:
        """The largest finite value, ``(2 - 2^(1-p)) · 2^emax``.

        >>> FLOAT16.max_finite, BFLOAT16.max_finite == Fraction(2**8 - 1, 2**7) * 2**127
        (Fraction(65504, 1), True)
        """
        return (2 - Fraction(2, 2 ** self.precision)) * Fraction(2) ** self.emax

    @property
    def smallest_subnormal(self) -> Fraction:
        """``2^(emin - p + 1)``, the spacing of the numbers below ``2^emin``."""
        return Fraction(2) ** (self.emin - self.precision + 1)


FLOAT64 = Format("float64", 53, -1022, 1023)
FLOAT32 = Format("float32", 24, -126, 127)
BFLOAT16 = Format("bfloat16", 8, -126, 127)
FLOAT16 = Format("float16", 11, -14, 15)

FORMATS: dict[str, Format] = {f.name: f for f in (FLOAT64, FLOAT32, BFLOAT16, FLOAT16)}
"""The formats the audit knows, widest first."""


def round_to(x: int | Fraction | float, fmt: Format) -> float:
    """``x`` rounded to the nearest value of ``fmt`` (ties to even), as a float64.

    Infinities and NaN pass through; zero keeps its sign (a float ``-0.0`` stays ``-0.0``);
    a nonzero value too small for the format's smallest subnormal rounds to a zero of its
    own sign; a value at or beyond ``max_finite + ulp/2`` becomes an infinity.

    >>> round_to(1 + Fraction(1, 256), BFLOAT16), round_to(1 + Fraction(3, 512), BFLOAT16)
    (1.0, 1.0078125)
    >>> round_to(Fraction(1, 10), FLOAT32) == 0.100000001490116119384765625
    True
    """
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x) or x == 0.0:
            return x
        if fmt.precision == FLOAT64.precision and fmt.emin == FLOAT64.emin:
            return x  # a Python float is already a float64
        n, d = x.as_integer_ratio()
    else:
        q = Fraction(x)
        n, d = q.numerator, q.denominator
        if n == 0:
            return 0.0
    negative = n < 0
    n = abs(n)
    e = n.bit_length() - d.bit_length()  # 2^(e-1) < n/d < 2^(e+1)
    if (n if e >= 0 else n << -e) < (d << e if e >= 0 else d):
        e -= 1  # now 2^e <= n/d < 2^(e+1)
    shift = max(e, fmt.emin) - (fmt.precision - 1)  # the spacing of the format near x is 2^shift
    num, den = (n, d << shift) if shift >= 0 else (n << -shift, d)
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m % 2 == 1):
        m += 1
    if m == 0:
        return -0.0 if negative else 0.0
    if m.bit_length() - 1 + shift > fmt.emax:
        return -math.inf if negative else math.inf
    value = math.ldexp(m, shift)
    return -value if negative else value
