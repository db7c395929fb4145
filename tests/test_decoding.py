"""The vocabulary head and decoding: logits, the vocabulary softmax, greedy, top-k, top-p,
sampling with a given ``u``, beam search, the generation loop and the key/value cache.

Exact results are compared with ``==`` (probabilities summing to 1 included: the engine puts
a row over its common denominator, see :meth:`Backend.total`).  Floats appear only against
PyTorch and against plain-float formulas written here, independently of the engine, with
the bound stated at :data:`REL`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import pytest
import sympy
from hypothesis import given, note, reject, settings
from hypothesis import strategies as st
from strategies import _OverTime, budget, matrices, rationals, time_limit, vectors
from sympy import Integer as I
from sympy import Rational as R

from exacttransformer.errors import ComputationError, InputError
from exacttransformer.exact.backends import EXACT
from exacttransformer.exact.linalg import Matrix
from exacttransformer.exact.printing import compare, sign, to_float
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.decoding_nodes import KVCache, LanguageModel, beam_search, generate
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import LayerParams, Params
from exacttransformer.graph.reference import reference_forward
from exacttransformer.graph.trace import Trace
from exacttransformer.io.files import load, loads
from exacttransformer.steps import logits as LG
from exacttransformer.steps.decoding import (
    Choice,
    DecodingConfig,
    argmax,
    cdf,
    filtered,
    rank,
    sample,
    top_k,
    top_p,
)

REL = 1e-12
"""Float bound ``|exact − float| <= REL · max(1, |exact|)``: a softmax of at most a handful
of small logits is a few float64 operations (exp, one sum, one division) per entry, each
off by at most 2^-53 ≈ 1.1e-16 relative, so an honest float result is within ~1e-15; 1e-12
leaves a margin of 10^3, while a wrong temperature, bias or transposition moves values by
1e-3 or more."""


def close(exact: object, approx: float) -> bool:
    value = to_float(exact)  # type: ignore[arg-type]
    return abs(value - approx) <= REL * max(1.0, abs(value))


def M(rows: Sequence[Sequence[object]]) -> Matrix:
    return tuple(tuple(sympy.nsimplify(x) if isinstance(x, str) else sympy.Integer(x)
                       if isinstance(x, int) else x for x in r) for r in rows)


def total(row: Sequence[sympy.Expr]) -> sympy.Expr:
    return EXACT.total(list(row))


# --- logits and the vocabulary softmax ----------------------------------------------------------

FINAL = ((I(1), I(2)), (R(1, 2), I(-1)))
W_U = ((I(1), I(0), I(1)), (I(0), I(1), I(-1)))


def test_unembed_by_hand() -> None:
    # [1, 2] W_U = [1, 2, -1]; [1/2, -1] W_U = [1/2, -1, 3/2]; b_U adds [0, 1, 1/2]
    assert LG.unembed(EXACT, FINAL, W_U) == ((1, 2, -1), (R(1, 2), -1, R(3, 2)))
    assert LG.unembed(EXACT, FINAL, W_U, (I(0), I(1), R(1, 2))) == ((1, 3, R(-1, 2)),
                                                                      (R(1, 2), 0, 2))


def test_tied_embeddings_use_E_transposed() -> None:
    E = ((I(1), I(0)), (I(0), I(1)), (I(1), I(1)))
    # each logit is final · E[word]: [1, 2] gives [1, 2, 3]
    assert LG.tied(EXACT, FINAL, E) == ((1, 2, 3), (R(1, 2), -1, R(-1, 2)))
    assert LG.tied(EXACT, FINAL, E) == LG.unembed(EXACT, FINAL, tuple(zip(*E, strict=True)))


def test_temperature_divides_the_logits() -> None:
    assert LG.scaled_logits(EXACT, ((I(1), I(-3)),), R(1, 2)) == ((2, -6),)
    assert LG.scaled_logits(EXACT, ((I(1), I(-3)),), I(2)) == ((R(1, 2), R(-3, 2)),)


def simplified(row: Sequence[sympy.Expr]) -> tuple[sympy.Expr, ...]:
    return tuple(sympy.simplify(x) for x in row)


def test_softmax_by_hand() -> None:
    e = sympy.exp
    assert LG.softmax_row(EXACT, (I(0), I(0)), I(1)) == (R(1, 2), R(1, 2))
    assert LG.softmax_row(EXACT, (I(1), I(0)), I(1)) == (e(1) / (1 + e(1)), 1 / (1 + e(1)))
    assert LG.softmax_row(EXACT, (I(1), I(0)), R(1, 2)) == (e(2) / (1 + e(2)), 1 / (1 + e(2)))


def test_softmax_of_log_weights_is_rational() -> None:
    # logits log 1, log 2, log 5 give exp = 1, 2, 5: probs 1/8, 2/8, 5/8 (the engine keeps
    # exp(log 2) unevaluated; simplify shows the number)
    row = (I(0), sympy.log(2), sympy.log(5))
    assert simplified(LG.softmax_row(EXACT, row, I(1))) == (R(1, 8), R(1, 4), R(5, 8))
    # at T = 1/2 the weights are squared: 1, 4, 25
    assert simplified(LG.softmax_row(EXACT, row, R(1, 2))) == (R(1, 30), R(2, 15), R(5, 6))
    assert simplified(LG.softmax_row(EXACT, row, I(1), stable=True)) == (
        R(1, 8), R(1, 4), R(5, 8))


HEAD = """
[model]
temperature = "1/2"
{extra}

