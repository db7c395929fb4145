"""Exact numbers that scale: sums of products of shared atoms with rational coefficients.

Layer: representation (the engine's working form for models too large for plain sympy).
A :class:`Lazy` number is a polynomial with exact rational coefficients in *atoms*; an atom
is one transcendental or algebraic step applied to another exact number: ``exp(x)``,
``sqrt(x)``, ``1/x``, ``erf(x)``, ``log(x)``, ``tanh``, ``sin``, ``cos``, ``pi``, or a
parenthesised sum kept whole.  Atoms are interned (the same argument gives the same atom), so
a second layer's thousands of entries share their first layer's exponentials instead of
copying them, the way a sympy tree would.  Nothing is simplified beyond what is structural:

* rational arithmetic is exact (Python ``Fraction``, or python-flint's ``fmpq`` when it is
  installed; the values are the same, only the speed differs);
* a sum over a shared reciprocal collapses when its numerator *is* the reciprocal's argument,
  so every softmax row sums to exactly 1 (``e^a/S + e^b/S`` with ``S = e^a + e^b`` is 1);
* a product of two long sums is not expanded: the longer one becomes one atom.

Comparisons (ReLU, maxima, ties, argmax) and printed digits come from certified enclosures at
rising precision (:func:`enclose_raw`): python-flint's ``arb`` ball arithmetic when installed,
mpmath's interval arithmetic otherwise.  Each atom's enclosure is computed once per precision
and shared.  A value is zero only when that is proven: structurally (no terms left), or for a
small value by exact algebra on its sympy closed form.  Closed forms (:meth:`Lazy.to_sympy`)
are produced for display, and only where they are small.

>>> a = const(1) + exp(const(1))
>>> w = exp(const(1)) / a + const(1) / a
>>> w == 1
True
>>> from exacttransformer.numbers import to_sig
>>> to_sig(exp(const(1)) / a, 10)
'0.7310585786'
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

import mpmath
import sympy
from mpmath.ctx_iv import MPIntervalContext
from mpmath.libmp import finf, fninf, from_man_exp, fzero
from sympy.core.sympify import CantSympify

from .errors import ComputationError

try:  # the optional [fast] extra
    import flint as _flint
except ImportError:  # pragma: no cover - exercised in the sympy-only configuration
    _flint = None

HAVE_FLINT = _flint is not None
"""True when python-flint is installed: rationals are ``fmpq`` and enclosures are ``arb``."""

Q: Callable[..., Any] = _flint.fmpq if _flint is not None else Fraction
"""The exact rational type (``Q(p, q)``)."""

_ZERO = Q(0)
_ONE = Q(1)

MUL_EXPAND_LIMIT = 16
"""A product of two sums is expanded only when it has at most this many terms; beyond, the
longer factor is kept whole as one atom (exact all the same, and it keeps sizes linear)."""

DOT_TERMS_LIMIT = 4
"""In a dot product with more inputs than this many terms each on average, inputs longer than
this are kept whole as atoms first, so a matrix product's entries have at most about as many
terms as the product has inputs (the size of a float computation, not of its expansion)."""

DISPLAY_LIMIT = 2000
"""Closed forms (:meth:`Lazy.to_sympy`) are built only up to this many tree nodes."""

PREC_START = 64
PREC_CAP = 8192

Monomial = tuple[tuple["Atom", int], ...]
"""Atoms and their integer powers, sorted by the atoms' creation order; ``()`` is 1."""


def _pq(c: Any) -> tuple[int, int]:
    if type(c) is Fraction:
        return c.numerator, c.denominator
    return int(c.p), int(c.q)


if _flint is not None:
    def _num(c: Any) -> Any:
        return c.p

    def _den(c: Any) -> Any:
        return c.q
else:
    def _num(c: Any) -> Any:
        return c.numerator

    def _den(c: Any) -> Any:
        return c.denominator


# --------------------------------------------------------------------------- atoms

_intern: weakref.WeakValueDictionary[Any, Atom] = weakref.WeakValueDictionary()
_counter = [0]
_lock = threading.Lock()

_KINDS = ("exp", "log", "sqrt", "inv", "erf", "tanh", "sin", "cos", "pi", "paren")


class Atom:
    """One step that is not a polynomial: ``kind`` applied to the exact number ``arg``."""

    __slots__ = ("kind", "arg", "idx", "_encl", "_sym", "_size", "_aux", "_real", "__weakref__")

    def __init__(self, kind: str, arg: Lazy | None, idx: int):
        self.kind = kind
        self.arg = arg
        self.idx = idx
        self._encl: dict[tuple[str, int], Any] = {}
        self._sym: sympy.Expr | None = None
        self._size: int | None = None
        self._aux: frozenset[Atom] | None = None  # 1/S: the atoms of S and itself
        self._real = False  # proven real and defined (see _is_real); only True is kept

    # Atoms are interned, so identity is equality; object's own (C-level) hash and equality
    # keep hashing a monomial cheap.

    def __lt__(self, other: Atom) -> bool:
        return self.idx < other.idx

    def __repr__(self) -> str:
        return f"{self.kind}#{self.idx}"

    def size(self) -> int:
        """Tree nodes of the closed form (shared subtrees counted each time, as printed)."""
        if self._size is None:
            self._size = 1 + (self.arg.size() if self.arg is not None else 0)
        return self._size


