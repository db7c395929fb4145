"""The graph's options, each on a case small enough to check by hand (exact ``==``)."""

from __future__ import annotations

import pytest
import sympy
from sympy import Integer as I
from sympy import Rational, erf, exp, sqrt

import exacttransformer as et
from exacttransformer.errors import ComputationError


def block(model: str = "", weights: str = "", x: str = "[[1, 0], [0, 1], [1, 1]]") -> et.Trace:
    text = f"""
[model]
{model}
[input]
tokens = ["a", "b", "c"]
X = {x}
[weights]
W_Q = [[1, 0], [0, 1]]
W_K = [[1, 0], [0, 1]]
W_V = [[1, 0], [0, 2]]
W_O = [[1, 0], [0, 1]]
W1 = [[1, -1], [1, -1]]
W2 = [[1, 0], [0, 1]]
{weights}
"""
    return et.loads(text).forward()


def test_causal_mask_is_exact_zero() -> None:
    t = block('mask = "causal"\nscale = "none"')
    w = t.value("weights")
    assert w[0] == (I(1), I(0), I(0))
    assert w[1][2] == 0 and t.value("exp_scores")[1][2] == 0
    assert w[1] == (1 / (1 + exp(1)), exp(1) / (1 + exp(1)), I(0))
    assert t.value("z")[0] == (I(1), I(0))


def test_stable_softmax_subtracts_the_row_maximum() -> None:
    t = block('softmax = "stable"\nscale = "none"')
    assert t.value("scaled_scores")[2] == (I(1), I(1), I(2))
    shifted = t.value("shifted_scores")
    assert shifted[2] == (I(-1), I(-1), I(0))
    plain = block('scale = "none"').value("weights")
    for a, b in zip(plain, t.value("weights"), strict=True):
        for x, y in zip(a, b, strict=True):
            assert sympy.simplify(x - y) == 0


def test_two_heads_split_columns_and_concat() -> None:
    text = """
[model]
heads = 2
scale = "none"
[input]
X = [[1, 0], [0, 1]]
[weights]
W_Q = [[1, 0], [0, 0]]
W_K = [[1, 0], [0, 0]]
W_V = [[1, 0], [0, 1]]
W_O = [[1, 0], [0, 1]]
"""
    t = et.loads(text).forward()
    assert t.value("q", 0, 1) == ((I(0),), (I(0),))
    assert t.value("weights", 0, 1) == ((Rational(1, 2), Rational(1, 2)),) * 2
    assert t.value("z", 0, 1) == ((Rational(1, 2),), (Rational(1, 2),))
    e = exp(1)
    assert t.value("concat")[0] == (e / (e + 1), Rational(1, 2))
    assert t.value("sqrt_dk") == ((I(1),),)


def test_biases_are_added_to_every_row() -> None:
    t = block("", "b_Q = [1, 1]\nb_O = [0, 1]\nb1 = [0, 5]\nb2 = [1, 1]")
    assert t.value("q")[0] == (I(2), I(1))
    ffn_in = t.value("ffn_in")[0]
    expected = (ffn_in[0] + ffn_in[1], -ffn_in[0] - ffn_in[1] + 5)
    for got, want in zip(t.value("ffn_pre")[0], expected, strict=True):
        assert sympy.simplify(got - want) == 0


def test_relu_decides_signs_exactly() -> None:
    t = block('scale = "none"')
    pre = t.value("ffn_pre")
    act = t.value("ffn_act")
    for p, a in zip(pre, act, strict=True):
        assert a[0] == p[0]  # positive sums stay
        assert a[1] == 0  # negated sums are cut
    assert all(row[1] == 0 for row in act)


def test_gelu_keeps_erf_symbolic() -> None:
    t = block('activation = "gelu"\nscale = "none"', x="[[1, 0], [0, 0], [0, 0]]")
    x = t.value("ffn_pre")[1][0]
    assert t.value("ffn_act")[1][0] == x * (1 + erf(sqrt(2) * x / 2)) / 2


