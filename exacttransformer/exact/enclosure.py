"""Enclosures, signs and expansion of the structured engine's numbers.

Layer: exact.  A :class:`~exacttransformer.exact.lazy.Lazy` number is enclosed at rising
precision by :func:`enclose_raw` (python-flint's ``arb`` balls when installed, integer
fixed point otherwise); its sign is proven by :func:`sign`, and a zero by :func:`proven_zero`
(expansion, then exact algebra on a small closed form).  A column of a row block
(:class:`RowView`, made by :mod:`exacttransformer.exact.rows`) is enclosed through its block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

from mpmath.ctx_iv import MPIntervalContext
from mpmath.libmp import finf, fninf, from_man_exp, fzero

from ..errors import ComputationError
from .algebra import proven_equal
from .lazy import (
    DISPLAY_LIMIT,
    ONE,
    PREC_CAP,
    PREC_START,
    ZERO,
    Atom,
    Lazy,
    Monomial,
    Q,
    atom,
    const_q,
    cos,
    erf,
    exp,
    expanded_product,
    flint,
    integer_content,
    log,
    mono_inv,
    pi,
    pq_of,
    scale,
    sin,
    sqrt,
    tanh,
    total,
)

_ZERO = Q(0)
_ONE = Q(1)


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
    :mod:`exacttransformer.exact.interval`); sin and cos use mpmath's interval context.
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
        p, q = pq_of(c)
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
        p, q = pq_of(c)
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

        from .interval import widen

        wp = self.prec + self._GUARD
        lo = f(self._mpf(v[0]), wp, round_floor)
        hi = f(self._mpf(v[1]), wp, round_ceiling)
        lo = widen(lo, self.prec, down=True)
        hi = widen(hi, self.prec, down=False)
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
        assert flint is not None
        self.prec = prec
        self.arb = flint.arb

    def rational(self, c: Any) -> Any:
        if type(c) is Fraction:
            c = flint.fmpq(c.numerator, c.denominator)
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
    return _ArbKernel(prec) if flint is not None else _FixedKernel(prec)


def enclose_raw(x: Lazy, prec: int) -> tuple[Any, Any]:
    """Endpoints ``lo <= x <= hi`` (mpmath raw tuples) at about ``prec`` bits.

    Each atom's enclosure is computed once per precision and kept on the atom.
    """
    k = _kernel(prec)
    if flint is not None:
        saved = flint.ctx.prec
        flint.ctx.prec = prec
        try:
            return k.raw(_eval(x, k, prec))
        finally:
            flint.ctx.prec = saved
    return k.raw(_eval(x, k, prec))


def _eval(x: Lazy, k: Any, prec: int) -> Any:
    # Atoms first, deepest first, without recursion (a deep model nests hundreds of atoms).
    _eval_atoms(x.atoms(), k, prec)
    return _eval_poly(x, k, prec)


_MONOMIALS: dict[tuple[str, int], dict[Monomial, Any]] = {}
"""Enclosures of monomials, per kernel and precision: a row's monomials recur in every
entry of the row.  Cleared when large (it keeps its atoms alive)."""

_MONOMIALS_LIMIT = 400_000


def monomial_cache(key: tuple[str, int]) -> dict[Monomial, Any]:
    cache = _MONOMIALS.get(key)
    if cache is None or len(cache) > _MONOMIALS_LIMIT:
        if sum(len(c) for c in _MONOMIALS.values()) > _MONOMIALS_LIMIT:
            _MONOMIALS.clear()
        cache = _MONOMIALS.setdefault(key, {})
    return cache


def monomial_value(m: Monomial, k: Any, key: tuple[str, int], cache: dict[Monomial, Any]) -> Any:
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
    cache = monomial_cache(key)
    acc = None
    for m, c in x.terms.items():
        if not m:
            v = k.rational(c)
        else:
            v = monomial_value(m, k, key, cache)
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
        if at.arg is None or (isinstance(at.arg, RowView) and key in at.arg.block.basis._encl):
            deps = []
        else:
            deps = [d for d in at.arg.atoms() if key not in d._encl]
        if deps and not ready:
            stack.append((at, True))
            stack.extend((d, False) for d in deps)
            continue
        if isinstance(at.arg, RowView):
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
            c = integer_content(arg) if arg.terms else _ONE
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
        x, p = Lazy({mono_inv(m): _ONE / c}), -p
    out = ONE
    for _ in range(p):
        out = _times(out, x)
    return out


def _times(a: Lazy, b: Lazy) -> Lazy:
    """The full product (no atom kept whole), refused past :data:`EXPAND_LIMIT` terms."""
    if len(a.terms) * len(b.terms) > EXPAND_LIMIT:
        raise _TooLarge
    return expanded_product(a, b)


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
        if proven_equal(x.to_sympy(), Fraction(0)):
            return 0
    raise ComputationError(
        f"cannot decide the sign of a value within 2^-{PREC_CAP} of 0 "
        f"({len(x.terms)} terms): it is neither proven zero nor separated from it")


class RowView(Lazy):
    """Column ``col`` of a :class:`_RowBlock` as a number: the argument of the atom that
    stands for one matrix-product entry.  Its terms are made on first use."""

    __slots__ = ("block", "col")

    def __init__(self, block: Any, col: int):  # a rows.RowBlock  # noqa: D107 -- terms come later
        self._no_caches()
        self.block = block
        self.col = col

    @property
    def terms(self) -> dict[Monomial, Any]:
        try:
            return _TERMS_SLOT.__get__(self, RowView)  # type: ignore[no-any-return]
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
