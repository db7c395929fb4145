"""The exact backend: sympy values, rationals kept rational, transcendental steps symbolic.

Simplification is deliberately light, the way a person would do it by hand: sums that
share a denominator are put over it (so the cat token's ``z`` collapses to exactly
``[1, 1]``), nothing else is expanded.  Signs are proven by interval enclosures
(:func:`exacttransformer.numbers.sign`), never guessed from a float.

>>> EXACT.dot([sympy.Rational(1, 2), sympy.Rational(1, 4)], [2, 4])
2
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from ..numbers import sign as certified_sign
from ..numbers import to_float as certified_float


def _has_fraction(expr: sympy.Expr) -> bool:
    """True when ``expr`` divides by something that is not a plain number."""
    return any(
        isinstance(p, sympy.Pow) and p.exp.is_negative and not p.base.is_Rational
        for p in sympy.preorder_traversal(expr)
    )


class ExactBackend:
    """Exact arithmetic on sympy expressions."""

    name = "exact"

    def const(self, value: sympy.Expr) -> sympy.Expr:
        if isinstance(value, int):
            return sympy.Integer(value)
        if not isinstance(value, sympy.Expr):
            raise TypeError(f"expected an exact sympy number, got {type(value).__name__}")
        return value

    def integer(self, n: int) -> sympy.Expr:
        return sympy.Integer(n)

    def add(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        return self.total((a, b))

    def sub(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        return self.total((a, -b))

    def mul(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        return a * b

    def div(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if b == 0:
            raise ZeroDivisionError("exact division by zero")
        return a / b

    def total(self, xs: Sequence[sympy.Expr]) -> sympy.Expr:
        result = sympy.Add(*xs)
        if not result.is_Rational and _has_fraction(result):
            # Terms over one denominator (softmax weights) are combined: e^a/S + 2e^b/S
            # becomes (e^a + 2e^b)/S, which sympy cancels to 1 when the numerator is S.
            result = sympy.together(result)
        return result

    def dot(self, xs: Sequence[sympy.Expr], ys: Sequence[sympy.Expr]) -> sympy.Expr:
        return self.total([x * y for x, y in zip(xs, ys, strict=True)])

    def exp(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.exp(x)

    def sqrt(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.sqrt(x)

    def erf(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.erf(x)

    def tanh(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.tanh(x)

    def sin(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.sin(x)

    def cos(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.cos(x)

    def pi(self) -> sympy.Expr:
        return sympy.pi

    def sign(self, x: sympy.Expr) -> int:
        return certified_sign(x)

    def to_float(self, x: sympy.Expr) -> float:
        return certified_float(x)


EXACT = ExactBackend()