[input]
vocab  = ["a", "b", "c"]
tokens = ["a", "c"]
E = [[1, 0], [0, 1], [1, 1]]

[weights]
W_Q = [[0, 0], [0, 0]]
W_K = [[0, 0], [0, 0]]
W_V = [[0, 0], [0, 0]]
W_O = [[0, 0], [0, 0]]
W1 = [[0, 0], [0, 0]]
W2 = [[0, 0], [0, 0]]
{head}
"""


def test_the_head_in_the_trace_with_W_U_and_b_U() -> None:
    # The block adds 0, so final = E rows: a = [1, 0], c = [1, 1].
    text = HEAD.format(extra="", head='W_U = [[1, 0, 2], [0, 1, -1]]\nb_U = [0, "1/2", 0]')
    trace = loads(text, "head.toml").forward()
    assert trace.value("final", None, None) == ((1, 0), (1, 1))
    assert trace.value("logits", None, None) == ((1, R(1, 2), 2), (1, R(3, 2), 1))
    assert trace.value("scaled_logits", None, None) == ((2, 1, 4), (2, 3, 2))
    assert trace.value("exp_logits", None, None)[1] == (sympy.exp(2), sympy.exp(3), sympy.exp(2))
    assert trace.value("exp_logits_sum", None, None)[1] == (2 * sympy.exp(2) + sympy.exp(3),)
    probs = trace.value("probs", None, None)
    assert probs[1][1] == sympy.exp(3) / (2 * sympy.exp(2) + sympy.exp(3))
    assert all(total(row) == 1 for row in probs)
    assert "shifted_logits" not in trace.names()


def test_the_head_with_tied_embeddings_and_a_stable_softmax() -> None:
    text = HEAD.format(extra='tie_embeddings = true\nsoftmax = "stable"', head="")
    trace = loads(text, "tied.toml").forward()
    # final [1, 1] · E rows = [1, 1, 2]; at T = 1/2: [2, 2, 4]; minus the maximum: [-2, -2, 0]
    assert trace.value("logits", None, None)[1] == (1, 1, 2)
    assert trace.value("shifted_logits", None, None)[1] == (-2, -2, 0)
    assert trace.value("exp_logits", None, None)[1] == (sympy.exp(-2), sympy.exp(-2), 1)
    assert all(total(row) == 1 for row in trace.value("probs", None, None))
    assert trace.get("logits", None, None).formula == "final Eᵀ (tied embeddings)"


logit_rows = st.lists(st.one_of(rationals(4), st.sampled_from(
    [sympy.sqrt(2), -sympy.sqrt(3) / 2, sympy.pi / 4, sympy.exp(R(1, 2))])),
    min_size=1, max_size=6)
# (no log(…) among them: the exact backend keeps exp(log 3) unevaluated in a sum but sympy
# evaluates it to 3 in a product, so such a row is 4/(1 + exp(log 3)), not 1, structurally)
temperatures = st.sampled_from([I(1), R(1, 2), I(2), R(3, 4), sympy.sqrt(2)])


@given(logit_rows, temperatures, st.booleans())
def test_probs_sum_to_exactly_one_and_match_the_float_formula(row: list, t: sympy.Expr,
                                                              stable: bool) -> None:
    probs = LG.softmax_row(EXACT, tuple(row), t, stable)
    assert total(probs) == 1
    # the float formula, written here: exp(l/T - max) / Σ exp(l/T - max)
    scaled = [to_float(x) / to_float(t) for x in row]
    top = max(scaled)
    exps = [math.exp(s - top) for s in scaled]
    for p, e in zip(probs, exps, strict=True):
        assert close(p, e / math.fsum(exps))


@given(logit_rows, temperatures)
def test_the_probability_order_is_the_logit_order(row: list, t: sympy.Expr) -> None:
    probs = LG.softmax_row(EXACT, tuple(row), t)
    assert rank(EXACT, probs) == rank(EXACT, tuple(row))


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.booleans(), st.data())
def test_the_head_matches_the_float_reference(n: int, d: int, V: int, tie: bool,
                                              data: st.DataObject) -> None:
    vocab = tuple(f"w{i}" for i in range(V))
    E = data.draw(matrices(V, d, rationals(2)))
    zero = tuple(tuple(I(0) for _ in range(d)) for _ in range(d))
    layer = LayerParams(W_Q=zero, W_K=zero, W_V=zero, W_O=zero, W1=zero, W2=zero)
    head = {} if tie else {"W_U": data.draw(matrices(d, V, rationals(2))),
                           "b_U": data.draw(vectors(V, rationals(2)))}
    config = ModelConfig(tie_embeddings=tie, temperature=data.draw(temperatures),
                         softmax=data.draw(st.sampled_from(["plain", "stable"])))
    tokens = tuple(data.draw(st.lists(st.sampled_from(vocab), min_size=n, max_size=n)))
    args = (config, Params(layers=(layer,), E=E, **head), Inputs(tokens=tokens, vocab=vocab))
    trace, ref = forward(*args), reference_forward(*args)
    for name in ("logits", "scaled_logits", "exp_logits", "exp_logits_sum", "probs"):
        exact, approx = trace.value(name, None, None), ref[(name, None, None)]
        for er, ar in zip(exact, approx, strict=True):
            assert all(close(e, a) for e, a in zip(er, ar, strict=True)), name


def test_probs_against_torch_softmax() -> None:
    torch = pytest.importorskip("torch")
    logits = ((I(2), R(-1, 2), sympy.sqrt(2), I(0)), (R(1, 3), R(1, 3), I(-4), sympy.log(3)))
    for t in (I(1), R(7, 10), I(3)):
        tensor = torch.tensor([[to_float(x) for x in r] for r in logits], dtype=torch.float64)
        want = torch.nn.functional.softmax(tensor / to_float(t), dim=-1).tolist()
        for r, w in zip(logits, want, strict=True):
            probs = LG.softmax_row(EXACT, r, t)
            assert all(close(p, x) for p, x in zip(probs, w, strict=True))


# --- one probability row: greedy, top-k, top-p, sampling ------------------------------------------

P4 = (R(1, 10), R(4, 10), R(4, 10), R(1, 10))


def test_greedy_is_the_exact_argmax() -> None:
    assert argmax(EXACT, (R(1, 5), R(3, 5), R(1, 5))) == Choice(1, (1,))


def test_an_exact_tie_is_reported_and_the_lowest_id_wins() -> None:
    assert argmax(EXACT, P4) == Choice(1, (1, 2))
    # log 6 and log 2 + log 3 are written differently but are the same number
    row = (sympy.log(2) + sympy.log(3), I(1), sympy.log(6))
    assert argmax(EXACT, row) == Choice(0, (0, 2))


def test_a_difference_floats_cannot_see_is_decided_exactly() -> None:
    tiny = R(1, 10**30)
    assert float(1 + tiny) == float(1)
    assert argmax(EXACT, (I(1), 1 + tiny, I(0))) == Choice(1, (1,))


def test_ranking_keeps_equal_values_in_id_order() -> None:
    assert rank(EXACT, (I(1), I(3), I(3), I(0), I(3))) == (1, 2, 4, 0, 3)


def test_top_k_keeps_the_k_most_probable_and_renormalizes() -> None:
    f = top_k(EXACT, (R(1, 2), R(1, 8), R(1, 4), R(1, 8)), 2)
    assert f.kept == (0, 2)
    assert f.probs == (R(2, 3), 0, R(1, 3), 0)
    assert f.boundary_ties == ()


def test_top_k_reports_a_tie_at_the_boundary_and_keeps_the_lower_id() -> None:
    f = top_k(EXACT, (R(1, 2), R(1, 4), R(1, 4)), 2)
    assert f.kept == (0, 1) and f.boundary_ties == (1, 2)
    assert f.probs == (R(2, 3), R(1, 3), 0)


def test_top_k_larger_than_the_vocabulary_keeps_everything() -> None:
    assert top_k(EXACT, P4, 9).probs == P4


def test_top_k_below_1_is_refused() -> None:
    with pytest.raises(InputError) as info:
        top_k(EXACT, P4, 0)
    assert info.value.key == "decoding.top_k"


def test_top_p_keeps_the_shortest_prefix_reaching_p() -> None:
    f = top_p(EXACT, P4, R(1, 2))
    assert f.order == (1, 2, 0, 3)
    assert f.cumsum == (R(2, 5), R(4, 5), R(9, 10), 1)
    assert f.kept == (1, 2) and f.probs == (0, R(1, 2), R(1, 2), 0)


def test_top_p_reaching_p_exactly_stops_there() -> None:
    # 2/5 = 0.4 is reached by the first token alone (>= p, compared exactly)
    assert top_p(EXACT, P4, R(2, 5)).kept == (1,)
    assert top_p(EXACT, P4, R(4, 5)).kept == (1, 2)
    assert top_p(EXACT, P4, R(4, 5) + R(1, 10**40)).kept == (1, 2, 0)
    assert top_p(EXACT, P4, I(1)).kept == (1, 2, 0, 3)


def test_top_p_on_irrational_probabilities() -> None:
    # exp weights e^2, e, 1: the first is e^2/(e^2+e+1) = 0.665…, below 0.7
    probs = LG.softmax_row(EXACT, (I(2), I(1), I(0)), I(1))
    assert top_p(EXACT, probs, R(7, 10)).kept == (0, 1)
    assert top_p(EXACT, probs, R(66, 100)).kept == (0,)


def test_sampling_walks_the_cdf_in_vocabulary_order() -> None:
    # cumulative sums 1/10, 1/2, 9/10, 1: u = 0.42 falls in [1/10, 1/2) -> token 1
    assert sample(EXACT, P4, R(42, 100)) == (1, (R(1, 10), R(1, 2), R(9, 10), 1))
    assert sample(EXACT, P4, I(0))[0] == 0
    assert sample(EXACT, P4, R(1, 10))[0] == 1  # exactly on a sum: the next token
    assert sample(EXACT, P4, R(9, 10))[0] == 3
    assert sample(EXACT, P4, R(99, 100))[0] == 3


def test_sampling_never_draws_a_token_of_probability_0() -> None:
    assert sample(EXACT, (I(0), R(1, 2), I(0), R(1, 2)), I(0))[0] == 1
    assert sample(EXACT, (I(0), R(1, 2), I(0), R(1, 2)), R(1, 2))[0] == 3


def test_u_at_or_above_the_total_is_refused() -> None:
    with pytest.raises(ComputationError):
        sample(EXACT, P4, I(1))


def test_both_filters_keep_the_tokens_kept_by_both() -> None:
    row = (R(1, 2), R(1, 8), R(1, 4), R(1, 8))
    # top-k 3 keeps 0, 2, 1; top-p 3/4 keeps 0, 2: together 0 and 2
    assert filtered(EXACT, row, row, DecodingConfig(top_k=3, top_p=R(3, 4))) == (
        R(2, 3), 0, R(1, 3), 0)
    assert filtered(EXACT, row, row, DecodingConfig()) == row


@st.composite
def distributions(draw: st.DrawFn) -> tuple[sympy.Rational, ...]:
    """Exact rational distributions: positive integer weights (repeats make ties) over
    their sum."""
    weights = draw(st.lists(st.integers(1, 6), min_size=1, max_size=7))
    return tuple(R(w, sum(weights)) for w in weights)


probabilities = st.integers(1, 60).flatmap(lambda q: st.integers(1, q).map(lambda k: R(k, q)))
"""Exact p in (0, 1]: ``k/q`` with ``1 <= k <= q <= 60``."""


@given(distributions(), probabilities)
def test_top_p_keeps_the_smallest_prefix_whose_sum_reaches_p(row: tuple, p: sympy.Rational) -> None:
    f = top_p(EXACT, row, p)
    kept = [Fraction(int(row[i].p), int(row[i].q)) for i in f.kept]
    # the order is largest first, equal values in id order (checked with Fractions)
    assert list(f.order) == sorted(range(len(row)), key=lambda i: (-row[i], i))
    assert f.kept == f.order[:len(f.kept)]
    assert sum(kept) >= Fraction(int(p.p), int(p.q))
    assert sum(kept[:-1]) < Fraction(int(p.p), int(p.q))
    assert total(f.probs) == 1
    assert all(f.probs[i] == row[i] / sum(row[j] for j in f.kept) for i in f.kept)
    assert all(f.probs[i] == 0 for i in range(len(row)) if i not in f.kept)


@given(distributions(), st.integers(1, 8))
def test_top_k_keeps_k_tokens_none_less_probable_than_a_dropped_one(row: tuple, k: int) -> None:
    f = top_k(EXACT, row, k)
    assert len(f.kept) == min(k, len(row))
    dropped = [i for i in range(len(row)) if i not in f.kept]
    assert all(row[i] >= row[j] for i in f.kept for j in dropped)
    assert total(f.probs) == 1
    assert bool(f.boundary_ties) == any(row[i] == row[f.kept[-1]] for i in dropped)


@given(distributions(), st.integers(0, 999))
def test_sample_is_the_inverse_cdf(row: tuple, thousandths: int) -> None:
    u = R(thousandths, 1000)
    i, sums = sample(EXACT, row, u)
    assert sums == cdf(EXACT, row)
    before = sums[i - 1] if i else 0
    assert before <= u < sums[i] and row[i] > 0


# --- decoding nodes in the trace ----------------------------------------------------------------

DECODE = """
[input]
vocab  = ["coming", "getting", "over", "here", "banana"]
{node} = [[{row}]]

