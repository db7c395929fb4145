"""The value kernels of one training step: elementwise products, column sums, the
activations' derivatives and the local gradient rules that need no graph, and the
gradient-descent update.

Layer: steps.  The graph's ``grad.*`` and ``new.*`` nodes that use them are built in
:mod:`exacttransformer.graph.training_nodes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, shape, transpose
from . import feedforward as F


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


def derivative(be: Backend, kind: str, x: Num) -> Num:
    """``f′(x)`` for the activation ``kind``, in closed form."""
    one = be.integer(1)
    two = be.integer(2)
    if kind == "relu":
        return one if be.sign(x) > 0 else be.integer(0)
    if kind == "none":
        return one
    if kind == "gelu":
        phi = be.div(be.add(one, be.erf(be.div(x, be.sqrt(two)))), two)
        density = be.div(be.exp(be.div(be.mul(be.sub(be.integer(0), x), x), two)),
                         be.sqrt(be.mul(two, be.pi())))
        return be.add(phi, be.mul(x, density))
    if kind == "silu":
        sig = be.div(one, be.add(one, be.exp(be.sub(be.integer(0), x))))
        return be.mul(sig, be.add(one, be.mul(x, be.sub(one, sig))))
    if kind == "gelu_tanh":
        c = be.sqrt(be.div(two, be.pi()))
        k = be.const(F.GELU_TANH_C)
        inner = be.mul(c, be.add(x, be.mul(k, be.mul(be.mul(x, x), x))))
        t = be.tanh(inner)
        d_inner = be.mul(c, be.add(one, be.mul(be.mul(be.integer(3), k), be.mul(x, x))))
        half = be.div(one, two)
        return be.add(be.mul(half, be.add(one, t)),
                      be.mul(be.mul(half, x), be.mul(be.sub(one, be.mul(t, t)), d_inner)))
    raise ValueError(f"no derivative for activation {kind!r}")


def std_of(be: Backend, var: Num, eps: Num) -> Num:
    return be.sqrt(be.add(var, eps))


def softmax_denominator(be: Backend, v: Sequence[Matrix]) -> Matrix:
    g, e, s = v
    out = []
    for gr, er, (total,) in zip(g, e, s, strict=True):
        dot = be.dot(gr, er)
        out.append((be.div(be.sub(be.integer(0), dot), be.mul(total, total)),))
    return tuple(out)


def variance_grad(be: Backend, v: Sequence[Matrix]) -> Matrix:
    g, x, mu = v
    d = be.integer(len(x[0]))
    return tuple(tuple(be.div(be.mul(be.mul(be.integer(2), gr[0]), be.sub(a, m[0])), d) for a in xr)
                 for gr, xr, m in zip(g, x, mu, strict=True))


def loss_grad(be: Backend, probs: Matrix, t: int) -> Matrix:
    rows, cols = shape(probs)
    out = [list(r) for r in zeros(be, rows, cols)]
    out[-1][t] = be.div(be.integer(-1), probs[-1][t])
    return tuple(tuple(r) for r in out)


def scatter(be: Backend, g: Matrix, ids: Matrix, vocab: int) -> Matrix:
    width = shape(g)[1]
    rows: list[list[list[Num]]] = [[[] for _ in range(width)] for _ in range(vocab)]
    for gr, (i,) in zip(g, ids, strict=True):
        for j, a in enumerate(gr):
            rows[int(i)][j].append(a)
    return tuple(tuple(be.total(c) if c else be.integer(0) for c in r) for r in rows)


def descent_step(be: Backend, w: Matrix, g: Matrix, lr: Num) -> Matrix:
    rate = be.const(lr)
    return tuple(tuple(be.sub(a, be.mul(rate, b)) for a, b in zip(rw, rg, strict=True))
                 for rw, rg in zip(w, g, strict=True))
