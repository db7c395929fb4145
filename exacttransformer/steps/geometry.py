"""Embedding geometry, exactly: cosine similarity and the analogy king − man + woman.

Layer: steps.  ``cos(a, b) = a·b / (|a| |b|)`` with the square roots kept symbolic, so
``cos = 1/2`` stays ``1/2`` and ``cos = 1/√2`` stays ``sqrt(2)/2``.  The analogy vector
``E[a] − E[b] + E[c]`` is compared with every row of ``E`` by cosine, the three words of
the question excluded (as word2vec's evaluation does; otherwise ``king`` itself is often
the answer), and the nearest is found by proven comparisons.  A tie goes to the lower id
and is reported.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> cosine(EXACT, (I(1), I(0)), (I(1), I(1)))
sqrt(2)/2
>>> E = ((I(3), I(1)), (I(1), I(1)), (I(1), I(3)), (I(3), I(3)), (I(0), I(1)))
>>> v = analogy(EXACT, E, 0, 1, 2)        # king − man + woman
>>> v
(3, 3)
>>> nearest(EXACT, v, E, exclude=(0, 1, 2))
(3, (3,))
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ComputationError
from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, Vector
from .decoding import argmax


def length(be: Backend, v: Sequence[Num]) -> Num:
    """``|v| = sqrt(v·v)``."""
    return be.sqrt(be.dot(v, v))


def cosine(be: Backend, a: Sequence[Num], b: Sequence[Num]) -> Num:
    """``a·b / (|a| |b|)``; a zero vector has no direction and is refused."""
    na, nb = length(be, a), length(be, b)
    if be.sign(na) == 0 or be.sign(nb) == 0:
        raise ComputationError("cosine similarity of a zero vector (it has no direction)")
    return be.div(be.dot(a, b), be.mul(na, nb))


def cosine_matrix(be: Backend, rows: Matrix, others: Matrix | None = None) -> Matrix:
    """``cos(rows[i], others[j])`` for every pair (``others`` defaults to ``rows``)."""
    cols = rows if others is None else others
    return tuple(tuple(cosine(be, a, b) for b in cols) for a in rows)


def analogy(be: Backend, table: Matrix, a: int, b: int, c: int) -> Vector:
    """``E[a] − E[b] + E[c]`` (king − man + woman)."""
    return tuple(be.add(be.sub(x, y), z) for x, y, z in zip(table[a], table[b], table[c],
                                                             strict=True))


def nearest(be: Backend, v: Sequence[Num], table: Matrix,
            exclude: Sequence[int] = ()) -> tuple[int, tuple[int, ...]]:
    """The row of ``table`` with the largest cosine to ``v`` (excluded rows skipped), and
    every row tied with it."""
    sims = cosine_matrix(be, (tuple(v),), table)[0]
    return nearest_of(be, sims, exclude)


def nearest_of(be: Backend, sims: Sequence[Num], exclude: Sequence[int] = ()) -> tuple[int, tuple[int, ...]]:
    """Like :func:`nearest`, from the cosines already computed."""
    keep = [i for i in range(len(sims)) if i not in set(exclude)]
    if not keep:
        raise ComputationError("every word is excluded: nothing left to be nearest")
    choice = argmax(be, [sims[i] for i in keep])
    return keep[choice.index], tuple(keep[i] for i in choice.ties)