[decoding]
{settings}
"""


def decode(row: str, settings: str, node: str = "logits") -> Trace:
    return loads(DECODE.format(row=row, settings=settings, node=node), "decode.toml").forward()


def test_greedy_node_names_an_exact_tie() -> None:
    trace = decode('"log(2) + log(3)", "1", "log(6)", "0", "-3"', "")
    assert trace.value("greedy", None, None) == ((0,),)
    assert trace.get("greedy", None, None).formula.endswith(
        "the next token is 0 ('coming'); exact tie between 0 ('coming'), 2 ('over'): "
        "the lowest id wins")


def test_decoding_nodes_on_printed_probabilities() -> None:
    # A textbook's probabilities 0.4, 0.2, 0.2, 0.1, 0.1 given directly (no logits): the
    # decoding steps rank them as given.
    trace = decode('"0.4", "0.2", "0.2", "0.1", "0.1"',
                   'top_k = 2\ntop_p = "0.7"\nu = "0.42"', node="probs")
    v = trace.value
    assert v("greedy", None, None) == ((0,),)
    assert v("top_k_probs", None, None) == ((R(2, 3), R(1, 3), 0, 0, 0),)
    assert v("top_p_sorted", None, None) == ((R(2, 5), R(1, 5), R(1, 5), R(1, 10), R(1, 10)),)
    assert v("top_p_cumsum", None, None) == ((R(2, 5), R(3, 5), R(4, 5), R(9, 10), 1),)
    assert v("top_p_probs", None, None) == ((R(1, 2), R(1, 4), R(1, 4), 0, 0),)
    assert v("filtered_probs", None, None) == ((R(2, 3), R(1, 3), 0, 0, 0),)
    assert v("sample_cdf", None, None) == ((R(2, 3), 1, 1, 1, 1),)
    assert v("sample", None, None) == ((0,),)
    get = trace.get
    assert "1 ('getting'), 2 ('over') tie at the boundary" in get("top_k_probs", None, None).formula
    assert "the nucleus is 0 ('coming'), 1 ('getting'), 2 ('over')" in get(
        "top_p_probs", None, None).formula
    assert "u = 0.42" in get("sample", None, None).formula


def test_the_sample_with_u_042_is_reproducible() -> None:
    # Without filters: cdf 2/5, 3/5, 4/5, 9/10, 1; 0.42 is in [2/5, 3/5): "getting".
    runs = [decode('"0.4", "0.2", "0.2", "0.1", "0.1"', 'u = "0.42"', node="probs")
            for _ in range(2)]
    assert [t.value("sample_cdf", None, None) for t in runs] == [
        ((R(2, 5), R(3, 5), R(4, 5), R(9, 10), 1),)] * 2
    assert [t.value("sample", None, None) for t in runs] == [((1,),), ((1,),)]
    # the same from logits log 4, log 2, log 2, 0, 0 (probabilities 0.4, 0.2, …)
    trace = decode('"log(4)", "log(2)", "log(2)", "0", "0"', 'u = "0.42"')
    assert trace.value("sample", None, None) == ((1,),)


def test_given_probabilities_that_never_reach_p_are_refused() -> None:
    # rounded probabilities summing to 0.9: a nucleus of 0.95 cannot be reached
    with pytest.raises(ComputationError):
        decode('"0.4", "0.2", "0.2", "0.1", "0"', 'top_p = "0.95"', node="probs")


def test_the_decoding_comparison_example() -> None:
    trace = load("worked_examples/journey_decoding.toml").forward()
    assert trace.value("greedy", None, None) == ((0,),)
    assert trace.value("top_k_probs", None, None)[0][1:] == (0, sympy.exp(R(15, 8)) / (
        sympy.exp(R(15, 8)) + sympy.exp(R(21, 8))), 0, 0, 0, 0)
    assert trace.value("sample", None, None) == ((0,),)
    assert total(trace.value("top_p_probs", None, None)[0]) == 1


# --- running a model: generation, the KV cache, beam search --------------------------------------

VOCAB = ("a", "b", "c")


def small_model(**config: object) -> LanguageModel:
    """Three words, d_model 2, one layer: small enough for exact generation in well under a
    second per pass."""
    eye = M([[1, 0], [0, 1]])
    layer = LayerParams(W_Q=M([[1, 0], [0, 1]]), W_K=M([[0, 1], [1, 0]]), W_V=eye,
                        W_O=M([["1/2", 0], [0, 1]]), W1=eye, W2=M([[1, -1], [0, 1]]))
    params = Params(layers=(layer,), E=M([[1, 0], [0, 1], [1, 1]]),
                    W_U=M([[1, 0, 1], [0, 1, "1/2"]]), P=M([[0, 0], [0, 1], [1, 0], [1, 1]]))
    return LanguageModel(ModelConfig(mask="causal", **config), params, VOCAB)  # type: ignore


CACHE_CONFIGS = [
    {}, {"positional": "rope"}, {"positional": "sinusoidal", "positional_base": I(100)},
    {"positional": "learned"}, {"softmax": "stable", "temperature": R(1, 2)},
    {"norm": "pre", "norm_eps": R(1, 100)}, {"norm": "post", "norm_eps": R(1, 100)},
    {"final_norm": True, "norm_eps": R(1, 100)}, {"scale": "none"},
]


@pytest.mark.parametrize("config", CACHE_CONFIGS, ids=lambda c: "-".join(map(str, c)) or "plain")
def test_the_kv_cache_gives_exactly_the_same_logits(config: dict) -> None:
    model = small_model(**config)
    ids = [2, 0, 1, 2]
    cache = KVCache()
    for n in range(1, len(ids) + 1):
        assert model.cached_logits(EXACT, cache, ids[n - 1]) == model.full_logits(EXACT, ids[:n])
    assert cache.length == len(ids)


def test_the_kv_cache_needs_a_causal_mask() -> None:
    model = LanguageModel(ModelConfig(), small_model().params, VOCAB)
    with pytest.raises(ComputationError):
        model.cached_logits(EXACT, KVCache(), 0)


def test_generation_with_and_without_the_cache_is_identical() -> None:
    model = small_model(positional="rope")
    with_cache = generate(EXACT, model, [2, 0], 3)
    without = generate(EXACT, model, [2, 0], 3, cache=False)
    assert with_cache == without
    assert [s.ids for s in with_cache] == [(2, 0), (2, 0, with_cache[0].chosen),
                                           (2, 0, with_cache[0].chosen, with_cache[1].chosen)]


def test_generation_appends_the_greedy_token_and_runs_again() -> None:
    model = small_model()
    steps = generate(EXACT, model, [0], 3)
    ids = [0]
    for s in steps:
        logits = model.full_logits(EXACT, ids)
        probs, _ = model.temperature_row(EXACT, logits)
        assert (s.ids, s.logits, s.probs) == (tuple(ids), logits, probs)
        assert s.chosen == argmax(EXACT, probs).index
        ids.append(s.chosen)


def test_generation_samples_with_one_u_per_step() -> None:
    model = small_model()
    settings = DecodingConfig(u=(I(0), R(999, 1000)))
    steps = generate(EXACT, model, [0], 3, settings)
    assert steps[0].chosen == 0  # u = 0: the first token of positive probability
    assert steps[1].chosen == 2  # u just below 1: the last token
    assert steps[2].chosen == argmax(EXACT, steps[2].probs).index  # no u left: greedy


@st.composite
def cached_models(draw: st.DrawFn) -> tuple[LanguageModel, list[int]]:
    """Small random causal models for the cache, kept where exact arithmetic is quick
    (measured): two tokens; one layer of 1-2 heads with any positional scheme, or one head
    with a layer norm and rational positions (none, learned), or two one-head layers with
    rational positions.  (The fixed cases above feed four tokens.)
    A norm's square root of sums of sines or exponentials takes sympy seconds to build."""
    layers = 2 if draw(st.integers(0, 3)) == 0 else 1  # two layers are the slow ones
    norm = draw(st.sampled_from(["none", "pre", "post"])) if layers == 1 else "none"
    heads = draw(st.integers(1, 2)) if layers == 1 and norm == "none" else 1
    rational = layers > 1 or norm != "none"
    positional = draw(st.sampled_from(
        ["none", "learned"] if rational else ["none", "sinusoidal", "learned", "rope"]))
    d = 2
    config = ModelConfig(
        heads=heads, mask="causal", norm=norm, norm_eps=R(1, 100), positional=positional,
        positional_base=I(100), softmax=draw(st.sampled_from(["plain", "stable"])),
        activation=draw(st.sampled_from(["relu", "none"])),
        temperature=draw(st.sampled_from([I(1), R(1, 2)])),
        tie_embeddings=draw(st.booleans()))
    small = rationals(1)
    lps = tuple(LayerParams(
        W_Q=draw(matrices(d, 2 * heads, small)), W_K=draw(matrices(d, 2 * heads, small)),
        W_V=draw(matrices(d, 2 * heads, small)), W_O=draw(matrices(2 * heads, d, small)),
        W1=draw(matrices(d, 2, small)), W2=draw(matrices(2, d, small)),
        b_Q=draw(st.none() | vectors(2 * heads, small))) for _ in range(layers))
    params = Params(layers=lps, E=draw(matrices(3, d, rationals(2))),
                    P=draw(matrices(3, d, small)),
                    W_U=None if config.tie_embeddings else draw(matrices(d, 3, small)))
    ids = draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))
    return LanguageModel(config, params, VOCAB), ids


