"""Exact equality proven by algebra, never by numerical evidence.

Layer: exact.  Used where enclosures cannot decide: a printed digit at a rounding boundary
(:mod:`exacttransformer.exact.printing`) and the sign of a structured value within
2^-8192 of 0 (:mod:`exacttransformer.exact.enclosure`).

>>> import sympy
>>> proven_equal((sympy.sqrt(2) + 1) * (sympy.sqrt(2) - 1) / 8, Fraction(1, 8))
True
"""

from __future__ import annotations

from fractions import Fraction

import sympy

__all__ = ["proven_equal"]


def proven_equal(x: sympy.Expr, b: Fraction) -> bool:
    """True only when the sympy value x == b is proven by exact algebra."""
    diff = x - sympy.Rational(b.numerator, b.denominator)
    if diff == 0:
        return True
    try:
        if _is_algebraic(diff):
            t = sympy.Dummy("t")
            return bool(sympy.minimal_polynomial(diff, t) == t)
        return bool(sympy.simplify(diff) == 0)
    except Exception:  # noqa: BLE001 -- any failure of the algebra means "not proven"
        return False


def _is_algebraic(x: sympy.Basic) -> bool:
    if x.is_Rational:
        return True
    if x.is_Add or x.is_Mul:
        return all(_is_algebraic(a) for a in x.args)
    if x.is_Pow:
        return bool(x.exp.is_Rational) and _is_algebraic(x.base)
    return False

