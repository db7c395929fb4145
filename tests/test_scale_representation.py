"""The structured engine's representation at scale (issue 7): row blocks, kept-whole entries,
the planned 1/S collapse, visible sums of squares, lazily shown steps.

Large models switch these on (a row over more than :data:`~exacttransformer.exact.rows.OUT_TERMS_LIMIT`
monomials becomes a block), so here the limit is lowered to force them on small models, and
the results are compared *exactly* with the representation they replace: the canonical
expansion (:func:`~exacttransformer.exact.enclosure.expand`) of every value is the same, structurally, and
the certified digits agree with plain sympy.  Under CI this file also runs with python-flint
(``fmpq_mat`` blocks, ``arb_mat`` enclosures) and must give the same results.
"""

from __future__ import annotations

import dataclasses
import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import pytest
import sympy
from hypothesis import given, note
from strategies import Model, budget, exact_trace, models
from test_structured import random_block, structured_trace

from exacttransformer.errors import ComputationError
from exacttransformer.exact import enclosure as EN
from exacttransformer.exact import lazy as L
from exacttransformer.exact import rows as RW
from exacttransformer.exact.backends import STRUCTURED
from exacttransformer.exact.lazy import Lazy
from exacttransformer.exact.printing import to_sig
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.trace import Step

R = sympy.Rational


@contextmanager
def out_terms_limit(n: int) -> Iterator[None]:
    saved = RW.OUT_TERMS_LIMIT
    RW.OUT_TERMS_LIMIT = n
    RW._BASES.clear()
    try:
        yield
    finally:
        RW.OUT_TERMS_LIMIT = saved
        RW._BASES.clear()


def row_of_atoms(rng: random.Random, width: int, atoms: list[Lazy]) -> list[Lazy]:
    """Entries of a constant and two atoms each, entry ``j`` over atoms ``2j`` and ``2j+1``:
    a basis of ``2·width + 1`` monomials (past a block's limit, not past keeping inputs
    whole)."""
    row = []
    for j in range(width):
        x = L.const(rng.randint(1, 3))
        for a in atoms[2 * j:2 * j + 2]:
            x = x + a * L.const(sympy.Rational(rng.choice([-5, -3, -1, 1, 2, 5]), rng.randint(1, 4)))
        row.append(x)
    return row


def block_arg(entry: Lazy) -> Lazy:
    """The argument of the one atom a kept-whole entry is."""
    ((mono, coeff),) = entry.terms.items()
    ((atom, power),) = mono
    assert (atom.kind, power, coeff) == ("paren", 1, 1)
    assert atom.arg is not None
    return atom.arg


@pytest.mark.parametrize("seed", range(4))
def test_a_row_block_has_exactly_the_terms_of_the_entry_by_entry_product(seed: int) -> None:
    rng = random.Random(seed)
    atoms = [L.exp(L.const(R(k, 3))) for k in range(1, 18)] + [L.sqrt(L.const(k)) for k in (2, 3, 5)]
    a = [row_of_atoms(rng, 10, atoms) for _ in range(3)]
    w = [[L.const(R(rng.randint(-4, 4), 4)) for _ in range(5)] for _ in range(10)]
    w[2] = [L.const(0)] * 5  # an input the weights ignore
    out = RW.matmul(a, w)
    for i, row in enumerate(a):
        # the block path: more monomials than the limit, too few to keep inputs whole
        assert RW.OUT_TERMS_LIMIT < len(RW._basis(row)) <= L.DOT_TERMS_LIMIT * len(row)
        for c in range(5):
            expected = RW.dot(row, [w[j][c] for j in range(10)])
            got = block_arg(out[i][c])
            assert isinstance(got, EN.RowView)
            assert got == expected  # structural: the same monomials, the same coefficients
            assert to_sig(out[i][c], 40) == to_sig(expected, 40)


def test_a_zero_column_of_a_block_is_proven_zero_and_an_unread_one_is_zero() -> None:
    atoms = [L.exp(L.const(k)) for k in range(1, 26)]
    row: list[Lazy] = [L.total(atoms[3 * j:3 * j + 3]) for j in range(8)]
    # column 1 cancels (+1, -1 on equal inputs); column 2 reads no input at all
    row[1] = row[0]
    assert len(RW._basis(row)) > RW.OUT_TERMS_LIMIT
    w = [[L.const(1), L.const(0), L.const(0)] for _ in range(8)]
    w[0][1], w[1][1] = L.const(1), L.const(-1)
    out = RW.matmul([row], w)
    hidden, unread = out[0][1], out[0][2]
    assert isinstance(block_arg(hidden), EN.RowView)
    assert STRUCTURED.sign(hidden) == 0
    assert to_sig(hidden, 10) == "0"
    assert STRUCTURED.sign(out[0][0]) == 1
    assert unread == 0 and not unread.terms
    with pytest.raises(ZeroDivisionError):
        L.div(L.ONE, unread)


