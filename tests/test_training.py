"""One training step: the loss, every gradient, the step, and the proof that it helped.

Gradients are checked three ways:

(a) exactly, against sympy's own derivative: one weight entry is replaced by a symbol, the
    loss is built by the forward pass alone (:func:`training.loss_of`), differentiated by
    ``sympy.diff`` and the symbol put back; the result must equal the engine's gradient
    (``==`` after ``sympy.simplify`` of the difference);
(b) against central finite differences of the independent float64 reference
    (:func:`reference.reference_loss`), on the worked example and on random models;
(c) ``new.<param> = param − learning_rate · grad.<param>``, exactly.

Exact values are compared with ``==`` only.  The one tolerance is on the float side, for
finite differences (see :data:`FD_REL`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sympy
from hypothesis import given, reject
from hypothesis import strategies as st
from strategies import EPS, Model, budget, configs, exact_trace, layer_params, matrices, rationals

from exacttransformer.cli import main
from exacttransformer.exact.backends import EXACT, ExactBackend
from exacttransformer.exact.printing import sign, to_float
from exacttransformer.graph import training_nodes as TR
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LAYER_MATRICES, LAYER_VECTORS, LayerParams, Params
from exacttransformer.graph.reference import reference_forward, reference_loss
from exacttransformer.graph.trace import Trace
from exacttransformer.io.files import load, loads

Z, R = sympy.Integer, sympy.Rational
ROOT = Path(__file__).parent.parent
STEP = ROOT / "worked_examples" / "journey_training_step.toml"

MODEL_PARAMS = ("E", "P", "W_U", "b_U", "gamma_f", "beta_f")


def M(rows: list[list[Any]]) -> tuple[tuple[sympy.Expr, ...], ...]:
    return tuple(tuple(sympy.Integer(x) if isinstance(x, int) else x for x in r) for r in rows)


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Exactly equal: structurally, or their difference simplifies to 0."""
    return bool(a == b or sympy.simplify(a - b) == 0)


def grad(trace: Trace, name: str, layer: int | None) -> Any:
    return trace.value(f"grad.{name}", layer if name not in MODEL_PARAMS else None, None)


# --- the loss and grad.logits by hand ---------------------------------------------------------


def head_only(logits: str, target: int, temperature: str = "1") -> Trace:
    return loads(f'[model]\ntemperature = "{temperature}"\n[input]\nlogits = {logits}\n'
                 f"target = {target}\n").forward()


def test_loss_of_two_equal_logits_is_log_2() -> None:
    t = head_only("[[0, 0]]", 1)
    assert t.value("loss", None, None) == ((sympy.log(2),),)
    assert t.value("grad.logits", None, None) == ((R(1, 2), R(-1, 2)),)


def test_grad_logits_is_probs_minus_onehot_on_the_last_row_only() -> None:
    t = head_only("[[5, -1, 2], [1, 1, 1]]", 2)
    assert t.value("loss", None, None) == ((sympy.log(3),),)  # −log(1/3)
    assert t.value("grad.logits", None, None) == ((0, 0, 0), (R(1, 3), R(1, 3), R(-2, 3)))


def test_grad_logits_at_a_temperature_is_divided_by_it() -> None:
    t = head_only("[[4, 4, 4, 4]]", 0, temperature="2")
    assert t.value("probs", None, None) == ((R(1, 4),) * 4,)
    assert t.value("grad.logits", None, None) == ((R(-3, 8), R(1, 8), R(1, 8), R(1, 8)),)


def test_irrational_probabilities() -> None:
    t = head_only("[[0, 1]]", 0)
    p = t.value("probs", None, None)[0]
    assert t.value("loss", None, None)[0][0] == -sympy.log(p[0], evaluate=False)
    g = t.value("grad.logits", None, None)[0]
    e = sympy.E
    assert same(g[0], -e / (1 + e)) and same(g[1], e / (1 + e))
    assert same(g[0] + g[1], sympy.Integer(0))


def test_no_target_no_training_nodes() -> None:
    names = load("cat").forward().names()
    assert not [n for n in names if n == "loss" or n.startswith(("grad.", "new."))]


# --- (a) the exact symbolic derivative ---------------------------------------------------------

W = sympy.Symbol("w")


class AtPoint(ExactBackend):
    """Exact arithmetic on expressions in the symbol ``w``, deciding every sign (a ReLU, a
    layer norm's check that its variance is not 0) at ``w = point``: the branch the
    derivative at that point goes through."""

    def __init__(self, point: sympy.Expr):
        self.point = point

    def sign(self, x: sympy.Expr) -> int:
        return sign(x.subs(W, self.point))


