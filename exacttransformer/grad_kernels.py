"""The small pieces of backpropagation: what a gradient rule returns, and its kernels.

Layer: steps (pure functions over a backend), shared by :mod:`.training` and
:mod:`.grad_variants`.  A :class:`Contribution` is what one consumer adds to an input's
gradient: the values it reads (with their dependency patterns) and how.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy

from .backends.base import Backend, Num
from .linalg import Matrix, shape, transpose
from .params import LAYER_MATRICES, LAYER_VECTORS
from .trace import Dep, Key

LAYER_PARAMS = frozenset(LAYER_MATRICES + LAYER_VECTORS)

Fn = Callable[[Backend, Sequence[Matrix]], Matrix]


def grad_key(key: Key) -> Key:
    return (f"grad.{key[0]}", key[1], key[2])


@dataclass(frozen=True)
class Contribution:
    """What one consumer adds to an input's gradient: the values it reads and how."""

    reads: tuple[tuple[Key, Dep], ...]
    fn: Fn
    formula: str
    column: int = 0  # for parameter gradients: where a head's block starts


# --------------------------------------------------------------------------- small kernels


def as_backend(be: Backend, m: Matrix) -> Matrix:
    """A weight captured from the file, in the backend's representation (floats for FLOAT)."""
    if be.name == "exact":
        return m
    return tuple(tuple(be.const(x) if isinstance(x, sympy.Basic) else x for x in r) for r in m)


def zeros(be: Backend, rows: int, cols: int) -> Matrix:
    return tuple(tuple(be.integer(0) for _ in range(cols)) for _ in range(rows))


def hadamard(be: Backend, a: Matrix, b: Matrix) -> Matrix:
    return tuple(tuple(be.mul(x, y) for x, y in zip(ra, rb, strict=True))
                 for ra, rb in zip(a, b, strict=True))


def times(be: Backend, a: Matrix, c: Num) -> Matrix:
    return tuple(tuple(be.mul(x, c) for x in row) for row in a)


def colsum(be: Backend, a: Matrix) -> Matrix:
    return (tuple(be.total(list(col)) for col in transpose(a)),)


def broadcast(be: Backend, g: Matrix, width: int) -> Matrix:
    return tuple(tuple(r[0] for _ in range(width)) for r in g)


def add_all(be: Backend, parts: Sequence[Matrix]) -> Matrix:
    if len(parts) == 1:
        return parts[0]
    rows, cols = shape(parts[0])
    return tuple(tuple(be.total([p[i][j] for p in parts]) for j in range(cols))
                 for i in range(rows))


def param_key(name: str, layer: int | None, prefix: str = "grad") -> Key:
    return (f"{prefix}.{name}", layer if name in LAYER_PARAMS else None, None)


def step(be: Backend, w: Matrix, g: Matrix, lr: Num) -> Matrix:
    rate = be.const(lr)
    return tuple(tuple(be.sub(a, be.mul(rate, b)) for a, b in zip(rw, rg, strict=True))
                 for rw, rg in zip(w, g, strict=True))