def test_a_row_that_is_a_list_changed_in_place_is_not_served_from_the_row_cache() -> None:
    a = [[L.exp(L.const(1)), L.const(2)]]
    w = [[L.const(1)], [L.const(1)]]
    first = RW.matmul(a, w)[0][0]
    a[0][0] = L.exp(L.const(5))
    second = RW.matmul(a, w)[0][0]
    assert first == L.exp(L.const(1)) + 2
    assert second == L.exp(L.const(5)) + 2


def test_a_square_is_positive_by_structure_only_when_it_is_real() -> None:
    be = STRUCTURED
    e = be.exp(be.const(1))
    root_of_negative = be.sqrt(be.sub(be.const(0), e))  # sqrt(-e): not real
    with pytest.raises(ComputationError, match="not real"):
        be.sign(be.add(be.dot([root_of_negative], [root_of_negative]), be.const(1)))
    log_of_negative = be.log(be.sub(be.const(1), e))
    with pytest.raises(ComputationError, match="not real"):
        be.sign(be.add(be.dot([log_of_negative], [log_of_negative]), be.const(1)))
    # a root whose argument was proven positive first (as a layer norm does) is real
    positive = be.add(e, be.const(1))
    assert be.sign(positive) == 1
    root = be.sqrt(positive)
    assert EN._is_real(next(iter(root.atoms())))
    dev = be.sub(root, e)
    assert EN._structurally_positive(be.add(be.dot([dev], [dev]), be.const(1)))


def test_the_fixed_point_combination_encloses_exact_sums_with_negative_coefficients() -> None:
    kernel = EN._FixedKernel(40)
    rng = random.Random(5)
    for _ in range(200):
        n = rng.randint(1, 6)
        ints = [rng.randint(-50, 50) for _ in range(n)]
        den = rng.randint(1, 30)
        values = [Fraction(rng.randint(-10 ** 6, 10 ** 6), rng.randint(1, 10 ** 6)) for _ in range(n)]
        encl = [kernel.rational(L.Q(v.numerator, v.denominator)) for v in values]
        lo, hi = kernel.combination(ints, den, encl)
        exact = sum((Fraction(c) * v for c, v in zip(ints, values, strict=True)), Fraction(0)) / den
        assert Fraction(lo, 1 << 40) <= exact <= Fraction(hi, 1 << 40)
        assert hi - lo <= sum(abs(c) for c in ints) + 2


def test_a_variance_plus_a_positive_eps_is_positive_without_any_enclosure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    be = STRUCTURED
    xs = [be.exp(be.const(R(k, 7))) - be.const(k) for k in range(5)]
    mean = be.keep(be.div(be.total(xs), be.integer(5)))
    dev = [be.sub(x, mean) for x in xs]
    var = be.div(be.dot(dev, dev), be.integer(5))

    def refuse(*args: object) -> None:
        raise AssertionError("the sign of a sum of squares plus eps needed an enclosure")

    monkeypatch.setattr(EN, "enclose_raw", refuse)
    assert be.sign(be.add(var, be.const(R(1, 100000)))) == 1
    # A difference of squares is not visibly positive: that one is left to the enclosures.
    with pytest.raises(AssertionError, match="needed an enclosure"):
        be.sign(be.sub(be.mul(xs[1], xs[1]), be.mul(xs[2], xs[2])))


def test_an_even_power_of_a_zero_that_is_not_structural_is_proven_zero() -> None:
    """A row mean kept whole makes ``x - mean`` zero only in value; its square's enclosure is
    a ball around 0 (with python-flint: ``arb``'s own power of such a ball is nan)."""
    be = STRUCTURED
    with out_terms_limit(1):
        x = be.add(be.exp(be.const(1)), be.const(1))
        mean = be.keep(be.div(be.total([x]), be.integer(1)))
        dev = be.sub(x, mean)
        var = be.dot([dev], [dev])
        assert var.terms  # not zero structurally
        assert to_sig(var, 25) == "0"
        assert be.sign(var) == 0
        assert to_sig(be.add(var, be.const(R(1, 4))), 3) == "0.250"


