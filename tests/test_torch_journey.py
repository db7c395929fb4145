"""One training step against PyTorch's autograd: the exact loss and every exact gradient.

The model is rebuilt in torch (float64) by formula from the walkthrough's own numbers: rows of
``E``, pre- or post-norm blocks with a causal mask, the feed-forward, a final layer norm, the
unembedding and ``F.cross_entropy`` of the target after the last token.  ``loss.backward()``
then gives the gradient of every weight, which must agree with the certified float of the
exact ``grad.<param>`` (the float side is the only one with a tolerance).  Then the same on
hypothesis's random one-layer models with every option of the forward pass (the torch model
written by formula, the lookup by ``F.embedding``), and the loss against ``F.cross_entropy``
of the exact logits.  Skipped cleanly without torch; CI installs it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, reject
from strategies import Model, budget, exact_trace
from test_training import MODEL_PARAMS, trainable_models, well_conditioned

import exacttransformer as et
from exacttransformer.exact.printing import to_float
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LAYER_MATRICES, LAYER_VECTORS, Params
from exacttransformer.graph.trace import Trace
from exacttransformer.io.files import load

torch = pytest.importorskip("torch")
F = torch.nn.functional

EXAMPLE = Path(__file__).parent.parent / "worked_examples" / "journey_training_step.toml"
LAYER_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O", "W1", "W2", "b_Q", "b_K", "b_V", "b_O", "b1", "b2",
                 "gamma1", "beta1", "gamma2", "beta2")
MODEL_WEIGHTS = ("E", "W_U", "b_U", "gamma_f", "beta_f")


def tensor(m: Any) -> Any:
    return torch.tensor([[to_float(x) for x in row] for row in m] if isinstance(m[0], tuple)
                        else [to_float(x) for x in m], dtype=torch.float64, requires_grad=True)


def layer_norm(x: Any, gamma: Any, beta: Any, eps: float) -> Any:
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def torch_loss(walk: Any, w: dict[tuple[str, int | None], Any]) -> Any:
    """The loss of the walkthrough's model, by formula, on torch tensors ``w``."""
    cfg = walk.config
    eps = to_float(cfg.norm_eps)
    vocab = list(walk.inputs.vocab)
    ids = [vocab.index(t) for t in walk.inputs.tokens]
    x = w[("E", None)][ids]
    n = len(ids)
    for layer in range(len(walk.params.layers)):
        def g(name: str, layer: int = layer) -> Any:
            return w.get((name, layer))

        a_in = layer_norm(x, g("gamma1"), g("beta1"), eps) if cfg.norm == "pre" else x
        q, k, v = (a_in @ g(n_) + (g(b) if g(b) is not None else 0)
                   for n_, b in (("W_Q", "b_Q"), ("W_K", "b_K"), ("W_V", "b_V")))
        heads = cfg.heads
        dk, dv = q.shape[1] // heads, v.shape[1] // heads
        zs = []
        for h in range(heads):
            qh, kh, vh = q[:, h * dk:(h + 1) * dk], k[:, h * dk:(h + 1) * dk], v[:, h * dv:(h + 1) * dv]
            scores = qh @ kh.T / math.sqrt(dk)
            if cfg.mask == "causal":
                scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1),
                                            float("-inf"))
            zs.append(torch.softmax(scores, dim=-1) @ vh)
        attn = torch.cat(zs, dim=1) @ g("W_O") + (g("b_O") if g("b_O") is not None else 0)
        mid = x + attn
        if cfg.norm == "post":
            mid = layer_norm(mid, g("gamma1"), g("beta1"), eps)
        f_in = layer_norm(mid, g("gamma2"), g("beta2"), eps) if cfg.norm == "pre" else mid
        hidden = f_in @ g("W1") + (g("b1") if g("b1") is not None else 0)
        act = {"relu": torch.relu, "gelu": F.gelu, "none": lambda t: t}[cfg.activation](hidden)
        out = mid + act @ g("W2") + (g("b2") if g("b2") is not None else 0)
        if cfg.norm == "post":
            out = layer_norm(out, g("gamma2"), g("beta2"), eps)
        x = out
    if cfg.final_norm:
        x = layer_norm(x, w.get(("gamma_f", None)), w.get(("beta_f", None)), eps)
    logits = x @ w[("W_U", None)] + (w[("b_U", None)] if ("b_U", None) in w else 0)
    last = logits[-1:] / to_float(cfg.temperature)
    return F.cross_entropy(last, torch.tensor([walk.inputs.target]))


def weights_of(walk: Any) -> dict[tuple[str, int | None], Any]:
    out = {}
    for name in MODEL_WEIGHTS:
        value = getattr(walk.params, name, None)
        if value is not None:
            out[(name, None)] = tensor(value)
    for layer, lp in enumerate(walk.params.layers):
        for name in LAYER_WEIGHTS:
            value = getattr(lp, name)
            if value is not None:
                out[(name, layer)] = tensor(value)
    return out