def atom(kind: str, arg: Lazy | None = None) -> Atom:
    """The interned atom ``kind(arg)``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown atom kind {kind!r}")
    key = (kind, None if arg is None else arg.key())
    with _lock:
        found = _intern.get(key)
        if found is None:
            _counter[0] += 1
            found = Atom(kind, arg, _counter[0])
            _intern[key] = found
    return found


# --------------------------------------------------------------------------- numbers


class Lazy(CantSympify):
    """An exact number: ``{monomial: rational coefficient}`` (no zero coefficients)."""

    __slots__ = ("terms", "_key", "_paren", "_inv", "_recip", "_sign", "__weakref__")

    def __init__(self, terms: dict[Monomial, Any]):
        self.terms = terms
        self._no_caches()

    def _no_caches(self) -> None:
        """What is kept once known starts unknown (also for :class:`_RowView`)."""
        self._key: frozenset[tuple[Monomial, Any, Any]] | None = None
        self._paren: Lazy | None = None
        self._inv: bool | None = None
        self._recip: Lazy | None = None
        self._sign: int | None = None  # proven by sign()

    def has_reciprocal(self) -> bool:
        """Whether a term holds a reciprocal ``1/S`` (only then can a sum or product of it
        collapse); kept once known."""
        if self._inv is None:
            self._inv = any(p >= 1 and a.kind == "inv" for m in self.terms for a, p in m)
        return self._inv

    # -- structure
    def key(self) -> frozenset[tuple[Monomial, Any, Any]]:
        if self._key is None:
            # (numerator, denominator) pairs: hashing Fraction or fmpq itself is slow.
            self._key = frozenset((m, _num(c), _den(c)) for m, c in self.terms.items())
        return self._key

    @property
    def is_Rational(self) -> bool:  # noqa: N802 -- the attribute numbers.py reads on sympy values
        return not self.terms or (len(self.terms) == 1 and () in self.terms)

    is_Number = is_Rational

    def rational(self) -> Fraction | None:
        """The value as a Fraction when it is a rational constant, else None."""
        if not self.terms:
            return Fraction(0)
        if len(self.terms) == 1 and () in self.terms:
            p, q = _pq(self.terms[()])
            return Fraction(p, q)
        return None

    @property
    def p(self) -> int:
        r = self.rational()
        if r is None:
            raise AttributeError("p: not a rational number")
        return r.numerator

    @property
    def q(self) -> int:
        r = self.rational()
        if r is None:
            raise AttributeError("q: not a rational number")
        return r.denominator

    def __int__(self) -> int:
        r = self.rational()
        if r is None or r.denominator != 1:
            raise TypeError("not an integer")
        return r.numerator

    def atoms(self) -> set[Atom]:
        return {a for m in self.terms for a, _ in m}

    def size(self) -> int:
        """Tree nodes of the closed form, capped (it is only compared with limits)."""
        total = 0
        for m in self.terms:
            total += 1 + sum(a.size() for a, _ in m)
            if total > 10 * DISPLAY_LIMIT:
                return total
        return total

    # -- arithmetic with Lazy, int, Fraction or a sympy Rational
    def __add__(self, other: object) -> Lazy:
        return add(self, _lift(other))

    __radd__ = __add__

    def __sub__(self, other: object) -> Lazy:
        return add(self, neg(_lift(other)))

    def __rsub__(self, other: object) -> Lazy:
        return add(_lift(other), neg(self))

    def __mul__(self, other: object) -> Lazy:
        return mul(self, _lift(other))

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Lazy:
        return div(self, _lift(other))

    def __rtruediv__(self, other: object) -> Lazy:
        return div(_lift(other), self)

    def __neg__(self) -> Lazy:
        return neg(self)

    def __eq__(self, other: object) -> bool:
        """Structural equality (a proven equality for rationals; never a numerical guess)."""
        try:
            o = _lift(other)
        except TypeError:
            return NotImplemented
        if self is o:
            return True
        if len(self.terms) != len(o.terms):
            return False
        return all(o.terms.get(m) == c for m, c in self.terms.items())

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        r = self.rational()
        if r is not None:
            return str(r)
        if self.size() <= 200:
            return str(self.to_sympy())
        return f"<exact value: {len(self.terms)} terms over {len(self.atoms())} atoms>"

    __str__ = __repr__

    # -- display
    def to_sympy(self) -> sympy.Expr:
        """The closed form as a sympy expression (for display; refuses large values)."""
        if self.size() > DISPLAY_LIMIT:
            raise ComputationError(
                f"the closed form of this value has more than {DISPLAY_LIMIT} terms; "
                "it is shown by its certified decimals only")
        return _to_sympy(self)


def for_display(x: object, limit: int = 60) -> object:
    """``x`` as a sympy closed form when it is small (at most ``limit`` tree nodes), else
    ``x`` itself: renderers then show the closed form where a reader can use it, and the
    certified decimals everywhere."""
    if isinstance(x, Lazy) and x.size() <= limit:
        return _to_sympy(x)
    return x


def _lift(x: object) -> Lazy:
    if isinstance(x, Lazy):
        return x
    return const(x)


_FROM_SYMPY: dict[tuple[int, int], Lazy] = {}
"""Constants made from sympy Rationals, shared (a Lazy number is never changed in place)."""


def const(value: object) -> Lazy:
    """An exact rational constant (int, Fraction, fmpq or a sympy Rational) as a Lazy."""
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int):
        c = Q(value)
    elif isinstance(value, Fraction):
        c = Q(value.numerator, value.denominator)
    elif isinstance(value, sympy.Rational):
        pq = (int(value.p), int(value.q))
        hit = _FROM_SYMPY.get(pq)
        if hit is None:
            c = Q(*pq)
            hit = Lazy({(): c} if c != 0 else {})
            if len(_FROM_SYMPY) < 10_000:  # a model's weights repeat a few values
                _FROM_SYMPY[pq] = hit
        return hit
    elif _flint is not None and isinstance(value, _flint.fmpq):
        c = value
    elif isinstance(value, sympy.Basic):
        return from_sympy(value)
    else:
        raise TypeError(f"expected an exact number, got {type(value).__name__}")
    return Lazy({(): c} if c != 0 else {})


ZERO = Lazy({})
ONE = Lazy({(): _ONE})


def _mono_mul(a: Monomial, b: Monomial) -> tuple[Monomial, Any]:
    """The product of two monomials, and a rational factor (from ``sqrt(r)^2 = r``)."""
    if not a:
        return b, _ONE
    if not b:
        return a, _ONE
    out: list[tuple[Atom, int]] = []
    factor = _ONE
    i = j = 0
    while i < len(a) or j < len(b):
        if j == len(b) or (i < len(a) and a[i][0].idx < b[j][0].idx):
            out.append(a[i])
            i += 1
        elif i == len(a) or b[j][0].idx < a[i][0].idx:
            out.append(b[j])
            j += 1
        else:
            at, p = a[i][0], a[i][1] + b[j][1]
            i += 1
            j += 1
            if at.kind == "sqrt" and at.arg is not None and at.arg.is_Rational and abs(p) >= 2:
                r = at.arg.terms.get((), _ZERO)
                k = p // 2 if p > 0 else -((-p) // 2)
                factor = factor * (r ** k)
                p -= 2 * k
            if p:
                out.append((at, p))
    return tuple(out), factor


def _mono_inv(m: Monomial) -> Monomial:
    return tuple((a, -p) for a, p in m)


def add(a: Lazy, b: Lazy) -> Lazy:
    if not a.terms:
        return b
    if not b.terms:
        return a
    return total((a, b))


def total(xs: Iterable[Lazy]) -> Lazy:
    """The exact sum; sums over a shared reciprocal collapse where they are its argument."""
    xs = list(xs)
    acc: dict[Monomial, Any] = {}
    for x in xs:
        for m, c in x.terms.items():
            v = acc.get(m)
            acc[m] = c if v is None else v + c
    return _collected(acc, any(x.has_reciprocal() for x in xs))


def _collected(acc: dict[Monomial, Any], reciprocal: bool) -> Lazy:
    """The number with the nonzero terms of ``acc``; the 1/S rule runs when an operand held a
    reciprocal (otherwise no term can hold one)."""
    terms = {m: c for m, c in acc.items() if c != 0}
    return Lazy(_collapse(terms) if reciprocal else terms)


def _collapse(terms: dict[Monomial, Any]) -> dict[Monomial, Any]:
    """Terms ``c·Q·s·(1/S)``, for every monomial ``s`` of ``S`` in proportion, become ``c·Q``.

    ``Q`` is any monomial (it may hold further powers of ``1/S``), so a softmax row sums to
    exactly 1, ``e^a·g/S + e^b·g/S`` over ``S = e^a + e^b`` is ``g``, and a softmax's
    gradient ``w ⊙ (g − Σ w g)`` sums to exactly 0 along a row.  One pass, in term order;
    each candidate costs one check per monomial of ``S`` and usually fails at the second.
    """
    plan = _collapse_plan(terms)
    return _collapse_apply(terms, plan) if plan else terms


_Plan = list[tuple["Atom", list[Monomial]]]


def _collapse_plan(monos: Iterable[Monomial]) -> _Plan:
    """The reciprocals ``1/S`` that may collapse among ``monos``, each with its candidates.

    A collapse needs at least ``len(S)`` terms over ``1/S``, and every term of a collapsing
    set has the same atoms outside ``S`` (and ``1/S``); candidates in smaller groups are
    dropped.  Candidates stay in term order.  The plan depends on the monomials alone: a
    matrix product plans once per row for all its columns.
    """
    by_inv: dict[Atom, list[Monomial]] = {}
    for m in monos:
        for a, p in m:
            if p >= 1 and a.kind == "inv":
                by_inv.setdefault(a, []).append(m)
    plan: _Plan = []
    for inv_atom, over in by_inv.items():
        s = inv_atom.arg
        assert s is not None
        n = len(s.terms)
        if len(over) < n:
            continue
        if inv_atom._aux is None:
            inv_atom._aux = frozenset({a for m in s.terms for a, _ in m} | {inv_atom})
        outside = inv_atom._aux
        rests = [tuple(t for t in m if t[0] not in outside) for m in over]
        sizes: dict[Monomial, int] = {}
        for r in rests:
            sizes[r] = sizes.get(r, 0) + 1
        candidates = [m for m, r in zip(over, rests, strict=True) if sizes[r] >= n]
        if candidates:
            plan.append((inv_atom, candidates))
    return plan


def _collapse_apply(terms: dict[Monomial, Any], plan: _Plan) -> dict[Monomial, Any]:
    for inv_atom, candidates in plan:
        s = inv_atom.arg
        assert s is not None
        s_items = list(s.terms.items())
        s0, c0 = s_items[0]
        not_s0 = _mono_inv(s0)
        not_a = ((inv_atom, -1),)
        for m in candidates:
            c = terms.get(m)
            if c is None:
                continue
            q1, f1 = _mono_mul(m, not_s0)
            q, f2 = _mono_mul(q1, not_a)
            ratio = c * f1 * f2 / c0  # the term is ratio·q·c0·s0·(1/S)
            targets = []
            for sm, sc in s_items:
                t1, g1 = _mono_mul(q, sm)
                t, g2 = _mono_mul(t1, ((inv_atom, 1),))
                if t in targets or terms.get(t) != ratio * sc * g1 * g2:
                    break
                targets.append(t)
            else:
                for t in targets:
                    del terms[t]
                v = terms.get(q, _ZERO) + ratio
                if v != 0:
                    terms[q] = v
                else:
                    terms.pop(q, None)
    return terms


def neg(a: Lazy) -> Lazy:
    return Lazy({m: -c for m, c in a.terms.items()})


def scale(a: Lazy, c: Any) -> Lazy:
    if c == 0:
        return ZERO
    if c == 1:
        return a
    return Lazy({m: v * c for m, v in a.terms.items()})


def _constant(a: Lazy) -> Any | None:
    if not a.terms:
        return _ZERO
    if len(a.terms) == 1 and () in a.terms:
        return a.terms[()]
    return None


def paren(a: Lazy) -> Lazy:
    """``a`` kept whole as one atom (``1·(a)``); a monomial stays as it is."""
    if len(a.terms) <= 1:
        return a
    if a._paren is None:
        # Its sign made positive first (the first coefficient), so that a sum and its
        # negative share one atom and cancel: (x) - (x) is 0 structurally.
        if next(iter(a.terms.values())) < 0:
            a._paren = Lazy({((atom("paren", neg(a)), 1),): -_ONE})
        else:
            a._paren = Lazy({((atom("paren", a), 1),): _ONE})
    return a._paren


def mul(a: Lazy, b: Lazy) -> Lazy:
    ca, cb = _constant(a), _constant(b)
    if ca is not None:
        return scale(b, ca)
    if cb is not None:
        return scale(a, cb)
    if len(a.terms) * len(b.terms) > MUL_EXPAND_LIMIT:
        if len(a.terms) >= len(b.terms):
            a = paren(a)
        else:
            b = paren(b)
        if len(a.terms) * len(b.terms) > MUL_EXPAND_LIMIT:
            a, b = paren(a), paren(b)
    return _product(a, b)


def _product(a: Lazy, b: Lazy) -> Lazy:
    """Every term of ``a`` times every term of ``b``, collected."""
    acc: dict[Monomial, Any] = {}
    for ma, xa in a.terms.items():
        for mb, xb in b.terms.items():
            m, f = _mono_mul(ma, mb)
            v = xa * xb * f
            old = acc.get(m)
            acc[m] = v if old is None else old + v
    return _collected(acc, a.has_reciprocal() or b.has_reciprocal())


def div(a: Lazy, b: Lazy) -> Lazy:
    cb = _constant(b)
    if cb is not None:
        if cb == 0:
            raise ZeroDivisionError("exact division by zero")
        return scale(a, _ONE / cb)
    if not a.terms:
        return ZERO
    if len(b.terms) == 1:
        (m, c), = b.terms.items()
        return mul(a, Lazy({_mono_inv(m): _ONE / c}))
    # Proportional numerator and denominator: a constant.
    if len(a.terms) == len(b.terms):
        m0, c0 = next(iter(b.terms.items()))
        if m0 in a.terms:
            ratio = a.terms[m0] / c0
            if all(a.terms.get(m) == ratio * c for m, c in b.terms.items()):
                return const_q(ratio)
    if b._recip is None:  # kept: a softmax row divides every entry by the same sum
        b._recip = _reciprocal(b)
    return mul(a, b._recip)


def _reciprocal(b: Lazy) -> Lazy:
    """``1/b`` as one term, for ``b`` of two terms or more."""
    # A monomial common to every term of the denominator cancels first (a renormalized
    # softmax: (e^a/S) / ((e^a + e^b)/S) is e^a / (e^a + e^b)).
    g = _monomial_content(b)
    if g:
        not_g = Lazy({_mono_inv(g): _ONE})
        rest = mul(b, not_g)
        if len(rest.terms) == 1:
            (m, c), = rest.terms.items()
            return mul(not_g, Lazy({_mono_inv(m): _ONE / c}))
        return mul(not_g, _reciprocal(rest))
    # Make the denominator primitive (integer coefficients without a common factor, the
    # first one positive) so that equal sums share one atom and print as 1/(1 + 2e).
    c = _integer_content(b)
    primitive = scale(b, _ONE / c)
    return Lazy({((atom("inv", primitive), 1),): _ONE / c})


def _monomial_content(x: Lazy) -> Monomial:
    """The largest monomial dividing every term of ``x`` (powers may be negative)."""
    monos = list(x.terms)
    common: dict[Atom, int] = dict(monos[0])
    for m in monos[1:]:
        powers = dict(m)
        common = {a: min(p, powers.get(a, 0)) for a, p in common.items() if a in powers}
        if not common:
            return ()
    # atoms absent from the first monomial have power 0 there: only negative powers count
    return tuple(sorted(((a, p) for a, p in common.items() if p), key=lambda t: t[0].idx))


def _integer_content(x: Lazy) -> Any:
    """The rational ``c`` with ``x / c`` having coprime integer coefficients, first > 0."""
    num_gcd, den_lcm = 0, 1
    for c in x.terms.values():
        p, q = _pq(c)
        num_gcd = math.gcd(num_gcd, p)
        den_lcm = den_lcm * q // math.gcd(den_lcm, q)
    first = next(iter(x.terms.values()))
    sign_ = -1 if first < 0 else 1
    return Q(sign_ * num_gcd, den_lcm)


def const_q(c: Any) -> Lazy:
    return Lazy({(): c} if c != 0 else {})


def _function(kind: str, x: Lazy) -> Lazy:
    return Lazy({((atom(kind, x), 1),): _ONE})


def exp(x: Lazy) -> Lazy:
    if not x.terms:
        return ONE
    return _function("exp", x)


def log(x: Lazy) -> Lazy:
    c = _constant(x)
    if c is not None and c == 1:
        return ZERO
    return _function("log", x)


def sqrt(x: Lazy) -> Lazy:
    c = _constant(x)
    if c is not None:
        if c == 0:
            return ZERO
        p, q = _pq(c)
        if p > 0:
            rp, rq = math.isqrt(p), math.isqrt(q)
            if rp * rp == p and rq * rq == q:
                return const_q(Q(rp, rq))
    return _function("sqrt", x)


def erf(x: Lazy) -> Lazy:
    return ZERO if not x.terms else _function("erf", x)


def tanh(x: Lazy) -> Lazy:
    return ZERO if not x.terms else _function("tanh", x)


def sin(x: Lazy) -> Lazy:
    return ZERO if not x.terms else _function("sin", x)


def cos(x: Lazy) -> Lazy:
    return ONE if not x.terms else _function("cos", x)


def pi() -> Lazy:
    return Lazy({((atom("pi"), 1),): _ONE})


# --------------------------------------------------------------------------- sympy in and out


def from_sympy(x: sympy.Basic) -> Lazy:
    """An exact sympy constant (as parsed from a file) as a Lazy number."""
    if x.is_Rational:
        return const(x)
    if x is sympy.pi:
        return pi()
    if x is sympy.E:
        return exp(ONE)
    if x.is_Add:
        return total([from_sympy(a) for a in x.args])
    if x.is_Mul:
        out = ONE
        for a in x.args:
            out = mul(out, from_sympy(a))
        return out
    if x.is_Pow:
        base, e = x.args
        if e.is_Integer:
            b = from_sympy(base)
            n = int(e)
            out = ONE
            for _ in range(abs(n)):
                out = mul(out, b)
            return out if n >= 0 else div(ONE, out)
        if e == sympy.Rational(1, 2):
            return sqrt(from_sympy(base))
        if e == sympy.Rational(-1, 2):
            return div(ONE, sqrt(from_sympy(base)))
        return exp(mul(from_sympy(e), log(from_sympy(base))))
    unary = {sympy.exp: exp, sympy.log: log, sympy.erf: erf, sympy.tanh: tanh,
             sympy.sin: sin, sympy.cos: cos}
    f = unary.get(type(x))  # type: ignore[call-overload]
    if f is not None and len(x.args) == 1:
        return f(from_sympy(x.args[0]))
    raise ComputationError(f"cannot represent {x} exactly in the structured engine")


_SYMPY_FUNCS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "exp": lambda a: sympy.exp(a) if a.is_Number else sympy.exp(a, evaluate=False),
    "log": lambda a: sympy.log(a) if a.is_Number else sympy.log(a, evaluate=False),
    "sqrt": sympy.sqrt,
    "inv": lambda a: 1 / a,
    "erf": lambda a: sympy.erf(a) if a.is_Number else sympy.erf(a, evaluate=False),
    "tanh": lambda a: sympy.tanh(a) if a.is_Number else sympy.tanh(a, evaluate=False),
    "sin": sympy.sin,
    "cos": sympy.cos,
    "paren": lambda a: a,
}


def _atom_sympy(at: Atom) -> sympy.Expr:
    if at._sym is None:
        if at.kind == "pi":
            at._sym = sympy.pi
        else:
            assert at.arg is not None
            at._sym = _SYMPY_FUNCS[at.kind](_to_sympy(at.arg))
    return at._sym


def _to_sympy(x: Lazy) -> sympy.Expr:
    # Terms over the same reciprocals are put over them once: (e^a + e^b)/S, not e^a/S + e^b/S.
    groups: dict[Monomial, list[sympy.Expr]] = {}
    for m, c in x.terms.items():
        p, q = _pq(c)
        den = tuple(t for t in m if t[0].kind == "inv" and t[1] > 0)
        factors: list[sympy.Expr] = [sympy.Rational(p, q)]
        factors.extend(_atom_sympy(a) ** k for a, k in m if (a, k) not in den)
        groups.setdefault(den, []).append(sympy.Mul(*factors))
    parts = []
    for den, nums in groups.items():
        parts.append(sympy.Mul(sympy.Add(*nums), *[_atom_sympy(a) ** k for a, k in den]))
    return sympy.Add(*parts)


# --------------------------------------------------------------------------- enclosures


class _FixedKernel:
    """Interval arithmetic on Python integers in fixed point (the pure-Python configuration).

    A value is a pair of integers ``(lo, hi)`` standing for ``[lo, hi] · 2^-prec``; every
    operation rounds ``lo`` down and ``hi`` up, so the exact value stays inside.  Integer
    arithmetic is an order of magnitude faster than mpmath's interval objects, and for the
    sums of products a forward pass is made of, an absolute precision is what matters (the
    certifying loop raises ``prec`` until the digits asked for are proven).  Monotone
    functions (exp, log, sqrt, erf, tanh) are evaluated at both ends by mpmath with 32 guard
    bits and widened outward by 2^-prec relative and absolute (the rule of
    :mod:`exacttransformer.interval`); sin and cos use mpmath's interval context.
    """

    name = "fixed"
    _GUARD = 32
    _EXP_CAP = 1 << 20
    """``exp`` of an interval reaching past this is not enclosed (e^(2^20) has 1.5 million bits
    before the point): at a low precision a long computation's interval can be wide enough
    that its exponential would be an integer of more digits than Python allows."""

    def __init__(self, prec: int):
        self.prec = prec
        self.unit = 1 << prec
        self.cache: dict[Any, tuple[int, int]] = {}

    def rational(self, c: Any) -> tuple[int, int]:
        p, q = _pq(c)
        hit = self.cache.get((p, q))
        if hit is None:
            lo = (p << self.prec) // q
            hit = (lo, lo if lo * q == p << self.prec else lo + 1)
            self.cache[(p, q)] = hit
        return hit

    def one(self) -> tuple[int, int]:
        return (self.unit, self.unit)

    def scaled(self, v: tuple[int, int], c: Any) -> tuple[int, int]:
        """``c · v`` for an exact rational ``c``."""
        p, q = _pq(c)
        a, b = v[0] * p, v[1] * p
        if p < 0:
            a, b = b, a
        if q == 1:
            return (a, b)
        return (a // q, -((-b) // q))

    def add(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return (a[0] + b[0], a[1] + b[1])

    def combination(self, ints: Sequence[int], den: int,
                    values: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """``Σ ints[t] · values[t] / den`` (integers ``ints``, ``den > 0``)."""
        lo = hi = 0
        for v, (a, b) in zip(ints, values, strict=True):
            if v > 0:
                lo += v * a
                hi += v * b
            elif v < 0:
                lo += v * b
                hi += v * a
        return (lo // den, -((-hi) // den))

    def mul(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        if a[0] >= 0 and b[0] >= 0:
            lo, hi = a[0] * b[0], a[1] * b[1]
        else:
            products = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
            lo, hi = min(products), max(products)
        return (lo >> self.prec, -((-hi) >> self.prec))

    def inverse(self, v: tuple[int, int]) -> tuple[int, int] | None:
        lo, hi = v
        if lo <= 0 <= hi:
            return None
        top = 1 << (2 * self.prec)
        return (top // hi, -((-top) // lo))  # 1/x is decreasing on each side of 0

    def power(self, v: tuple[int, int] | None, k: int) -> tuple[int, int] | None:
        if v is None:
            return None
        if k < 0:
            v = self.inverse(v)
            if v is None:
                return None
            k = -k
        out = v
        for _ in range(k - 1):
            out = self.mul(out, v)
        return out

    def _mpf(self, n: int) -> Any:
        return from_man_exp(n, -self.prec)

    def _fixed(self, raw: Any, down: bool) -> int:
        man, exp_ = _man_exp(raw)
        shift = exp_ + self.prec
        if shift >= 0:
            return man << shift
        return man >> -shift if down else -((-man) >> -shift)

    def monotone(self, f: Callable[..., Any], v: tuple[int, int]) -> tuple[int, int]:
        from mpmath.libmp import round_ceiling, round_floor

        from .interval import _widen

        wp = self.prec + self._GUARD
        lo = f(self._mpf(v[0]), wp, round_floor)
        hi = f(self._mpf(v[1]), wp, round_ceiling)
        lo = _widen(lo, self.prec, down=True)
        hi = _widen(hi, self.prec, down=False)
        return (self._fixed(lo, True) - 1, self._fixed(hi, False) + 1)

    def apply(self, kind: str, v: tuple[int, int] | None) -> tuple[int, int] | None:
        from mpmath.libmp import mpf_exp, mpf_log, mpf_pi, mpf_sqrt, round_ceiling, round_floor
        from mpmath.libmp.libhyper import mpf_erf

        if kind == "pi":
            wp = self.prec + self._GUARD
            lo = self._fixed(mpf_pi(wp, round_floor), True) - 1
            return (lo, self._fixed(mpf_pi(wp, round_ceiling), False) + 1)
        if v is None:
            return None
        if kind == "paren":
            return v
        if kind == "inv":
            return self.inverse(v)
        if kind == "exp":
            if v[1] > self._EXP_CAP * self.unit:
                return None  # no usable enclosure at this precision: try a higher one
            return self.monotone(mpf_exp, v)
        if kind == "erf":
            return self.monotone(mpf_erf, v)
        if kind == "tanh":
            # tanh x = 1 - 2/(e^{2x} + 1), increasing; an end past ±cap is bounded by ±1
            cap = self._EXP_CAP * self.unit
            ends = (min(max(v[0], -cap), cap), max(min(v[1], cap), -cap))
            e = self.monotone(mpf_exp, (2 * ends[0], 2 * ends[1]))
            d = self.inverse((e[0] + self.unit, e[1] + self.unit))
            assert d is not None
            return (-self.unit if v[0] < -cap else self.unit - 2 * d[1],
                    self.unit if v[1] > cap else self.unit - 2 * d[0])
        if kind == "sqrt":
            if v[1] < 0:
                raise ComputationError("the square root of a negative number is not real")
            lo = self.monotone(mpf_sqrt, (v[0], v[0]))[0] if v[0] > 0 else 0
            return (max(lo, 0), self.monotone(mpf_sqrt, (v[1], v[1]))[1] if v[1] > 0 else 0)
        if kind == "log":
            if v[1] <= 0:
                raise ComputationError("the logarithm of a number <= 0 is not real")
            if v[0] <= 0:
                return None
            return self.monotone(mpf_log, v)
        # sin, cos: not monotone; mpmath's interval context encloses them.
        ctx = MPIntervalContext()
        ctx.prec = self.prec + self._GUARD
        x = ctx.make_mpf((self._mpf(v[0]), self._mpf(v[1])))
        lo_raw, hi_raw = getattr(ctx, kind)(x)._mpi_
        return (self._fixed(lo_raw, True) - 1, self._fixed(hi_raw, False) + 1)

    def raw(self, v: tuple[int, int] | None) -> tuple[Any, Any]:
        if v is None:
            return fninf, finf
        return self._mpf(v[0]), self._mpf(v[1])


def _man_exp(raw: Any) -> tuple[int, int]:
    sign_bit, man, exp_, _bc = raw
    return (-man if sign_bit else man), exp_


class _ArbKernel:
    """python-flint's arb ball arithmetic (the [fast] configuration)."""

    name = "arb"

    def __init__(self, prec: int):
        assert _flint is not None
        self.prec = prec
        self.arb = _flint.arb

    def rational(self, c: Any) -> Any:
        if type(c) is Fraction:
            c = _flint.fmpq(c.numerator, c.denominator)
        return self.arb(c)

    def one(self) -> Any:
        return self.arb(1)

    def apply(self, kind: str, v: Any) -> Any:
        if kind == "pi":
            return self.arb.pi()
        if kind == "paren":
            return v
        if kind == "inv":
            return 1 / v
        if kind == "sqrt":
            # Only a non-negative number has a real root; a ball reaching below 0 is clipped.
            if v < 0:
                raise ComputationError("the square root of a negative number is not real")
            if not v > 0:
                lo_ok = v.upper()
                return self.arb(0).union(lo_ok.sqrt()) if lo_ok > 0 else self.arb(0)
            return v.sqrt()
        if kind == "log":
            if not v > 0:
                if v <= 0:
                    raise ComputationError("the logarithm of a number <= 0 is not real")
                return self.arb("nan")
            return v.log()
        return getattr(v, kind)()

    def power(self, v: Any, k: int) -> Any:
        # By products: arb's own ``**`` returns nan for a ball that contains 0, even for an
        # integer exponent (it goes through exp(k·log v)).
        if k < 0:
            return 1 / self.power(v, -k)
        out = None
        base = v
        while k:
            if k & 1:
                out = base if out is None else out * base
            k >>= 1
            if k:
                base = base * base
        return out if out is not None else self.arb(1)

    def scaled(self, v: Any, c: Any) -> Any:
        return v * (c if type(c) is not Fraction else self.rational(c))

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def raw(self, v: Any) -> tuple[Any, Any]:
        if not v.is_finite():
            return fninf, finf
        lo, hi = v.lower(), v.upper()
        return _arb_raw(lo), _arb_raw(hi)


