"""Statistics of a node's rows: the checks authors print after a step.

Layer: graph (steps and their nodes).  A claim named ``rowsum(weights)``,
``mean(ln1)``, ``var(ln1)`` or ``std(ln1)`` asks for the statistic of every row of that node
(n×1, with the node's layer and head).  The node sits right after the node it reads.  In
the replay it reads the source's own printed numbers wherever the source printed that node.

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> x = ((I(1), I(2), I(2), I(1)),)
>>> [STATISTICS[s](EXACT, x) for s in ("rowsum", "mean", "var", "std")]
[((6,),), ((3/2,),), ((1/4,),), ((1/2,),)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, column_vector
from .asked import parse_statistic
from .graph import Node


def rowsum(be: Backend, x: Matrix) -> Matrix:
    """The sum of each row (n×1)."""
    return column_vector([be.total(row) for row in x])


def mean(be: Backend, x: Matrix) -> Matrix:
    """The mean of each row (n×1)."""
    return column_vector([be.div(be.total(row), be.integer(len(row))) for row in x])


def _variance(be: Backend, row: Sequence[Num]) -> Num:
    m = be.keep(be.div(be.total(row), be.integer(len(row))))
    dev = [be.sub(a, m) for a in row]
    return be.div(be.dot(dev, dev), be.integer(len(row)))


def var(be: Backend, x: Matrix) -> Matrix:
    """The biased (population) variance of each row (n×1), as layer norm uses."""
    return column_vector([_variance(be, row) for row in x])


def std(be: Backend, x: Matrix) -> Matrix:
    """The square root of :func:`var` (n×1)."""
    return column_vector([be.sqrt(_variance(be, row)) for row in x])


STATISTICS: dict[str, Callable[[Backend, Matrix], Matrix]] = {
    "rowsum": rowsum, "mean": mean, "var": var, "std": std,
}
FORMULAS = {
    "rowsum": "Σ_j {}[i, j]",
    "mean": "Σ_j {}[i, j] / d",
    "var": "Σ_j ({}[i, j] − mean)^2 / d",
    "std": "sqrt(Σ_j ({}[i, j] − mean)^2 / d)",
}
MEANINGS = {
    "rowsum": "the sum of each row of {}",
    "mean": "the mean of each row of {}",
    "var": "the variance of each row of {} (biased, as layer norm uses)",
    "std": "the standard deviation of each row of {} (the square root of the biased variance)",
}


def statistic_nodes(nodes: Sequence[Node], asked: frozenset[str]) -> list[Node]:
    """``nodes`` with the asked-for statistics inserted, each right after the node it reads."""
    wanted: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(asked):
        parsed = parse_statistic(name)
        if parsed is not None:
            wanted.setdefault(parsed[1], []).append((name, parsed[0]))
    if not wanted:
        return list(nodes)
    out: list[Node] = []
    for node in nodes:
        out.append(node)
        for name, stat in wanted.get(node.key[0], ()):
            fn = STATISTICS[stat]
            out.append(Node(
                key=(name, node.key[1], node.key[2]), inputs=(node.key,),
                formula=FORMULAS[stat].format(node.key[0]),
                fn=lambda be, i, p, fn=fn: fn(be, i[0]),  # type: ignore[misc]
                deps=(("row",),),
                meaning=MEANINGS[stat].format(node.key[0])))
    return out
