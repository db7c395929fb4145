"""Layer normalization as three named steps: mean, biased variance, output.

Layer: steps.  The variance is the population (biased) one, as PyTorch's ``LayerNorm``.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> x = ((I(1), I(2), I(2), I(1)),)
>>> m = mean(EXACT, x); v = variance(EXACT, x, m)
>>> m, v
(((3/2,),), ((1/4,),))
>>> normalize(EXACT, x, m, v, I(0))
((-1, 1, 1, -1),)
"""

from __future__ import annotations

from ..errors import ComputationError
from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, Vector, column_vector


def mean(be: Backend, x: Matrix) -> Matrix:
    """Row means (n×1)."""
    return column_vector([be.div(be.total(row), be.integer(len(row))) for row in x])


def variance(be: Backend, x: Matrix, mu: Matrix) -> Matrix:
    """Biased row variances (n×1): ``mean((x - mean)^2)``."""
    out = []
    for row, (m,) in zip(x, mu, strict=True):
        m = be.keep(m)
        dev = [be.sub(a, m) for a in row]
        out.append(be.div(be.dot(dev, dev), be.integer(len(row))))
    return column_vector(out)


def normalize(
    be: Backend,
    x: Matrix,
    mu: Matrix,
    var: Matrix,
    eps: Num,
    gamma: Vector | None = None,
    beta: Vector | None = None,
) -> Matrix:
    """``(x - mean) / sqrt(var + eps) · gamma + beta``."""
    out = []
    for i, (row, (m,), (v,)) in enumerate(zip(x, mu, var, strict=True)):
        denom = be.add(v, eps)
        if be.sign(denom) == 0:
            raise ComputationError(
                f"layer norm of row {i}: the variance is 0 and norm_eps is 0, "
                "so the row cannot be normalized (set [model] norm_eps, e.g. \"1e-5\")"
            )
        root = be.sqrt(denom)
        m = be.keep(m)
        vals = []
        for j, a in enumerate(row):
            y = be.div(be.sub(a, m), root)
            if gamma is not None:
                y = be.mul(y, gamma[j])
            if beta is not None:
                y = be.add(y, beta[j])
            vals.append(y)
        out.append(tuple(vals))
    return tuple(out)
