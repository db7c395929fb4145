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

from .closedform import node_count

__all__ = ["proven_equal"]


def proven_equal(x: sympy.Expr, b: Fraction) -> bool:
    """True only when the sympy value x == b is proven by exact algebra."""
    if b == 0 and _nonzero(x):
        return False
    diff = x - sympy.Rational(b.numerator, b.denominator)
    if diff == 0:
        return True
    if node_count(diff, SIMPLIFY_LIMIT + 1) > SIMPLIFY_LIMIT:
        return False
    try:
        if _is_algebraic(diff):
            t = sympy.Dummy("t")
            return bool(sympy.minimal_polynomial(diff, t) == t)
        return bool(sympy.simplify(diff) == 0)
    except Exception:  # noqa: BLE001 -- any failure of the algebra means "not proven"
        return False


SIMPLIFY_LIMIT = 2000
"""The largest difference (tree nodes) handed to sympy's simplify to prove a tie: its time on a
larger one has no useful bound (a 900-node gradient that is exactly 0 takes it 7 s), and a
tie that only such algebra could prove is refused with a message instead of a wait."""


def _nonzero(x: sympy.Expr) -> bool:
    """``x != 0`` by its form alone: ``e^z`` is never 0, nor a product or power of nonzero
    factors (no evaluation, so a tiny ``e^-655`` is cheap)."""
    if x.is_Rational:
        return x != 0
    if isinstance(x, sympy.exp) or x in (sympy.pi, sympy.E):
        return True
    if x.is_Mul:
        return all(_nonzero(f) for f in x.args)
    if x.is_Pow:
        return _nonzero(x.base)
    return False


def _is_algebraic(x: sympy.Basic) -> bool:
    if x.is_Rational:
        return True
    if x.is_Add or x.is_Mul:
        return all(_is_algebraic(a) for a in x.args)
    if x.is_Pow:
        return bool(x.exp.is_Rational) and _is_algebraic(x.base)
    return False

