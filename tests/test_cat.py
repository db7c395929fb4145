"""The seed walkthrough ("cat"), reproduced to the last digit.

Every number the seed states for the token "cat" is asserted exactly (``==`` on exact
values); transcendental steps are asserted as exact closed forms plus their correctly
rounded decimals.
"""

from __future__ import annotations

import sympy
from sympy import Integer as I
from sympy import Rational, exp, sqrt

import exacttransformer as et
from exacttransformer.exact.printing import to_fixed, to_sig

CAT = 1


def ints(*xs: int) -> tuple[sympy.Integer, ...]:
    return tuple(I(x) for x in xs)


def trace() -> et.Trace:
    return et.load("cat").forward()


def test_builtin_cat_is_the_worked_example() -> None:
    from pathlib import Path

    import exacttransformer

    packaged = Path(exacttransformer.__file__).parent / "data" / "cat.toml"
    repo = Path(__file__).parent.parent / "worked_examples" / "cat.toml"
    assert packaged.read_bytes() == repo.read_bytes()


def test_projections_for_cat() -> None:
    t = trace()
    assert t.value("x")[CAT] == ints(0, 1, 1, 0)
    assert t.value("q")[CAT] == ints(1, 1)
    assert t.value("k") == (ints(2, 1), ints(1, 1), ints(0, 2))
    assert t.value("v") == (ints(1, 1), ints(1, 1), ints(1, 1))


def test_scores_and_scaling() -> None:
    t = trace()
    assert t.value("scores")[CAT] == ints(3, 2, 2)
    assert t.value("sqrt_dk") == ((sqrt(2),),)
    assert to_sig(t.value("sqrt_dk")[0][0], 4) == "1.414"
    scaled = t.value("scaled_scores")[CAT]
    assert scaled == (3 * sqrt(2) / 2, sqrt(2), sqrt(2))
    assert [to_fixed(s, 2) for s in scaled] == ["2.12", "1.41", "1.41"]


def test_softmax_exact_and_decimal() -> None:
    t = trace()
    e = t.value("exp_scores")[CAT]
    assert e == (exp(3 * sqrt(2) / 2), exp(sqrt(2)), exp(sqrt(2)))
    # The seed prints 8.33 and 4.10; the exact values round to 8.34 and 4.11.
    assert [to_fixed(x, 2) for x in e] == ["8.34", "4.11", "4.11"]
    total = t.value("exp_sum")[CAT][0]
    assert sympy.simplify(total - (exp(3 * sqrt(2) / 2) + 2 * exp(sqrt(2)))) == 0
    assert to_fixed(total, 2) == "16.57"
    w = t.value("weights")[CAT]
    te = exp(1 / sqrt(2))
    assert sympy.simplify(w[0] - te / (te + 2)) == 0
    assert sympy.simplify(w[1] - 1 / (te + 2)) == 0
    assert w[1] == w[2]
    assert [to_fixed(x, 2) for x in w] == ["0.50", "0.25", "0.25"]
    assert [to_sig(x, 6) for x in w] == ["0.503490", "0.248255", "0.248255"]


def test_every_attention_row_sums_to_exactly_one() -> None:
    for row in trace().value("weights"):
        assert sympy.together(sympy.Add(*row)) == 1


def test_z_is_exactly_one_one() -> None:
    """The exponentials cancel: all values are [1, 1], so z is exactly [1, 1]."""
    z = trace().value("z")
    assert z[CAT] == (I(1), I(1))
    assert all(type(x) is sympy.core.numbers.One for x in z[CAT])


def test_rest_of_block_for_cat() -> None:
    t = trace()
    assert t.value("attn_out")[CAT] == ints(1, 1, 1, 1)
    assert t.value("resid_mid")[CAT] == ints(1, 2, 2, 1)
    assert t.value("ffn_pre")[CAT] == ints(3, 5, 3)
    assert t.value("ffn_act")[CAT] == ints(3, 5, 3)
    assert t.value("ffn_out")[CAT] == ints(6, 8, 3, 5)
    assert t.value("out")[CAT] == ints(7, 10, 5, 6)


def test_all_three_tokens_leave_the_block_exactly() -> None:
    # Every value row is [1, 1], so z = [1, 1] for every token and the block is rational.
    assert trace().value("out") == (ints(9, 8, 6, 5), ints(7, 10, 5, 6), ints(6, 10, 3, 7))


def test_weights_for_the_and_slept_are_exact_closed_forms() -> None:
    t = trace()
    w = t.value("weights")
    s2 = exp(sqrt(2))
    assert sympy.simplify(w[0][2] - 1 / (1 + s2 + s2**2)) == 0
    assert sympy.simplify(w[2][2] - s2 / (s2 + 2)) == 0
    assert to_sig(w[0][0], 4) == "0.7679"


def test_the_trace_is_immutable_and_names_every_step() -> None:
    t = trace()
    assert t.names() == [
        "x", "attn_in", "q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores",
        "exp_scores", "exp_sum", "weights", "z", "concat", "attn_out", "resid_mid", "ffn_in",
        "ffn_pre", "ffn_act", "ffn_out", "resid_post", "out",
    ]
    step = t.get("q")
    assert step.inputs == (("attn_in", 0, None),)
    assert step.formula == "attn_in W_Q"
    assert [label for label, _ in step.operands] == ["attn_in", "W_Q"]
    try:
        step.value = ()  # type: ignore[misc]
    except AttributeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("Step must be frozen")


def test_scale_number_and_none() -> None:
    w = et.load("cat")
    from dataclasses import replace

    half = replace(w, config=replace(w.config, scale=Rational(1, 2))).forward()
    assert half.value("scaled_scores")[CAT] == (Rational(3, 2), I(1), I(1))
    none = replace(w, config=replace(w.config, scale="none")).forward()
    assert none.value("scaled_scores")[CAT] == ints(3, 2, 2)
    assert none.value("exp_scores")[CAT] == (exp(3), exp(2), exp(2))