TINY = Params(
    layers=(LayerParams(W_Q=M([[1, 0], [0, 1]]), W_K=M([[0, 1], [1, 1]]), W_V=M([[1, 2], [0, 1]]),
                        W_O=M([[1, 0], [0, 1]]), W1=M([[1, 0], [1, -1]]), W2=M([[1, 0], [0, -1]]),
                        b1=(Z(0), R(1, 2))),),
    E=M([[1, 0], [0, 1], [1, 1]]), W_U=M([[1, 0, 1], [0, 1, 1]]), b_U=(Z(0), Z(1), Z(0)))
TINY_IN = Inputs(tokens=("a", "b"), vocab=("a", "b", "c"), target=2)


def with_entry(params: Params, name: str, layer: int, i: int, j: int, value: Any) -> Params:
    """``params`` with entry ``[i][j]`` of ``name`` replaced (``i`` is 0 for a vector)."""
    def put(m: Any) -> Any:
        if isinstance(m[0], tuple):
            return tuple(tuple(value if (r, c) == (i, j) else x for c, x in enumerate(row))
                         for r, row in enumerate(m))
        return tuple(value if c == j else x for c, x in enumerate(m))

    if name in MODEL_PARAMS:
        return replace(params, **{name: put(getattr(params, name))})
    layers = list(params.layers)
    layers[layer] = replace(layers[layer], **{name: put(getattr(layers[layer], name))})
    return replace(params, layers=tuple(layers))


def entry(params: Params, name: str, layer: int, i: int, j: int) -> Any:
    m = getattr(params, name) if name in MODEL_PARAMS else getattr(params.layers[layer], name)
    return m[i][j] if isinstance(m[0], tuple) else m[j]


def derivative_at(config: ModelConfig, params: Params, inputs: Inputs, name: str,
                  i: int, j: int) -> sympy.Expr:
    """d loss / d ``name[i][j]``, by sympy, from the loss with a symbol in that entry."""
    point = entry(params, name, 0, i, j)
    loss = TR.loss_of(config, with_entry(params, name, 0, i, j, W), inputs, AtPoint(point))
    return sympy.diff(loss, W).subs(W, point)


@pytest.mark.parametrize(("name", "i", "j"), [
    ("W_Q", 1, 0), ("W_K", 0, 1), ("W_V", 0, 1), ("W_O", 1, 0), ("W1", 1, 0), ("W2", 0, 0),
    ("b1", 0, 0), ("E", 1, 0), ("W_U", 0, 2), ("b_U", 0, 1),
])
def test_gradient_is_the_exact_derivative_of_the_loss(name: str, i: int, j: int) -> None:
    # Two tokens under a causal mask: the second one's attention weights are irrational, so
    # this is the softmax, both residuals, a ReLU with one neuron on and one off, and the head.
    config = ModelConfig(mask="causal")
    trace = forward(config, TINY, TINY_IN)
    assert [sign(h) for h in trace.value("ffn_pre", 0, None)[1]] == [1, -1]
    g = grad(trace, name, 0)[i][j]
    assert g != 0
    assert same(g, derivative_at(config, TINY, TINY_IN, name, i, j))


def test_a_switched_off_relu_passes_no_gradient() -> None:
    config = ModelConfig(mask="causal")
    trace = forward(config, TINY, TINY_IN)
    assert trace.value("grad.ffn_pre", 0, None)[1][1] == 0
    assert derivative_at(config, TINY, TINY_IN, "b1", 0, 1) == 0


LONE_FFN = Inputs(given={("ffn_in", 0, None): M([[1, R(-1, 2)]]),
                         ("resid_mid", 0, None): M([[1, R(-1, 2)]])}, target=1)
"""A feed-forward network alone with the vocabulary head: short enough for sympy to simplify
the derivatives of GELU (both forms) and SiLU."""


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "silu", "none"])
def test_activation_derivatives_are_exact(activation: str) -> None:
    config = ModelConfig(activation=activation)
    params = Params(layers=(LayerParams(W1=M([[1, 2], [1, 1]]), W2=M([[1, 0], [-1, 1]])),),
                    W_U=M([[1, 0], [0, 1]]))
    trace = forward(config, params, LONE_FFN)
    assert trace.value("ffn_pre", 0, None) == ((R(1, 2), R(3, 2)),)
    # W1[1][0] feeds the first neuron, at 1/2 (the other entries take sympy seconds each)
    want = derivative_at(config, params, LONE_FFN, "W1", 1, 0)
    assert same(grad(trace, "W1", 0)[1][0], want)


