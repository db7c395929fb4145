"""The float reference on its own: known answers worked out by hand, and named edge cases.

These tests do not use the exact engine, so a mistake common to both would still show here.
Where a value is computed in floats on both sides the bound is stated (``REL``); where the
float result is exact (small integers, halves) it is compared with ``==``.
"""

from __future__ import annotations

import math

import pytest
import sympy
from sympy import Integer as I
from sympy import Rational as R

from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.reference import (
    ACTIVATIONS,
    causal,
    layer_norm,
    reference_forward,
    reference_loss,
)
from exacttransformer.io.files import load

REL = 1e-12
"""Bound for values computed in floats on both sides by a handful of operations: each side is
within a few ulps (2^-52 ≈ 2.2e-16 relative) of the true value, so 1e-12 is loose yet far
below any real mistake."""


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL)


def rows_close(got: list[list[float]], want: list[list[float]]) -> bool:
    return len(got) == len(want) and all(
        len(g) == len(w) and all(close(x, y) for x, y in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )


def cat() -> dict:
    w = load("cat")
    return reference_forward(w.config, w.params, w.inputs)


# --- the seed walkthrough, by hand -------------------------------------------------------------

def test_cat_out_rows() -> None:
    # v is [1, 1] for every token, so z = [1, 1] whatever the weights, attn_out = [1, 1, 1, 1],
    # resid_mid = x + 1; then h = relu(resid_mid W1) and out = resid_mid + h W2:
    #   The   [2,1,2,1] -> h [4,4,3] -> hW2 [7,7,4,4] -> [9, 8, 6, 5]
    #   cat   [1,2,2,1] -> h [3,5,3] -> hW2 [6,8,3,5] -> [7, 10, 5, 6]
    #   slept [1,2,1,2] -> h [2,5,3] -> hW2 [5,8,2,5] -> [6, 10, 3, 7]
    assert rows_close(cat()[("out", 0, None)], [[9, 8, 6, 5], [7, 10, 5, 6], [6, 10, 3, 7]])


def test_cat_integer_steps_are_exact_in_floats() -> None:
    r = cat()
    assert r[("q", 0, 0)][1] == [1.0, 1.0]
    assert r[("k", 0, 0)] == [[2.0, 1.0], [1.0, 1.0], [0.0, 2.0]]
    assert r[("scores", 0, 0)][1] == [3.0, 2.0, 2.0]
    assert r[("resid_mid", 0, None)][1] == [1.0, 2.0, 2.0, 1.0]
    assert r[("ffn_pre", 0, None)][1] == [3.0, 5.0, 3.0]
    assert r[("ffn_out", 0, None)][1] == [6.0, 8.0, 3.0, 5.0]


def test_cat_softmax() -> None:
    r = cat()
    assert close(r[("sqrt_dk", 0, None)][0][0], math.sqrt(2))
    a, b = math.exp(3 / math.sqrt(2)), math.exp(2 / math.sqrt(2))
    assert rows_close([r[("exp_scores", 0, 0)][1]], [[a, b, b]])
    assert close(r[("exp_sum", 0, 0)][1][0], a + 2 * b)
    assert rows_close([r[("weights", 0, 0)][1]], [[a / (a + 2 * b), b / (a + 2 * b), b / (a + 2 * b)]])
    assert close(a, 8.342144716476795)  # e^(3/√2); the seed prints 8.33 (from 2.12)


def test_cat_has_the_nodes_of_a_one_layer_block_and_nothing_else() -> None:
    names = {k[0] for k in cat()}
    assert names == {"x", "attn_in", "q", "k", "v", "scores", "sqrt_dk", "scale",
                     "scaled_scores", "exp_scores", "exp_sum", "weights", "z", "concat",
                     "attn_out", "resid_mid", "ffn_in", "ffn_pre", "ffn_act", "ffn_out",
                     "resid_post", "out"}


# --- attention edge cases -----------------------------------------------------------------------

def scores_only(config: ModelConfig, s: list[list[object]]) -> dict:
    return reference_forward(config, Params(), Inputs(given={("scores", 0, 0): s}))


def test_one_key_gets_all_the_weight() -> None:
    r = scores_only(ModelConfig(scale="none"), [[I(5)]])
    assert r[("weights", 0, 0)] == [[1.0]]


def test_causal_mask_zeroes_later_keys_exactly() -> None:
    r = scores_only(ModelConfig(scale="none", mask="causal"), [[I(1), I(2)], [I(3), I(4)]])
    assert r[("exp_scores", 0, 0)][0] == [math.e, 0.0]
    assert r[("weights", 0, 0)][0] == [1.0, 0.0]


def test_causal_mask_with_more_keys_than_queries_is_aligned_bottom_right() -> None:
    # Two queries are the last two of three positions: query 0 reads keys 0-1, query 1 all.
    assert causal(2, 3) == [[True, True, False], [True, True, True]]
    r = scores_only(ModelConfig(scale="none", mask="causal"), [[I(0)] * 3, [I(0)] * 3])
    assert r[("weights", 0, 0)] == [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]


def test_stable_softmax_survives_scores_that_overflow_exp() -> None:
    s = [[I(1000), I(999)]]
    stable = scores_only(ModelConfig(scale="none", softmax="stable"), s)
    assert stable[("shifted_scores", 0, 0)] == [[0.0, -1.0]]
    assert rows_close(stable[("weights", 0, 0)], [[1 / (1 + math.exp(-1)), 1 / (1 + math.e)]])
    with pytest.raises(OverflowError):
        scores_only(ModelConfig(scale="none", softmax="plain"), s)


def test_stable_softmax_takes_the_maximum_over_unmasked_keys_only() -> None:
    r = scores_only(ModelConfig(scale="none", softmax="stable", mask="causal"),
                    [[I(1), I(50)], [I(1), I(50)]])
    assert r[("shifted_scores", 0, 0)][0] == [0.0, 49.0]
    assert r[("weights", 0, 0)][0] == [1.0, 0.0]


def test_a_row_the_mask_hides_entirely_is_refused() -> None:
    # Three queries over two keys: query 0 would read keys j <= 0 + (2 - 3) = -1, none.
    with pytest.raises(ZeroDivisionError):
        scores_only(ModelConfig(scale="none", mask="causal", softmax="stable"), [[I(0)] * 2] * 3)
    with pytest.raises(ZeroDivisionError):
        scores_only(ModelConfig(scale="none", mask="causal"), [[I(0)] * 2] * 3)


@pytest.mark.parametrize(("scale", "factor"), [("none", 1.0), (R(1, 2), 0.5),
                                               (1 / sympy.sqrt(8), 1 / math.sqrt(8))])
def test_scale_multiplies_the_scores(scale: object, factor: float) -> None:
    r = scores_only(ModelConfig(scale=scale), [[I(2), I(-4)]])
    assert rows_close(r[("scale", 0, None)], [[factor]])
    assert rows_close(r[("scaled_scores", 0, 0)], [[2 * factor, -4 * factor]])


def test_without_keys_sqrt_dk_and_so_scale_are_unknown() -> None:
    # scale = 1/sqrt_dk needs the width of k; with only scores given, neither is computed,
    # and neither is anything after them (as in the exact graph).
    r = scores_only(ModelConfig(), [[I(1)]])
    assert set(r) == {("scores", 0, 0)}


def test_heads_split_projections_by_columns_and_concat_side_by_side() -> None:
    eye4 = tuple(tuple(I(int(i == j)) for j in range(4)) for i in range(4))
    zero = tuple((I(0),) * 4 for _ in range(4))
    lp = LayerParams(W_Q=zero, W_K=zero, W_V=eye4, W_O=eye4, W1=zero, W2=zero)
    x = ((I(1), I(2), I(3), I(4)), (I(5), I(6), I(7), I(8)))
    r = reference_forward(ModelConfig(heads=2), Params(layers=(lp,)),
                          Inputs(given={("x", 0, None): x}))
    # Equal scores: each head averages its own two columns of v over both tokens.
    assert r[("v", 0, 0)] == [[1.0, 2.0], [5.0, 6.0]]
    assert r[("v", 0, 1)] == [[3.0, 4.0], [7.0, 8.0]]
    assert r[("z", 0, 1)] == [[5.0, 6.0], [5.0, 6.0]]
    assert r[("concat", 0, None)] == [[3.0, 4.0, 5.0, 6.0]] * 2
    assert r[("sqrt_dk", 0, None)] == [[math.sqrt(2)]]


def test_cross_attention_reads_keys_and_values_from_x_kv() -> None:
    one = ((I(1),),)
    lp = LayerParams(W_Q=one, W_K=((I(1),), (I(0),)), W_V=((I(0),), (I(1),)), W_O=one)
    given = {("x", 0, None): ((I(0),),), ("x_kv", None, None): ((I(1), I(10)), (I(2), I(20)))}
    r = reference_forward(ModelConfig(), Params(layers=(lp,)), Inputs(given=given))
    assert r[("k", 0, 0)] == [[1.0], [2.0]]
    assert r[("z", 0, 0)] == [[15.0]]  # q = 0: equal weights over the two values
    assert r[("x_kv", None, None)] == [[1.0, 10.0], [2.0, 20.0]]
    assert ("ffn_pre", 0, None) not in r  # no W1: the feed-forward is absent


# --- layer norm ---------------------------------------------------------------------------------

def test_layer_norm_by_hand() -> None:
    mean, var, y = layer_norm([[1.0, 2.0, 2.0, 1.0]], 0.0)
    assert (mean, var, y) == ([[1.5]], [[0.25]], [[-1.0, 1.0, 1.0, -1.0]])
    _, _, y = layer_norm([[1.0, 3.0]], 0.0, gamma=[2.0, 3.0], beta=[0.5, -0.5])
    assert y == [[-1.5, 2.5]]


def test_layer_norm_eps_enters_under_the_root() -> None:
    _, _, y = layer_norm([[1.0, 3.0]], 1e-5)
    assert rows_close(y, [[-1 / math.sqrt(1 + 1e-5), 1 / math.sqrt(1 + 1e-5)]])


def test_layer_norm_of_a_constant_row_needs_eps() -> None:
    with pytest.raises(ZeroDivisionError):
        layer_norm([[2.0, 2.0]], 0.0)
    assert layer_norm([[2.0, 2.0]], 1e-5)[2] == [[0.0, 0.0]]


def test_pre_and_post_norm_wiring() -> None:
    eye = ((I(1), I(0)), (I(0), I(1)))
    lp = LayerParams(W_Q=eye, W_K=eye, W_V=eye, W_O=eye, W1=eye, W2=eye)
    x = {("x", 0, None): ((I(1), I(3)),)}
    pre = reference_forward(ModelConfig(norm="pre"), Params(layers=(lp,)), Inputs(given=x))
    # pre: attention reads ln1(x) = [-1, 1]; resid_mid = x + [-1, 1] = [0, 4];
    # ffn reads ln2(resid_mid) = [-1, 1], relu -> [0, 1]; out = resid_mid + [0, 1].
    assert pre[("attn_in", 0, None)] == [[-1.0, 1.0]]
    assert pre[("resid_mid", 0, None)] == [[0.0, 4.0]]
    assert pre[("ffn_in", 0, None)] == [[-1.0, 1.0]]
    assert pre[("out", 0, None)] == [[0.0, 5.0]]
    post = reference_forward(ModelConfig(norm="post"), Params(layers=(lp,)), Inputs(given=x))
    # post: attention reads x; resid_mid = [2, 6]; ln1 = [-1, 1] feeds the ffn and the
    # second residual: resid_post = [-1, 1] + [0, 1] = [-1, 2]; out = ln2 = [-1, 1].
    assert post[("attn_in", 0, None)] == [[1.0, 3.0]]
    assert post[("resid_mid", 0, None)] == [[2.0, 6.0]]
    assert post[("ffn_in", 0, None)] == [[-1.0, 1.0]]
    assert post[("resid_post", 0, None)] == [[-1.0, 2.0]]
    assert post[("out", 0, None)] == [[-1.0, 1.0]]


def test_a_lone_layer_norm() -> None:
    r = reference_forward(ModelConfig(norm="pre"), Params(),
                          Inputs(given={("x", 0, None): ((I(1), I(2), I(2), I(1)),)}))
    assert set(r) == {("x", 0, None), ("ln1_mean", 0, None), ("ln1_var", 0, None),
                      ("ln1", 0, None), ("attn_in", 0, None)}


# --- feed-forward and activations ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "x", "want"), [
    ("relu", -2.0, 0.0), ("relu", 1.5, 1.5), ("none", -2.0, -2.0),
    ("gelu", 1.0, 0.8413447460685429),          # Φ(1) = 0.8413447460685429
    ("gelu", -1.0, -0.15865525393145707),
    ("gelu_tanh", 1.0, 0.8411919906082768),     # 0.5(1 + tanh(√(2/π)·1.044715))
    ("silu", 1.0, 1 / (1 + math.exp(-1))),
    ("silu", -1000.0, -0.0),                    # no overflow on the negative side
])
def test_activations_at_known_points(name: str, x: float, want: float) -> None:
    assert close(ACTIVATIONS[name](x), want)


