"""The nodes of tests/test_printed_steps.py against PyTorch, where torch has the operation.

Bound: |exact − torch| <= 1e-9 · max(1, |exact|): a handful of float64 operations on numbers
of order 1 (as in tests/test_torch_journey.py); the exact side is a certified float.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_torch_journey import torch_loss, weights_of

import exacttransformer as et
from exacttransformer.numbers import to_float

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).parent.parent / "worked_examples"


def close(exact: object, got: object) -> bool:
    want = torch.tensor([[to_float(x) for x in row] for row in exact], dtype=torch.float64)  # type: ignore[attr-defined]
    return bool(torch.allclose(want, got.reshape(want.shape), rtol=1e-9, atol=1e-9))  # type: ignore[attr-defined]


def test_delta_is_the_change_torch_sgd_makes() -> None:
    text = (EXAMPLES / "journey_training_step.toml").read_text()
    text += '\n[[claims]]\nname = "delta.W1"\nvalue = "0"\n[[claims]]\nname = "delta.E"\nvalue = "0"\n'
    walk = et.loads(text, "journey.toml")
    trace = walk.forward()
    w = weights_of(walk)
    before = {k: t.detach().clone() for k, t in w.items()}
    optimizer = torch.optim.SGD(list(w.values()), lr=to_float(walk.config.learning_rate))
    torch_loss(walk, w).backward()
    optimizer.step()
    for name, layer in (("W1", 0), ("E", None)):
        change = w[(name, layer)].detach() - before[(name, layer)]
        assert close(trace.value(f"delta.{name}", layer, None), change), name


def test_products_before_the_bias_are_torch_linear_without_bias() -> None:
    from test_printed_steps import LINEAR_NODES, products_asked

    walk = et.loads(products_asked(), "t.toml")
    trace = walk.forward()
    for name in LINEAR_NODES:
        prod = next(s for s in trace if s.name == f"{name}_product")
        (src_name, x), (w_name, w) = prod.operands
        x_t = torch.tensor([[to_float(v) for v in r] for r in x], dtype=torch.float64)
        w_t = torch.tensor([[to_float(v) for v in r] for r in w], dtype=torch.float64)
        assert close(prod.value, torch.nn.functional.linear(x_t, w_t.T)), name


def test_statistics_are_torch_sum_mean_var_std() -> None:
    from test_printed_steps import NORM, claim

    text = NORM + "".join(claim(f"{s}({n})", "0") for s in ("rowsum", "mean", "var", "std")
                          for n in ("x", "ln1"))
    trace = et.loads(text, "t.toml").forward()
    for node in ("x", "ln1"):
        m = trace.value(node, 0)
        t = torch.tensor([[to_float(v) for v in r] for r in m], dtype=torch.float64)
        want = {"rowsum": t.sum(dim=-1), "mean": t.mean(dim=-1),
                "var": t.var(dim=-1, unbiased=False), "std": t.std(dim=-1, unbiased=False)}
        for stat, value in want.items():
            assert close(trace.value(f"{stat}({node})", 0), value), (stat, node)


def leaf(m: object) -> object:
    rows = [[to_float(v) for v in r] for r in m]  # type: ignore[attr-defined]
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


def test_sum_normalization_gradients_agree_with_autograd() -> None:
    from test_printed_steps import SUM

    walk = et.loads(SUM, "t.toml")
    trace = walk.forward()
    lp = walk.params.layers[0]
    w = {n: leaf(getattr(lp, n)) for n in ("W_Q", "W_K", "W_V", "W_O", "W1", "W2")}
    w["W_U"], w["E"] = leaf(walk.params.W_U), leaf(walk.params.E)
    x = w["E"][torch.tensor([0, 1, 2])]
    s = (x @ w["W_Q"]) @ (x @ w["W_K"]).T / 2 ** 0.5
    allowed = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    s = torch.where(allowed, s, torch.zeros_like(s))
    weights = s / s.sum(dim=-1, keepdim=True)  # "sum": no exponential
    h = x + weights @ (x @ w["W_V"]) @ w["W_O"]
    out = h + torch.relu(h @ w["W1"]) @ w["W2"]
    logits = out @ w["W_U"]
    probs = logits / logits.sum(dim=-1, keepdim=True)
    loss = -torch.log(probs[-1, 1])
    assert abs(loss.item() - to_float(trace.value("loss")[0][0])) <= 1e-12
    loss.backward()
    for name, t in w.items():
        layer = None if name in ("W_U", "E") else 0
        assert close(trace.value(f"grad.{name}", layer, None), t.grad), name


def test_contributions_are_torch_broadcast_products() -> None:
    from test_printed_steps import BIASED, contrib_claim

    trace = et.loads(BIASED + contrib_claim(["0", "0"], "a", "b"), "t.toml").forward()
    w = torch.tensor([[to_float(x) for x in r] for r in trace.value("weights", 0, 0)],
                     dtype=torch.float64)
    v = torch.tensor([[to_float(x) for x in r] for r in trace.value("v", 0, 0)],
                     dtype=torch.float64)
    per_key = w.unsqueeze(-1) * v.unsqueeze(0)  # (n, m, d_head)
    assert close(trace.value("contrib", 0, 0), per_key.reshape(w.shape[0], -1))
    assert close(trace.value("z", 0, 0), per_key.sum(dim=1))


def test_binary_head_agrees_with_torch_bce_and_autograd() -> None:
    from test_printed_steps import BINARY

    walk = et.loads(BINARY, "t.toml")
    trace = walk.forward()
    final = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    w = torch.tensor([[0.5], [-0.5]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)
    p = torch.sigmoid(final @ w + b)
    loss = torch.nn.functional.binary_cross_entropy(p, y)
    assert close(trace.value("sigmoid"), p)
    assert close(trace.value("bce"), loss.reshape(1, 1))
    loss.backward()
    assert close(trace.value("grad.W_U", None, None), w.grad)
    assert close(trace.value("grad.b_U", None, None), b.grad)


def test_separate_query_key_value_inputs_agree_with_torch_attention() -> None:
    from test_printed_steps import DIRECT, QKV

    trace = et.loads(QKV, "t.toml").forward()

    def t(m: object) -> object:
        return torch.tensor([[to_float(x) for x in r] for r in m], dtype=torch.float64)  # type: ignore[attr-defined]

    q, k, v = (t(trace.value(n, 0, 0)) for n in ("q", "k", "v"))
    z = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
    assert close(trace.value("z", 0, 0), z)
    # The feed-forward reads the attention output directly: relu(concat W1) W2.
    direct = et.loads(DIRECT, "t.toml").forward()
    concat = t(direct.value("concat", 0))
    w1 = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    w2 = torch.ones(3, 1, dtype=torch.float64)
    assert close(direct.value("out", 0), torch.relu(concat @ w1) @ w2)