def test_a_long_softmax_row_times_a_constant_column_is_exactly_its_sum() -> None:
    be = STRUCTURED
    n = 3 * RW.OUT_TERMS_LIMIT  # longer than a block's limit: the row has a collapse plan
    e = [be.exp(be.const(R(k, 5))) for k in range(n)]
    s = be.total(e)
    weights = [be.div(x, s) for x in e]
    out = RW.matmul([weights], [[L.const(1), L.const(2)] for _ in range(n)])
    assert out[0][0] == 1
    assert out[0][1] == 2
    g = be.sqrt(be.const(3))
    assert be.total([be.mul(w_, g) for w_ in weights]) == g


def raw(step: object) -> tuple:
    """A structured step's own value (``value`` is the display form: small values as sympy)."""
    return step.__dict__["_raw_value"]  # type: ignore[no-any-return]


def canonical(x: object) -> Lazy | None:
    if not isinstance(x, Lazy):
        return L.const(x)
    try:
        return EN.expand(x)
    except ComputationError:
        return None


@budget(15)
@given(models())
def test_blocks_and_kept_whole_entries_change_no_value(m: Model) -> None:
    """Forced on small models, the scale representation's values have exactly the canonical
    forms of the plain structured ones, and the certified digits of plain sympy."""
    plain = structured_trace(m)
    with out_terms_limit(1):
        blocked = structured_trace(m)
        sympy_trace = exact_trace(m)
        compared = 0
        for s_b, s_p, s_s in zip(blocked, plain, sympy_trace, strict=True):
            assert s_b.key == s_p.key == s_s.key
            for row_b, row_p, row_s in zip(raw(s_b), raw(s_p), s_s.value, strict=True):
                for b, p, s in zip(row_b, row_p, row_s, strict=True):
                    assert to_sig(b, 25) == to_sig(s, 25)
                    cb, cp = canonical(b), canonical(p)
                    if cb is not None and cp is not None:
                        assert cb == cp
                        compared += 1
        note(f"{compared} values compared in canonical form")
        assert compared > 0


def test_a_model_past_the_block_limit_is_unchanged_in_canonical_form() -> None:
    """A model large enough for blocks and kept-whole entries without any forcing, against
    the same model with them switched off."""
    args = random_block(4, 8, 2, 2, seed=7)
    with_blocks = forward(*args, backend=STRUCTURED)
    with out_terms_limit(10 ** 9):
        without = forward(*args, backend=STRUCTURED)
    out_b = raw(with_blocks.get("out", 1, None))
    out_p = raw(without.get("out", 1, None))
    ffn_rows = raw(with_blocks.get("ffn_pre", 1, None))
    assert any(isinstance(a.arg, EN.RowView) for row in ffn_rows for x in row for a in x.atoms())
    for rb, rp in zip(out_b, out_p, strict=True):
        for b, p in zip(rb, rp, strict=True):
            assert to_sig(b, 30) == to_sig(p, 30)
    ffn_b = raw(with_blocks.get("ffn_pre", 0, None))
    ffn_p = raw(without.get("ffn_pre", 0, None))
    for rb, rp in zip(ffn_b, ffn_p, strict=True):
        for b, p in zip(rb, rp, strict=True):
            assert EN.expand(b) == EN.expand(p)


def test_a_structured_step_is_shown_when_first_read_and_the_same_as_before() -> None:
    args = random_block(3, 4, 1, 1, seed=3)
    trace = forward(*args, backend=STRUCTURED)
    step = trace.get("ln1", 0, None)
    own = raw(step)
    assert "_shown_value" not in step.__dict__  # nothing converted until read
    shown = step.value
    assert shown == tuple(tuple(L.for_display(x) for x in row) for row in own)
    assert any(isinstance(x, sympy.Expr) for row in shown for x in row)
    assert step.value is shown  # kept
    operands = step.operands
    assert [label for label, _ in operands] == ["x", "ln1_mean", "ln1_var"]
    copy = dataclasses.replace(step, formula="changed")
    assert copy.value == shown and copy.formula == "changed"
    plain = Step(**{f.name: getattr(step, f.name) for f in dataclasses.fields(Step)})
    assert plain == step and step == plain and hash(plain) == hash(step)
    assert copy != plain


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cyclic_collector_is_restored_after_a_structured_pass(enabled: bool) -> None:
    args = random_block(2, 4, 1, 1, seed=1)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        forward(*args, backend=STRUCTURED)
        assert gc.isenabled() is enabled
        assert not RW._BASES  # the shared row bases served that pass only
        bad = dataclasses.replace(args[0], norm_eps=R(0))
        zero_rows = (args[1], Inputs(given={("x", 0, None): ((R(1),) * 4,) * 2}))
        with pytest.raises(ComputationError):
            forward(bad, *zero_rows, backend=STRUCTURED)  # a constant row, eps 0: refused
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