def _arb_raw(x: Any) -> Any:
    man, exp_ = x.man_exp()
    return from_man_exp(int(man), int(exp_))


def _kernel(prec: int) -> Any:
    return _ArbKernel(prec) if _flint is not None else _FixedKernel(prec)


def enclose_raw(x: Lazy, prec: int) -> tuple[Any, Any]:
    """Endpoints ``lo <= x <= hi`` (mpmath raw tuples) at about ``prec`` bits.

    Each atom's enclosure is computed once per precision and kept on the atom.
    """
    k = _kernel(prec)
    if _flint is not None:
        saved = _flint.ctx.prec
        _flint.ctx.prec = prec
        try:
            return k.raw(_eval(x, k, prec))
        finally:
            _flint.ctx.prec = saved
    return k.raw(_eval(x, k, prec))


def _eval(x: Lazy, k: Any, prec: int) -> Any:
    # Atoms first, deepest first, without recursion (a deep model nests hundreds of atoms).
    _eval_atoms(x.atoms(), k, prec)
    return _eval_poly(x, k, prec)


_MONOMIALS: dict[tuple[str, int], dict[Monomial, Any]] = {}
"""Enclosures of monomials, per kernel and precision: a row's monomials recur in every
entry of the row.  Cleared when large (it keeps its atoms alive)."""

