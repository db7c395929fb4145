"""The computation graph: named pure nodes, and the evaluator that turns them into a trace.

Layer: orchestration.  A :class:`Node` names its inputs (other nodes), the parameter
slices it reads, its formula and a pure function.  :func:`evaluate` walks the nodes in
order and computes every node whose inputs are known, using a given value where the file
provides one, and nothing else.  A ``patch`` hook lets the checker's replay substitute
printed numbers element by element without a second implementation of any step.

Element dependencies (``Node.deps``, one entry per input) say which input elements an
output element ``[i, j]`` reads:

``("same",)``      input ``[i, j]``            ``("row",)``    input row ``i``
``("col",)``       input column ``j``          ``("rowT",)``   input row ``j`` (keys in ``q kᵀ``)
``("rowscalar",)`` input ``[i, 0]``            ``("scalar",)`` input ``[0, 0]``
``("all",)``       every input element         ``("shape",)``  only the input's shape
``("hcat", c0, w)`` input ``[i, j - c0]`` when ``c0 <= j < c0 + w``
``("hcol", c0, w)`` input column ``j - c0`` when ``c0 <= j < c0 + w`` (a head's slice of a
                    weight gradient)

Patterns for the vocabulary head, RoPE and backpropagation:

``("colT",)``      input column ``i``          ``("lastrow",)`` the input's last row
``("pair",)``      input ``[i, 2⌊j/2⌋]`` and ``[i, 2⌊j/2⌋+1]`` (a RoPE pair)
``("half",)``      input ``[i, ⌊j/2⌋]`` (a RoPE angle)
``("offset", c0)`` input ``[i, j + c0]`` (a head's columns of ``concat``)
``("clip",)``      input ``[i, j]`` when row ``i`` exists (``P``'s unused rows read nothing)
``("at", r, c)``   the one input element ``[r, c]`` (negative ``r``: from the end)

Patterns for the per-key contributions ``contrib`` (blocks of ``d`` columns, one per key):

``("block", d)``    input ``[i, ⌊j/d⌋]`` (the weight of key ``⌊j/d⌋``)
``("blockrow", d)`` input ``[⌊j/d⌋, j mod d]`` (that key's value entry)
``("stride", d)``   input ``[i, b·d + j]`` for every block ``b`` (a sum over the keys)
``("mod", d)``      input ``[i, j mod d]``
``("blockof", d)``  input ``[i, j·d + c]`` for ``c < d`` (block ``j`` of row ``i``)
``("blockcol", d)`` input ``[r, i·d + j]`` for every row ``r``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy

from .. import progress
from ..errors import ComputationError
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix
from .trace import Dep, Key, Step

StepFn = Callable[[Backend, Sequence[Matrix], Mapping[str, "Matrix | None"]], Matrix]
Patch = Callable[[Key, Matrix], Matrix]
Guard = Callable[[Key, Matrix], None]
"""Called with each computed value; it may raise to stop the pass (the ``auto`` engine's
size budget, :mod:`exacttransformer.graph.engine`)."""


@dataclass(frozen=True)
class Node:
    """One named step of the forward pass."""

    key: Key
    inputs: tuple[Key, ...]
    formula: str
    fn: StepFn | None
    deps: tuple[Dep, ...] = ()
    params: tuple[tuple[str, Matrix | None], ...] = ()
    required: tuple[str, ...] = ()
    meaning: str = ""
    note: Callable[[Backend, Sequence[Matrix], Matrix], str] | None = None
    """Words appended to the formula once the value is known (which token won, ties)."""

    def ready(self, known: Mapping[Key, Matrix]) -> bool:
        have = dict(self.params)
        return (
            self.fn is not None
            and all(k in known for k in self.inputs)
            and all(have.get(r) is not None for r in self.required)
        )


def element_deps(dep: Dep, index: tuple[int, int], in_shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Input elements that output element ``index`` reads, for one dependency pattern.

    >>> element_deps(("row",), (1, 0), (3, 2))
    [(1, 0), (1, 1)]
    >>> element_deps(("hcat", 2, 2), (0, 3), (1, 2))
    [(0, 1)]
    """
    i, j = index
    rows, cols = in_shape
    kind = dep[0]
    if kind == "same":
        return [(i, j)]
    if kind == "row":
        return [(i, c) for c in range(cols)]
    if kind == "col":
        return [(r, j) for r in range(rows)]
    if kind == "rowT":
        return [(j, c) for c in range(cols)]
    if kind == "rowscalar":
        return [(i, 0)]
    if kind == "scalar":
        return [(0, 0)]
    if kind == "all":
        return [(r, c) for r in range(rows) for c in range(cols)]
    if kind == "shape":
        return []
    if kind == "hcat":
        c0, width = dep[1], dep[2]
        return [(i, j - c0)] if c0 <= j < c0 + width else []
    if kind == "hcol":
        c0, width = dep[1], dep[2]
        return [(r, j - c0) for r in range(rows)] if c0 <= j < c0 + width else []
    if kind == "colT":
        return [(r, i) for r in range(rows)]
    if kind == "lastrow":
        return [(rows - 1, c) for c in range(cols)]
    if kind == "pair":
        return [(i, 2 * (j // 2)), (i, 2 * (j // 2) + 1)]
    if kind == "half":
        return [(i, j // 2)]
    if kind == "offset":
        return [(i, j + dep[1])]
    if kind == "clip":
        return [(i, j)] if i < rows else []
    if kind == "at":
        return [(dep[1] % rows, dep[2])]
    if kind == "block":
        return [(i, j // dep[1])]
    if kind == "blockrow":
        return [(j // dep[1], j % dep[1])]
    if kind == "stride":
        return [(i, b * dep[1] + j) for b in range(cols // dep[1])]
    if kind == "mod":
        return [(i, j % dep[1])]
    if kind == "blockof":
        return [(i, j * dep[1] + c) for c in range(dep[1])]
    if kind == "blockcol":
        return [(r, i * dep[1] + j) for r in range(rows)]
    raise ValueError(f"unknown dependency pattern {dep!r}")


def evaluate(
    nodes: Sequence[Node],
    given: Mapping[Key, Matrix],
    backend: Backend,
    patch: Patch | None = None,
    guard: Guard | None = None,
) -> tuple[Step, ...]:
    """Compute every node whose inputs are known; a given value wins over computing.

    ``patch(key, value)`` (the checker's replay) may replace elements of each value
    before later nodes read it; ``guard(key, value)`` sees each computed value first.
    Each node is announced to :mod:`exacttransformer.progress` before it is computed.
    """
    known: dict[Key, Matrix] = {}
    steps: list[Step] = []
    convert = _converter(backend)
    phase = "computing" if patch is None else "replaying"
    for number, node in enumerate(nodes):
        progress.at(phase, number, len(nodes), node.key, engine=backend.name)
        is_given = node.key in given
        if is_given:
            value = convert(given[node.key])
        elif node.ready(known):
            assert node.fn is not None
            ins = [known[k] for k in node.inputs]
            try:
                value = node.fn(backend, ins, {k: None if v is None else convert(v)
                                               for k, v in node.params})
            except ZeroDivisionError as exc:
                raise ComputationError(f"{node.key[0]}: division by zero ({exc})") from None
            if guard is not None:
                guard(node.key, value)
        else:
            continue
        formula = "given" if is_given else node.formula
        if not is_given and node.note is not None:
            formula = f"{formula}; {node.note(backend, ins, value)}"
        if patch is not None:
            value = patch(node.key, value)
        known[node.key] = value
        operands = () if is_given else _operands(node, known)
        steps.append(
            Step(
                name=node.key[0],
                layer=node.key[1],
                head=node.key[2],
                inputs=() if is_given else node.inputs,
                formula=formula,
                value=value,
                given=is_given,
                operands=operands,
                deps=() if is_given else node.deps,
                meaning=node.meaning,
            )
        )
    return tuple(steps)


def _converter(backend: Backend) -> Callable[[Matrix], Matrix]:
    """Exact file values (weights, given nodes) in the backend's own representation.

    The exact backend uses them as they are; another backend converts each matrix once.
    """
    if backend.name == "exact":
        return lambda m: m
    cache: dict[int, tuple[Matrix, Matrix]] = {}

    def convert(m: Matrix) -> Matrix:
        hit = cache.get(id(m))
        if hit is None or hit[0] is not m:
            hit = (m, tuple(tuple(backend.const(x) if isinstance(x, sympy.Basic) else x
                                  for x in row) for row in m))
            cache[id(m)] = hit
        return hit[1]

    return convert


def _operands(node: Node, known: Mapping[Key, Matrix]) -> tuple[tuple[str, Matrix], ...]:
    out: list[tuple[str, Matrix]] = [(k[0], known[k]) for k in node.inputs]
    out.extend((label, value) for label, value in node.params if value is not None)
    return tuple(out)
