"""Token ids, embedding rows and positional encodings (the nodes before layer 0).

Layer: steps.  Sinusoidal positions start at 0 and interleave (SPEC §3):
``pos[p, 2i] = sin(p / base^(2i/d))`` and ``pos[p, 2i+1] = cos(p / base^(2i/d))``, kept
symbolic (position 0 gives exactly 0 and 1).  The ``sinusoidal_guide`` variant is the
pseudocode of the guide seed text, whose exponent is ``j/d`` for dimension ``j`` itself
(not ``2i/d`` for the pair ``2i, 2i+1``); it differs from the standard table in every odd
dimension.

Rotary positions (RoPE, Su et al. 2021) rotate each query and key instead of adding a
vector: the pair ``(2i, 2i+1)`` of a head's width ``d_head`` at position ``p`` is turned by
the angle ``θ = p / base^(2i/d_head)`` (interleaved pairs, as in the RoFormer paper;
GPT-NeoX style "rotate half" pairs ``i`` and ``i + d_head/2`` instead).  A rotation keeps
lengths, so ``q_p · k_r`` depends on ``p - r`` only.

>>> from exacttransformer.exact.backends import EXACT
>>> import sympy
>>> sinusoidal(EXACT, 2, 4, sympy.Integer(100))
((0, 1, 0, 1), (sin(1), cos(1), sin(1/10), cos(1/10)))
>>> a = rope_angles(EXACT, 2, 2, sympy.Integer(10000))
>>> a
((0,), (1,))
>>> rope(EXACT, ((sympy.Integer(1), sympy.Integer(0)), (sympy.Integer(1), sympy.Integer(0))), a)
((1, 0), (cos(1), sin(1)))
"""

from __future__ import annotations

import sympy

from ..errors import InputError
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix


def embed(ids: Matrix, table: Matrix) -> Matrix:
    """Rows of the embedding table ``E`` for each id."""
    return tuple(table[int(row[0])] for row in ids)


def learned(n: int, table: Matrix) -> Matrix:
    """The first ``n`` rows of a learned position table ``P`` (it needs ``n`` rows)."""
    if n > len(table):
        raise InputError(f"{n} positions need {n} rows of P, but P has only {len(table)}",
                         key="weights.P")
    return tuple(table[:n])


def sinusoidal(be: Backend, n: int, d: int, base: sympy.Expr, *, guide: bool = False) -> Matrix:
    """The ``n × d`` sinusoidal table (``guide=True``: exponent ``j/d`` per dimension)."""
    rows = []
    for p in range(n):
        row = []
        for j in range(d):
            expo = sympy.Rational(j if guide else 2 * (j // 2), d)
            angle = be.div(be.integer(p), be.const(base**expo))
            row.append(be.sin(angle) if j % 2 == 0 else be.cos(angle))
        rows.append(tuple(row))
    return tuple(rows)



def rope_angles(be: Backend, n: int, d_head: int, base: sympy.Expr, offset: int = 0) -> Matrix:
    """The ``n × d_head/2`` table of angles ``p / base^(2i/d_head)``, positions from ``offset``."""
    return tuple(
        tuple(be.div(be.integer(p), be.const(base ** sympy.Rational(2 * i, d_head)))
              for i in range(d_head // 2))
        for p in range(offset, offset + n)
    )


def rope(be: Backend, x: Matrix, angles: Matrix, *, inverse: bool = False) -> Matrix:
    """Rotate each pair ``(x[2i], x[2i+1])`` of row ``p`` by ``angles[p][i]``.

    ``inverse=True`` rotates back (by ``-θ``): the transpose, used by backpropagation.
    """
    out = []
    for row, theta in zip(x, angles, strict=True):
        vals: list = []
        for i, t in enumerate(theta):
            a, b = row[2 * i], row[2 * i + 1]
            c, s = be.cos(t), be.sin(t)
            if inverse:
                s = be.sub(be.integer(0), s)
            vals.append(be.sub(be.mul(a, c), be.mul(b, s)))
            vals.append(be.add(be.mul(a, s), be.mul(b, c)))
        out.append(tuple(vals))
    return tuple(out)