_MONOMIALS_LIMIT = 400_000


def _monomial_cache(key: tuple[str, int]) -> dict[Monomial, Any]:
    cache = _MONOMIALS.get(key)
    if cache is None or len(cache) > _MONOMIALS_LIMIT:
        if sum(len(c) for c in _MONOMIALS.values()) > _MONOMIALS_LIMIT:
            _MONOMIALS.clear()
        cache = _MONOMIALS.setdefault(key, {})
    return cache


def _monomial_value(m: Monomial, k: Any, key: tuple[str, int], cache: dict[Monomial, Any]) -> Any:
    """The enclosure of a monomial (its atoms' enclosures must be known), or None."""
    if not m:
        return k.one()
    v = cache.get(m)
    if v is None:
        for a, p in m:
            av = a._encl[key]
            av = av if p == 1 else k.power(av, p)
            if av is None:
                return None
            v = av if v is None else k.mul(v, av)
        cache[m] = v
    return v


def _eval_poly(x: Lazy, k: Any, prec: int) -> Any:
    key = (k.name, prec)
    cache = _monomial_cache(key)
    acc = None
    for m, c in x.terms.items():
        if not m:
            v = k.rational(c)
        else:
            v = _monomial_value(m, k, key, cache)
            if v is None:
                return None
            v = k.scaled(v, c)
        acc = v if acc is None else k.add(acc, v)
    return acc if acc is not None else k.rational(_ZERO)


