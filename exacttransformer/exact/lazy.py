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
rising precision (:func:`.enclosure.enclose_raw`): python-flint's ``arb`` ball arithmetic when installed,
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

import math
import threading
import weakref
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import sympy
from sympy.core.sympify import CantSympify

from ..errors import ComputationError

try:  # the optional [fast] extra
    import flint
except ImportError:  # pragma: no cover - exercised in the sympy-only configuration
    flint = None

HAVE_FLINT = flint is not None
"""True when python-flint is installed: rationals are ``fmpq`` and enclosures are ``arb``."""

Q: Callable[..., Any] = flint.fmpq if flint is not None else Fraction
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


def pq_of(c: Any) -> tuple[int, int]:
    if type(c) is Fraction:
        return c.numerator, c.denominator
    return int(c.p), int(c.q)


if flint is not None:
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
        """What is kept once known starts unknown (also for :class:`RowView`)."""
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
            p, q = pq_of(self.terms[()])
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
        return add(self, lift(other))

    __radd__ = __add__

    def __sub__(self, other: object) -> Lazy:
        return add(self, neg(lift(other)))

    def __rsub__(self, other: object) -> Lazy:
        return add(lift(other), neg(self))

    def __mul__(self, other: object) -> Lazy:
        return mul(self, lift(other))

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Lazy:
        return div(self, lift(other))

    def __rtruediv__(self, other: object) -> Lazy:
        return div(lift(other), self)

    def __neg__(self) -> Lazy:
        return neg(self)

    def __eq__(self, other: object) -> bool:
        """Structural equality (a proven equality for rationals; never a numerical guess)."""
        try:
            o = lift(other)
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


def lift(x: object) -> Lazy:
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
    elif flint is not None and isinstance(value, flint.fmpq):
        c = value
    elif isinstance(value, sympy.Basic):
        return from_sympy(value)
    else:
        raise TypeError(f"expected an exact number, got {type(value).__name__}")
    return Lazy({(): c} if c != 0 else {})


ZERO = Lazy({})
ONE = Lazy({(): _ONE})


def mono_mul(a: Monomial, b: Monomial) -> tuple[Monomial, Any]:
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


def mono_inv(m: Monomial) -> Monomial:
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
    return collected(acc, any(x.has_reciprocal() for x in xs))


def collected(acc: dict[Monomial, Any], reciprocal: bool) -> Lazy:
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
    plan = collapse_plan(terms)
    return collapse_apply(terms, plan) if plan else terms


_Plan = list[tuple["Atom", list[Monomial]]]


def collapse_plan(monos: Iterable[Monomial]) -> _Plan:
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


def collapse_apply(terms: dict[Monomial, Any], plan: _Plan) -> dict[Monomial, Any]:
    for inv_atom, candidates in plan:
        s = inv_atom.arg
        assert s is not None
        s_items = list(s.terms.items())
        s0, c0 = s_items[0]
        not_s0 = mono_inv(s0)
        not_a = ((inv_atom, -1),)
        for m in candidates:
            c = terms.get(m)
            if c is None:
                continue
            q1, f1 = mono_mul(m, not_s0)
            q, f2 = mono_mul(q1, not_a)
            ratio = c * f1 * f2 / c0  # the term is ratio·q·c0·s0·(1/S)
            targets = []
            for sm, sc in s_items:
                t1, g1 = mono_mul(q, sm)
                t, g2 = mono_mul(t1, ((inv_atom, 1),))
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


def constant_of(a: Lazy) -> Any | None:
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
    ca, cb = constant_of(a), constant_of(b)
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
    return expanded_product(a, b)


def expanded_product(a: Lazy, b: Lazy) -> Lazy:
    """Every term of ``a`` times every term of ``b``, collected."""
    acc: dict[Monomial, Any] = {}
    for ma, xa in a.terms.items():
        for mb, xb in b.terms.items():
            m, f = mono_mul(ma, mb)
            v = xa * xb * f
            old = acc.get(m)
            acc[m] = v if old is None else old + v
    return collected(acc, a.has_reciprocal() or b.has_reciprocal())


def div(a: Lazy, b: Lazy) -> Lazy:
    cb = constant_of(b)
    if cb is not None:
        if cb == 0:
            raise ZeroDivisionError("exact division by zero")
        return scale(a, _ONE / cb)
    if not a.terms:
        return ZERO
    if len(b.terms) == 1:
        (m, c), = b.terms.items()
        return mul(a, Lazy({mono_inv(m): _ONE / c}))
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
        not_g = Lazy({mono_inv(g): _ONE})
        rest = mul(b, not_g)
        if len(rest.terms) == 1:
            (m, c), = rest.terms.items()
            return mul(not_g, Lazy({mono_inv(m): _ONE / c}))
        return mul(not_g, _reciprocal(rest))
    # Make the denominator primitive (integer coefficients without a common factor, the
    # first one positive) so that equal sums share one atom and print as 1/(1 + 2e).
    c = integer_content(b)
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


def integer_content(x: Lazy) -> Any:
    """The rational ``c`` with ``x / c`` having coprime integer coefficients, first > 0."""
    num_gcd, den_lcm = 0, 1
    for c in x.terms.values():
        p, q = pq_of(c)
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
    c = constant_of(x)
    if c is not None and c == 1:
        return ZERO
    return _function("log", x)


def sqrt(x: Lazy) -> Lazy:
    c = constant_of(x)
    if c is not None:
        if c == 0:
            return ZERO
        p, q = pq_of(c)
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
        p, q = pq_of(c)
        den = tuple(t for t in m if t[0].kind == "inv" and t[1] > 0)
        factors: list[sympy.Expr] = [sympy.Rational(p, q)]
        factors.extend(_atom_sympy(a) ** k for a, k in m if (a, k) not in den)
        groups.setdefault(den, []).append(sympy.Mul(*factors))
    parts = []
    for den, nums in groups.items():
        parts.append(sympy.Mul(sympy.Add(*nums), *[_atom_sympy(a) ** k for a, k in den]))
    return sympy.Add(*parts)
