"""Shared hypothesis strategies: small exact numbers, matrices and whole random models.

Models are built directly as ``(ModelConfig, Params, Inputs)``, the three arguments of
:func:`exacttransformer.graph.forward.forward` and :func:`exacttransformer.graph.reference.reference_forward`.

Sizes are kept where the exact engine is fast (measured on a 2-core machine):

- one layer, no norm, ReLU or no activation: 1–6 tokens, 1–4 heads (heads × tokens ≤ 8),
  1–8 dimensions (dimensions × tokens ≤ 16), d_head and d_v 1–3, d_ff 1–4;
- one layer with a norm or a smooth activation (GELU, its tanh form, SiLU): 1–3 tokens,
  heads × tokens ≤ 4, 1–3 dimensions, d_head and d_v 1–2, d_ff 1–2;
- two layers: no norm, ReLU or no activation, one head, 1–3 tokens, 1–4 dimensions.  The
  second layer reads irrational hidden states (ratios of sums of exponentials), and sympy
  takes minutes to build square roots, ``tanh``/``erf`` or quotients of those, so the
  two-layer models leave layer norm and the smooth activations to the one-layer ones.

Every other option is drawn for every model: mask, scale (``sqrt_dk``, ``none``, 1/2, 1/3),
softmax, ``norm_eps`` (0 or 1/100000), each optional bias, gamma and beta, cross-attention
(``x_kv`` given, of its own width and length) and, for one layer, embeddings with positions
and a vocabulary head (``W_U`` and ``b_U`` or tied embeddings, a temperature, and on the
small models a final norm).

:func:`journeys` draws whole journey models as walkthrough files instead (tokens to the next
token, with training, decoding and every ``[model]`` option of the stress corpus,
tests/corpus.py): no size is kept small for sympy there, since issue 12's ``auto`` engine
must finish every one of them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import sympy
from corpus import FACTORS, CorpusModel, Numbers, allowed, model_text, table
from hypothesis import note, reject, settings
from hypothesis import strategies as st

from exacttransformer.errors import ComputationError
from exacttransformer.exact.linalg import Matrix
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.trace import Trace

EPS = sympy.Rational(1, 100000)
"""PyTorch's default ``LayerNorm`` eps, the non-zero ``norm_eps`` the models use."""


