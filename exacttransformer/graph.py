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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .backends.base import Backend
from .errors import ComputationError
from .linalg import Matrix
from .trace import Dep, Key, Step

StepFn = Callable[[Backend, Sequence[Matrix], Mapping[str, "Matrix | None"]], Matrix]
Patch = Callable[[Key, Matrix], Matrix]


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
    raise ValueError(f"unknown dependency pattern {dep!r}")


def evaluate(
    nodes: Sequence[Node],
    given: Mapping[Key, Matrix],
    backend: Backend,
    patch: Patch | None = None,
) -> tuple[Step, ...]:
    """Compute every node whose inputs are known; a given value wins over computing.

    ``patch(key, value)`` (the checker's replay) may replace elements of each value
    before later nodes read it.
    """
    known: dict[Key, Matrix] = {}
    steps: list[Step] = []
    for node in nodes:
        is_given = node.key in given
        if is_given:
            value = given[node.key]
        elif node.ready(known):
            assert node.fn is not None
            ins = [known[k] for k in node.inputs]
            try:
                value = node.fn(backend, ins, dict(node.params))
            except ZeroDivisionError as exc:
                raise ComputationError(f"{node.key[0]}: division by zero ({exc})") from None
        else:
            continue
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
                formula="given" if is_given else node.formula,
                value=value,
                given=is_given,
                operands=operands,
                deps=() if is_given else node.deps,
                meaning=node.meaning,
            )
        )
    return tuple(steps)


def _operands(node: Node, known: Mapping[Key, Matrix]) -> tuple[tuple[str, Matrix], ...]:
    out: list[tuple[str, Matrix]] = [(k[0], known[k]) for k in node.inputs]
    out.extend((label, value) for label, value in node.params if value is not None)
    return tuple(out)
