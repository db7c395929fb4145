"""The backend interface (a ``Protocol``): scalar arithmetic that step code may use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import sympy

Num = Any  # a backend's number: sympy.Expr for EXACT, float for FLOAT


class Backend(Protocol):
    """What a step may do with numbers.  Every method is pure."""

    name: str

    def const(self, value: sympy.Expr) -> Num:
        """An exact value (as parsed from a file) in this backend's representation."""

    def integer(self, n: int) -> Num: ...

    def add(self, a: Num, b: Num) -> Num: ...

    def sub(self, a: Num, b: Num) -> Num: ...

    def mul(self, a: Num, b: Num) -> Num: ...

    def div(self, a: Num, b: Num) -> Num: ...

    def total(self, xs: Sequence[Num]) -> Num:
        """The sum of ``xs`` (combined over a common denominator where that is simpler)."""

    def dot(self, xs: Sequence[Num], ys: Sequence[Num]) -> Num:
        """``sum(x * y)`` as one step, so an exact backend can simplify the whole sum."""

    def exp(self, x: Num) -> Num: ...

    def log(self, x: Num) -> Num:
        """The natural logarithm (of a positive number)."""

    def sqrt(self, x: Num) -> Num: ...

    def erf(self, x: Num) -> Num: ...

    def tanh(self, x: Num) -> Num: ...

    def sin(self, x: Num) -> Num: ...

    def cos(self, x: Num) -> Num: ...

    def pi(self) -> Num: ...

    def keep(self, x: Num) -> Num:
        """``x`` itself, in a form that is cheap to use many times: a step that subtracts one
        value (a row mean) from every entry asks for it.  Only the structured backend
        changes anything (a long sum becomes one atom); the value is the same."""

    def sign(self, x: Num) -> int:
        """-1, 0 or 1; an exact backend proves it."""

    def to_float(self, x: Num) -> float: ...