def _eval_atoms(roots: Iterable[Atom], k: Any, prec: int) -> None:
    key = (k.name, prec)
    stack: list[tuple[Atom, bool]] = [(a, False) for a in roots if key not in a._encl]
    while stack:
        at, ready = stack.pop()
        if key in at._encl:
            continue
        if at.arg is None or (isinstance(at.arg, _RowView) and key in at.arg.block.basis._encl):
            deps = []
        else:
            deps = [d for d in at.arg.atoms() if key not in d._encl]
        if deps and not ready:
            stack.append((at, True))
            stack.extend((d, False) for d in deps)
            continue
        if isinstance(at.arg, _RowView):
            arg = at.arg.block.enclose(k, prec)[at.arg.col]
        else:
            arg = None if at.arg is None else _eval_poly(at.arg, k, prec)
        at._encl[key] = None if at.arg is not None and arg is None else k.apply(at.kind, arg)


EXPAND_LIMIT = 200_000
"""The most terms :func:`expand` builds before it gives up (a zero test, not a display)."""


class _TooLarge(Exception):
    pass


def expand(x: Lazy) -> Lazy:
    """A canonical form of ``x``: every kept-whole sum multiplied out, recursively, and every
    function atom re-made from its argument's canonical form.  Two values whose canonical
    forms are equal are equal; it proves the zeros that arise when one quantity is built along
    two routes (a gradient summed in two orders).  Raises :class:`ComputationError` past
    :data:`EXPAND_LIMIT` terms."""
    memo: dict[int, Lazy] = {}
    try:
        return _expand(x, memo)
    except _TooLarge:
        raise ComputationError(f"the canonical form has more than {EXPAND_LIMIT} terms") from None