def test_a_lone_feed_forward_has_no_residual() -> None:
    w1 = ((I(1), I(-1)),)
    w2 = ((I(2),), (I(3),))
    r = reference_forward(ModelConfig(), Params(layers=(LayerParams(W1=w1, W2=w2, b2=(I(1),)),)),
                          Inputs(given={("ffn_in", 0, None): ((I(4),),)}))
    assert r[("ffn_act", 0, None)] == [[4.0, 0.0]]
    assert r[("ffn_out", 0, None)] == [[9.0]]
    assert set(r) == {("ffn_in", 0, None), ("ffn_pre", 0, None), ("ffn_act", 0, None),
                      ("ffn_out", 0, None)}


# --- embeddings and positions -------------------------------------------------------------------

def embedded(positional: str, base: int = 100, P: object = None) -> dict:
    E = ((I(1), I(0), I(0), I(0)), (I(0), I(1), I(0), I(0)))
    config = ModelConfig(positional=positional, positional_base=I(base))
    inputs = Inputs(tokens=("b", "a", "b"), vocab=("a", "b"))
    return reference_forward(config, Params(E=E, P=P), inputs)


def test_ids_and_embedding_rows() -> None:
    r = embedded("none")
    assert r[("ids", None, None)] == [[1.0], [0.0], [1.0]]
    assert r[("x", 0, None)] == [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    assert ("pos", None, None) not in r


def test_sinusoidal_positions_interleave_sin_and_cos() -> None:
    pos = embedded("sinusoidal")[("pos", None, None)]
    assert pos[0] == [0.0, 1.0, 0.0, 1.0]
    # d = 4, base 100: pairs (0, 1) use p / 100^0, pairs (2, 3) use p / 100^(2/4) = p / 10.
    assert rows_close([pos[2]], [[math.sin(2), math.cos(2), math.sin(0.2), math.cos(0.2)]])


def test_the_guides_sinusoidal_variant_uses_j_over_d() -> None:
    pos = embedded("sinusoidal_guide")[("pos", None, None)]
    # dimension j uses p / 100^(j/4): 1, 100^(1/4) = √10, 10, 100^(3/4) = 10√10
    want = [math.sin(1), math.cos(1 / math.sqrt(10)), math.sin(0.1), math.cos(1 / (10 * math.sqrt(10)))]
    assert rows_close([pos[1]], [want])


def test_learned_positions_are_the_first_rows_of_P() -> None:
    P = tuple(tuple(I(10 * p + j) for j in range(4)) for p in range(5))
    r = embedded("learned", P=P)
    assert r[("pos", None, None)] == [[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0],
                                      [20.0, 21.0, 22.0, 23.0]]
    assert r[("x", 0, None)][1] == [11.0, 11.0, 12.0, 13.0]


# --- the graph's rules --------------------------------------------------------------------------

def test_a_given_node_wins_over_the_computed_one() -> None:
    w = load("cat")
    given = dict(w.inputs.given)
    given[("weights", 0, 0)] = ((R(1, 2), R(1, 4), R(1, 4)),) * 3
    r = reference_forward(w.config, w.params, Inputs(tokens=w.inputs.tokens, given=given))
    assert r[("weights", 0, 0)][1] == [0.5, 0.25, 0.25]
    assert r[("exp_scores", 0, 0)] == cat()[("exp_scores", 0, 0)]  # upstream unchanged


def test_two_layers_chain_out_into_x() -> None:
    one = ((I(1),),)
    lp = LayerParams(W_Q=one, W_K=one, W_V=one, W_O=one, W1=one, W2=one)
    r = reference_forward(ModelConfig(), Params(layers=(lp, lp)),
                          Inputs(given={("x", 0, None): ((I(1),),)}))
    # one token: z = v = x, so resid_mid = 2x, out = 2x + relu(2x) = 4x per layer.
    assert r[("out", 0, None)] == [[4.0]]
    assert r[("x", 1, None)] == [[4.0]]
    assert r[("out", 1, None)] == [[16.0]]


# --- the vocabulary head ------------------------------------------------------------------------

def head(config: ModelConfig, **params: object) -> dict:
    return reference_forward(config, Params(**params),  # type: ignore[arg-type]
                             Inputs(given={("out", 0, None): ((I(1), I(2)),)}))


def test_logits_and_probs_at_a_temperature() -> None:
    r = head(ModelConfig(temperature=I(2)), W_U=((I(1), I(0), I(1)), (I(0), I(1), I(1))))
    assert r[("final", None, None)] == [[1.0, 2.0]]
    assert r[("logits", None, None)] == [[1.0, 2.0, 3.0]]
    assert r[("scaled_logits", None, None)] == [[0.5, 1.0, 1.5]]
    total = math.exp(0.5) + math.e + math.exp(1.5)
    assert rows_close(r[("probs", None, None)], [[math.exp(0.5) / total, math.e / total,
                                                  math.exp(1.5) / total]])


def test_tied_embeddings_and_a_final_norm() -> None:
    E = ((I(1), I(0)), (I(0), I(1)), (I(1), I(1)))
    r = head(ModelConfig(tie_embeddings=True, final_norm=True, softmax="stable"), E=E)
    assert r[("lnf", None, None)] == [[-1.0, 1.0]]
    assert r[("logits", None, None)] == [[-1.0, 1.0, 0.0]]  # final Eᵀ
    assert r[("shifted_logits", None, None)] == [[-2.0, 0.0, -1.0]]


def test_without_an_unembedding_there_are_no_logits() -> None:
    r = head(ModelConfig())
    assert not any(k[0] in ("final", "logits", "probs") for k in r)


# --- the loss (for finite differences of the gradients) ---------------------------------------


def _loss(logits: tuple[tuple[int, ...], ...], target: int, temperature: object = 1) -> float:
    config = ModelConfig(temperature=sympy.sympify(temperature))
    return reference_loss(config, Params(), Inputs(given={("logits", None, None): logits},
                                                   target=target))


def test_loss_is_minus_log_of_the_targets_probability_on_the_last_row() -> None:
    assert math.isclose(_loss(((5, -1, 2), (1, 1, 1)), 2), math.log(3), rel_tol=REL)
    assert math.isclose(_loss(((0, 1),), 0), math.log(1 + math.e), rel_tol=REL)


def test_loss_divides_the_logits_by_the_temperature() -> None:
    assert math.isclose(_loss(((0, 2),), 0, temperature=2), math.log(1 + math.e), rel_tol=REL)


def test_loss_of_a_target_whose_probability_underflows() -> None:
    # probs = [1, e^-800] rounds e^-800 to 0.0, whose -log is inf; the log-sum-exp form is not
    # fooled
    assert math.isclose(_loss(((0, -800),), 1), 800.0, rel_tol=REL)
    assert _loss(((0, -800),), 0) == 0.0


def test_loss_needs_a_target_and_logits() -> None:
    with pytest.raises(ValueError, match="target"):
        reference_loss(ModelConfig(), Params(), Inputs(given={("logits", None, None): ((0,),)}))
    with pytest.raises(ValueError, match="vocabulary head"):
        reference_loss(ModelConfig(), Params(), Inputs(given={("x", 0, None): ((1,),)}, target=0))
