"""What a gradient rule returns, and the keys of the gradient nodes.

Layer: graph, shared by :mod:`.training_nodes` and :mod:`.grad_variants`.  A
:class:`Contribution` is what one consumer adds to an input's gradient: the values it reads
(with their dependency patterns) and how.  The small kernels the rules compute with (``zeros``,
``hadamard``, ``add_all``, one descent step) are pure steps in
:mod:`exacttransformer.steps.training`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..exact.backends.base import Backend
from ..exact.linalg import Matrix
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


def param_key(name: str, layer: int | None, prefix: str = "grad") -> Key:
    return (f"{prefix}.{name}", layer if name in LAYER_PARAMS else None, None)
