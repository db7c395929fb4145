"""Matrix products of the structured engine's numbers, row by row.

Layer: exact.  :func:`matmul` multiplies rows of :class:`~exacttransformer.exact.lazy.Lazy`
numbers by constant weights: each row's monomials form a shared basis, the product is an
exact coefficient matrix (``fmpq_mat`` with python-flint), and a long output entry is one
atom over a :class:`~exacttransformer.exact.enclosure.RowView` of a column.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import mpmath

from .enclosure import RowView, monomial_cache, monomial_value
from .lazy import (
    DOT_TERMS_LIMIT,
    ZERO,
    Atom,
    Lazy,
    Monomial,
    Q,
    collapse_apply,
    collapse_plan,
    collected,
    constant_of,
    flint,
    lift,
    mono_mul,
    mul,
    paren,
    total,
)

_ONE = Q(1)


def dot(xs: Sequence[Lazy], ys: Sequence[Lazy]) -> Lazy:
    """``sum(x * y)``, keeping long inputs whole when expanding them would multiply sizes.

    A sum of squares (``ys`` is ``xs``, as in a variance) keeps every sum whole, so the result
    is visibly a sum of non-negative terms and :func:`sign` needs no enclosure for it."""
    if xs is ys or all(x is y for x, y in zip(xs, ys, strict=True)):
        kept = [paren(x) for x in xs]
        return total([mul(x, x) for x in kept])
    if all(len(x.terms) == 1 for x in xs) and all(len(y.terms) == 1 for y in ys):
        return _dot_of_monomials(xs, ys)
    if sum(len(x.terms) for x in xs) > DOT_TERMS_LIMIT * len(xs):
        xs = [paren(x) if len(x.terms) > DOT_TERMS_LIMIT else x for x in xs]
    if sum(len(y.terms) for y in ys) > DOT_TERMS_LIMIT * len(ys):
        ys = [paren(y) if len(y.terms) > DOT_TERMS_LIMIT else y for y in ys]
    return total([mul(x, y) for x, y in zip(xs, ys, strict=True)])


def _dot_of_monomials(xs: Sequence[Lazy], ys: Sequence[Lazy]) -> Lazy:
    """:func:`dot` of single terms (attention scores, a mix of weights and values): the
    same terms as ``total(mul(x, y))``, without a number per product."""
    acc: dict[Monomial, Any] = {}
    for x, y in zip(xs, ys, strict=True):
        ((mx, cx),) = x.terms.items()
        ((my, cy),) = y.terms.items()
        m, f = mono_mul(mx, my)
        v = cx * cy * f
        old = acc.get(m)
        acc[m] = v if old is None else old + v
    return collected(acc, any(x.has_reciprocal() for x in xs) or any(y.has_reciprocal() for y in ys))


def matmul(a: Sequence[Sequence[object]], b: Sequence[Sequence[object]]) -> tuple[tuple[Lazy, ...], ...]:
    """``a @ b``; when ``b`` is constant (weights), one exact rational matrix product per row.

    The entries of a row of ``a`` are written over the monomials they use (the row's basis,
    :class:`_Basis`), which makes the row a rational matrix ``X`` (inputs × basis); its
    product is ``Wᵀ X``, computed by python-flint's ``fmpq_mat`` when installed and by
    integer dot products otherwise.  The values are exactly those of :func:`dot` entry by
    entry (the same terms), so the two configurations build the same numbers.  A row with
    more than :data:`OUT_TERMS_LIMIT` basis monomials is kept as a :class:`_RowBlock`.
    """
    cols = [[lift(x) for x in r] for r in b]
    consts = [[constant_of(x) for x in r] for r in cols]
    if any(c is None for r in consts for c in r) or not cols:
        rows = [[lift(x) for x in r] for r in a]
        bt = list(zip(*cols, strict=True)) if cols else []
        return tuple(tuple(dot(r, list(col)) for col in bt) for r in rows)
    k, d_out = len(cols), len(cols[0])
    # An output whose weight column is all zero is 0 structurally, not an atom over a zero
    # column (so dividing by it is refused as before).
    unread = {c for c in range(d_out) if all(consts[j][c] == 0 for j in range(k))}
    wt = None
    w_int: list[list[int]] = []
    w_den = 1
    if flint is not None:
        wt = flint.fmpq_mat(d_out, k, [consts[j][c] for c in range(d_out) for j in range(k)])
    else:
        w_int, w_den = _integer_matrix([[consts[j][c] for j in range(k)] for c in range(d_out)])
    out = []
    for r in a:
        row = _row_basis(r)
        nb = len(row.monos)
        if not nb:
            out.append(tuple(ZERO for _ in range(d_out)))
            continue
        if wt is not None:
            prod = wt * row.matrix()
            if not row.plan and nb > OUT_TERMS_LIMIT:
                block = _RowBlock(row, d_out, mat=prod)
                out.append(tuple(ZERO if c in unread else block.entry(c) for c in range(d_out)))
                continue
            entries = prod.entries()
            columns = [entries[c * nb:(c + 1) * nb] for c in range(d_out)]
        else:
            cols_int, den = row.integer_columns()
            ints = [[sum(map(operator.mul, w_int[c], col)) for col in cols_int] for c in range(d_out)]
            if not row.plan and nb > OUT_TERMS_LIMIT:
                block = _RowBlock(row, d_out, ints=ints, den=den * w_den)
                out.append(tuple(ZERO if c in unread else block.entry(c) for c in range(d_out)))
                continue
            columns = [[Fraction(v, den * w_den) for v in col] for col in ints]
        out.append(tuple(
            _cut(Lazy(row.collapse({m: v for m, v in zip(row.monos, col, strict=True) if v != 0})))
            for col in columns))
    return tuple(out)


class _Basis:
    """A matrix row's entries written over the monomials they use, made once per row and
    shared by every product that reads the row (the projections of all heads)."""

    __slots__ = ("xs", "monos", "index", "plan", "_matrix", "_ints", "_atoms", "_encl")

    def __init__(self, r: Sequence[object]):
        xs = [lift(x) for x in r]
        index = _basis(xs)
        if len(index) > DOT_TERMS_LIMIT * len(xs):
            # More monomials than inputs: keep the long inputs whole, so the outputs have
            # about as many terms as the product has inputs.
            xs = [paren(x) if len(x.terms) > DOT_TERMS_LIMIT else x for x in xs]
            index = _basis(xs)
        self.xs = xs
        self.index = index
        self.monos = list(index)
        self.plan = collapse_plan(self.monos)
        self._matrix: Any = None
        self._ints: tuple[list[list[int]], int] | None = None
        self._atoms: set[Atom] | None = None
        self._encl: dict[tuple[str, int], list[Any] | None] = {}

    def collapse(self, terms: dict[Monomial, Any]) -> dict[Monomial, Any]:
        return collapse_apply(terms, self.plan) if self.plan else terms

    def matrix(self) -> Any:
        """The row as an ``fmpq_mat`` (inputs × basis)."""
        if self._matrix is None:
            assert flint is not None
            # Only the nonzero entries are set: a row is sparse over its basis, and
            # converting a dense list element by element would cost more than the product.
            xm = flint.fmpq_mat(len(self.xs), len(self.monos))
            index = self.index
            for j, x in enumerate(self.xs):
                for m, c in x.terms.items():
                    xm[j, index[m]] = c
            self._matrix = xm
        return self._matrix

    def integer_columns(self) -> tuple[list[list[int]], int]:
        """The row as integer columns (one per basis monomial) over one denominator."""
        if self._ints is None:
            den = _common_denominator(v for x in self.xs for v in x.terms.values())
            cols = [[0] * len(self.xs) for _ in self.monos]
            for j, x in enumerate(self.xs):
                for m, v in x.terms.items():
                    cols[self.index[m]][j] = v.numerator * (den // v.denominator)
            self._ints = (cols, den)
        return self._ints

    def atoms(self) -> set[Atom]:
        if self._atoms is None:
            self._atoms = {a for m in self.monos for a, _ in m}
        return self._atoms

    def enclosures(self, k: Any, prec: int) -> list[Any] | None:
        """The enclosures of the basis monomials (their atoms' must be known), or None."""
        key = (k.name, prec)
        if key not in self._encl:
            cache = monomial_cache(key)
            values = [monomial_value(m, k, key, cache) for m in self.monos]
            self._encl[key] = None if any(v is None for v in values) else values
        return self._encl[key]


_BASES: dict[int, tuple[Sequence[object], _Basis]] = {}
_BASES_LIMIT = 4096


def forget_rows() -> None:
    """Drop the shared row bases (a forward pass calls it when done: the bases serve the
    products of one pass; a block made from one keeps its own reference)."""
    _BASES.clear()


def _row_basis(r: Sequence[object]) -> _Basis:
    """The :class:`_Basis` of a matrix row, shared while the row object lives.  Only a tuple
    is shared: a list could change between two products."""
    if type(r) is not tuple:
        return _Basis(r)
    hit = _BASES.get(id(r))
    if hit is None or hit[0] is not r:
        if len(_BASES) >= _BASES_LIMIT:
            _BASES.clear()
        hit = (r, _Basis(r))
        _BASES[id(r)] = hit
    return hit[1]


OUT_TERMS_LIMIT = 16
"""A matrix-product entry with more terms than this is kept whole as one atom."""


class _RowBlock:
    """One row of a product by constant weights, kept as the product made it: the row's
    :class:`_Basis` and the exact coefficient matrix (outputs × basis), an ``fmpq_mat`` with
    python-flint, integer rows over one denominator without.

    Each output entry is one atom over a :class:`RowView` of a column, so no per-entry
    dictionary is built; a column's terms are made only if something asks for them (an
    expansion proving a zero).  Enclosures of all the row's outputs come from one product
    of the coefficient matrix with the basis' enclosures (``arb_mat`` with python-flint).
    """

    __slots__ = ("basis", "d_out", "mat", "ints", "den", "_encl")

    def __init__(self, basis: _Basis, d_out: int, mat: Any = None,
                 ints: list[list[int]] | None = None, den: int = 1):
        self.basis = basis
        self.d_out = d_out
        self.mat = mat
        self.ints = ints
        self.den = den
        self._encl: dict[tuple[str, int], list[Any]] = {}

    def entry(self, c: int) -> Lazy:
        return _kept_whole(RowView(self, c))

    def column(self, c: int) -> dict[Monomial, Any]:
        monos = self.basis.monos
        if self.mat is not None:
            mat = self.mat
            return {m: v for t, m in enumerate(monos) if (v := mat[c, t]) != 0}
        assert self.ints is not None
        return {monos[t]: Fraction(v, self.den) for t, v in enumerate(self.ints[c]) if v}

    def atoms(self) -> set[Atom]:
        return self.basis.atoms()

    def enclose(self, k: Any, prec: int) -> list[Any]:
        key = (k.name, prec)
        hit = self._encl.get(key)
        if hit is None:
            values = self.basis.enclosures(k, prec)
            if values is None:
                hit = [None] * self.d_out
            elif self.mat is not None:
                assert flint is not None and k.name == "arb"
                vec = flint.arb_mat(len(values), 1, values)
                hit = list((flint.arb_mat(self.mat) * vec).entries())
            else:
                assert self.ints is not None and k.name == "fixed"
                hit = [k.combination(col, self.den, values) for col in self.ints]
            self._encl[key] = hit
        return hit


_fresh = itertools.count(1 << 62)
"""Indices of atoms that are not interned (kept-whole matrix-product entries); they sort
after every interned atom, so monomials stay in one canonical order."""


def _cut(x: Lazy) -> Lazy:
    """A long matrix-product entry kept whole as its own atom.

    The atom is not interned by content (hashing hundreds of terms per entry would cost more
    than the product): two equal entries get two atoms, whose difference the enclosures
    cannot separate from 0 and :func:`proven_zero` then proves 0 by expansion."""
    if len(x.terms) <= OUT_TERMS_LIMIT:
        return x
    return _kept_whole(x)


def _kept_whole(x: Lazy) -> Lazy:
    """``x`` as one atom of its own, not interned (see :func:`_cut`)."""
    return Lazy({((Atom("paren", x, next(_fresh)), 1),): _ONE})


def _integer_matrix(rows: list[list[Any]]) -> tuple[list[list[int]], int]:
    """Rational rows as integer rows over one common denominator."""
    den = _common_denominator(v for r in rows for v in r)
    return [[v.numerator * (den // v.denominator) for v in r] for r in rows], den


def _common_denominator(values: Iterable[Any]) -> int:
    """The least common multiple of the denominators of ``values`` (Fractions)."""
    den = 1
    for v in values:
        den = den * v.denominator // math.gcd(den, v.denominator)
    return den


def _basis(xs: Sequence[Lazy]) -> dict[Monomial, int]:
    """The monomials a row uses, numbered in order of first use."""
    basis: dict[Monomial, int] = {}
    for x in xs:
        for m in x.terms:
            if m not in basis:
                basis[m] = len(basis)
    return basis


def to_lazy_matrix(m: Sequence[Sequence[object]]) -> tuple[tuple[Lazy, ...], ...]:
    """A matrix of exact constants in this representation."""
    return tuple(tuple(lift(v) for v in row) for row in m)


def mpf_of(raw: Any) -> mpmath.mpf:
    return mpmath.mp.make_mpf(raw)