def compare_with_autograd(walk: Any, engine: str | None = None) -> int:
    trace = walk.forward(engine=engine)
    w = weights_of(walk)
    loss = torch_loss(walk, w)
    assert abs(to_float(trace.value("loss")[0][0]) - loss.item()) <= 1e-12 * max(1.0, loss.item())
    loss.backward()
    compared = 0
    for (name, layer), t in w.items():
        step = trace.find(f"grad.{name}", layer, None)
        assert step is not None, f"no grad.{name} (layer {layer}) in the trace"
        exact = torch.tensor([[to_float(x) for x in row] for row in step.value], dtype=torch.float64)
        got = t.grad.reshape(exact.shape)
        assert torch.allclose(exact, got, rtol=1e-9, atol=1e-12), (name, layer, exact, got)
        compared += exact.numel()
    return compared


def test_the_worked_training_step_agrees_with_autograd() -> None:
    walk = et.load(EXAMPLE)
    assert compare_with_autograd(walk) >= 40


def random_walkthrough(seed: int, norm: str, activation: str) -> Any:
    rng = random.Random(seed)

    def mat(r: int, c: int) -> str:
        return "[" + ", ".join("[" + ", ".join(str(rng.randint(-2, 2)) for _ in range(c)) + "]"
                               for _ in range(r)) + "]"

    d, v = 4, 5
    text = f"""
[model]
heads = 2
mask = "causal"
norm = "{norm}"
norm_eps = "1/4"
final_norm = {"true" if norm != "none" else "false"}
activation = "{activation}"
learning_rate = "1/10"

[input]
vocab = ["a", "b", "c", "d", "e"]
tokens = ["c", "a", "e"]
target = "b"
E = {mat(v, d)}

[weights]
W_Q = {mat(d, 4)}
W_K = {mat(d, 4)}
W_V = {mat(d, 4)}
W_O = {mat(4, d)}
W1 = {mat(d, 3)}
W2 = {mat(3, d)}
W_U = {mat(d, v)}
"""
    return et.loads(text, f"random-{seed}.toml")


@pytest.mark.parametrize("seed,norm,activation", [(1, "none", "relu"), (2, "pre", "relu"),
                                                   (3, "post", "gelu"), (4, "pre", "gelu")])
def test_random_training_steps_agree_with_autograd(seed: int, norm: str, activation: str) -> None:
    """Random small models on the structured engine (sympy trees of their gradients are large)."""
    walk = random_walkthrough(seed, norm, activation)
    assert compare_with_autograd(walk, engine="structured") > 50


# --- every option of the forward pass, on random models (the sympy engine) -----------------
#
# The same check on the random models of tests/test_training.py (one layer; every norm,
# activation, mask, scale, softmax, bias, gamma/beta; embeddings with learned positions,
# tied embeddings, or given hidden states whose gradient grad.x is compared too; a final
# norm; a temperature), the torch model written by formula.
# Bound: |exact − torch| <= 1e-9 · max(1, largest |exact| in the gradient): float64 rounding
# over a few hundred operations, amplified modestly by the layer norms' divisions, stays near
# 1e-14; a wrong rule is off by far more.

REL = 1e-9

ACT = {"relu": F.relu, "gelu": lambda h: F.gelu(h, approximate="none"),
       "gelu_tanh": lambda h: F.gelu(h, approximate="tanh"), "silu": F.silu, "none": lambda h: h}


def leaf(m: Any) -> Any:
    """An exact matrix or vector as a float64 tensor that collects a gradient."""
    rows = [[to_float(x) for x in r] for r in m] if isinstance(m[0], tuple) else [
        to_float(x) for x in m]
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


def norm(x: Any, eps: float, gamma: Any, beta: Any) -> Any:
    return F.layer_norm(x, (x.shape[-1],), weight=gamma, bias=beta, eps=eps)


def linear(x: Any, w: Any, b: Any) -> Any:
    return x @ w if b is None else x @ w + b