def budget(n: int) -> settings:
    """``@settings`` for an expensive property: ``n`` examples under the ``ci`` profile,
    scaled up in proportion under ``dev`` (whose default is five times larger)."""
    return settings(max_examples=max(1, n * settings().max_examples // 40))


EXACT_SECONDS = 4.0
"""Time allowed to one exact forward pass of a random model before the example is dropped.

The sizes below keep almost every model well under a second, but sympy builds a few
square roots, ``tanh``/``erf`` and quotients of long sums very slowly (its automatic
evaluation asks assumption questions that it answers by numerical evaluation of the whole
argument), so a rare small model takes minutes.  Such an example is *rejected*, not passed:
hypothesis counts it as invalid, draws another, and fails the test if too many are.
"""


class _OverTime(BaseException):
    """A ``BaseException``: sympy's numerical evaluation catches ``Exception`` in places, and
    a time limit it swallowed would let one example run for ever."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_OverTime` inside the block after ``seconds``, and again every half
    second until the block ends (SIGALRM; main thread)."""
    def expire(signum: int, frame: object) -> None:
        raise _OverTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def exact_trace(m: Model) -> Trace:
    """The exact trace of a random model, rejecting (not failing) the example when the engine
    refuses it as documented (a constant row under layer norm with ``norm_eps = 0``, a sign it
    cannot decide) or when it takes longer than :data:`EXACT_SECONDS`."""
    try:
        with time_limit(EXACT_SECONDS):
            return forward(*m.args)
    except ComputationError as exc:
        note(f"exact engine refused: {exc}")
    except _OverTime:
        note(f"exact engine took over {EXACT_SECONDS} s")
    reject()


# --- numbers and matrices -----------------------------------------------------------------

SIMPLE = sorted(
    {sympy.Rational(k, q) for q in (1, 2, 4) for k in range(-4 * q, 4 * q + 1) if abs(k) <= 4},
    key=lambda r: (int(r.q), abs(r), bool(r < 0)),
)
"""Integers -4…4, ±1/2, ±3/2, ±1/4, ±3/4 (``k/q`` with ``|k| ≤ 4``), simplest first so that
hypothesis shrinks towards 0, 1, -1, 2, …"""


def rationals(max_abs: int = 4) -> st.SearchStrategy[sympy.Rational]:
    """Small exact rationals: integers and simple fractions ``k/2``, ``k/4``."""
    return st.sampled_from([r for r in SIMPLE if abs(r) <= max_abs])


def positive_rationals(max_abs: int = 4) -> st.SearchStrategy[sympy.Rational]:
    """Small exact rationals above 0 (a variance, a square root)."""
    return st.sampled_from([r for r in SIMPLE if 0 < r <= max_abs])


def exact_numbers() -> st.SearchStrategy[sympy.Expr]:
    """Mostly small rationals, sometimes a simple irrational (for exact invariants that
    must hold beyond the rationals)."""
    irrational = st.sampled_from(
        [sympy.sqrt(2), -sympy.sqrt(3) / 2, sympy.exp(sympy.Rational(1, 2)), 1 + sympy.sqrt(5)]
    )
    return st.one_of(rationals(3), irrational)


def vectors(n: int, elements: st.SearchStrategy[sympy.Expr] | None = None) -> st.SearchStrategy:
    elements = rationals() if elements is None else elements
    return st.tuples(*[elements for _ in range(n)])


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
    """A random model: the three arguments of ``forward`` (``model.args``)."""

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


def configs(heads: int) -> st.SearchStrategy[ModelConfig]:
    """Every ``[model]`` option the forward pass reads, for ``heads`` heads."""
    return st.builds(
        ModelConfig,
        heads=st.just(heads),
        mask=st.sampled_from(["none", "causal"]),
        scale=st.sampled_from(["sqrt_dk", "none", sympy.Rational(1, 2), sympy.Rational(1, 3)]),
        softmax=st.sampled_from(["plain", "stable"]),
        activation=st.sampled_from(["relu", "gelu", "gelu_tanh", "silu", "none"]),
        norm=st.sampled_from(["none", "pre", "post"]),
        norm_eps=st.sampled_from([sympy.Integer(0), EPS]),
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
def models(draw: st.DrawFn, max_layers: int = 2, cross: bool | None = None,
           embeddings: bool = True, layers: int | None = None, norm: str | None = None,
           activation: str | None = None, min_tokens: int = 1) -> Model:
    """A whole random model (see the module docstring for the sizes).

    ``cross`` is cross-attention (keys and values read a given ``x_kv``; with a causal mask
    ``x_kv`` has at least as many rows as there are queries, so no query row is fully
    masked): ``None`` sometimes, ``True`` always, ``False`` never.  ``embeddings`` allows
    inputs given as tokens, a vocabulary, ``E`` and positions (sinusoidal, the guide's
    variant, or learned) instead of ``X``.
    ``layers``, ``norm`` and ``activation`` fix those choices instead of drawing them;
    ``min_tokens`` (at most 3) raises the smallest number of tokens.
    """
    if layers is None:
        # One layer three times in four: it is where every option can be exercised.
        layers = 2 if max_layers > 1 and draw(st.integers(0, 3)) == 0 else 1
    config = draw(configs(1))
    # The exact cost grows with heads × keys × width: every attention output is a sum of
    # heads·d_v ratios of m exponentials, and sympy's square roots (layer norm), smooth
    # activations and divisions of such sums are slow to build (seconds to minutes).  So
    # only a light single layer (no norm; ReLU or no activation) gets the full sizes, and a
    # second layer, which reads the first one's irrational output, is light and small.
    if layers > 1:
        config = replace(config, norm="none", activation=draw(st.sampled_from(["relu", "none"])))
    if norm is not None:
        config = replace(config, norm=norm)
    if activation is not None:
        config = replace(config, activation=activation)
    light = config.norm == "none" and config.activation in ("relu", "none")
    big = light and layers == 1
    if big:
        n = draw(st.integers(min_tokens, 6))
        heads = draw(st.integers(1, min(4, 8 // n)))
        d = draw(st.integers(1, min(8, 16 // n)))
    else:
        n = draw(st.integers(min_tokens, 3))
        heads = draw(st.integers(1, 4 // n)) if layers == 1 else 1
        d = draw(st.integers(1, 4 if light else 3))
    dk = draw(st.integers(1, 3 if big else 2))
    dv = draw(st.integers(1, 3 if big else 2))
    d_ff = draw(st.integers(1, 4 if big else 2))
    config = replace(config, heads=heads)
    if d == 1:
        # A one-dimensional row is constant: layer norm needs norm_eps > 0 there.
        config = replace(config, norm_eps=EPS)
    given: dict = {}
    d_kv = d
    if cross or (cross is None and draw(st.booleans())):
        m = draw(st.integers(n if config.mask == "causal" else 1, max(n, 3)))
        d_kv = draw(st.integers(1, 4))
        given[("x_kv", None, None)] = draw(matrices(m, d_kv, rationals(3)))
    tokens = tuple(f"t{i}" for i in range(n))
    E = P = None
    vocab: tuple[str, ...] = ()
    if embeddings and layers == 1 and draw(st.integers(0, 3)) == 0:
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
    head: dict = {}
    if layers == 1 and draw(st.integers(0, 2)) == 0:
        # The vocabulary head: logits over V words, a temperature, maybe a final norm (only
        # on small models: it is one more square root of the attention's sums).
        V = len(vocab) if vocab else draw(st.integers(1, 4))
        if E is not None and draw(st.booleans()):
            config = replace(config, tie_embeddings=True)
        else:
            head["W_U"] = draw(matrices(d, V, rationals(2)))
            head["b_U"] = draw(maybe(vectors(V, rationals(2))))
        if not big and draw(st.booleans()):
            config = replace(config, final_norm=True, norm_eps=EPS)
            head["gamma_f"] = draw(maybe(vectors(d, rationals(2))))
            head["beta_f"] = draw(maybe(vectors(d, rationals(2))))
        temperature = draw(st.sampled_from([sympy.Integer(1), sympy.Rational(1, 2), sympy.Integer(2)]))
        config = replace(config, temperature=temperature)
    params = Params(layers=lps, E=E, P=P, **head)
    return Model(config, params, Inputs(tokens=tokens, given=given, vocab=vocab))


# --- whole journeys, as walkthrough files ---------------------------------------------------

class _DrawnNumbers(Numbers):
    """The weights of a journey drawn by hypothesis (so that they shrink), not from a seed."""

    def __init__(self, draw: st.DrawFn, numbers: tuple[str, ...]):
        self.draw = draw
        self.table = tuple(sorted(set(numbers), key=numbers.index))

    def next(self) -> str:
        return self.draw(st.sampled_from(self.table))


@st.composite
def journeys(draw: st.DrawFn, max_layers: int = 2, max_tokens: int = 3,
             max_d_model: int = 4) -> CorpusModel:
    """A whole journey model as walkthrough TOML: tokens through ``E`` and positions, the
    layers, the vocabulary head; every option of :data:`corpus.FACTORS` drawn (norm,
    activation, positions, tied or ``W_U``, temperature, training step, cross-attention,
    generation with a key/value cache or beam search, mask, heads, final norm, biases,
    integers or fractions), with layers, tokens and ``d_model`` up to the bounds given (the
    stress corpus goes to 3, 4 and 8).  Cross-attention goes without decoding
    (:func:`corpus.allowed`)."""
    limits = {"layers": max_layers, "tokens": max_tokens, "d_model": max_d_model}
    options: dict[str, str] = {}
    for name, values in FACTORS.items():
        if name in limits:
            values = tuple(v for v in values if int(v) <= limits[name])
        values = tuple(v for v in values if allowed({**options, name: v}))
        options[name] = draw(st.sampled_from(values), label=name)
    index = draw(st.integers(0, 11), label="sizes")
    text = model_text(index, options, _DrawnNumbers(draw, table(options)))
    return CorpusModel("journey", options, text)
