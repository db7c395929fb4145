"""The exact engine against PyTorch's own layers (float64), as micrograd checks its engine.

The model is rebuilt from torch operations (``F.scaled_dot_product_attention``,
``F.layer_norm``, ``F.gelu``, ``F.silu``, ``F.relu``) with the parameters converted to float64
tensors, and every node both compute is compared.  Skipped when torch is not installed.

Bound: ``|exact - torch| <= 1e-9 * max(1, largest |exact| in the node)``, as in
``test_properties.REL`` and for the same reason (float64 rounding, ≤ a few hundred operations
per node, modest amplification by exp and by the layer-norm division); torch's kernels sum in
a different order from :func:`math.fsum` but are still float64, so the differences stay
around 1e-14.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from strategies import Model, budget, exact_trace, models

from exacttransformer.exact.printing import to_float
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.trace import Key, Trace
from exacttransformer.io.files import load

torch = pytest.importorskip("torch")
F = torch.nn.functional

REL = 1e-9


def t(m: Sequence[Sequence[Any]]) -> Any:
    """An exact matrix as a float64 tensor (each entry correctly rounded)."""
    return torch.tensor([[to_float(x) for x in row] for row in m], dtype=torch.float64)


def tv(v: Sequence[Any] | None) -> Any:
    return None if v is None else torch.tensor([to_float(x) for x in v], dtype=torch.float64)


ACT: dict[str, Callable[[Any], Any]] = {
    "relu": F.relu,
    "gelu": lambda h: F.gelu(h, approximate="none"),
    "gelu_tanh": lambda h: F.gelu(h, approximate="tanh"),
    "silu": F.silu,
    "none": lambda h: h,
}


def linear(x: Any, w: Any, b: Any) -> Any:
    return x @ w if b is None else x @ w + b


def layer_norm(x: Any, eps: float, gamma: Any, beta: Any) -> Any:
    return F.layer_norm(x, (x.shape[-1],), weight=gamma, bias=beta, eps=eps)


def positions(config: ModelConfig, params: Params, n: int, d: int) -> Any | None:
    if config.positional == "learned" and params.P is not None:
        return t(params.P)[:n]
    if config.positional not in ("sinusoidal", "sinusoidal_guide"):
        return None
    j = torch.arange(d, dtype=torch.float64)
    pair = 2 * torch.div(j, 2, rounding_mode="floor")
    expo = (j if config.positional == "sinusoidal_guide" else pair) / d
    angle = torch.arange(n, dtype=torch.float64)[:, None] / to_float(config.positional_base) ** expo
    return torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))


def torch_forward(config: ModelConfig, params: Params, inputs: Inputs) -> dict[Key, Any]:
    """The forward pass in torch: attention by ``scaled_dot_product_attention`` (with the
    weights recomputed by ``torch.softmax`` for comparison), norms by ``F.layer_norm``, the
    vocabulary head by a matmul and ``torch.softmax`` at the temperature."""
    out: dict[Key, Any] = {}
    given = inputs.given
    if ("x", 0, None) in given:
        x = t(given[("x", 0, None)])
    else:
        assert params.E is not None
        ids = torch.tensor([inputs.vocab.index(tok) for tok in inputs.tokens])
        x = t(params.E)[ids]
        pos = positions(config, params, len(inputs.tokens), x.shape[1])
        if pos is not None:
            x = x + pos
    kv = t(given[("x_kv", None, None)]) if ("x_kv", None, None) in given else None
    eps = to_float(config.norm_eps)
    for layer, lp in enumerate(params.layers):
        out[("x", layer, None)] = x
        attn_in = x
        if config.norm == "pre":
            attn_in = out[("ln1", layer, None)] = layer_norm(x, eps, tv(lp.gamma1), tv(lp.beta1))
        src = attn_in if kv is None else kv
        assert lp.W_Q is not None and lp.W_K is not None and lp.W_V is not None
        q_all = linear(attn_in, t(lp.W_Q), tv(lp.b_Q))
        k_all = linear(src, t(lp.W_K), tv(lp.b_K))
        v_all = linear(src, t(lp.W_V), tv(lp.b_V))
        h = config.heads
        n, m = q_all.shape[0], k_all.shape[0]
        dk, dv = q_all.shape[1] // h, v_all.shape[1] // h
        # (heads, n, d_head): head i owns columns i·d_head … (i+1)·d_head - 1
        q = q_all.reshape(n, h, dk).transpose(0, 1)
        k = k_all.reshape(m, h, dk).transpose(0, 1)
        v = v_all.reshape(m, h, dv).transpose(0, 1)
        scale = (1 / math.sqrt(dk) if config.scale == "sqrt_dk"
                 else 1.0 if config.scale == "none" else to_float(config.scale))
        # Our causal mask is aligned bottom-right (query i reads keys j <= i + (m - n)), so it
        # is passed explicitly: torch's is_causal=True aligns top-left when n != m.
        allowed = torch.ones(n, m, dtype=torch.bool)
        if config.mask == "causal":
            allowed = torch.tril(allowed, diagonal=m - n)
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
        scores = (q @ k.transpose(1, 2)) * scale
        weights = torch.softmax(scores.masked_fill(~allowed, -math.inf), dim=-1)
        for head in range(h):
            out[("q", layer, head)] = q[head]
            out[("weights", layer, head)] = weights[head]
            out[("z", layer, head)] = z[head]
        concat = z.transpose(0, 1).reshape(n, h * dv)
        out[("concat", layer, None)] = concat
        attn = out[("attn_out", layer, None)] = linear(concat, t(lp.W_O), tv(lp.b_O))
        resid_mid = out[("resid_mid", layer, None)] = x + attn
        if config.norm == "post":
            stream = out[("ln1", layer, None)] = layer_norm(resid_mid, eps, tv(lp.gamma1),
                                                             tv(lp.beta1))
            ffn_in = stream
        elif config.norm == "pre":
            stream = resid_mid
            ffn_in = out[("ln2", layer, None)] = layer_norm(resid_mid, eps, tv(lp.gamma2),
                                                             tv(lp.beta2))
        else:
            stream = ffn_in = resid_mid
        pre = out[("ffn_pre", layer, None)] = linear(ffn_in, t(lp.W1), tv(lp.b1))
        act = out[("ffn_act", layer, None)] = ACT[config.activation](pre)
        ffn = out[("ffn_out", layer, None)] = linear(act, t(lp.W2), tv(lp.b2))
        resid_post = out[("resid_post", layer, None)] = stream + ffn
        if config.norm == "post":
            x = out[("ln2", layer, None)] = layer_norm(resid_post, eps, tv(lp.gamma2),
                                                        tv(lp.beta2))
        else:
            x = resid_post
        out[("out", layer, None)] = x
    has_norm = config.final_norm or params.gamma_f is not None or params.beta_f is not None
    if has_norm:
        x = out[("lnf", None, None)] = layer_norm(x, eps, tv(params.gamma_f), tv(params.beta_f))
    if config.tie_embeddings and params.E is not None:
        logits = x @ t(params.E).T
    elif params.W_U is not None:
        logits = linear(x, t(params.W_U), tv(params.b_U))
    else:
        return out
    out[("logits", None, None)] = logits
    out[("probs", None, None)] = torch.softmax(logits / to_float(config.temperature), dim=-1)
    return out


def assert_agrees(trace: Trace, ours: dict[Key, Any]) -> None:
    for key, value in ours.items():
        exact = [[to_float(x) for x in row] for row in trace.value(*key)]
        got = value.tolist()
        scale = max([1.0] + [abs(x) for row in exact for x in row])
        assert len(got) == len(exact) and len(got[0]) == len(exact[0]), key
        for i, (er, gr) in enumerate(zip(exact, got, strict=True)):
            for j, (e, g) in enumerate(zip(er, gr, strict=True)):
                assert abs(e - g) <= REL * scale, f"{key}[{i}, {j}]: exact {e!r}, torch {g!r}"


def test_the_cat_walkthrough_through_torch() -> None:
    w = load("cat")
    ours = torch_forward(w.config, w.params, w.inputs)
    assert ours[("out", 0, None)][1].tolist() == [7.0, 10.0, 5.0, 6.0]
    assert_agrees(w.forward(), ours)


def test_a_pre_norm_gelu_block_with_a_bottom_right_causal_mask() -> None:
    """Two queries over three keys (a cache of one): the first query reads keys 0 and 1."""
    from sympy import Integer as I
    from sympy import Rational as R

    eye = ((I(1), I(0)), (I(0), I(1)))
    params = Params(layers=(LayerParams(W_Q=eye, W_K=eye, W_V=eye, W_O=eye, W1=eye, W2=eye,
                                        gamma1=(R(1, 2), I(2)), beta2=(I(0), R(-1, 4))),))
    config = ModelConfig(mask="causal", norm="pre", activation="gelu", norm_eps=R(1, 100000))
    x = ((I(1), I(2)), (I(3), I(-1)))
    x_kv = ((I(0), I(1)), (I(1), I(1)), (I(2), I(0)))
    inputs = Inputs(given={("x", 0, None): x, ("x_kv", None, None): x_kv})
    from exacttransformer.graph.forward import forward

    trace = forward(config, params, inputs)
    ours = torch_forward(config, params, inputs)
    assert ours[("weights", 0, 0)][0, 2].item() == 0.0
    assert trace.value("weights", 0, 0)[0][2] == 0
    assert_agrees(trace, ours)


@budget(25)
@given(models())
def test_random_models_agree_with_torch(m: Model) -> None:
    assert_agrees(exact_trace(m), torch_forward(*m.args))