def _expand(x: Lazy, memo: dict[int, Lazy]) -> Lazy:
    out = ZERO
    for m, c in x.terms.items():
        term = const_q(c)
        for a, p in m:
            term = _times(term, _power(_expand_atom(a, memo), p))
        out = total((out, term))
        if len(out.terms) > EXPAND_LIMIT:
            raise _TooLarge
    return out


def _expand_atom(a: Atom, memo: dict[int, Lazy]) -> Lazy:
    hit = memo.get(a.idx)
    if hit is not None:
        return hit
    if a.kind == "pi":
        result = pi()
    else:
        assert a.arg is not None
        arg = _expand(a.arg, memo)
        if a.kind == "paren":
            result = arg
        elif a.kind == "inv":
            c = _integer_content(arg) if arg.terms else _ONE
            result = Lazy({((atom("inv", scale(arg, _ONE / c)), 1),): _ONE / c}) if arg.terms \
                else ZERO
        else:
            result = {"exp": exp, "log": log, "sqrt": sqrt, "erf": erf, "tanh": tanh,
                      "sin": sin, "cos": cos}[a.kind](arg)
    memo[a.idx] = result
    return result


def _power(x: Lazy, p: int) -> Lazy:
    if p < 0:
        if len(x.terms) != 1:
            raise _TooLarge  # a reciprocal of a sum: not produced by expansion
        (m, c), = x.terms.items()
        x, p = Lazy({_mono_inv(m): _ONE / c}), -p
    out = ONE
    for _ in range(p):
        out = _times(out, x)
    return out