def test_layer_norm_gradients_are_exact() -> None:
    # A final layer norm alone (the hidden states given as `out`): its mean, variance and
    # output rules, with gamma, beta and eps, against the derivative of the whole formula.
    # (eps = 2/9 makes σ = sqrt(14/9 + 2/9) = 4/3 rational at the point, which keeps sympy's
    # simplification quick; the derivative still differentiates the square root.)
    config = ModelConfig(final_norm=True, norm_eps=R(2, 9))
    params = Params(W_U=M([[1, 0], [0, 1], [1, 1]]), gamma_f=(Z(2), Z(1), R(1, 2)),
                    beta_f=(Z(0), Z(1), Z(0)))
    out = M([[1, 2, 4]])
    inputs = Inputs(given={("out", 0, None): out}, target=0)
    trace = forward(config, params, inputs)
    for name in ("gamma_f", "beta_f"):
        for j in range(3):
            assert same(grad(trace, name, None)[0][j],
                        derivative_at(config, params, inputs, name, 0, j))
    for j in range(3):
        moved = tuple(tuple(W if c == j else x for c, x in enumerate(row)) for row in out)
        loss = TR.loss_of(config, params, replace(inputs, given={("out", 0, None): moved}),
                          AtPoint(out[0][j]))
        want = sympy.diff(loss, W).subs(W, out[0][j])
        assert same(trace.value("grad.out", 0, None)[0][j], want)


# --- (b) finite differences of the float reference ---------------------------------------------

FD_H = 1e-5
FD_REL = 1e-6
"""Central differences ``(L(w + h) − L(w − h)) / 2h`` err by about ``h²·L‴/6`` (truncation)
plus ``ε·|L|/h`` (rounding): with ``h = 1e-5`` on losses of order 1 and third derivatives
below 100, both stay under 1e-8, so 1e-6 relative to ``max(1, |gradient|)`` has a wide
margin and still catches any wrong rule (an error in a chain-rule factor is of order 1)."""


def entries(params: Params) -> Iterator[tuple[str, int, int, int]]:
    """``(name, layer, i, j)`` of every weight entry."""
    for layer, lp in enumerate(params.layers):
        for name in LAYER_MATRICES + LAYER_VECTORS:
            yield from _cells(name, layer, getattr(lp, name))
    for name in MODEL_PARAMS:
        yield from _cells(name, 0, getattr(params, name))


def _cells(name: str, layer: int, m: Any) -> Iterator[tuple[str, int, int, int]]:
    if m is None:
        return
    rows = m if isinstance(m[0], tuple) else (m,)
    for i, row in enumerate(rows):
        for j in range(len(row)):
            yield name, layer, i, j


def finite_difference(config: ModelConfig, params: Params, inputs: Inputs, name: str, layer: int,
                      i: int, j: int) -> float:
    w = to_float(entry(params, name, layer, i, j))
    up = reference_loss(config, with_entry(params, name, layer, i, j, w + FD_H), inputs)
    down = reference_loss(config, with_entry(params, name, layer, i, j, w - FD_H), inputs)
    return (up - down) / (2 * FD_H)


def exact_gradient(trace: Trace, name: str, layer: int, i: int, j: int) -> float:
    key = (f"grad.{name}", None if name in MODEL_PARAMS else layer, None)
    if key not in trace:
        return 0.0  # the loss does not read this weight (P's unused rows, say)
    return to_float(trace.get(*key).value[i][j])


def check_against_finite_differences(config: ModelConfig, params: Params, inputs: Inputs,
                                     trace: Trace) -> int:
    checked = 0
    for name, layer, i, j in entries(params):
        g = exact_gradient(trace, name, layer, i, j)
        fd = finite_difference(config, params, inputs, name, layer, i, j)
        assert abs(fd - g) <= FD_REL * max(1.0, abs(g)), (name, layer, i, j, g, fd)
        checked += 1
    return checked


def test_worked_example_gradients_match_finite_differences() -> None:
    w = load(STEP)
    assert check_against_finite_differences(w.config, w.params, w.inputs, w.forward()) == 60


def test_the_exact_loss_is_the_reference_loss() -> None:
    w = load(STEP)
    loss = w.forward().value("loss", None, None)[0][0]
    # a handful of float64 operations on a loss of 1.7: a few units in the last place
    assert abs(to_float(loss) - reference_loss(w.config, w.params, w.inputs)) <= 4e-15


# --- (c) the step, and the proof that it helped -------------------------------------------------


