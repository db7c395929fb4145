"""The position-wise feed-forward network and its activations.

Layer: steps.  Activations keep their closed forms exactly: GELU (erf form)
``x/2 · (1 + erf(x/√2))``, the tanh approximation, SiLU ``x / (1 + e^{-x})``; ReLU decides
the sign of each input by proof, not by a float.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> activate(EXACT, ((I(3), I(-5), I(0)),), "relu")
((3, 0, 0),)
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, elementwise

GELU_TANH_C = sympy.Rational(44715, 1000000)
"""The cubic coefficient 0.044715 of the tanh approximation of GELU."""


def relu(be: Backend, x: Num) -> Num:
    return x if be.sign(x) > 0 else be.integer(0)


def gelu(be: Backend, x: Num) -> Num:
    half = be.div(x, be.integer(2))
    return be.mul(half, be.add(be.integer(1), be.erf(be.div(x, be.sqrt(be.integer(2))))))


def gelu_tanh(be: Backend, x: Num) -> Num:
    c = be.sqrt(be.div(be.integer(2), be.pi()))
    cube = be.mul(be.mul(x, x), x)
    inner = be.mul(c, be.add(x, be.mul(be.const(GELU_TANH_C), cube)))
    return be.mul(be.div(x, be.integer(2)), be.add(be.integer(1), be.tanh(inner)))


def silu(be: Backend, x: Num) -> Num:
    return be.div(x, be.add(be.integer(1), be.exp(be.sub(be.integer(0), x))))


ACTIVATIONS: dict[str, Callable[[Backend, Num], Num]] = {
    "relu": relu,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "silu": silu,
    "none": lambda be, x: x,
}


def activate(be: Backend, h: Matrix, kind: str) -> Matrix:
    """Apply the named activation to every entry of ``h``."""
    f = ACTIVATIONS[kind]
    return elementwise(lambda x: f(be, x), h)
