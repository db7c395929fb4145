"""The structured exact engine (``exacttransformer.exact.lazy``) against plain sympy, and its own rules.

Both engines are exact: on every small random model their values agree exactly (rationals with
``==``, the rest with ``==`` after sympy's simplification where that is small enough to finish)
and their certified decimals agree in every digit.  Under CI the whole file also runs with
python-flint installed (``fmpq`` coefficients, ``arb`` balls): the digits must not change.
"""

from __future__ import annotations

import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import sympy
from hypothesis import given, note, reject
from strategies import EPS, Model, _OverTime, budget, exact_trace, models, time_limit

import exacttransformer as et
from exacttransformer.check import check
from exacttransformer.errors import ComputationError
from exacttransformer.exact import enclosure as EN
from exacttransformer.exact import lazy as L
from exacttransformer.exact.backends import EXACT, STRUCTURED
from exacttransformer.exact.lazy import Lazy
from exacttransformer.exact.printing import is_zero, to_float, to_sig
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.engine import AUTO_THRESHOLD, choose, size
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.reference import reference_forward

DIGITS = 30


def structured_trace(m: Model) -> et.Trace:
    try:
        with time_limit(8.0):
            return forward(*m.args, backend=STRUCTURED)
    except ComputationError as exc:
        note(f"structured engine refused: {exc}")
    except _OverTime:
        note("structured engine took over 8 s")
    reject()


def same_value(a: object, b: object) -> None:
    """``a`` (structured) and ``b`` (sympy) are the same number, proven."""
    if isinstance(a, Lazy):
        assert to_sig(a, DIGITS) == to_sig(b, DIGITS)  # type: ignore[arg-type]
        small = a.size() <= 40 and sympy.count_ops(b) <= 40
        if small:
            assert sympy.simplify(a.to_sympy() - b) == 0
        return
    if getattr(a, "is_Rational", False) and getattr(b, "is_Rational", False):
        assert a == b
        return
    assert to_sig(a, DIGITS) == to_sig(b, DIGITS)  # type: ignore[arg-type]
    if sympy.count_ops(a) <= 40 and sympy.count_ops(b) <= 40:
        assert sympy.simplify(a - b) == 0  # type: ignore[operator]


@budget(25)
@given(models())
def test_structured_and_sympy_agree_exactly_and_in_every_digit(m: Model) -> None:
    plain = exact_trace(m)
    lazy = structured_trace(m)
    assert [s.key for s in lazy] == [s.key for s in plain]
    for s_lazy, s_plain in zip(lazy, plain, strict=True):
        for row_a, row_b in zip(s_lazy.value, s_plain.value, strict=True):
            for a, b in zip(row_a, row_b, strict=True):
                same_value(a, b)


@budget(20)
@given(models())
def test_structured_softmax_rows_sum_to_exactly_one(m: Model) -> None:
    trace = structured_trace(m)
    for step in trace:
        if step.name in ("weights", "probs") and not step.given:
            for row in step.value:
                total = L.total([L.lift(x) for x in row])
                assert total == 1, (step.key, row)


# --- the reference case under the structured engine -----------------------------------------


def test_cat_under_the_structured_engine() -> None:
    walk = et.load("cat")
    trace = walk.forward(engine="structured")
    assert trace.backend == "structured"
    assert trace.value("out")[1] == (7, 10, 5, 6)
    assert trace.value("z")[1] == (1, 1)
    plain = walk.forward(engine="sympy")
    for a, b in zip(trace, plain, strict=True):
        for ra, rb in zip(a.value, b.value, strict=True):
            assert [to_sig(x, 40) for x in ra] == [to_sig(x, 40) for x in rb]


def test_the_checker_gives_the_same_verdicts_under_both_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXACTTRANSFORMER_ENGINE", "sympy")
    plain = check("cat")
    monkeypatch.setenv("EXACTTRANSFORMER_ENGINE", "structured")
    lazy = check("cat")
    verdicts = [(c.claim.name, c.verdict) for c in plain.claims]
    assert verdicts == [(c.claim.name, c.verdict) for c in lazy.claims]
    assert ("exp_scores", "drift") in verdicts


# --- a model too large for sympy: against the float reference ------------------------------