def _times(a: Lazy, b: Lazy) -> Lazy:
    """The full product (no atom kept whole), refused past :data:`EXPAND_LIMIT` terms."""
    if len(a.terms) * len(b.terms) > EXPAND_LIMIT:
        raise _TooLarge
    return _product(a, b)


def proven_zero(x: Lazy) -> bool:
    """True when ``x`` is zero structurally or in canonical form; False when not proven."""
    if not x.terms:
        return True
    if known_sign(x):  # nonzero by structure (a sum of exponentials) or already proven
        return False
    try:
        return not expand(x).terms
    except ComputationError:
        return False


def _finite(raw: Any) -> bool:
    return raw not in (finf, fninf)


_POSITIVE_KINDS = frozenset(("exp", "pi"))


def _structurally_positive(x: Lazy) -> bool:
    """Every term is ``c > 0`` times positive powers of real atoms, even ones unless the atom
    is positive (``e^a``, ``π``), and one term has only positive atoms: a variance plus a
    positive eps, for example.  Every atom must be proven real (:func:`_is_real`): the square
    of a root of a negative number is not positive."""
    strict = False
    for m, c in x.terms.items():
        if not c > 0:
            return False
        positive = True
        for a, p in m:
            if not _positive_atom(a):
                if p < 0 or p % 2:
                    return False
                positive = False
        strict = strict or positive
    return strict and all(_is_real(a) for a in x.atoms())


def _positive_atom(a: Atom) -> bool:
    """``e^a``, ``π``, and ``1/S`` or ``√S`` of an ``S`` known to be positive (a softmax's
    denominator, a layer norm's ``var + eps``)."""
    if a.kind in _POSITIVE_KINDS:
        return True
    return a.kind in ("inv", "sqrt") and a.arg is not None and known_sign(a.arg) == 1


def known_sign(x: Lazy) -> int | None:
    """The sign of ``x`` where it is known without an enclosure (a rational, a sign already
    proven, a sum of exponentials), else None."""
    r = x.rational()
    if r is not None:
        return (r > 0) - (r < 0)
    if x._sign is not None:
        return x._sign
    return 1 if _structurally_positive(x) else None


def _is_real(a: Atom) -> bool:
    """``a`` is a defined real number: the atoms of its argument are, and a root's argument
    is proven >= 0, a logarithm's > 0 and a reciprocal's != 0 (by :func:`sign` earlier, as a
    layer norm does before its root, or by structure, as a sum of exponentials)."""
    if a._real:
        return True
    if a.kind == "pi":
        a._real = True
        return True
    arg = a.arg
    assert arg is not None
    if not all(_is_real(b) for b in arg.atoms()):
        return False
    if a.kind in ("sqrt", "log", "inv"):
        known = known_sign(arg)
        if known is None or {"sqrt": known < 0, "log": known <= 0, "inv": known == 0}[a.kind]:
            return False
    a._real = True
    return True


