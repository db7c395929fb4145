"""Which exact engine runs a forward pass: plain sympy trees, or the structured numbers.

Layer: orchestration.  Both engines are exact and give the same values and the same proven
digits; they differ in working form and speed.  ``sympy`` keeps every value a sympy tree,
which is what a textbook-sized example wants (readable closed forms, instant).  ``structured``
(:mod:`exacttransformer.exact.lazy`) keeps values as polynomials over shared atoms and scales to
several layers, 16 tokens and d_model 64.  ``auto`` (the default) picks ``structured`` from
:data:`AUTO_THRESHOLD` on, or when a layer norm follows attention (see
:func:`_norm_after_attention`).  Otherwise it starts with ``sympy`` under a size budget
(:data:`SYMPY_BUDGET`): the first value whose tree outgrows it stops the sympy pass, and the
pass is run again with ``structured`` (see :func:`run`).  The budget counts tree nodes, so
the choice is the same on every machine and for every run.

The choice can be forced with ``--engine`` on the command line or the environment variable
``EXACTTRANSFORMER_ENGINE`` (``auto``, ``sympy`` or ``structured``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import sympy

from ..errors import InputError
from ..exact.backends import EXACT, STRUCTURED, Backend
from ..exact.closedform import node_count
from ..exact.linalg import Matrix
from .graph import Guard
from .trace import Key, Trace

ENGINES = ("auto", "sympy", "structured")
ENV = "EXACTTRANSFORMER_ENGINE"

AUTO_THRESHOLD = 64
"""``auto`` uses the structured engine when tokens × d_model × layers exceeds this (cat: 12;
a 2-layer, 8-token, d_model 16 model: 256).  Below it, sympy trees are small and fast."""


def requested(engine: str | None = None) -> str:
    """The engine asked for: the argument, else the environment variable, else ``auto``."""
    name = engine if engine is not None else os.environ.get(ENV, "auto")
    if name not in ENGINES:
        where = "--engine" if engine is not None else ENV
        raise InputError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}", key=where)
    return name


def size(config: Any, params: Any, inputs: Any) -> int:
    """tokens × d_model × layers, from what the file gives (0 when unknown)."""
    tokens = len(inputs.tokens)
    d_model = config.d_model or 0
    for key, value in inputs.given.items():
        if key[0] in ("x", "X", "embed") and value:
            tokens = tokens or len(value)
            d_model = d_model or len(value[0])
    if not d_model and params.E is not None and params.E:
        d_model = len(params.E[0])
    if not d_model:
        for lp in params.layers:
            if lp.W_Q is not None and lp.W_Q:
                d_model = len(lp.W_Q)
                break
    return tokens * d_model * max(1, len(params.layers))


def choose(config: Any, params: Any, inputs: Any, engine: str | None = None) -> Backend:
    """The backend for this model under the requested engine."""
    name = requested(engine)
    if name == "sympy":
        return EXACT
    if name == "structured":
        return STRUCTURED  # type: ignore[return-value]
    if size(config, params, inputs) > AUTO_THRESHOLD or _norm_after_attention(config, params, inputs):
        return STRUCTURED  # type: ignore[return-value]
    return EXACT


def _norm_after_attention(config: Any, params: Any, inputs: Any) -> bool:
    """A layer norm of attention outputs (post-norm, pre-norm's second norm, a final norm).

    It puts square roots of sums of exponentials into every later value, and sympy's
    automatic simplification of such trees takes minutes even at 3 tokens and d_model 4.
    A training step (a ``target``) stays with sympy: its gradients rest on identities such as
    "a softmax's gradient sums to 0 along a row", which sympy's trees show and the structured
    engine's rules do not always prove (it would stop with "cannot decide the sign").
    """
    if inputs.target is not None:
        return False
    attention = any(lp.W_Q is not None or lp.W_K is not None for lp in params.layers) or any(
        key[0] in ("q", "k", "scores", "weights") for key in inputs.given)
    normed = config.norm in ("pre", "post") or config.final_norm
    return attention and normed


SYMPY_BUDGET = 600
"""The largest sympy tree (nodes, a shared subtree counted at each use) ``auto`` lets a value
have before it moves to the structured engine.

The worked examples stay below 300.  Past a few thousand, sympy's automatic evaluation
answers its assumption questions (is this sum zero? positive?) by evaluating the whole tree
numerically, again at every operation, and the time grows faster than the size: a quotient
of two 6,000-node sums took five seconds, a vocabulary softmax over them minutes, and a
two-layer pre-norm model with a training step ran for hours.  The structured engine shares
those subexpressions instead and gives the same values and digits.
"""


class OutgrewSympy(Exception):
    """A value outgrew :data:`SYMPY_BUDGET` (``key``: the node; ``size``: its tree's nodes,
    counted up to one past the budget)."""

    def __init__(self, key: Key, size: int):
        super().__init__(f"{key[0]} outgrew the sympy budget (over {SYMPY_BUDGET} nodes)")
        self.key = key
        self.size = size


class SizeBudget:
    """A :data:`~exacttransformer.graph.graph.Guard` that raises :class:`OutgrewSympy` for the first
    value with a tree over ``limit`` nodes (a shared subtree counted at each use, as sympy's
    evaluation walks it; the counts of whole subtrees are remembered, so counting a node
    costs about as much as its new parts)."""

    def __init__(self, limit: int = SYMPY_BUDGET):
        self.limit = limit

    def __call__(self, key: Key, value: Matrix) -> None:
        for row in value:
            for x in row:
                if isinstance(x, sympy.Basic):
                    size = node_count(x, self.limit + 1)
                    if size > self.limit:
                        raise OutgrewSympy(key, size)


Attempt = Callable[[Backend, Guard | None], Trace]
"""One forward pass with a given backend and guard."""


def run(attempt: Attempt, config: Any, params: Any, inputs: Any, engine: str | None = None) -> Trace:
    """The trace under the requested engine; ``auto`` moves from sympy to the structured
    engine the moment a value outgrows :data:`SYMPY_BUDGET`."""
    backend = choose(config, params, inputs, engine)
    if backend is not EXACT or requested(engine) != "auto":
        return attempt(backend, None)
    try:
        return attempt(EXACT, SizeBudget())
    except OutgrewSympy:
        return attempt(STRUCTURED, None)  # type: ignore[arg-type]