def random_block(tokens: int, d: int, heads: int, layers: int, seed: int,
                 activation: str = "gelu") -> tuple[ModelConfig, Params, Inputs]:
    rng = random.Random(seed)

    def mat(r: int, c: int) -> tuple[tuple[sympy.Rational, ...], ...]:
        return tuple(tuple(sympy.Rational(rng.randint(-4, 4), 4) for _ in range(c)) for _ in range(r))

    lps = tuple(LayerParams(W_Q=mat(d, d), W_K=mat(d, d), W_V=mat(d, d), W_O=mat(d, d),
                            W1=mat(d, 2 * d), W2=mat(2 * d, d)) for _ in range(layers))
    cfg = ModelConfig(heads=heads, norm="pre", activation=activation, norm_eps=EPS, mask="causal")
    return cfg, Params(layers=lps), Inputs(given={("x", 0, None): mat(tokens, d)})


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_a_two_layer_model_with_layer_norm_matches_the_float_reference(activation: str) -> None:
    cfg, params, inputs = random_block(6, 8, 2, 2, seed=7, activation=activation)
    trace = forward(cfg, params, inputs, STRUCTURED)
    ref = reference_forward(cfg, params, inputs)
    compared = 0
    for key, value in ref.items():
        exact = trace.value(*key)
        for row_e, row_f in zip(exact, value, strict=True):
            for x, f in zip(row_e, row_f, strict=True):
                assert abs(to_float(x) - f) <= 1e-9 * max(1.0, abs(f)), key
                compared += 1
    assert compared > 500
    # the certified digits are digits of the exact value: 25 of them for every output
    out = trace.value("out", 1)
    assert all(len(to_sig(x, 25).lstrip("-").replace(".", "").lstrip("0")) >= 25 or to_sig(x, 25) == "0"
               for row in out for x in row)


# --- the representation's own rules ---------------------------------------------------------


def test_a_softmax_row_collapses_to_one_and_a_renormalized_row_to_its_own_sum() -> None:
    e = [L.exp(L.const(Fraction(k, 3))) for k in range(4)]
    s = L.total(e)
    probs = [L.div(x, s) for x in e]
    assert L.total(probs) == 1
    kept = L.total(probs[:2])
    renorm = L.div(probs[0], kept)
    assert renorm == L.div(e[0], L.total(e[:2]))  # the common 1/S cancelled structurally


def test_a_sum_and_its_negative_kept_whole_cancel() -> None:
    a = L.total([L.exp(L.const(1)), L.sqrt(L.const(2)), L.const(3)])
    b = L.neg(a)
    big = L.total([L.exp(L.const(k)) for k in range(2, 30)])
    assert L.mul(a, big) + L.mul(b, big) == 0


def test_square_roots_of_rationals_square_back_and_perfect_squares_are_rational() -> None:
    r = L.sqrt(L.const(Fraction(17, 36)))
    assert L.mul(r, r) == Fraction(17, 36)
    assert L.sqrt(L.const(Fraction(9, 4))) == Fraction(3, 2)


def test_a_zero_built_along_two_routes_is_proven_zero() -> None:
    a = L.total([L.exp(L.const(k)) for k in range(1, 6)])
    b = L.total([L.exp(L.const(k)) for k in range(10, 14)])
    c = L.total([L.sqrt(L.const(k)) for k in (2, 3, 5)])
    one_way = L.mul(L.mul(a, b), c)      # kept whole: a·b first
    other = L.mul(a, L.mul(b, c))        # b·c first
    diff = L.add(one_way, L.neg(other))
    assert diff != 0  # structurally different...
    assert is_zero(diff)  # ...and proven equal by the canonical form
    assert EN.sign(L.add(diff, L.const(Fraction(1, 10**40)))) == 1


def test_signs_are_proven_not_guessed() -> None:
    tiny = L.add(L.exp(L.const(Fraction(1, 10**30))), L.const(-1))
    assert EN.sign(tiny) == 1
    assert to_sig(tiny, 5) == "1.0000e-30"


def test_closed_forms_are_built_only_when_small() -> None:
    a = L.div(L.exp(L.const(1)), L.add(L.const(1), L.exp(L.const(1))))
    assert a.to_sympy() == sympy.E / (1 + sympy.E)
    big = L.total([L.exp(L.const(k)) for k in range(3000)])
    with pytest.raises(ComputationError, match="closed form"):
        big.to_sympy()
    assert "terms" in repr(big)


