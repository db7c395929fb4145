"""Frozen, validated model settings: the ``[model]`` table of a walkthrough file.

Layer: settings only, no arithmetic. Numbers are exact sympy values from
:mod:`exacttransformer.numbers`; the loader in :mod:`exacttransformer.io.files` builds this.

>>> ModelConfig().heads, ModelConfig().mask, ModelConfig().scale
(1, 'none', 'sqrt_dk')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import sympy

from ..errors import InputError, suggest

Number: TypeAlias = sympy.Expr

CHOICES: dict[str, tuple[str, ...]] = {
    "mask": ("none", "causal"),
    "softmax": ("plain", "stable", "sum"),
    "activation": ("relu", "gelu", "gelu_tanh", "silu", "none"),
    "norm": ("none", "post", "pre"),
    "positional": ("none", "sinusoidal", "sinusoidal_guide", "learned", "rope"),
    "vectors": ("row", "column"),
    "head": ("softmax", "sigmoid"),
    "ffn_input": ("residual", "attention"),
}


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` settings (SPEC §2), all with the documented defaults.

    ``scale`` is ``"sqrt_dk"``, ``"none"`` or an exact number (the multiplier applied to
    the scores).  ``final_norm`` and ``tie_embeddings`` belong to the vocabulary head.
    """

    heads: int = 1
    mask: str = "none"
    scale: str | Number = "sqrt_dk"
    softmax: str = "plain"
    activation: str = "relu"
    norm: str = "none"
    norm_eps: Number = sympy.Integer(0)
    positional: str = "none"
    positional_base: Number = sympy.Integer(10000)
    vectors: str = "row"
    temperature: Number = sympy.Integer(1)
    learning_rate: Number = sympy.Rational(1, 10)
    d_model: int | None = None
    tie_embeddings: bool = False
    final_norm: bool = False
    head: str = "softmax"
    ffn_input: str = "residual"
    """``"attention"``: the feed-forward reads the attention output directly (``attn_out``, or
    ``concat`` without ``W_O``), with no residual connections (docs/nodes.md)."""

    def __post_init__(self) -> None:
        for key, allowed in CHOICES.items():
            value = getattr(self, key)
            if value not in allowed:
                raise InputError(
                    f"unknown value {value!r}; {suggest(str(value), allowed)}", key=f"model.{key}"
                )
        if not isinstance(self.heads, int) or self.heads < 1:
            raise InputError(f"must be a positive integer, got {self.heads!r}", key="model.heads")
        if isinstance(self.scale, str) and self.scale not in ("sqrt_dk", "none"):
            raise InputError(
                f"unknown value {self.scale!r}; use 'sqrt_dk', 'none' or an exact number",
                key="model.scale",
            )
        if self.ffn_input == "attention" and self.norm != "none":
            raise InputError("a feed-forward that reads the attention output directly has no "
                             "residual stream to normalize: use norm = \"none\"",
                             key="model.ffn_input")
        if self.norm_eps.is_negative:
            raise InputError("must not be negative", key="model.norm_eps")
        if not self.temperature.is_positive:
            raise InputError("must be positive (temperature > 0)", key="model.temperature")
