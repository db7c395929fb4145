"""Which exact engine runs a forward pass: plain sympy trees, or the structured numbers.

Layer: orchestration.  Both engines are exact and give the same values and the same proven
digits; they differ in working form and speed.  ``sympy`` keeps every value a sympy tree,
which is what a textbook-sized example wants (readable closed forms, instant).  ``structured``
(:mod:`exacttransformer.lazy`) keeps values as polynomials over shared atoms and scales to
several layers, 16 tokens and d_model 64.  ``auto`` (the default) picks ``sympy`` for small
models and ``structured`` from :data:`AUTO_THRESHOLD` on, or when a layer norm follows
attention (see :func:`_norm_after_attention`).

The choice can be forced with ``--engine`` on the command line or the environment variable
``EXACTTRANSFORMER_ENGINE`` (``auto``, ``sympy`` or ``structured``).
"""

from __future__ import annotations

import os
from typing import Any

from .backends import EXACT, STRUCTURED, Backend
from .errors import InputError

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
