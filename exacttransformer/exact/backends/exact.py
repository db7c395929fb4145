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

from ..printing import sign as certified_sign
from ..printing import to_float as certified_float


def _split(term: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``term`` as (numerator, symbolic denominator), structurally: ``3e^a/(2S)`` gives
    ``(3e^a/2, S)``.  Only top-level factors are looked at, so this is cheap."""
    factors = term.args if isinstance(term, sympy.Mul) else (term,)
    num, den = [], []
    for f in factors:
        if isinstance(f, sympy.Pow) and f.exp.is_negative and not f.base.is_Rational:
            den.append(sympy.Pow(f.base, -f.exp))
        else:
            num.append(f)
    return sympy.Mul(*num), sympy.Mul(*den)


def _combine(terms: Sequence[sympy.Expr]) -> sympy.Expr:
    """Add terms, putting those over the same symbolic denominator over it once.

    ``e^a/S + 2e^b/S`` becomes ``(e^a + 2e^b)/S``, which sympy cancels to 1 when the
    numerator is ``S`` itself.  Purely structural (no ``together``/``cancel``), so it costs
    about as much as the sum.
    """
    result = sympy.Add(*terms)
    if result.is_Rational:
        return result
    groups: dict[sympy.Expr, list[sympy.Expr]] = {}
    for t in sympy.Add.make_args(result):
        num, den = _split(t)
        groups.setdefault(den, []).append(num)
    if all(den == 1 or len(nums) == 1 for den, nums in groups.items()):
        return result
    return sympy.Add(*[sympy.Add(*nums) / den for den, nums in groups.items()])


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
        # An exact 0 short-circuits: sympy would otherwise ask whether the other factor is
        # finite, which evaluates it numerically (seconds for a second-layer softmax sum).
        if a == 0 or b == 0:
            return sympy.Integer(0)
        return a * b

    def div(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if b == 0:
            raise ZeroDivisionError("exact division by zero")
        if a == 0:
            return sympy.Integer(0)
        return a / b

    def total(self, xs: Sequence[sympy.Expr]) -> sympy.Expr:
        return _combine(xs)

    def dot(self, xs: Sequence[sympy.Expr], ys: Sequence[sympy.Expr]) -> sympy.Expr:
        return self.total([x * y for x, y in zip(xs, ys, strict=True) if x != 0 and y != 0])

    def exp(self, x: sympy.Expr) -> sympy.Expr:
        # sympy's exp() asks whether a symbolic argument is comparable, which evaluates it
        # numerically without sharing subexpressions: minutes for a second layer's scores.
        # For the real expressions built here that evaluation never changes the result, so
        # only plain numbers go through it.
        if x.is_Number:
            return sympy.exp(x)
        if isinstance(x, sympy.log):  # e^(log a) is a, as sympy would say inside a product
            return x.args[0]
        return sympy.exp(x, evaluate=False)

    def log(self, x: sympy.Expr) -> sympy.Expr:
        if x.is_Number:
            return sympy.log(x)
        return sympy.log(x, evaluate=False)

    def sqrt(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.sqrt(x)

    def erf(self, x: sympy.Expr) -> sympy.Expr:
        # As for exp: sympy's erf() evaluates a symbolic argument numerically to look for
        # a sign it could pull out, which takes minutes on a second layer's values.
        if x.is_Number:
            return sympy.erf(x)
        return sympy.erf(x, evaluate=False)

    def tanh(self, x: sympy.Expr) -> sympy.Expr:
        if x.is_Number:
            return sympy.tanh(x)
        return sympy.tanh(x, evaluate=False)

    def sin(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.sin(x)

    def cos(self, x: sympy.Expr) -> sympy.Expr:
        return sympy.cos(x)

    def pi(self) -> sympy.Expr:
        return sympy.pi

    def keep(self, x: sympy.Expr) -> sympy.Expr:
        return x

    def sign(self, x: sympy.Expr) -> int:
        return certified_sign(x)

    def to_float(self, x: sympy.Expr) -> float:
        return certified_float(x)


EXACT = ExactBackend()
