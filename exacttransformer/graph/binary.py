"""A binary head: sigmoid outputs and binary cross-entropy (``[model] head = "sigmoid"``).

Layer: graph (steps and their nodes), and the loader's check of ``[input] labels``.  Each logit becomes a
probability ``sigmoid = 1 / (1 + exp(−logits))``.  With labels ``y`` (one per row and
column, each in [0, 1]), ``bce`` is the mean over every entry of
``−(y log p + (1 − y) log(1 − p))``, as ``torch.nn.BCELoss`` with its default
``reduction = "mean"``.  The loss's gradients are the graph's usual ``grad.*`` nodes
(:mod:`.grad_variants`).

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Integer as I
>>> sigmoid(EXACT, ((I(0),),))
((1/2,),)
>>> bce(EXACT, ((I(1) / 2,),), ((I(1),),))
((log(2),),)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ExactTransformerError, InputError
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix
from ..exact.parse import parse_value
from ..exact.printing import sign
from .graph import Node


def sigmoid(be: Backend, x: Matrix) -> Matrix:
    """``1 / (1 + exp(−x))``, entry by entry."""
    one = be.integer(1)
    return tuple(tuple(be.div(one, be.add(one, be.exp(be.sub(be.integer(0), v)))) for v in row)
                 for row in x)


def bce(be: Backend, p: Matrix, labels: Matrix) -> Matrix:
    """The mean binary cross-entropy of probabilities ``p`` against ``labels`` (1×1).

    A label of exactly 0 or 1 drops the other term (PyTorch's ``0 · log 0 = 0``)."""
    one = be.integer(1)
    terms = []
    for prow, yrow in zip(p, labels, strict=True):
        for q, y in zip(prow, yrow, strict=True):
            if y != 0:
                terms.append(be.mul(be.const(y), be.log(q)))
            if y != 1:
                terms.append(be.mul(be.const(one - y), be.log(be.sub(one, q))))
    n = be.integer(sum(len(r) for r in p))
    return ((be.div(be.sub(be.integer(0), be.total(terms)), n),),)


def sigmoid_node(logits: tuple[str, int | None, int | None]) -> Node:
    return Node(key=("sigmoid", None, None), inputs=(logits,), formula="1 / (1 + exp(−logits))",
                fn=lambda be, i, p: sigmoid(be, i[0]), deps=(("same",),),
                meaning="the probability of the positive class for each logit (sigmoid)")


def bce_node(labels: Matrix) -> Node:
    return Node(key=("bce", None, None), inputs=(("sigmoid", None, None),),
                formula="−mean(labels · log(sigmoid) + (1 − labels) · log(1 − sigmoid))",
                fn=lambda be, i, p: bce(be, i[0], labels), deps=(("all",),),
                params=(("labels", labels),),
                meaning="the binary cross-entropy of the sigmoid outputs against the labels")


def parse_labels(raw: Any, head: str, target: Any, rows: int, cols: int | None) -> Matrix | None:
    """``[input] labels``: one number in [0, 1] per row (a flat list, one output per row) or
    per entry (a matrix of the logits' shape).  Needs ``head = "sigmoid"``."""
    if raw is None:
        if head == "sigmoid" and target is not None:
            raise InputError("the sigmoid head is trained on labels, not a target: give "
                             "[input] labels (one 0/1 per row)", key="input.target")
        return None
    if head != "sigmoid":
        raise InputError("labels belong to the binary head: set [model] head = \"sigmoid\"",
                         key="input.labels")
    if not isinstance(raw, list) or not raw:
        raise InputError("expected a list of labels in [0, 1], one per row", key="input.labels")
    table = raw if all(isinstance(r, list) for r in raw) else [[v] for v in raw]
    width = cols if cols is not None else len(table[0])
    if len(table) != rows or any(not isinstance(r, list) or len(r) != width for r in table):
        raise InputError(f"{len(table)} rows of labels given, but the logits are {rows}×{width}"
                         + (" (give a matrix of that shape)" if width != 1 else ""),
                         key="input.labels")
    out = []
    for i, row in enumerate(table):
        values = []
        for v in row:
            try:
                y = parse_value(v)
            except ExactTransformerError as exc:
                raise InputError(str(exc), key=f"input.labels[{i}]") from None
            if sign(y) < 0 or sign(1 - y) < 0:
                raise InputError(f"a label must be in [0, 1], got {v}", key=f"input.labels[{i}]")
            values.append(y)
        out.append(tuple(values))
    return tuple(out)


def logits_shape(given: Any, w_u: Sequence[Sequence[Any]] | None, rows: int) -> tuple[int, int | None]:
    """The logits' shape as far as the file tells it: given logits, or ``W_U``'s width."""
    m = given.get(("logits", None, None))
    if m is not None:
        return len(m), len(m[0])
    return rows, (len(w_u[0]) if w_u is not None else None)
