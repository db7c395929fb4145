"""The exact oracle (exacttransformer.testing) against a hand-written numpy transformer block.

numpy is not a dependency of the library: it is in the ``[test]`` extra, and these tests skip
cleanly without it.  The implementation below is written from SPEC §3 in numpy float64; the
five ``BUGS`` are the typical mistakes the oracle must catch, each at the node named in
``CAUGHT_AT``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from exacttransformer.io.files import loads
from exacttransformer.testing import ArrayModel, assert_matches, compare, models

np = pytest.importorskip("numpy")

BUGS = ("scale_by_d_model", "no_mask", "softmax_over_queries", "unbiased_variance",
        "post_norm_residual_from_before_the_norm")
CAUGHT_AT = {"scale_by_d_model": "scaled_scores", "no_mask": "exp_scores",
             "softmax_over_queries": "weights", "unbiased_variance": "ln1_var",
             "post_norm_residual_from_before_the_norm": "resid_post"}


def layer_norm(x: Any, eps: float, gamma: Any, beta: Any, bug: str | None,
               prefix: str, out: dict[str, Any]) -> Any:
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True, ddof=1 if bug == "unbiased_variance" and x.shape[-1] > 1
                else 0)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    out[f"{prefix}_mean"], out[f"{prefix}_var"], out[prefix] = mean, var, y
    return y


def linear(x: Any, w: Any, b: Any) -> Any:
    return x @ w if b is None else x @ w + b


ACTIVATIONS = {
    "relu": lambda h: np.maximum(h, 0.0),
    "gelu": lambda h: 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0))),
    "gelu_tanh": lambda h: 0.5 * h * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3))),
    "silu": lambda h: h / (1.0 + np.exp(-h)),
    "none": lambda h: h,
}


def attention(m: ArrayModel, L: int, x: Any, bug: str | None, out: dict[str, Any]) -> Any:
    w = m.layers[L]
    kv = m.x_kv if m.x_kv is not None else x
    H = m.heads
    q, k, v = (linear(src, w[f"W_{n}"], w[f"b_{n}"]) for n, src in (("Q", x), ("K", kv), ("V", kv)))
    dk, dv = q.shape[1] // H, v.shape[1] // H
    d_model = x.shape[1]
    if m.config.scale == "sqrt_dk":
        scale = 1 / math.sqrt(d_model if bug == "scale_by_d_model" else dk)
    else:
        scale = m.scale
    parts = {name: [] for name in ("q", "k", "v", "scores", "scaled_scores", "exp_scores",
                                   "weights", "z")}
    for h in range(H):
        qh, kh, vh = q[:, h * dk:(h + 1) * dk], k[:, h * dk:(h + 1) * dk], v[:, h * dv:(h + 1) * dv]
        s = qh @ kh.T
        t = s * scale
        n, mm = t.shape
        allowed = np.ones((n, mm), dtype=bool)
        if m.causal and bug != "no_mask":
            allowed = np.arange(mm)[None, :] <= np.arange(n)[:, None] + (mm - n)
        shifted = t - np.where(allowed, t, -np.inf).max(axis=1, keepdims=True) \
            if m.config.softmax == "stable" else t
        e = np.where(allowed, np.exp(shifted), 0.0)
        axis = 0 if bug == "softmax_over_queries" else 1
        wts = e / e.sum(axis=axis, keepdims=True)
        z = wts @ vh
        for name, val in zip(parts, (qh, kh, vh, s, t, e, wts, z), strict=True):
            parts[name].append(val)
    for name, vals in parts.items():
        out[name] = np.stack(vals)
    concat = np.concatenate(parts["z"], axis=1)
    return linear(concat, w["W_O"], w["b_O"])


def block(m: ArrayModel, bug: str | None = None) -> dict[str, Any]:
    """One or more blocks and the vocabulary head, from ``m.x``; every node keyed by layer."""
    results: dict[Any, Any] = {}
    x = m.x
    norm = m.config.norm
    for L, w in enumerate(m.layers):
        out: dict[str, Any] = {}
        a_in = layer_norm(x, m.eps, w["gamma1"], w["beta1"], bug, "ln1", out) if norm == "pre" else x
        attn_out = attention(m, L, a_in, bug, out)
        resid_mid = x + attn_out
        stream = resid_mid
        if norm == "post":
            stream = layer_norm(resid_mid, m.eps, w["gamma1"], w["beta1"], bug, "ln1", out)
            ffn_in = stream
        elif norm == "pre":
            ffn_in = layer_norm(resid_mid, m.eps, w["gamma2"], w["beta2"], bug, "ln2", out)
        else:
            ffn_in = resid_mid
        pre = linear(ffn_in, w["W1"], w["b1"])
        act = ACTIVATIONS[m.config.activation](pre)
        ffn_out = linear(act, w["W2"], w["b2"])
        skip = resid_mid if bug == "post_norm_residual_from_before_the_norm" else stream
        resid_post = skip + ffn_out
        x = layer_norm(resid_post, m.eps, w["gamma2"], w["beta2"], bug, "ln2", out) \
            if norm == "post" else resid_post
        out.update(attn_out=attn_out, resid_mid=resid_mid, ffn_pre=pre, ffn_act=act,
                   ffn_out=ffn_out, resid_post=resid_post, out=x)
        results.update({(name, L): value for name, value in out.items()})
    head = m.head
    if m.config.final_norm or head["gamma_f"] is not None or head["beta_f"] is not None:
        x = layer_norm(x, m.eps, head["gamma_f"], head["beta_f"], bug, "lnf", results)
    if m.config.tie_embeddings:
        logits = x @ head["E"].T
    elif head["W_U"] is not None:
        logits = linear(x, head["W_U"], head["b_U"])
    else:
        return results
    s = logits / m.temperature
    if m.config.softmax == "stable":
        s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    results.update(logits=logits, probs=e / e.sum(axis=1, keepdims=True))
    return results


# --- a correct implementation passes ----------------------------------------------------------

NO_ROPE = {"positional": ["none", "sinusoidal", "sinusoidal_guide", "learned"]}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(models(tokens=(1, 3), d_model=(1, 3), heads=(1, 2), d_head=(1, 2), d_ff=(1, 2),
              layers=(1, 1), vocab=(1, 3), options=NO_ROPE))
def test_a_correct_implementation_passes(walk: Any) -> None:
    trace = walk.forward(engine="structured")
    report = compare(walk, block, trace=trace)
    assert report.ok, report.message()
    assert len(report.compared) >= 10


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(models(tokens=(1, 2), d_model=(1, 2), heads=(1, 1), d_head=(1, 2), d_ff=(1, 2),
              layers=(2, 2), vocab=(1, 2), options={**NO_ROPE, "norm": ["none", "pre"]}))
def test_a_correct_implementation_passes_on_two_layers(walk: Any) -> None:
    assert_matches(walk, block, trace=walk.forward(engine="structured"))


def float32_block(m: ArrayModel) -> dict[str, Any]:
    return {k: v for k, v in block(m).items()}


# A plain softmax of logits beyond 88 overflows float32 (the oracle rightly reports the NaN),
# so the float32 implementation is run on stable softmaxes.
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(models(tokens=(1, 3), d_model=(2, 3), heads=(1, 2), d_head=(1, 2), d_ff=(1, 2),
              layers=(1, 1), options={**NO_ROPE, "activation": ["relu", "none", "silu"],
                                      "softmax": ["stable"]}))
def test_a_correct_float32_implementation_passes(walk: Any) -> None:
    report = compare(walk, float32_block, dtype="float32", trace=walk.forward(engine="structured"))
    assert report.ok, report.message()


# --- five typical bugs are caught and named by their node --------------------------------------

BUGGY = """
title = "one post-norm block: 3 tokens, 2 heads of width 2, d_model 4, causal mask"
[model]
heads = 2
mask = "causal"
norm = "post"
norm_eps = "1e-5"
[input]
X = [[1, 0, 2, -1], [0, 1, -1, 2], [2, 1, 0, 1]]
[weights]
W_Q = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
W_K = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]]
W_V = [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]]
W_O = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
W1 = [[1, -1], [0, 1], [1, 0], [-1, 1]]
W2 = [[1, 0, -1, 0], [0, 1, 0, -1]]
"""
PRE_NORM = BUGGY.replace('norm = "post"', 'norm = "pre"')


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_is_caught_at_its_node(bug: str) -> None:
    text = PRE_NORM if bug == "unbiased_variance" else BUGGY
    walk = loads(text)
    assert compare(walk, block).ok  # the same model without the bug passes
    report = compare(walk, lambda m: block(m, bug))
    assert not report.ok
    first = report.first
    assert first is not None and first.step.name == CAUGHT_AT[bug], report.message()
    message = report.message()
    assert f"node {first.step.label()} disagrees" in message
    assert "yours:" in message and "exact:" in message


def test_failure_message_shows_both_numbers() -> None:
    walk = loads(BUGGY)
    with pytest.raises(AssertionError) as info:
        assert_matches(walk, lambda m: block(m, "scale_by_d_model"))
    text = str(info.value)
    assert text.startswith("node scaled_scores[layer 0, head 0] disagrees with its exact value "
                           "at entry [0, 0]:")
    # scores[0,0] = q·k = 2 (q = [1, 2], k = [1, 0]... as computed exactly), scaled by 1/sqrt(2)
    exact = loads(BUGGY).forward().value("scaled_scores", 0, 0)[0][0]
    from exacttransformer.numbers import to_sig

    assert f"exact: {to_sig(exact, 12)}" in text
    assert "yours: " in text and "(float64)" in text
    assert "agreeing before it: q[layer 0, head 0]" in text


def test_wrong_shape_is_reported() -> None:
    walk = loads(BUGGY)
    report = compare(walk, lambda m: {"ln1_mean": np.zeros((2, 2))})
    assert not report.ok and "shape 2×2, the node is 3×1" in report.message()


def test_unknown_node_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ValueError, match="did you mean 'weights'"):
        compare(loads(BUGGY), lambda m: {"wieghts": np.zeros((3, 3))})


# --- the worked example -----------------------------------------------------------------------

def test_worked_example_runs_and_its_docstring_shows_the_real_message() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "worked_examples" / "oracle_numpy_attention.py"
    spec = importlib.util.spec_from_file_location("oracle_numpy_attention", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.test_attention_matches_the_exact_values()
    example.test_attention_in_float32_matches_within_float32_tolerance()
    example.test_scaling_by_d_model_is_caught_at_scaled_scores()
    message = compare(example.MODEL, example.attention_scaled_by_d_model).message()
    shown = "\n".join(line.strip() for line in (example.__doc__ or "").splitlines())
    assert all(line.strip() in shown for line in message.splitlines())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_torch_tensors_are_accepted(dtype: str) -> None:
    torch = pytest.importorskip("torch")

    def impl(m: ArrayModel) -> dict[str, Any]:
        w = m.layers[0]
        q, k = m.x @ w["W_Q"], m.x @ w["W_K"]
        dk = q.shape[1] // m.heads
        return {("scores", 0, 0): q[:, :dk] @ k[:, :dk].T, "q": torch.stack(
            [q[:, h * dk:(h + 1) * dk] for h in range(m.heads)])}

    report = compare(loads(BUGGY), impl, dtype=dtype, array="torch")
    assert report.ok, report.message()
    assert [s.label() for s in report.compared] == [
        "q[layer 0, head 0]", "scores[layer 0, head 0]", "q[layer 0, head 1]"]  # trace order