@budget(8)
@given(cached_models())
def test_the_kv_cache_equals_recomputing_on_random_models(case: tuple) -> None:
    model, ids = case
    note(f"{model.config}")
    cache = KVCache()
    try:
        with time_limit(1.5):
            for n in range(1, len(ids) + 1):
                cached = model.cached_logits(EXACT, cache, ids[n - 1])
                assert cached == model.full_logits(EXACT, ids[:n])
    except ComputationError:
        reject()  # a constant row under a norm: refused alike by both paths
    except _OverTime:  # the time limit: not a failure
        reject()


def brute_force_best(model: LanguageModel, prompt: list[int], depth: int,
                     count: int) -> list[tuple[tuple[int, ...], sympy.Expr]]:
    """Every continuation of ``depth`` tokens, scored exactly, the ``count`` best."""
    scored = []
    for seq in itertools.product(range(len(model.vocab)), repeat=depth):
        score: sympy.Expr = I(1)
        for n in range(depth):
            probs, _ = model.temperature_row(EXACT, model.full_logits(EXACT, prompt + list(seq[:n])))
            score = score * probs[seq[n]]
        scored.append((seq, score))

    def order(a: tuple, b: tuple) -> int:
        c = compare(b[1], a[1])
        return c if c else (a[0] > b[0]) - (a[0] < b[0])

    return sorted(scored, key=functools.cmp_to_key(order))[:count]


