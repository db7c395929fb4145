"""Scaled dot-product attention, one pure function per named step (SPEC §3).

Layer: steps.  Shapes in comments: ``n`` queries, ``m`` keys, ``d_head`` per head.
The mask is exact: a masked entry's ``exp_scores`` is exactly 0, never ``exp(-1e9)``.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I, sqrt
>>> s = scores(EXACT, ((I(1), I(1)),), ((I(2), I(1)), (I(1), I(1)), (I(0), I(2))))
>>> s
((3, 2, 2),)
>>> scaled_scores(EXACT, s, ((1 / sqrt(2),),))
((3*sqrt(2)/2, sqrt(2), sqrt(2)),)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ComputationError
from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, Vector, add_bias, column_vector, hcat, matmul, scalar, transpose

Mask = tuple[tuple[bool, ...], ...]
"""``True`` where query ``i`` may read key ``j``."""


def causal_mask(n: int, m: int) -> Mask:
    """Query ``i`` reads keys ``0 … i + (m - n)``: with a cache of ``m - n`` earlier
    positions the queries are the last ``n`` positions.

    >>> causal_mask(3, 3)
    ((True, False, False), (True, True, False), (True, True, True))
    """
    return tuple(tuple(j <= i + (m - n) for j in range(m)) for i in range(n))


def full_mask(n: int, m: int) -> Mask:
    """No masking."""
    return tuple(tuple(True for _ in range(m)) for _ in range(n))


def project(be: Backend, x: Matrix, w: Matrix, b: Vector | None = None) -> Matrix:
    """``x W + b``: (n, d_in) @ (d_in, d_out) -> (n, d_out)."""
    return add_bias(be, matmul(be, x, w), b)


def scores(be: Backend, q: Matrix, k: Matrix) -> Matrix:
    """``q kᵀ``: (n, d_head) @ (d_head, m) -> (n, m)."""
    return matmul(be, q, transpose(k))


def sqrt_dk(be: Backend, k: Matrix) -> Matrix:
    """``√d_head`` (1×1), where ``d_head`` is the width of ``k``."""
    return scalar(be.sqrt(be.integer(len(k[0]))))


def scale_from_sqrt_dk(be: Backend, root: Matrix) -> Matrix:
    """The multiplier ``1/√d_head`` (1×1)."""
    return scalar(be.div(be.integer(1), root[0][0]))


def scaled_scores(be: Backend, s: Matrix, scale: Matrix) -> Matrix:
    """``scores · scale``."""
    c = scale[0][0]
    return tuple(tuple(be.mul(x, c) for x in row) for row in s)


def row_max(be: Backend, row: Sequence[Num], allowed: Sequence[bool]) -> Num:
    """The largest unmasked entry (proven by the backend's ``sign``)."""
    best = None
    for x, ok in zip(row, allowed, strict=True):
        if ok and (best is None or be.sign(be.sub(x, best)) > 0):
            best = x
    if best is None:
        raise ComputationError("a row of the mask hides every key")
    return best


def shifted_scores(be: Backend, s: Matrix, mask: Mask) -> Matrix:
    """``s`` minus its row maximum (the numerically stable softmax)."""
    out = []
    for row, allowed in zip(s, mask, strict=True):
        top = row_max(be, row, allowed)
        out.append(tuple(be.sub(x, top) for x in row))
    return tuple(out)


def exp_scores(be: Backend, s: Matrix, mask: Mask) -> Matrix:
    """``exp`` of every unmasked entry; exactly 0 where masked."""
    return tuple(
        tuple(be.exp(x) if ok else be.integer(0) for x, ok in zip(row, allowed, strict=True))
        for row, allowed in zip(s, mask, strict=True)
    )


def exp_sum(be: Backend, e: Matrix) -> Matrix:
    """Row sums (n×1)."""
    return column_vector([be.total(row) for row in e])


def weights(be: Backend, e: Matrix, sums: Matrix) -> Matrix:
    """``exp_scores / exp_sum``, row by row."""
    return tuple(
        tuple(be.div(x, total[0]) for x in row) for row, total in zip(e, sums, strict=True)
    )


def masked_sum(be: Backend, s: Matrix, mask: Mask) -> Matrix:
    """Row sums of the unmasked entries (n×1): the denominator of ``softmax = "sum"``."""
    return column_vector([be.total([x for x, ok in zip(row, allowed, strict=True) if ok])
                          for row, allowed in zip(s, mask, strict=True)])


def sum_normalized(be: Backend, s: Matrix, sums: Matrix, mask: Mask, what: str) -> Matrix:
    """``s / rowsum(s)`` (0 where masked): the naive normalization some introductions use
    before they introduce the softmax.  A row that sums to 0 cannot be normalized.

    >>> from exacttransformer.exact.backends import EXACT
    >>> from sympy import Integer as I
    >>> s = ((I(1), I(3)),)
    >>> sum_normalized(EXACT, s, masked_sum(EXACT, s, full_mask(1, 2)), full_mask(1, 2), "s")
    ((1/4, 3/4),)
    """
    out = []
    for i, (row, (total,), allowed) in enumerate(zip(s, sums, mask, strict=True)):
        if be.sign(total) == 0:
            raise ComputationError(
                f"row {i} of {what} sums to 0, so softmax = \"sum\" (each entry divided by "
                "its row's sum) cannot normalize it")
        out.append(tuple(be.div(x, total) if ok else be.integer(0)
                         for x, ok in zip(row, allowed, strict=True)))
    return tuple(out)


def mix(be: Backend, w: Matrix, v: Matrix) -> Matrix:
    """``z = weights v``: (n, m) @ (m, d_v) -> (n, d_v)."""
    return matmul(be, w, v)


def concat(parts: Sequence[Matrix]) -> Matrix:
    """Heads side by side: (n, heads · d_v)."""
    return hcat(parts)
