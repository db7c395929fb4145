"""Matrices as tuples of rows, and the few operations the steps need, over a backend.

Layer: representation.  A matrix is ``tuple[tuple[Num, ...], ...]`` (immutable, row
major, row vectors as in PyTorch); a bias is a flat tuple added to every row.  Every
function is pure and takes the backend explicitly.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> matmul(EXACT, ((I(0), I(1), I(1), I(0)),), ((I(1), I(0)), (I(0), I(1)), (I(1), I(0)), (I(0), I(1))))
((1, 1),)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backends.base import Backend, Num

Matrix = tuple[tuple[Any, ...], ...]
Vector = tuple[Any, ...]


def shape(a: Matrix) -> tuple[int, int]:
    """Rows and columns.

    >>> shape(((1, 2, 3),))
    (1, 3)
    """
    return (len(a), len(a[0]) if a else 0)


def matrix(rows: Sequence[Sequence[Num]]) -> Matrix:
    """Freeze nested sequences into a matrix."""
    return tuple(tuple(r) for r in rows)


def transpose(a: Matrix) -> Matrix:
    """Rows become columns.

    >>> transpose(((1, 2), (3, 4)))
    ((1, 3), (2, 4))
    """
    return tuple(zip(*a, strict=True)) if a else ()


def matmul(be: Backend, a: Matrix, b: Matrix) -> Matrix:
    """``a @ b`` with each entry one backend ``dot`` (or the backend's own ``matmul``)."""
    whole = getattr(be, "matmul", None)
    if whole is not None:
        return whole(a, b)  # type: ignore[no-any-return]
    bt = transpose(b)
    return tuple(tuple(be.dot(row, col) for col in bt) for row in a)


def add(be: Backend, a: Matrix, b: Matrix) -> Matrix:
    """Elementwise ``a + b``."""
    return tuple(
        tuple(be.add(x, y) for x, y in zip(ra, rb, strict=True)) for ra, rb in zip(a, b, strict=True)
    )


def add_bias(be: Backend, a: Matrix, bias: Vector | None) -> Matrix:
    """Add a flat bias to every row (no-op for ``None``)."""
    if bias is None:
        return a
    return tuple(tuple(be.add(x, y) for x, y in zip(r, bias, strict=True)) for r in a)


def elementwise(f: Callable[[Num], Num], a: Matrix) -> Matrix:
    """Apply ``f`` to every entry."""
    return tuple(tuple(f(x) for x in r) for r in a)


def columns(a: Matrix, start: int, stop: int) -> Matrix:
    """The columns ``start … stop-1`` (a head's slice of ``W_Q``).

    >>> columns(((1, 2, 3, 4),), 2, 4)
    ((3, 4),)
    """
    return tuple(r[start:stop] for r in a)


def hcat(parts: Sequence[Matrix]) -> Matrix:
    """Matrices with the same number of rows, side by side.

    >>> hcat([((1,), (2,)), ((3,), (4,))])
    ((1, 3), (2, 4))
    """
    return tuple(tuple(x for p in ps for x in p) for ps in zip(*parts, strict=True))


def column_vector(values: Sequence[Num]) -> Matrix:
    """An n×1 matrix.

    >>> column_vector([1, 2])
    ((1,), (2,))
    """
    return tuple((v,) for v in values)


def scalar(value: Num) -> Matrix:
    """A 1×1 matrix."""
    return ((value,),)
