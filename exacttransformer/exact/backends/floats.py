"""The float64 backend: the same steps in plain ``math``, for the seam and for speed checks.

>>> FLOAT.dot([0.5, 0.25], [2.0, 4.0])
2.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy


class FloatBackend:
    """Binary64 arithmetic; ``sign`` is the float's sign (no proof)."""

    name = "float"

    def const(self, value: sympy.Expr) -> float:
        from ..printing import to_float

        return to_float(value)

    def integer(self, n: int) -> float:
        return float(n)

    def add(self, a: float, b: float) -> float:
        return a + b

    def sub(self, a: float, b: float) -> float:
        return a - b

    def mul(self, a: float, b: float) -> float:
        return a * b

    def div(self, a: float, b: float) -> float:
        return a / b

    def total(self, xs: Sequence[float]) -> float:
        return math.fsum(xs)

    def dot(self, xs: Sequence[float], ys: Sequence[float]) -> float:
        return math.fsum(x * y for x, y in zip(xs, ys, strict=True))

    def exp(self, x: float) -> float:
        return math.exp(x)

    def log(self, x: float) -> float:
        return math.log(x)

    def sqrt(self, x: float) -> float:
        return math.sqrt(x)

    def erf(self, x: float) -> float:
        return math.erf(x)

    def tanh(self, x: float) -> float:
        return math.tanh(x)

    def sin(self, x: float) -> float:
        return math.sin(x)

    def cos(self, x: float) -> float:
        return math.cos(x)

    def pi(self) -> float:
        return math.pi

    def keep(self, x: float) -> float:
        return x

    def sign(self, x: float) -> int:
        return (x > 0) - (x < 0)

    def to_float(self, x: float) -> float:
        return x


FLOAT = FloatBackend()