def sign(x: Lazy) -> int:
    """-1, 0 or 1, proven: by the enclosure at rising precision, or zero by exact algebra."""
    r = x.rational()
    if r is not None:
        return (r > 0) - (r < 0)
    if x._sign is None:
        x._sign = _sign(x)
    return x._sign


def _sign(x: Lazy) -> int:
    if _structurally_positive(x):
        return 1
    prec = PREC_START
    while prec <= PREC_CAP:
        lo, hi = enclose_raw(x, prec)
        if _finite(lo) and lo != fzero and not lo[0]:
            return 1
        if _finite(hi) and hi != fzero and hi[0]:
            return -1
        if prec == 256 and proven_zero(x):
            return 0
        prec *= 2
    if x.size() <= DISPLAY_LIMIT:
        from .numbers import _proven_equal

        if _proven_equal(x.to_sympy(), Fraction(0)):
            return 0
    raise ComputationError(
        f"cannot decide the sign of a value within 2^-{PREC_CAP} of 0 "
        f"({len(x.terms)} terms): it is neither proven zero nor separated from it")


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
        m, f = _mono_mul(mx, my)
        v = cx * cy * f
        old = acc.get(m)
        acc[m] = v if old is None else old + v
    return _collected(acc, any(x.has_reciprocal() for x in xs) or any(y.has_reciprocal() for y in ys))


def matmul(a: Sequence[Sequence[object]], b: Sequence[Sequence[object]]) -> tuple[tuple[Lazy, ...], ...]:
    """``a @ b``; when ``b`` is constant (weights), one exact rational matrix product per row.

    The entries of a row of ``a`` are written over the monomials they use (the row's basis,
    :class:`_Basis`), which makes the row a rational matrix ``X`` (inputs × basis); its
    product is ``Wᵀ X``, computed by python-flint's ``fmpq_mat`` when installed and by
    integer dot products otherwise.  The values are exactly those of :func:`dot` entry by
    entry (the same terms), so the two configurations build the same numbers.  A row with
    more than :data:`OUT_TERMS_LIMIT` basis monomials is kept as a :class:`_RowBlock`.
    """
    cols = [[_lift(x) for x in r] for r in b]
    consts = [[_constant(x) for x in r] for r in cols]
    if any(c is None for r in consts for c in r) or not cols:
        rows = [[_lift(x) for x in r] for r in a]
        bt = list(zip(*cols, strict=True)) if cols else []
        return tuple(tuple(dot(r, list(col)) for col in bt) for r in rows)
    k, d_out = len(cols), len(cols[0])
    # An output whose weight column is all zero is 0 structurally, not an atom over a zero
    # column (so dividing by it is refused as before).
    unread = {c for c in range(d_out) if all(consts[j][c] == 0 for j in range(k))}
    wt = None
    w_int: list[list[int]] = []
    w_den = 1
    if _flint is not None:
        wt = _flint.fmpq_mat(d_out, k, [consts[j][c] for c in range(d_out) for j in range(k)])
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
        xs = [_lift(x) for x in r]
        index = _basis(xs)
        if len(index) > DOT_TERMS_LIMIT * len(xs):
            # More monomials than inputs: keep the long inputs whole, so the outputs have
            # about as many terms as the product has inputs.
            xs = [paren(x) if len(x.terms) > DOT_TERMS_LIMIT else x for x in xs]
            index = _basis(xs)
        self.xs = xs
        self.index = index
        self.monos = list(index)
        self.plan = _collapse_plan(self.monos)
        self._matrix: Any = None
        self._ints: tuple[list[list[int]], int] | None = None
        self._atoms: set[Atom] | None = None
        self._encl: dict[tuple[str, int], list[Any] | None] = {}

    def collapse(self, terms: dict[Monomial, Any]) -> dict[Monomial, Any]:
        return _collapse_apply(terms, self.plan) if self.plan else terms

    def matrix(self) -> Any:
        """The row as an ``fmpq_mat`` (inputs × basis)."""
        if self._matrix is None:
            assert _flint is not None
            # Only the nonzero entries are set: a row is sparse over its basis, and
            # converting a dense list element by element would cost more than the product.
            xm = _flint.fmpq_mat(len(self.xs), len(self.monos))
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
            cache = _monomial_cache(key)
            values = [_monomial_value(m, k, key, cache) for m in self.monos]
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

    Each output entry is one atom over a :class:`_RowView` of a column, so no per-entry
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
        return _kept_whole(_RowView(self, c))

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
                assert _flint is not None and k.name == "arb"
                vec = _flint.arb_mat(len(values), 1, values)
                hit = list((_flint.arb_mat(self.mat) * vec).entries())
            else:
                assert self.ints is not None and k.name == "fixed"
                hit = [k.combination(col, self.den, values) for col in self.ints]
            self._encl[key] = hit
        return hit


class _RowView(Lazy):
    """Column ``col`` of a :class:`_RowBlock` as a number: the argument of the atom that
    stands for one matrix-product entry.  Its terms are made on first use."""

    __slots__ = ("block", "col")

    def __init__(self, block: _RowBlock, col: int):  # noqa: D107 -- terms come later
        self._no_caches()
        self.block = block
        self.col = col

    @property
    def terms(self) -> dict[Monomial, Any]:
        try:
            return _TERMS_SLOT.__get__(self, _RowView)  # type: ignore[no-any-return]
        except AttributeError:
            made = self.block.column(self.col)
            _TERMS_SLOT.__set__(self, made)
            return made

    @terms.setter
    def terms(self, value: dict[Monomial, Any]) -> None:
        _TERMS_SLOT.__set__(self, value)

    def atoms(self) -> set[Atom]:
        return self.block.atoms()

    def size(self) -> int:
        """Counted as too large to print: a row kept as a matrix is shown by its decimals."""
        return 10 * DISPLAY_LIMIT + 1


_TERMS_SLOT: Any = Lazy.__dict__["terms"]


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
    return tuple(tuple(_lift(v) for v in row) for row in m)


def mpf_of(raw: Any) -> mpmath.mpf:
    return mpmath.mp.make_mpf(raw)
