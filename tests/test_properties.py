"""Properties of the exact forward pass, against the independent float reference and exactly.

Two kinds of assertion, never mixed:

- *float agreement* (the exact engine, its FLOAT backend and :mod:`exacttransformer.graph.reference`):
  within the stated bound :data:`REL`, because the reference rounds;
- *exact invariants* (softmax rows sum to 1, shift invariance, permutation equivariance,
  causality, layer-norm moments): ``==`` on sympy values, after ``sympy.together`` /
  ``sympy.simplify`` where the two sides are the same number written differently; never a
  tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pytest
import sympy
from hypothesis import assume, event, given, reject
from hypothesis import strategies as st
from strategies import (
    Model,
    budget,
    exact_numbers,
    exact_trace,
    matrices,
    models,
    positive_rationals,
    rationals,
)

from exacttransformer.errors import ComputationError
from exacttransformer.exact.backends import FLOAT
from exacttransformer.exact.printing import to_float
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.reference import NAMES, reference_forward
from exacttransformer.graph.trace import Key, Trace

REL = 1e-9
"""Float agreement bound: ``|exact - float| <= REL * max(1, largest |exact| in the node)``.

Why this bound: float64 rounds each operation with relative error at most 2^-53 ≈ 1.1e-16
(the exact side is converted by :func:`numbers.to_float`, correctly rounded).  A node of
these models is at most a few hundred operations deep (two layers, width ≤ 8), and the worst
amplifications on the way are exp (its relative error is the score's absolute error,
|score| · 2^-53, with |score| up to a few hundred here) and the division by a layer norm's
standard deviation.  So an honest float result lands within ~1e-13 of the exact one
(observed over 400 random models: 3.8e-14 at most).  Scaling by the node's largest
magnitude, with a floor of 1, covers entries that cancel to nearly 0 (``x + attn_out``),
whose error is relative to the operands, not to the result.  1e-9 leaves four orders of
margin, while a semantic mistake (a wrong mask, variance, head slice or activation) moves
values by 1e-3 or more, so it cannot hide under the bound.
"""


# --- helpers ---------------------------------------------------------------------------------

def reference(m: Model) -> dict[Key, list[list[float]]]:
    """The float reference; float64 overflow (``exp`` of a score above ~709 in a plain
    softmax) is a limit of floats, not a disagreement, so such examples are rejected."""
    try:
        return reference_forward(*m.args)
    except OverflowError:
        reject()


def assert_close(key: Key, exact: Sequence[Sequence[float]], approx: Sequence[Sequence[float]],
                 what: str = "reference") -> None:
    assert len(exact) == len(approx), f"{key}: {len(exact)} rows vs {len(approx)} in the {what}"
    scale = max([1.0] + [abs(x) for row in exact for x in row])
    for i, (er, ar) in enumerate(zip(exact, approx, strict=True)):
        assert len(er) == len(ar), f"{key} row {i}: widths differ"
        for j, (e, a) in enumerate(zip(er, ar, strict=True)):
            assert abs(e - a) <= REL * scale, f"{key}[{i}, {j}]: exact {e!r}, {what} {a!r}"


def assert_same_nodes(trace: Trace, ref: dict[Key, list[list[float]]]) -> None:
    """The engine computed exactly the nodes the reference did, among those the reference
    knows (:data:`reference.NAMES`; the engine also decodes, which the reference does not)."""
    ours = {s.key for s in trace if s.name in NAMES}
    assert sorted(ours - set(ref), key=str) == [], "computed by the engine only"
    assert sorted(set(ref) - ours, key=str) == [], "computed by the reference only"


def floats(m: Sequence[Sequence[sympy.Expr]]) -> list[list[float]]:
    return [[to_float(x) for x in row] for row in m]


def same_number(a: sympy.Expr, b: sympy.Expr) -> bool:
    """``a`` and ``b`` are provably the same number (structurally, or after simplification)."""
    if a == b:
        return True
    diff = sympy.together(a - b)
    return sympy.expand(diff.as_numer_denom()[0]) == 0 or sympy.simplify(a - b) == 0


def with_config(m: Model, **changes: object) -> Model:
    return replace(m, config=replace(m.config, **changes))


def describe(m: Model) -> None:
    """Label the example for ``--hypothesis-show-statistics`` (what the suite covers)."""
    c = m.config
    event(f"layers={len(m.params.layers)} heads={c.heads} tokens={len(m.inputs.tokens)}")
    event(f"norm={c.norm} activation={c.activation}")
    event(f"mask={c.mask} softmax={c.softmax} scale={c.scale}")
    event("cross-attention" if ("x_kv", None, None) in m.inputs.given else "self-attention")
    event(f"positional={c.positional}" if m.params.E is not None else "X given")


def x_of(m: Model) -> tuple:
    return m.inputs.given[("x", 0, None)]


# --- the exact engine against the float reference ------------------------------------------

NORMS = ("none", "pre", "post")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu", "none")


def check_against_reference(m: Model) -> None:
    describe(m)
    trace = exact_trace(m)
    ref = reference(m)
    assert_same_nodes(trace, ref)
    for key, value in ref.items():
        assert_close(key, floats(trace.value(*key)), value)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@budget(6)
@given(data=st.data())
def test_every_node_matches_the_float_reference(norm: str, activation: str,
                                                data: st.DataObject) -> None:
    """One layer, each norm × activation (every other option drawn)."""
    check_against_reference(data.draw(models(layers=1, norm=norm, activation=activation)))


@budget(20)
@given(models(layers=2))
def test_two_layer_models_match_the_float_reference(m: Model) -> None:
    check_against_reference(m)


@budget(20)
@given(models())
def test_attention_rows_sum_to_exactly_one(m: Model) -> None:
    trace = exact_trace(m)
    for step in trace:
        if step.name == "weights" and not step.given:
            for row in step.value:
                total = sympy.together(sympy.Add(*row))
                assert total == 1 or sympy.simplify(total) == 1, (step.key, row)


@budget(100)
@given(models())
def test_float_backend_matches_the_reference(m: Model) -> None:
    try:
        trace = forward(*m.args, backend=FLOAT)
    except (ComputationError, OverflowError, ZeroDivisionError):
        reject()
    ref = reference(m)
    assert_same_nodes(trace, ref)
    for key, value in ref.items():
        assert_close(key, trace.value(*key), value, what="FLOAT backend")


NODES_TO_GIVE = ("x", "attn_in", "q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores",
                 "exp_scores", "weights", "z", "concat", "attn_out", "resid_mid", "ln1_mean",
                 "ln1_var", "ffn_in", "ffn_pre", "ffn_act", "ffn_out", "resid_post")


@budget(20)
@given(models(max_layers=1), st.data())
def test_a_given_node_replaces_the_computed_one_in_both(m: Model, data: st.DataObject) -> None:
    """Give one intermediate node a new value: the engine and the reference must both use it
    (and compute downstream of it, and only what is computable)."""
    try:
        shapes = {k: (len(v), len(v[0])) for k, v in reference_forward(*m.args).items()}
    except (OverflowError, ZeroDivisionError):
        reject()
    keys = sorted(k for k in shapes if k[0] in NODES_TO_GIVE and k[1] in (0, None))
    key = data.draw(st.sampled_from(keys), label="given node")
    rows, cols = shapes[key]
    # A variance or square root must stay positive; the rest may be any small rational.
    positive = key[0] in ("ln1_var", "sqrt_dk")
    elements = positive_rationals(3) if positive else rationals(3)
    value = data.draw(matrices(rows, cols, elements), label="value")
    given = dict(m.inputs.given)
    given[key] = value
    m2 = replace(m, inputs=replace(m.inputs, given=given))
    trace = exact_trace(m2)
    try:
        ref = reference_forward(*m2.args)
    except (OverflowError, ZeroDivisionError):
        reject()
    assert trace.value(*key) == value
    assert_same_nodes(trace, ref)
    for key, value in ref.items():
        assert_close(key, floats(trace.value(*key)), value)


# --- softmax: exact invariants ---------------------------------------------------------------

@st.composite
def softmax_cases(draw: st.DrawFn) -> tuple[ModelConfig, tuple]:
    """A config (mask, softmax, a scale that needs no keys) and an n×m score matrix,
    m ≥ n so that the causal mask never hides a whole row."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(n, 5))
    config = ModelConfig(
        mask=draw(st.sampled_from(["none", "causal"])),
        softmax=draw(st.sampled_from(["plain", "stable"])),
        scale=draw(st.sampled_from(["none", sympy.Rational(1, 2), 1 / sympy.sqrt(2)])),
    )
    return config, draw(matrices(n, m, exact_numbers()))


