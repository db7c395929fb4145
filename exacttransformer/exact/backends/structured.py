"""The structured exact backend: :mod:`exacttransformer.exact.lazy` numbers, for models at scale.

Layer: scalar kernels.  Same contract as :data:`~exacttransformer.exact.backends.EXACT` (exact
values, proven signs), different working form: polynomials over shared atoms instead of
sympy trees, so a second layer's entries share the first layer's exponentials and nothing is
re-simplified.  Closed forms are produced only for display, where small
(:meth:`exacttransformer.exact.lazy.Lazy.to_sympy`).

>>> from sympy import Rational as R
>>> be = STRUCTURED
>>> w = [be.div(be.exp(be.const(R(k))), be.total([be.exp(be.const(R(j))) for j in range(3)]))
...      for k in range(3)]
>>> be.total(w) == 1
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy

from .. import enclosure, rows
from .. import lazy as L
from ..lazy import Lazy


class StructuredBackend:
    """Exact arithmetic on :class:`~exacttransformer.exact.lazy.Lazy` numbers."""

    name = "structured"

    def const(self, value: Any) -> Lazy:
        if isinstance(value, Lazy):
            return value
        return L.const(value)

    def integer(self, n: int) -> Lazy:
        return L.const(n)

    def add(self, a: Lazy, b: Lazy) -> Lazy:
        return L.add(L.lift(a), L.lift(b))

    def sub(self, a: Lazy, b: Lazy) -> Lazy:
        return L.add(L.lift(a), L.neg(L.lift(b)))

    def mul(self, a: Lazy, b: Lazy) -> Lazy:
        return L.mul(L.lift(a), L.lift(b))

    def div(self, a: Lazy, b: Lazy) -> Lazy:
        return L.div(L.lift(a), L.lift(b))

    def total(self, xs: Sequence[Lazy]) -> Lazy:
        return L.total([L.lift(x) for x in xs])

    def dot(self, xs: Sequence[Lazy], ys: Sequence[Lazy]) -> Lazy:
        return rows.dot([L.lift(x) for x in xs], [L.lift(y) for y in ys])

    def matmul(self, a: Any, b: Any) -> Any:
        """A whole matrix product at once (see :func:`exacttransformer.exact.rows.matmul`)."""
        return rows.matmul(a, b)

    def exp(self, x: Lazy) -> Lazy:
        return L.exp(L.lift(x))

    def log(self, x: Lazy) -> Lazy:
        return L.log(L.lift(x))

    def sqrt(self, x: Lazy) -> Lazy:
        return L.sqrt(L.lift(x))

    def erf(self, x: Lazy) -> Lazy:
        return L.erf(L.lift(x))

    def tanh(self, x: Lazy) -> Lazy:
        return L.tanh(L.lift(x))

    def sin(self, x: Lazy) -> Lazy:
        return L.sin(L.lift(x))

    def cos(self, x: Lazy) -> Lazy:
        return L.cos(L.lift(x))

    def pi(self) -> Lazy:
        return L.pi()

    def keep(self, x: Lazy) -> Lazy:
        """A long sum (a row mean over many terms) as one interned atom, so each entry that
        subtracts it carries one term instead of all of them."""
        x = L.lift(x)
        return L.paren(x) if len(x.terms) > rows.OUT_TERMS_LIMIT else x

    def sign(self, x: Lazy) -> int:
        return enclosure.sign(L.lift(x))

    def to_float(self, x: Lazy) -> float:
        from ..printing import to_float

        return to_float(x)

    def to_sympy(self, x: Lazy) -> sympy.Expr:
        return L.lift(x).to_sympy()


STRUCTURED = StructuredBackend()