def test_silu_and_gelu_tanh_closed_forms() -> None:
    t = et.loads('[model]\nactivation = "silu"\n[input]\nffn_in = [[1, -2]]\n'
                 '[weights]\nW1 = [[1, 0], [0, 1]]\nW2 = [[1], [1]]\n').forward()
    assert t.value("ffn_act") == ((1 / (1 + exp(-1)), -2 / (1 + exp(2))),)
    assert t.find("resid_post") is None  # a lone feed-forward has no residual
    g = et.loads('[model]\nactivation = "gelu_tanh"\n[input]\nffn_in = [[0]]\n'
                 '[weights]\nW1 = [[1]]\nW2 = [[1]]\n').forward()
    assert g.value("ffn_act") == ((I(0),),)


def test_post_norm_and_pre_norm_wiring() -> None:
    post = block('norm = "post"\nnorm_eps = "1/100"')
    assert post.get("ln1").inputs[0] == ("resid_mid", 0, None)
    assert post.get("ffn_in").inputs == (("ln1", 0, None),)
    assert post.get("resid_post").inputs == (("ln1", 0, None), ("ffn_out", 0, None))
    assert post.get("out").inputs == (("ln2", 0, None),)
    pre = block('norm = "pre"\nnorm_eps = "1/100"')
    assert pre.get("attn_in").inputs == (("ln1", 0, None),)
    assert pre.get("ffn_in").inputs == (("ln2", 0, None),)
    assert pre.get("resid_post").inputs == (("resid_mid", 0, None), ("ffn_out", 0, None))
    for row in pre.value("ln1"):
        assert sympy.Add(*row) == 0


def test_layer_norm_affine_and_eps() -> None:
    t = et.loads('[model]\nnorm = "pre"\nnorm_eps = "1/4"\n[input]\nx = [[0, 1]]\n'
                 '[weights]\ngamma1 = [2, 2]\nbeta1 = [1, 0]\n').forward()
    # mean 1/2, variance 1/4, sqrt(1/4 + 1/4) = sqrt(2)/2
    assert t.value("ln1") == ((1 - sqrt(2), sqrt(2)),)


def test_zero_variance_without_eps_is_a_clear_error() -> None:
    with pytest.raises(ComputationError, match="variance is 0"):
        et.loads('[model]\nnorm = "pre"\n[input]\nx = [[3, 3]]\n').forward()


def test_cross_attention_reads_x_kv() -> None:
    text = """
[model]
scale = "none"
[input]
X = [[1, 0]]
x_kv = [[0, 0, 1], [1, 1, 1]]
kv_tokens = ["m0", "m1"]
[weights]
W_Q = [[1], [0]]
W_K = [[1], [0], [0]]
W_V = [[0], [0], [1]]
"""
    t = et.loads(text).forward()
    assert t.value("k") == ((I(0),), (I(1),))
    assert t.value("weights") == ((1 / (1 + exp(1)), exp(1) / (1 + exp(1))),)
    assert t.value("z") == ((I(1),),)


def test_sinusoidal_positions_are_exact() -> None:
    text = ('[model]\npositional = "sinusoidal"\npositional_base = "100"\n[input]\n'
            'vocab = ["a", "b"]\ntokens = ["a", "b", "a"]\nE = [[0, 0, 0, 0], [0, 0, 0, 0]]\n')
    pos = et.loads(text).forward().value("pos", None, None)
    assert pos[0] == (I(0), I(1), I(0), I(1))
    assert pos[2] == (sympy.sin(2), sympy.cos(2), sympy.sin(Rational(1, 5)), sympy.cos(Rational(1, 5)))
    guide = et.loads(text.replace('"sinusoidal"', '"sinusoidal_guide"')).forward().value("pos", None, None)
    assert guide[1][1] == sympy.cos(100 ** Rational(-1, 4))  # exponent j/d for j = 1
    assert guide[1][0] == pos[1][0]