def test_beam_search_as_wide_as_the_vocabulary_finds_the_best_pairs() -> None:
    # Width 3 keeps every first token, so after two steps the beams are the 3 best of all
    # 9 two-token continuations.
    model = small_model()
    history = beam_search(EXACT, model, [0, 2], 3, 2)
    best = brute_force_best(model, [0, 2], 2, 3)
    assert [b.ids for b in history[1]] == [seq for seq, _ in best]
    assert all(sign(b.score - s) == 0 for b, (_, s) in zip(history[1], best, strict=True))
    assert [b.ids for b in history[0]] == [seq for seq, _ in brute_force_best(model, [0, 2], 1, 3)]


def test_beam_search_of_width_1_is_greedy_generation() -> None:
    model = small_model()
    history = beam_search(EXACT, model, [1], 1, 3)
    greedy = [s.chosen for s in generate(EXACT, model, [1], 3)]
    assert history[-1][0].ids == tuple(greedy)
    probs = [s.probs[s.chosen] for s in generate(EXACT, model, [1], 3)]
    assert history[-1][0].score == probs[0] * probs[1] * probs[2]


def test_beam_search_keeps_width_beams_best_first() -> None:
    model = small_model()
    for beams in beam_search(EXACT, model, [2], 2, 2):
        assert len(beams) == 2
        assert sign(beams[0].score - beams[1].score) >= 0


