"""Shared hypothesis strategies: small exact numbers, matrices and whole random models.

Models are built directly as ``(ModelConfig, Params, Inputs)``, the three arguments of
:func:`exacttransformer.model.forward` and :func:`exacttransformer.reference.reference_forward`.

Sizes are kept where the exact engine is fast: one layer may have 1–4 heads, 1–6 tokens
and 1–8 model dimensions; a second layer reads irrational hidden states (sums of exponentials
over square roots), whose sympy expressions grow with every token, so two-layer models
have one head, at most 3 tokens and at most 4 dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy
from hypothesis import settings
from hypothesis import strategies as st

from exacttransformer.config import ModelConfig
from exacttransformer.linalg import Matrix
from exacttransformer.model import Inputs
from exacttransformer.params import LayerParams, Params

EPS = sympy.Rational(1, 100000)
"""PyTorch's default ``LayerNorm`` eps, the non-zero ``norm_eps`` the models use."""


def budget(n: int) -> settings:
    """``@settings`` for an expensive property: ``n`` examples under the ``ci`` profile,
    scaled up in proportion under ``dev`` (whose default is five times larger)."""
    return settings(max_examples=max(1, n * settings().max_examples // 40))


# --- numbers and matrices -----------------------------------------------------------------

SIMPLE = sorted(
    {sympy.Rational(k, q) for q in (1, 2, 4) for k in range(-4 * q, 4 * q + 1) if abs(k) <= 4},
    key=lambda r: (int(r.q), abs(r), bool(r < 0)),
)
"""Integers -4…4 and the halves and quarters of -4…4 (|k/q| ≤ 4 with |k| ≤ 4), simplest
first so that hypothesis shrinks towards 0, 1, -1, 2, …"""


def rationals(max_abs: int = 4) -> st.SearchStrategy[sympy.Rational]:
    """Small exact rationals: integers and simple fractions ``k/2``, ``k/4``."""
    return st.sampled_from([r for r in SIMPLE if abs(r) <= max_abs])


def exact_numbers() -> st.SearchStrategy[sympy.Expr]:
    """Mostly small rationals, sometimes a simple irrational (for exact invariants that
    must hold beyond the rationals)."""
    irrational = st.sampled_from(
        [sympy.sqrt(2), -sympy.sqrt(3) / 2, sympy.exp(sympy.Rational(1, 2)), 1 + sympy.sqrt(5)]
    )
    return st.one_of(rationals(3), irrational)


def vectors(n: int, elements: st.SearchStrategy[sympy.Expr] | None = None) -> st.SearchStrategy:
    return st.tuples(*[elements or rationals() for _ in range(n)])


def matrices(rows: int, cols: int, elements: st.SearchStrategy[sympy.Expr] | None = None
             ) -> st.SearchStrategy[Matrix]:
    """A ``rows × cols`` matrix (a tuple of row tuples) of exact numbers."""
    return st.tuples(*[vectors(cols, elements) for _ in range(rows)])


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """``None`` or a value: an optional bias, gamma or beta."""
    return st.none() | strategy


# --- whole models ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    """A random model: what ``forward`` takes, plus the sizes it was drawn with."""

    config: ModelConfig
    params: Params
    inputs: Inputs

    @property
    def args(self) -> tuple[ModelConfig, Params, Inputs]:
        return (self.config, self.params, self.inputs)

    def with_x(self, x: Matrix) -> Model:
        """The same model reading other hidden states ``x`` (same shape)."""
        given = dict(self.inputs.given)
        given[("x", 0, None)] = x
        return replace(self, inputs=replace(self.inputs, given=given))


def configs(heads: int, norm_ok_eps0: bool = True) -> st.SearchStrategy[ModelConfig]:
    """Every ``[model]`` option the forward pass reads, for ``heads`` heads."""
    return st.builds(
        ModelConfig,
        heads=st.just(heads),
        mask=st.sampled_from(["none", "causal"]),
        scale=st.sampled_from(["sqrt_dk", "none", sympy.Rational(1, 2), sympy.Rational(1, 3)]),
        softmax=st.sampled_from(["plain", "stable"]),
        activation=st.sampled_from(["relu", "gelu", "gelu_tanh", "silu", "none"]),
        norm=st.sampled_from(["none", "pre", "post"]),
        norm_eps=st.sampled_from([sympy.Integer(0), EPS] if norm_ok_eps0 else [EPS]),
    )


@st.composite
def layer_params(draw: st.DrawFn, d: int, d_kv: int, heads: int, dk: int, dv: int,
                 d_ff: int, norm: str) -> LayerParams:
    """One block's weights; every bias (and gamma/beta under a norm) optional."""
    small = rationals(2)
    kw: dict = {
        "W_Q": draw(matrices(d, heads * dk, small)),
        "W_K": draw(matrices(d_kv, heads * dk, small)),
        "W_V": draw(matrices(d_kv, heads * dv, small)),
        "W_O": draw(matrices(heads * dv, d, small)),
        "W1": draw(matrices(d, d_ff, small)),
        "W2": draw(matrices(d_ff, d, small)),
    }
    widths = {"b_Q": heads * dk, "b_K": heads * dk, "b_V": heads * dv, "b_O": d,
              "b1": d_ff, "b2": d}
    if norm != "none":
        widths.update(gamma1=d, beta1=d, gamma2=d, beta2=d)
    for name, width in widths.items():
        kw[name] = draw(maybe(vectors(width, small)))
    return LayerParams(**kw)


@st.composite
def models(draw: st.DrawFn, max_layers: int = 2, cross: bool = True,
           embeddings: bool = True) -> Model:
    """A whole random model (see the module docstring for the sizes).

    ``cross`` allows cross-attention (keys and values read a given ``x_kv``; with a
    causal mask ``x_kv`` has at least as many rows as there are queries, so no query row
    is fully masked); ``embeddings`` allows inputs given as tokens, a vocabulary, ``E``
    and positions (sinusoidal, the guide's variant, or learned) instead of ``X``.
    """
    layers = draw(st.integers(1, max_layers))
    big = layers == 1
    heads = draw(st.integers(1, 4)) if big else 1
    n = draw(st.integers(1, 6 if big else 3))
    d = draw(st.integers(1, 8 if big else 4))
    dk = draw(st.integers(1, 3))
    dv = draw(st.integers(1, 3))
    d_ff = draw(st.integers(1, 4 if big else 3))
    # A one-dimensional row is constant: layer norm needs norm_eps > 0 there.
    config = draw(configs(heads, norm_ok_eps0=d > 1))
    given: dict = {}
    d_kv = d
    if cross and draw(st.booleans()):
        m = draw(st.integers(n if config.mask == "causal" else 1, 6 if big else 3))
        d_kv = draw(st.integers(1, 8 if big else 4))
        given[("x_kv", None, None)] = draw(matrices(m, d_kv, rationals(3)))
    tokens = tuple(f"t{i}" for i in range(n))
    E = P = None
    vocab: tuple[str, ...] = ()
    if embeddings and big and draw(st.integers(0, 3)) == 0:
        vocab = tuple(f"w{i}" for i in range(draw(st.integers(1, 4))))
        E = draw(matrices(len(vocab), d, rationals(3)))
        tokens = tuple(draw(st.lists(st.sampled_from(vocab), min_size=n, max_size=n)))
        positional = draw(st.sampled_from(["none", "sinusoidal", "sinusoidal_guide", "learned"]))
        base = draw(st.sampled_from([sympy.Integer(10000), sympy.Integer(100)]))
        config = replace(config, positional=positional, positional_base=base)
        if positional == "learned":
            P = draw(matrices(n + draw(st.integers(0, 2)), d, rationals(2)))
    else:
        given[("x", 0, None)] = draw(matrices(n, d, rationals(3)))
    lps = tuple(draw(layer_params(d, d_kv, heads, dk, dv, d_ff, config.norm))
                for _ in range(layers))
    params = Params(layers=lps, E=E, P=P)
    return Model(config, params, Inputs(tokens=tokens, given=given, vocab=vocab))
