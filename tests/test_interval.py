"""Enclosures contain the exact value and shrink as the precision grows."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from exacttransformer.errors import ComputationError
from exacttransformer.exact.interval import enclose

R = sympy.Rational

# --------------------------------------------------------------------------- strategies

small_rationals = st.builds(R, st.integers(-20, 20), st.integers(1, 12))
positive_rationals = st.builds(R, st.integers(1, 30), st.integers(1, 12))
leaves = st.one_of(
    small_rationals,
    st.sampled_from([sympy.pi, sympy.E]),
    positive_rationals.map(sympy.sqrt),
)


def _positive(x: sympy.Expr) -> sympy.Expr:
    return 1 + x**2  # a positive expression built from any real x


def _extend(children: st.SearchStrategy[sympy.Expr]) -> st.SearchStrategy[sympy.Expr]:
    return st.one_of(
        st.builds(sympy.Add, children, children),
        st.builds(sympy.Mul, children, children),
        st.builds(lambda a, b: a / _positive(b), children, children),
        st.builds(lambda a: sympy.exp(a / _positive(a)), children),
        st.builds(lambda a: sympy.log(_positive(a)), children),
        st.builds(sympy.sin, children),
        st.builds(sympy.cos, children),
        st.builds(sympy.tanh, children),
        st.builds(sympy.erf, children),
        st.builds(lambda a, n: a**n, children, st.integers(0, 3)),
        st.builds(lambda a, e: _positive(a) ** e, children, st.sampled_from([R(1, 2), R(-2, 3)])),
        st.builds(lambda a: sympy.Pow(2, a / _positive(a)), children),
    )


expressions = st.recursive(leaves, _extend, max_leaves=8)


def _fraction(v: mpmath.mpf) -> Fraction:
    return Fraction(*mpmath.libmp.to_rational(v._mpf_))


# --------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(expressions)
def test_enclosure_contains_the_value_and_shrinks(x: sympy.Expr) -> None:
    # Reference: sympy's evalf at 60 digits; it is not rigorous, so we allow it an error of
    # 10^-50 relative, far below what sympy achieves and far above what 200 bits resolve.
    reference = Fraction(str(sympy.N(x, 60)))
    size = max(Fraction(1), abs(reference))
    slack = Fraction(1, 10**50) * size
    widths = []
    for prec in (53, 100, 200):
        lo, hi = (_fraction(v) for v in enclose(x, prec))
        assert lo <= hi
        assert lo - slack <= reference <= hi + slack
        widths.append(hi - lo)
    assert widths[2] <= widths[0]
    assert widths[2] <= Fraction(1, 2**120) * size


# --------------------------------------------------------------------------- named cases


def test_rational_that_is_binary_gives_a_point() -> None:
    lo, hi = enclose(R(3, 8), 10)
    assert lo == hi == mpmath.mpf(0.375)


def test_one_third_is_tight() -> None:
    lo, hi = (_fraction(v) for v in enclose(R(1, 3), 64))
    assert lo < Fraction(1, 3) < hi and hi - lo <= Fraction(1, 2**62)


@pytest.mark.parametrize(
    ("x", "value"),
    [
        (sympy.pi, "3.14159265358979323846264338327950288419716939937510582"),
        (sympy.E, "2.71828182845904523536028747135266249775724709369995957"),
        (sympy.erf(R(1, 2)), "0.52049987781304653768274665389196452873645157575796365"),
        (sympy.erf(-3), "-0.99997790950300141455862722387041767962015229291260075"),
        (sympy.tanh(R(-7, 3)), "-0.98136808130986662545679776724182311750602871482931834"),
        (sympy.exp(sympy.sqrt(2)), "4.11325037878292751717358181514030450240166394315110961"),
        (sympy.Integer(2) ** R(1, 3), "1.25992104989487316476721060727822835057025146470150798"),
        (sympy.cos(10**30), "-0.99593119440539570239424858799704864113024773495504827"),
    ],
)
def test_known_values(x: sympy.Expr, value: str) -> None:
    lo, hi = (_fraction(v) for v in enclose(x, 150))
    known = Fraction(value)
    assert lo - Fraction(1, 10**50) <= known <= hi + Fraction(1, 10**50)
    assert hi - lo < Fraction(1, 10**40)


def test_erf_of_huge_argument_saturates_at_one() -> None:
    lo, hi = (_fraction(v) for v in enclose(sympy.erf(10**100), 64))
    assert lo <= 1 <= hi and hi - lo < Fraction(1, 2**60)


def test_exactly_representable_float_is_accepted() -> None:
    assert enclose(sympy.Float(0.5), 64) == (mpmath.mpf(0.5), mpmath.mpf(0.5))


@pytest.mark.parametrize(
    "x", [sympy.Float(0.1), sympy.Symbol("x"), sympy.I, sympy.oo, sympy.zoo, sympy.gamma(R(1, 3))]
)
def test_unsupported_nodes_are_refused(x: sympy.Expr) -> None:
    with pytest.raises(ComputationError):
        enclose(x, 64)


def test_unknown_node_error_names_the_type() -> None:
    with pytest.raises(ComputationError, match="gamma"):
        enclose(1 + sympy.gamma(R(1, 3)), 64)


@pytest.mark.parametrize(
    "x",
    [
        sympy.Pow(sympy.sqrt(2) - 2, R(1, 2), evaluate=False),
        sympy.log(sympy.sqrt(2) - 2, evaluate=False),
    ],
)
def test_non_real_values_are_refused(x: sympy.Expr) -> None:
    with pytest.raises(ComputationError, match="not real"):
        enclose(x, 64)


def test_root_of_an_unsimplified_zero_contains_zero() -> None:
    zero = (sympy.sqrt(2) + 1) * (sympy.sqrt(2) - 1) - 1
    assert zero != 0  # sympy does not simplify it: the enclosure must cope
    lo, hi = enclose(sympy.sqrt(zero), 256)
    assert lo <= 0 <= hi and hi < mpmath.mpf(2) ** -100


def test_division_by_a_near_zero_can_be_unbounded() -> None:
    zero = (sympy.sqrt(2) + 1) * (sympy.sqrt(2) - 1) - 1
    lo, hi = enclose(1 / (zero + R(1, 10**40)), 64)
    assert lo <= 10**40 <= hi  # infinite ends allowed: rigorous, just not tight


def test_global_mpmath_state_is_unchanged() -> None:
    before = (mpmath.mp.prec, mpmath.iv.prec)
    enclose(sympy.exp(sympy.pi) + sympy.erf(1), 1000)
    assert (mpmath.mp.prec, mpmath.iv.prec) == before


def test_deep_expressions_do_not_recurse() -> None:
    # A recursive walk would need several frames per level and overflow Python's default
    # limit of 1000. (sympy's own evaluation recurses, so the nodes are built unevaluated,
    # each hashed as it is made.)
    x: sympy.Expr = R(1, 2)
    for _ in range(900):
        x = sympy.sin(x, evaluate=False)
        hash(x)
    lo, hi = enclose(x, 64)
    assert 0 < lo <= hi < 1


def test_shared_subtrees_are_evaluated_once() -> None:
    # x_{k+1} = x_k * (x_k + 1): 2^40 leaves as a tree, 40 distinct nodes as a graph.
    x: sympy.Expr = sympy.exp(sympy.sqrt(2)) / 100
    for _ in range(40):
        x = x * (x + 1)
    lo, hi = enclose(x, 64)
    assert 0 < lo <= hi


def test_min_max_abs() -> None:
    a, b = sympy.sqrt(2), R(7, 5)
    lo, hi = enclose(sympy.Max(a, b, evaluate=False), 64)
    assert R(7, 5) < lo <= hi < R(3, 2)
    lo, hi = enclose(sympy.Min(a, b, evaluate=False), 64)
    assert (lo, hi) == enclose(b, 64)
    lo, hi = enclose(sympy.Abs(3 - sympy.pi, evaluate=False), 64)
    assert R(1, 10) < lo <= hi < R(15, 100)


def test_bad_precision_is_refused() -> None:
    with pytest.raises(ValueError):
        enclose(sympy.pi, 1)