def formula_loss(config: ModelConfig, params: Params, inputs: Inputs,
               leaves: dict[tuple[str, int], Any]) -> Any:
    """The cross-entropy of the target after the last token, built from ``leaves``."""
    def p(name: str, layer: int = 0) -> Any:
        return leaves.get((name, layer))

    eps = to_float(config.norm_eps)
    if p("E") is not None:
        ids = torch.tensor([inputs.vocab.index(t) for t in inputs.tokens])
        x = F.embedding(ids, p("E"))  # nn.Embedding's lookup, on the leaf itself
        if p("P") is not None:
            x = x + p("P")[: len(inputs.tokens)]
    else:
        x = p("x")
    n = x.shape[0]
    lp = params.layers[0]
    L = {name: p(name) for name in LAYER_MATRICES + LAYER_VECTORS}
    attn_in = norm(x, eps, L["gamma1"], L["beta1"]) if config.norm == "pre" else x
    heads = config.heads
    dk = len(lp.W_Q[0]) // heads  # type: ignore[index]
    dv = len(lp.W_V[0]) // heads  # type: ignore[index]
    q = linear(attn_in, L["W_Q"], L["b_Q"])
    k = linear(attn_in, L["W_K"], L["b_K"])
    v = linear(attn_in, L["W_V"], L["b_V"])
    if config.scale == "sqrt_dk":
        scale = 1 / dk ** 0.5
    else:
        scale = 1.0 if config.scale == "none" else to_float(config.scale)
    zs = []
    for h in range(heads):
        s = q[:, h * dk:(h + 1) * dk] @ k[:, h * dk:(h + 1) * dk].T * scale
        if config.mask == "causal":
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        zs.append(torch.softmax(s, dim=-1) @ v[:, h * dv:(h + 1) * dv])
    mid = x + linear(torch.cat(zs, dim=1), L["W_O"], L["b_O"])
    if config.norm == "post":
        mid = norm(mid, eps, L["gamma1"], L["beta1"])
    ffn_in = norm(mid, eps, L["gamma2"], L["beta2"]) if config.norm == "pre" else mid
    hidden = ACT[config.activation](linear(ffn_in, L["W1"], L["b1"]))
    out = mid + linear(hidden, L["W2"], L["b2"])
    if config.norm == "post":
        out = norm(out, eps, L["gamma2"], L["beta2"])
    if config.final_norm or p("gamma_f") is not None or p("beta_f") is not None:
        out = norm(out, eps, p("gamma_f"), p("beta_f"))
    logits = out @ p("E").T if config.tie_embeddings else linear(out, p("W_U"), p("b_U"))
    scaled = logits[-1:] / to_float(config.temperature)
    return F.cross_entropy(scaled, torch.tensor([inputs.target]))


def parameter_leaves(params: Params, inputs: Inputs) -> dict[tuple[str, int], Any]:
    leaves: dict[tuple[str, int], Any] = {}
    for name in LAYER_MATRICES + LAYER_VECTORS:
        value = getattr(params.layers[0], name)
        if value is not None:
            leaves[(name, 0)] = leaf(value)
    for name in MODEL_PARAMS:
        value = getattr(params, name)
        if value is not None:
            leaves[(name, 0)] = leaf(value)
    if ("x", 0, None) in inputs.given:
        leaves[("x", 0)] = leaf(inputs.given[("x", 0, None)])
    return leaves


def exact_grad(trace: Trace, name: str) -> list[list[float]] | None:
    key = (f"grad.{name}", None if name in MODEL_PARAMS else 0, None)
    if key not in trace:
        return None
    return [[to_float(v) for v in r] for r in trace.get(*key).value]


def assert_close(exact: Sequence[Sequence[float]], got: Any, what: str) -> None:
    got = got.reshape(len(exact), -1).tolist()
    bound = REL * max([1.0] + [abs(v) for r in exact for v in r])
    for er, gr in zip(exact, got, strict=True):
        for e, g in zip(er, gr, strict=True):
            assert abs(e - g) <= bound, (what, exact, got)


def check_against_autograd(config: ModelConfig, params: Params, inputs: Inputs,
                           trace: Trace) -> list[str]:
    leaves = parameter_leaves(params, inputs)
    loss = formula_loss(config, params, inputs, leaves)
    loss.backward()
    exact_loss = to_float(trace.value("loss", None, None)[0][0])
    assert abs(loss.item() - exact_loss) <= REL * max(1.0, abs(exact_loss))
    checked = []
    for (name, _), tensor in leaves.items():
        exact = exact_grad(trace, name)
        if tensor.grad is None:  # torch saw no path from the loss to this weight
            assert exact is None or all(v == 0 for r in exact for v in r), name
            continue
        if exact is None:  # the engine saw none either: torch's gradient must be 0
            assert torch.count_nonzero(tensor.grad) == 0, name
            continue
        assert_close(exact, tensor.grad, name)
        checked.append(name)
    return checked


def test_worked_example_loss_is_cross_entropy() -> None:
    w = load(EXAMPLE)
    trace = w.forward()
    logits = torch.tensor([[to_float(v) for v in trace.value("logits", None, None)[-1]]],
                          dtype=torch.float64)
    want = F.cross_entropy(logits, torch.tensor([w.inputs.target])).item()
    assert abs(to_float(trace.value("loss", None, None)[0][0]) - want) <= 1e-15 * 4


@budget(6)
@given(trainable_models())
def test_random_models_gradients_agree_with_autograd(m: Model) -> None:
    trace = exact_trace(m)
    if not well_conditioned(m):  # ReLU exactly at its kink: torch and we may pick sides
        reject()
    check_against_autograd(*m.args, trace)