def softmax_of(config: ModelConfig, scores: tuple) -> tuple:
    trace = forward(config, Params(), Inputs(given={("scores", 0, 0): scores}))
    return trace.value("weights", 0, 0)


@given(softmax_cases())
def test_softmax_rows_sum_to_exactly_one(case: tuple[ModelConfig, tuple]) -> None:
    config, scores = case
    for row in softmax_of(config, scores):
        total = sympy.together(sympy.Add(*row))
        assert total == 1 or sympy.simplify(total) == 1


@given(softmax_cases(), st.data())
def test_softmax_is_unchanged_by_adding_a_constant_to_a_row(
    case: tuple[ModelConfig, tuple], data: st.DataObject
) -> None:
    config, scores = case
    shifts = [data.draw(st.one_of(rationals(4), st.just(sympy.sqrt(3))), label=f"c{i}")
              for i in range(len(scores))]
    moved = tuple(tuple(s + c for s in row) for row, c in zip(scores, shifts, strict=True))
    before, after = softmax_of(config, scores), softmax_of(config, moved)
    for r0, r1 in zip(before, after, strict=True):
        for a, b in zip(r0, r1, strict=True):
            assert same_number(a, b), (a, b)


# --- whole models: exact symmetries -------------------------------------------------------------

@budget(15)
@given(models(max_layers=1, embeddings=False), st.data())
def test_without_a_mask_permuting_tokens_permutes_the_outputs(m: Model,
                                                              data: st.DataObject) -> None:
    m = with_config(m, mask="none")
    x = x_of(m)
    perm = data.draw(st.permutations(range(len(x))), label="permutation")
    out = exact_trace(m).value("out", 0)
    out_p = exact_trace(m.with_x(tuple(x[p] for p in perm))).value("out", 0)
    for i, p in enumerate(perm):
        for a, b in zip(out_p[i], out[p], strict=True):
            assert same_number(a, b), (i, p, a, b)