def test_new_param_is_param_minus_rate_times_gradient() -> None:
    w = load(STEP)
    trace = w.forward()
    lr = w.config.learning_rate
    assert lr == R(1, 2)
    news = [s for s in trace if s.name.startswith("new.")]
    assert sorted(s.name for s in news) == sorted(
        f"new.{n}" for n in ("E", "W_Q", "W_K", "W_V", "W_O", "W1", "W2", "W_U"))
    for s in news:
        name = s.name[len("new."):]
        old = getattr(w.params, name) if name in MODEL_PARAMS else getattr(w.params.layers[0], name)
        g = grad(trace, name, 0)
        for new_row, old_row, g_row in zip(s.value, old, g, strict=True):
            for a, b, c in zip(new_row, old_row, g_row, strict=True):
                assert same(a, b - lr * c)


def test_rows_of_E_that_were_not_read_do_not_move() -> None:
    w = load(STEP)
    trace = w.forward()
    assert grad(trace, "E", None)[2:] == ((0, 0, 0), (0, 0, 0))  # "is" and "calm"
    assert trace.value("new.E", None, None)[2:] == w.params.E[2:]  # type: ignore[index]
    assert all(x != 0 for x in grad(trace, "E", None)[0] + grad(trace, "E", None)[1])


def test_worked_example_loss_decreases_after_the_step_proven() -> None:
    w = load(STEP)
    trace = w.forward()
    change = TR.loss_change(w.config, w.params, w.inputs, trace)
    assert sign(change) == -1
    # the proof is about the right number: the float reference on the new weights agrees
    after = TR.loss_after_step(w.config, w.params, w.inputs, trace)
    new = {s.key: s.value for s in trace if s.name.startswith("new.")}
    moved = TR.updated_params(w.params, new)
    assert abs(to_float(after) - reference_loss(w.config, moved, w.inputs)) <= 1e-12


def test_a_step_uphill_makes_the_loss_worse_and_the_proof_says_so() -> None:
    # A negative learning rate climbs the gradient: the same proof must now give +1.
    w = load(STEP)
    config = replace(w.config, learning_rate=R(-1, 10))
    trace = forward(config, w.params, w.inputs)
    assert sign(TR.loss_change(config, w.params, w.inputs, trace)) == 1


def test_unsimplified_backend_is_exact() -> None:
    # The same values as the simplifying backend, only written out: evaluating the written
    # sums and products (sympy's doit) gives the very same expressions up to the softmax ...
    w = load("cat")
    plain = w.forward()
    unsimplified = forward(w.config, w.params, w.inputs, TR.UNSIMPLIFIED)
    for name in ("x", "q", "k", "scores", "scale", "scaled_scores", "exp_scores", "exp_sum",
                 "weights"):
        a, b = plain.value(name), unsimplified.value(name)
        assert tuple(tuple(x.doit() for x in r) for r in b) == a
    # ... and where the simplifying backend cancels (the cat's z is exactly [1, 1]), the
    # unsimplified sum is proven equal to it
    z = unsimplified.value("z")[1]
    assert plain.value("z")[1] == (1, 1)
    assert all(same(x.doit(), Z(1)) for x in z)


def test_loss_of_needs_a_target_and_a_head() -> None:
    w = load("cat")
    with pytest.raises(ValueError, match="target"):
        TR.loss_of(w.config, w.params, w.inputs, EXACT)
    with pytest.raises(ValueError, match="vocabulary head"):
        TR.loss_of(w.config, w.params, replace(w.inputs, target=0), EXACT)


# --- random models: exact gradients against finite differences ---------------------------------


