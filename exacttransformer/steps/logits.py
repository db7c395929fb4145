"""From the last hidden states to a probability for every word of the vocabulary.

Layer: steps.  ``logits = final W_U + b_U`` (or ``final Eᵀ`` with tied embeddings), then the
softmax over the vocabulary one named step at a time, as for attention: ``scaled_logits``
(divided by the temperature ``T``), ``shifted_logits`` (minus the row maximum, when
``softmax = "stable"``), ``exp_logits``, ``exp_logits_sum``, ``probs``.  Every row of
``probs`` sums to exactly 1.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I, Rational
>>> lg = unembed(EXACT, ((I(1), I(2)),), ((I(1), I(0), I(1)), (I(0), I(1), I(1))))
>>> lg
((1, 2, 3),)
>>> scaled_logits(EXACT, lg, I(2))
((1/2, 1, 3/2),)
>>> e = exp_logits(EXACT, ((I(0), I(0)),)); probs(EXACT, e, exp_logits_sum(EXACT, e))
((1/2, 1/2),)
"""

from __future__ import annotations

from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, Vector, add_bias, matmul, transpose
from . import attention as A


def unembed(be: Backend, final: Matrix, w_u: Matrix, b_u: Vector | None = None) -> Matrix:
    """``final W_U + b_U``: (n, d) @ (d, V) -> (n, V)."""
    return add_bias(be, matmul(be, final, w_u), b_u)


def tied(be: Backend, final: Matrix, table: Matrix) -> Matrix:
    """``final Eᵀ``: each logit is the dot product with that word's embedding row."""
    return matmul(be, final, transpose(table))


def scaled_logits(be: Backend, logits: Matrix, temperature: Num) -> Matrix:
    """``logits / T`` (T > 0: below 1 sharpens the distribution, above 1 flattens it)."""
    return tuple(tuple(be.div(x, temperature) for x in row) for row in logits)


def shifted_logits(be: Backend, s: Matrix) -> Matrix:
    """Each row minus its maximum (proven), so the largest exponent is ``e^0 = 1``."""
    return A.shifted_scores(be, s, A.full_mask(len(s), len(s[0]) if s else 0))


def exp_logits(be: Backend, s: Matrix) -> Matrix:
    """``exp`` of every entry."""
    return A.exp_scores(be, s, A.full_mask(len(s), len(s[0]) if s else 0))


def exp_logits_sum(be: Backend, e: Matrix) -> Matrix:
    """Row sums (n×1)."""
    return A.exp_sum(be, e)


def probs(be: Backend, e: Matrix, sums: Matrix) -> Matrix:
    """``exp_logits / exp_logits_sum``: one probability per word, each row summing to 1."""
    return A.weights(be, e, sums)


def softmax_row(be: Backend, logits: Vector, temperature: Num, stable: bool = False) -> Vector:
    """The whole vocabulary softmax of one row, through the same steps."""
    s = scaled_logits(be, (tuple(logits),), temperature)
    if stable:
        s = shifted_logits(be, s)
    e = exp_logits(be, s)
    return probs(be, e, exp_logits_sum(be, e))[0]