def test_a_beam_wider_than_the_vocabulary_is_refused() -> None:
    with pytest.raises(InputError) as info:
        beam_search(EXACT, small_model(), [0], 4, 1)
    assert info.value.key == "decoding.beam_width" and "vocabulary size 3" in str(info.value)


# --- generation and beams in the trace -------------------------------------------------------------

JOURNEY = """
[model]
mask = "causal"
positional = "learned"

[input]
vocab  = ["a", "b", "c"]
tokens = ["a", "c"]
E = [[1, 0], [0, 1], [1, 1]]

[weights]
P = [[0, 0], [0, 1], [1, 0], [1, 1]]
W_Q = [[1, 0], [0, 1]]
W_K = [[0, 1], [1, 0]]
W_V = [[1, 0], [0, 1]]
W_O = [["1/2", 0], [0, 1]]
W1 = [[1, 0], [0, 1]]
W2 = [[1, -1], [0, 1]]
W_U = [[1, 0, 1], [0, 1, "1/2"]]

[decoding]
steps = 3
beam_width = 2
{extra}
"""


def test_generation_and_beam_steps_in_the_trace() -> None:
    trace = loads(JOURNEY.format(extra=""), "journey.toml").forward()
    model = small_model(positional="learned")
    steps = generate(EXACT, model, [0, 2], 3)
    assert trace.value("gen.1", None, None) == (trace.value("probs", None, None)[-1],)
    for s, st_ in enumerate(steps, start=1):
        gen = trace.get(f"gen.{s}", None, None)
        assert gen.value == (st_.probs,)
        text = " ".join(VOCAB[i] for i in st_.ids)
        assert f"reads {text!r}; greedy: appends {st_.chosen} ({VOCAB[st_.chosen]!r})" in gen.formula
        assert "keys and values cached" in gen.formula
    history = beam_search(EXACT, model, [0, 2], 2, 3)
    for s, beams in enumerate(history, start=1):
        assert trace.value(f"beam.{s}", None, None) == (tuple(b.score for b in beams),)


def test_generation_without_the_cache_in_the_trace_is_identical() -> None:
    cached = loads(JOURNEY.format(extra=""), "journey.toml").forward()
    fresh = loads(JOURNEY.format(extra="kv_cache = false"), "journey.toml").forward()
    for s in (1, 2, 3):
        assert cached.value(f"gen.{s}", None, None) == fresh.value(f"gen.{s}", None, None)
    assert "recomputed from scratch" in fresh.get("gen.1", None, None).formula


def test_the_storm_journey_generates_from_the_cached_model() -> None:
    trace = load("worked_examples/journey_storm.toml").forward()
    assert trace.value("gen.1", None, None) == (trace.value("probs", None, None)[-1],)
    vocab = ("The", "storm", "is", "coming", "getting", "over", "here", "strong", "banana")
    chosen = int(trace.value("sample", None, None)[0][0])
    assert f"appends {chosen} ({vocab[chosen]!r})" in trace.get("gen.1", None, None).formula