@st.composite
def trainable_models(draw: st.DrawFn) -> Model:
    """One layer, 1–3 tokens, width 1–3, with a vocabulary head and a target; every option
    of the forward pass drawn (norms, activations, masks, scales, softmax, biases, gamma and
    beta, embeddings with learned positions or given hidden states, tied embeddings, a
    final norm, the temperature)."""
    config = draw(configs(draw(st.integers(1, 2))))
    n = draw(st.integers(1, 2 if config.norm != "none" else 3))
    d = draw(st.integers(1, 3))
    dk, dv, d_ff = (draw(st.integers(1, 2)) for _ in range(3))
    if d == 1 or config.norm != "none":
        config = replace(config, norm_eps=EPS)
    lp = draw(layer_params(d, d, config.heads, dk, dv, d_ff, config.norm))
    given: dict[Any, Any] = {}
    vocab: tuple[str, ...] = tuple(f"w{i}" for i in range(draw(st.integers(1, 4))))
    E = P = None
    if draw(st.booleans()):
        E = draw(matrices(len(vocab), d, rationals(2)))
        tokens = tuple(draw(st.lists(st.sampled_from(vocab), min_size=n, max_size=n)))
        if draw(st.booleans()):
            config = replace(config, positional="learned")
            P = draw(matrices(n + draw(st.integers(0, 1)), d, rationals(2)))
    else:
        tokens = tuple(f"t{i}" for i in range(n))
        given[("x", 0, None)] = draw(matrices(n, d, rationals(3)))
    head: dict[str, Any] = {}
    if E is not None and draw(st.booleans()):
        config = replace(config, tie_embeddings=True)
    else:
        head["W_U"] = draw(matrices(d, len(vocab), rationals(2)))
        if draw(st.booleans()):
            head["b_U"] = tuple(draw(matrices(1, len(vocab), rationals(2)))[0])
    if config.norm == "none" and n == 1 and draw(st.booleans()):
        config = replace(config, final_norm=True, norm_eps=EPS)
        head["gamma_f"] = tuple(draw(matrices(1, d, rationals(2)))[0])
    config = replace(config, temperature=draw(st.sampled_from([Z(1), R(1, 2), Z(2)])))
    inputs = Inputs(tokens=tokens, given=given, vocab=vocab if E is not None else (),
                    target=draw(st.integers(0, len(vocab) - 1)))
    return Model(config, Params(layers=(lp,), E=E, P=P, **head), inputs)


def well_conditioned(m: Model) -> bool:
    """Finite differences need a smooth neighbourhood: no ReLU input within 1e-3 of its kink
    and no layer-norm variance (plus eps) below 1e-2 (the curvature grows like σ⁻³)."""
    ref = reference_forward(*m.args)
    for key, value in ref.items():
        if key[0] == "ffn_pre" and m.config.activation == "relu":
            if any(abs(x) < 1e-3 for row in value for x in row):
                return False
        if key[0].endswith("_var") and any(r[0] + to_float(m.config.norm_eps) < 1e-2 for r in value):
            return False
    return True


@budget(8)
@given(trainable_models())
def test_random_models_gradients_match_finite_differences(m: Model) -> None:
    trace = exact_trace(m)  # rejects a model the engine refuses or takes too long over
    if not well_conditioned(m):
        reject()
    check_against_finite_differences(*m.args, trace)
    if ("x", 0, None) in m.inputs.given:  # the gradient of a node, by nudging the given x
        x = m.inputs.given[("x", 0, None)]
        gx = trace.value("grad.x", 0, None)
        for i, row in enumerate(x):
            for j, _v in enumerate(row):
                def loss(delta: float, i: int = i, j: int = j) -> float:
                    moved = tuple(tuple(to_float(a) + (delta if (r, c) == (i, j) else 0.0)
                                        for c, a in enumerate(rw)) for r, rw in enumerate(x))
                    given = {**m.inputs.given, ("x", 0, None): moved}
                    return reference_loss(m.config, m.params, replace(m.inputs, given=given))
                fd = (loss(FD_H) - loss(-FD_H)) / (2 * FD_H)
                g = to_float(gx[i][j])
                assert abs(fd - g) <= FD_REL * max(1.0, abs(g)), (i, j, g, fd)


# --- bad input --------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(argv)
    return status, capsys.readouterr().err


def bad_file(tmp_path: Path, model: str, target: str) -> str:
    text = STEP.read_text()
    text = text.replace('learning_rate = "1/2"', model).replace('target = "is"', target)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("model", "target", "key", "words"), [
    ('learning_rate = "fast"', 'target = "is"', "model.learning_rate", ""),
    ('learning_rate = "1/2"', 'target = "was"', "input.target", "outside the vocabulary"),
    ('learning_rate = "1/2"', "target = 9", "input.target", "outside the vocabulary"),
])
def test_bad_training_input_exits_2_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, target: str, key: str,
        words: str) -> None:
    status, err = run(["walkthrough", bad_file(tmp_path, model, target)], capsys)
    assert status == 2
    assert "bad.toml" in err and key in err and words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_walkthrough_prints_the_step(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["walkthrough", str(STEP), "--format", "json"])
    out = capsys.readouterr().out
    assert status == 0
    steps = {(s["name"], s["layer"]): s for s in json.loads(out)["steps"]}
    assert steps[("grad.logits", None)]["approx"][0] == ["0", "0", "0", "0"]
    assert steps[("loss", None)]["approx"] == [["1.72656"]]
    assert steps[("new.W_U", None)]["shape"] == [3, 4]