def test_file_constants_convert_exactly() -> None:
    x = sympy.sqrt(2) / 3 + sympy.exp(sympy.Rational(3, 2)) - sympy.pi
    assert to_sig(L.from_sympy(x), 30) == to_sig(x, 30)


# --- choosing the engine ----------------------------------------------------------------------


def test_auto_keeps_sympy_for_textbook_sizes_and_takes_the_structured_engine_beyond() -> None:
    walk = et.load("cat")
    assert size(walk.config, walk.params, walk.inputs) <= AUTO_THRESHOLD
    assert choose(walk.config, walk.params, walk.inputs, "auto") is EXACT
    cfg, params, inputs = random_block(8, 16, 2, 2, seed=1)
    assert size(cfg, params, inputs) > AUTO_THRESHOLD
    assert choose(cfg, params, inputs, "auto") is STRUCTURED
    assert choose(cfg, params, inputs, "sympy") is EXACT


def test_a_bad_engine_name_is_refused_with_exit_2() -> None:
    run = subprocess.run([sys.executable, "-m", "exacttransformer", "walkthrough", "cat"],
                         capture_output=True, text=True, check=False,
                         env={"EXACTTRANSFORMER_ENGINE": "fast", "PATH": ""})
    assert run.returncode == 2
    assert "EXACTTRANSFORMER_ENGINE" in run.stderr and "Traceback" not in run.stderr


def test_the_engine_option_gives_the_same_walkthrough_digits() -> None:
    outs = []
    for engine in ("sympy", "structured"):
        run = subprocess.run([sys.executable, "-m", "exacttransformer", "walkthrough", "cat",
                              "--engine", engine, "--format", "json", "--digits", "12"],
                             capture_output=True, text=True, check=True)
        outs.append(run.stdout)
    import json

    a, b = (json.loads(o) for o in outs)
    assert [s["approx"] for s in a["steps"]] == [s["approx"] for s in b["steps"]]


def test_a_training_step_gives_the_same_digits_under_both_engines() -> None:
    """Backpropagation builds the same quantities along several routes; the structured rules
    must still prove its zeros (a softmax's gradient sums to 0 along a row)."""
    walk = et.load(Path(__file__).parent.parent / "worked_examples" / "journey_training_step.toml")
    lazy = walk.forward(engine="structured")
    plain = walk.forward(engine="sympy")
    assert [s.key for s in lazy] == [s.key for s in plain]
    for a, b in zip(lazy, plain, strict=True):
        for ra, rb in zip(a.value, b.value, strict=True):
            assert [to_sig(x, 20) for x in ra] == [to_sig(x, 20) for x in rb], a.key


def test_a_softmax_gradient_sums_to_exactly_zero_along_a_row() -> None:
    e = [L.exp(L.const(Fraction(k, 2))) for k in range(3)]
    s = L.total(e)
    w = [L.div(x, s) for x in e]
    g = [L.paren(L.total([L.exp(L.const(k + 5)), L.const(k)])) for k in range(3)]
    c = L.total([L.mul(wi, gi) for wi, gi in zip(w, g, strict=True)])
    grad = [L.mul(wi, L.add(gi, L.neg(c))) for wi, gi in zip(w, g, strict=True)]
    assert L.total(grad) == 0


def test_the_fixed_kernel_leaves_an_astronomical_exponential_unbounded() -> None:
    """A wide interval at a low precision (here up to 2^200) has an exponential that no
    Python integer can hold: it is left unbounded (the certifying loop then raises the
    precision) instead of failing with OverflowError; tanh of it stays within [-1, 1]."""
    k = EN._FixedKernel(64)
    huge = (-(1 << 264), 1 << 264)  # [-2^200, 2^200] in fixed point at 64 bits
    assert k.apply("exp", huge) is None
    lo, hi = k.apply("tanh", huge)
    assert (lo, hi) == (-k.unit, k.unit)
    lo, hi = k.apply("tanh", (1 << 264, 1 << 265))  # both ends past the cap: near 1
    assert k.unit - (1 << 8) < lo <= hi == k.unit
    e = k.apply("exp", (k.unit, k.unit))  # e itself, enclosed as before
    assert e[0] * 10**18 // k.unit <= 2718281828459045235 <= e[1] * 10**18 // k.unit
