"""How far a float is from an exact value, proven: relative errors and correct digits.

Layer: measurement (reads exact values through certified enclosures; never compares two
floats).  The exact value ``x`` of a trace entry (sympy or the structured engine's numbers)
is enclosed in an interval of binary fractions (:func:`exacttransformer.interval.enclose_raw`)
at rising precision; the float ``f`` is an exact binary fraction too, so the relative error
``|f - x| / |x|`` is known to lie in an interval ``[lo, hi]`` of fractions.  The precision is
raised until that interval is too narrow to change what is printed (the count of correct
digits and two significant digits of the error), so every printed digit is proven.

*Correct significant digits* of ``f`` are ``floor(-log10(relative error))`` (at least 0): the
``d`` with ``10^-(d+1) < error <= 10^-d``.  An exact ``f`` has all digits correct
(:data:`ALL`); a float for a zero exact value, an infinity or NaN has none (the relative error
is infinite).

>>> import sympy
>>> e = relative_error(sympy.sqrt(2), 1.4142135623730951)
>>> digits(e), sci(e)
(16, '6.8e-17')
>>> digits(relative_error(sympy.Rational(1, 3), 0.333251953125)), sci(relative_error(1, 1.0))
(3, '0')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import ComputationError
from . import printing as numbers
from .printing import enclose_raw

ALL = 99
"""The digits reported for an exact float (and the most ever reported)."""

PRECISIONS = (96, 192, 384, 768, 1536, 3072)
"""Bits of the enclosures tried in turn."""

NEGLIGIBLE = Fraction(1, 2 ** 330)
"""A relative error proven below this (about 1e-99) counts as :data:`ALL` digits."""

Bound = Fraction | float
"""An end of an error interval: a fraction, or ``math.inf``."""


@dataclass(frozen=True, order=True)
class Error:
    """A relative error known to lie in ``[lo, hi]`` (``hi`` may be ``math.inf``)."""

    hi: Bound
    lo: Bound

    @property
    def exact(self) -> bool:
        return self.hi == 0

    @property
    def infinite(self) -> bool:
        return self.lo == math.inf


def _fraction(raw: tuple[int, int, int, int]) -> Fraction | None:
    sign, man, exp, bc = raw
    if man == 0:
        return None if bc != 0 or exp != 0 else Fraction(0)  # inf and NaN have man 0, bc < 0
    v = Fraction(man) * Fraction(2) ** exp
    return -v if sign else v


def enclosure(x: Any, prec: int) -> tuple[Fraction, Fraction] | None:
    """``(lo, hi)`` with ``lo <= x <= hi`` at ``prec`` bits, or ``None`` when unbounded."""
    if isinstance(x, int | Fraction):
        return Fraction(x), Fraction(x)
    if getattr(x, "is_Rational", False):
        q = Fraction(int(x.p), int(x.q))
        return q, q
    lo, hi = (_fraction(r) for r in enclose_raw(x, prec))
    if lo is None or hi is None:
        return None
    return lo, hi


def _between(f: Fraction, lo: Fraction, hi: Fraction) -> Error:
    """The relative error of ``f`` for some ``x`` in ``[lo, hi]`` (``lo`` and ``hi`` of one
    sign, or both zero)."""
    if lo == hi == 0:
        return Error(Fraction(0), Fraction(0)) if f == 0 else Error(math.inf, math.inf)
    far = max(abs(f - lo), abs(f - hi))
    near = Fraction(0) if lo <= f <= hi else min(abs(f - lo), abs(f - hi))
    small, large = sorted((abs(lo), abs(hi)))
    return Error(far / small, near / large)


def settled(e: Error) -> bool:
    """True when every reading of ``e`` prints the same (digits and :func:`sci`)."""
    if e.infinite or e.lo == e.hi:
        return True
    if e.hi <= NEGLIGIBLE:
        return True
    return _digits(e.lo) == _digits(e.hi) and _sci(e.lo) == _sci(e.hi)


def relative_error(x: Any, f: float) -> Error:
    """``|f - x| / |x|`` for an exact ``x`` and a float ``f``, as a proven :class:`Error`.

    A zero ``x`` gives 0 for ``f == 0`` and an infinite error otherwise.
    """
    if math.isnan(f) or math.isinf(f):
        return Error(math.inf, math.inf)
    q = Fraction(f)
    last: Error | None = None
    for prec in PRECISIONS:
        box = enclosure(x, prec)
        if box is None or (box[0] < 0 < box[1]):
            continue
        last = _between(q, *box)
        if settled(last):
            return last
    if last is not None:
        return last  # proven, only wider than the printing asks (reported as its upper end)
    try:
        zero = numbers.sign(x) == 0
    except ComputationError:
        zero = False
    if zero:
        return _between(q, Fraction(0), Fraction(0))
    raise ComputationError(f"cannot separate {str(x)[:60]} from zero to measure an error")


def _digits(r: Bound) -> int:
    if r == 0:
        return ALL
    if r >= 1:
        return 0
    assert isinstance(r, Fraction)
    d = 0
    while d < ALL and r * 10 ** (d + 1) <= 1:
        d += 1
    return d


def digits(e: Error) -> int:
    """Correct significant digits: ``floor(-log10(error))``, from the proven upper end (so
    never more than are correct), :data:`ALL` when exact.

    >>> digits(Error(Fraction(1, 1000), Fraction(1, 1000))), digits(Error(math.inf, math.inf))
    (3, 0)
    """
    return _digits(e.hi)


def _sci(r: Bound, n: int = 2) -> str:
    if r == math.inf:
        return "inf"
    assert isinstance(r, Fraction)
    if r == 0:
        return "0"
    k = math.floor(math.log10(r.numerator) - math.log10(r.denominator))
    while Fraction(10) ** k > r:  # make 10^k <= r < 10^(k+1) exact
        k -= 1
    while Fraction(10) ** (k + 1) <= r:
        k += 1
    m = math.floor(r / Fraction(10) ** (k - n + 1) + Fraction(1, 2))  # ties away from zero
    if m == 10 ** n:
        m, k = 10 ** (n - 1), k + 1
    text = str(m)
    return f"{text[0]}.{text[1:]}e{k:+03d}" if n > 1 else f"{text}e{k:+03d}"


def sci(e: Error) -> str:
    """The error to two significant digits in scientific notation, every digit proven;
    ``≤ …`` (its upper end) in the rare case the enclosures never settled.

    >>> sci(Error(Fraction(1, 3), Fraction(1, 3))), sci(Error(Fraction(0), Fraction(0)))
    ('3.3e-01', '0')
    """
    if e.exact:
        return "0"
    if e.lo == e.hi or _sci(e.lo) == _sci(e.hi):
        return _sci(e.hi)
    if e.hi <= NEGLIGIBLE:
        return "<1e-99"
    return "≤" + _sci(e.hi)


def upper(e: Error) -> float:
    """The proven upper end as a float rounded upward (for sorting and plotting)."""
    if e.hi == math.inf:
        return math.inf
    value = float(e.hi)
    return value if Fraction(value) >= e.hi else math.nextafter(value, math.inf)
