"""One training step against PyTorch's autograd: the exact loss and every exact gradient.

The model is rebuilt in torch (float64) by formula from the walkthrough's own numbers: rows of
``E``, pre- or post-norm blocks with a causal mask, the feed-forward, a final layer norm, the
unembedding and ``F.cross_entropy`` of the target after the last token.  ``loss.backward()``
then gives the gradient of every weight, which must agree with the certified float of the
exact ``grad.<param>`` (the float side is the only one with a tolerance).  Skipped cleanly
without torch; CI installs it.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

import exacttransformer as et
from exacttransformer.numbers import to_float

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
