"""Testing a hand-written numpy attention against the exact oracle (exacttransformer.testing).

Run it with ``python -m pytest worked_examples/oracle_numpy_attention.py`` (needs numpy), or as
a script to print the failure message of the wrong variant::

    python worked_examples/oracle_numpy_attention.py

``attention`` is scaled dot-product attention with two heads, written the usual way;
``attention_scaled_by_d_model`` makes a classic mistake, dividing the scores by
``sqrt(d_model)`` instead of ``sqrt(d_head)``.  The oracle names the first node that disagrees
with its exact value, and prints both numbers:

    node scaled_scores[layer 0, head 0] disagrees with its exact value at entry [0, 0]:
      yours: 1.5 (float64)
      exact: 2.12132034356 (= 3*sqrt(2)/2)
      |difference| = 0.621 > tolerance 2.01e-14 (32 · u · max|terms| · condition 1, u = 2^-53)
    agreeing before it: q[layer 0, head 0], k[layer 0, head 0], scores[layer 0, head 0]

(``q``, ``k`` and ``scores`` of head 0 agree: the mistake is the scaling, nothing before it.)
"""

from __future__ import annotations

import math

import pytest

from exacttransformer.testing import ArrayModel, assert_matches, compare

np = pytest.importorskip("numpy")

MODEL = """
title = "two heads of width 2 over three tokens, causal"
[model]
heads = 2
mask  = "causal"
[input]
X = [[1, 0, 1, 0], [0, 2, 0, 1], [1, 1, 1, 1]]
[weights]
W_Q = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
W_K = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]]
W_V = [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]]
W_O = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
"""


def attention(m: ArrayModel, d_scale: int | None = None) -> dict:
    """Multi-head causal attention; returns the nodes to compare, each head stacked first."""
    w = m.layers[0]
    x = m.x                                            # (n, d_model)
    q, k, v = x @ w["W_Q"], x @ w["W_K"], x @ w["W_V"]  # (n, heads·d_head)
    n, heads = x.shape[0], m.heads
    d_head = q.shape[1] // heads
    split = lambda a: a.reshape(n, heads, d_head).transpose(1, 0, 2)  # noqa: E731  (heads, n, d_head)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 2, 1)                  # (heads, n, n)
    scaled = scores / math.sqrt(d_scale or d_head)
    mask = np.tril(np.ones((n, n), dtype=bool))
    e = np.where(mask, np.exp(scaled), 0.0)
    weights = e / e.sum(axis=-1, keepdims=True)
    z = weights @ v                                    # (heads, n, d_head)
    concat = z.transpose(1, 0, 2).reshape(n, heads * d_head)
    return {"q": q, "k": k, "scores": scores, "scaled_scores": scaled, "weights": weights,
            "z": z, "attn_out": concat @ w["W_O"]}


def attention_scaled_by_d_model(m: ArrayModel) -> dict:
    return attention(m, d_scale=m.x.shape[1])


def test_attention_matches_the_exact_values() -> None:
    assert_matches(MODEL, attention)


def test_attention_in_float32_matches_within_float32_tolerance() -> None:
    assert_matches(MODEL, attention, dtype="float32")


def test_scaling_by_d_model_is_caught_at_scaled_scores() -> None:
    with pytest.raises(AssertionError, match=r"node scaled_scores\[layer 0, head 0\] disagrees"):
        assert_matches(MODEL, attention_scaled_by_d_model)


if __name__ == "__main__":
    print(compare(MODEL, attention).message())
    print()
    print(compare(MODEL, attention_scaled_by_d_model).message())