@budget(15)
@given(models(max_layers=1, cross=True), st.data())
def test_without_a_mask_permuting_keys_and_values_changes_nothing(m: Model,
                                                                 data: st.DataObject) -> None:
    m = with_config(m, mask="none")
    kv_key = ("x_kv", None, None)
    kv = m.inputs.given[kv_key]
    perm = data.draw(st.permutations(range(len(kv))), label="permutation")
    given = dict(m.inputs.given)
    given[kv_key] = tuple(kv[p] for p in perm)
    permuted = replace(m, inputs=replace(m.inputs, given=given))
    out = exact_trace(m).value("out", 0)
    out_p = exact_trace(permuted).value("out", 0)
    for r0, r1 in zip(out, out_p, strict=True):
        for a, b in zip(r0, r1, strict=True):
            assert same_number(a, b)


@budget(20)
@given(models(cross=False, embeddings=False, min_tokens=2), st.data())
def test_with_a_causal_mask_a_token_ignores_later_tokens(m: Model, data: st.DataObject) -> None:
    m = with_config(m, mask="causal")
    x = x_of(m)
    i = data.draw(st.integers(0, len(x) - 2), label="last unchanged token")
    later = data.draw(matrices(len(x) - i - 1, len(x[0]), rationals(3)), label="new later rows")
    if later == x[i + 1:]:
        later = ((later[0][0] + 1,) + later[0][1:],) + later[1:]
    changed = m.with_x(x[:i + 1] + later)
    layers = len(m.params.layers)
    before, after = exact_trace(m), exact_trace(changed)
    for layer in range(layers):
        for a, b in zip(before.value("out", layer)[:i + 1], after.value("out", layer)[:i + 1],
                        strict=True):
            assert a == b or all(same_number(p, q) for p, q in zip(a, b, strict=True))


# --- layer norm: exact moments --------------------------------------------------------------------

@st.composite
def non_constant_rows(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 4))
    d = draw(st.integers(2, 6))
    x = draw(matrices(n, d, exact_numbers()))
    assume(all(len(set(row)) > 1 for row in x))
    return x


@given(non_constant_rows())
def test_layer_norm_without_eps_or_affine_has_mean_0_and_variance_1(x: tuple) -> None:
    trace = forward(ModelConfig(norm="pre"), Params(), Inputs(given={("x", 0, None): x}))
    d = len(x[0])
    for row in trace.value("ln1", 0):
        mean = sympy.Add(*row) / d
        var = sympy.Add(*[y**2 for y in row]) / d - mean**2
        assert same_number(mean, sympy.Integer(0))
        assert same_number(var, sympy.Integer(1))


def test_the_reference_and_engine_agree_on_the_cat_model() -> None:
    from exacttransformer.io.files import load

    w = load("cat")
    trace = w.forward()
    ref = reference_forward(w.config, w.params, w.inputs)
    assert_same_nodes(trace, ref)
    for key, value in ref.items():
        assert_close(key, floats(trace.value(*key)), value)
    assert math.isclose(ref[("out", 0, None)][1][1], 10.0)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "silu", "none"])
def test_each_activation_matches_the_reference(activation: str) -> None:
    """A lone feed-forward (``ffn_in`` given) with identity weights: ``out`` is the
    activation itself at -3, -3/2, 0, 3/2, 3."""
    points = ((sympy.Rational(-3), sympy.Rational(-3, 2), sympy.Integer(0),
               sympy.Rational(3, 2), sympy.Integer(3)),)
    eye = tuple(tuple(sympy.Integer(int(i == j)) for j in range(5)) for i in range(5))
    params = Params(layers=(LayerParams(W1=eye, W2=eye),))
    config = ModelConfig(activation=activation)
    inputs = Inputs(given={("ffn_in", 0, None): points})
    trace = forward(config, params, inputs)
    ref = reference_forward(config, params, inputs)
    assert_same_nodes(trace, ref)
    for key, value in ref.items():
        assert_close(key, floats(trace.value(*key)), value)
