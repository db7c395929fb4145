"""Token ids, embedding rows and positional encodings (the nodes before layer 0).

Layer: steps.  Sinusoidal positions start at 0 and interleave (SPEC §3):
``pos[p, 2i] = sin(p / base^(2i/d))`` and ``pos[p, 2i+1] = cos(p / base^(2i/d))``, kept
symbolic (position 0 gives exactly 0 and 1).  The ``sinusoidal_guide`` variant is the
pseudocode of the guide seed text, whose exponent is ``j/d`` for dimension ``j`` itself
(not ``2i/d`` for the pair ``2i, 2i+1``); it differs from the standard table in every odd
dimension.

>>> from exacttransformer.backends import EXACT
>>> import sympy
>>> sinusoidal(EXACT, 2, 4, sympy.Integer(100))
((0, 1, 0, 1), (sin(1), cos(1), sin(1/10), cos(1/10)))
"""

from __future__ import annotations

import sympy

from .backends.base import Backend
from .linalg import Matrix


def embed(ids: Matrix, table: Matrix) -> Matrix:
    """Rows of the embedding table ``E`` for each id."""
    return tuple(table[int(row[0])] for row in ids)


def learned(n: int, table: Matrix) -> Matrix:
    """The first ``n`` rows of a learned position table ``P``."""
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

