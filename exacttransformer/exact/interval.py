"""Rigorous enclosures of exact constants: the layer that proves printed digits.

Layer: a raw kernel under :mod:`exacttransformer.numbers`. :func:`enclose` walks a constant
sympy expression and returns two binary floating-point numbers ``lo <= x <= hi`` computed with
outward-rounded interval arithmetic (mpmath's interval context) at a chosen precision. The
exact value is *guaranteed* to lie between them; raising the precision shrinks the interval.

Supported nodes: Integer, Rational, exactly representable Float, ``pi``, ``E``, Add, Mul, Pow
(integer exponents; rational and other real exponents on positive bases; ``sqrt``), exp, log,
sin, cos, tanh, erf, Abs, Min and Max. Anything else is a :class:`ComputationError` naming the
node type. Every expression must be real: an even root or a logarithm whose argument is proven
negative is a :class:`ComputationError`; an argument that cannot yet be separated from zero is
assumed non-negative (the only real possibility), so the answer still contains every real value.

>>> import sympy
>>> lo, hi = enclose(sympy.sqrt(2), 64)
>>> import mpmath
>>> mpmath.fmul(lo, lo, exact=True) < 2 < mpmath.fmul(hi, hi, exact=True)
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from fractions import Fraction

import mpmath
import sympy
from mpmath.ctx_iv import MPIntervalContext
from mpmath.libmp import (
    finf,
    fnan,
    fninf,
    fzero,
    mpf_abs,
    mpf_add,
    mpf_lt,
    mpf_shift,
    mpf_sub,
    round_ceiling,
    round_floor,
)
from mpmath.libmp.libhyper import mpf_erf

from ..errors import ComputationError

__all__ = ["enclose"]

# One private interval context per thread: its precision is set for the duration of one
# call and restored, so neither mpmath's global ``iv`` nor ``mp`` is ever touched.
_local = threading.local()

# Guard bits for erf at the endpoints, and the relative widening applied afterwards (below).
_ERF_GUARD_BITS = 32

# mpmath's raw endpoints are tuples (sign, mantissa, exponent, bitcount).
_Raw = tuple[int, int, int, int]


def _context() -> MPIntervalContext:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = MPIntervalContext()
        _local.ctx = ctx
    return ctx


def enclose(x: sympy.Expr, prec: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    """An interval ``(lo, hi)`` of binary numbers with ``lo <= x <= hi``, at ``prec`` bits.

    Endpoints are ``mpmath.mpf`` values (exact binary fractions); either may be infinite when
    the enclosure is unbounded at this precision (say, dividing by something not yet separated
    from zero): retry with more bits.

    >>> import sympy
    >>> enclose(sympy.Rational(1, 2), 10)
    (mpf('0.5'), mpf('0.5'))
    >>> lo, hi = enclose(sympy.exp(sympy.sqrt(2)), 100)
    >>> float(lo) <= 4.1132503787829275 <= float(hi)
    True
    """
    lo, hi = enclose_raw(x, prec)
    return mpmath.mp.make_mpf(lo), mpmath.mp.make_mpf(hi)


def enclose_raw(x: sympy.Expr, prec: int) -> tuple[_Raw, _Raw]:
    """Like :func:`enclose`, but the endpoints are mpmath's raw tuples (for internal callers).

    >>> enclose_raw(sympy.Integer(3), 8)
    ((0, 3, 0, 2), (0, 3, 0, 2))
    """
    if not isinstance(prec, int) or prec < 2:
        raise ValueError(f"precision must be an integer of at least 2 bits, got {prec!r}")
    if not isinstance(x, sympy.Basic):
        raise ComputationError(f"expected a sympy expression, got {type(x).__name__}")
    ctx = _context()
    saved = ctx.prec
    ctx.prec = prec
    try:
        walker = _Walker(ctx, prec)
        walker.memo = _shared_memo(prec)
        value = walker.run(x)
    finally:
        ctx.prec = saved
    lo, hi = value._mpi_
    if lo == fnan or hi == fnan:
        return fninf, finf
    return lo, hi


_MEMO_LIMIT = 200_000
"""Enclosures of subexpressions are kept across calls, per precision and thread: printing a
trace certifies thousands of entries that share their subexpressions (a gradient's entries
all contain the same softmax sums).  The store is emptied when it grows past this size."""


def _shared_memo(prec: int) -> dict[sympy.Basic, object]:
    memos: dict[int, dict[sympy.Basic, object]] | None = getattr(_local, "memos", None)
    if memos is None or sum(len(m) for m in memos.values()) > _MEMO_LIMIT:
        memos = {}
        _local.memos = memos
    return memos.setdefault(prec, {})


class _Walker:
    """Evaluates one expression bottom-up, each distinct subtree once (the memo)."""

    def __init__(self, ctx: MPIntervalContext, prec: int):
        self.ctx = ctx
        self.prec = prec
        self.memo: dict[sympy.Basic, object] = {}

    def run(self, root: sympy.Basic):  # -> ivmpf
        # An explicit stack instead of recursion: engine expressions can be deep.
        stack: list[tuple[sympy.Basic, bool]] = [(root, False)]
        memo = self.memo
        while stack:
            node, children_done = stack.pop()
            if node in memo:
                continue
            args = _operands(node)
            if not children_done and any(a not in memo for a in args):
                stack.append((node, True))
                stack.extend((a, False) for a in args if a not in memo)
                continue
            memo[node] = self._node(node, [memo[a] for a in args])
        return memo[root]

    def _node(self, node: sympy.Basic, args: Sequence):
        ctx = self.ctx
        if any(_unbounded(a) for a in args) and not (node.is_Add or node.is_Mul):
            # A function of an unbounded (or NaN) enclosure: the whole line is a safe answer.
            return ctx.mpf(["-inf", "inf"])
        if node.is_Rational:
            p, q = int(node.p), int(node.q)
            return ctx.mpf(p) if q == 1 else ctx.mpf(p) / ctx.mpf(q)
        if node.is_Float:
            raw = _exact_float(node)
            return ctx.make_mpf((raw, raw))
        if node is sympy.pi:
            return +ctx.pi
        if node is sympy.E:
            return +ctx.e
        if node.is_Add:
            total = args[0]
            for a in args[1:]:
                total = total + a
            return _fix_nan(ctx, total)
        if node.is_Mul:
            product = args[0]
            for a in args[1:]:
                product = product * a
            return _fix_nan(ctx, product)
        if node.is_Pow:
            return self._pow(node, args[0], args[1] if len(args) > 1 else None)
        handler = _FUNCTIONS.get(type(node))
        if handler is None:
            raise ComputationError(
                f"cannot enclose a node of type {type(node).__name__} ({_short(node)}): "
                "supported are rationals, pi, E, +, *, powers, exp, log, sin, cos, tanh, erf"
            )
        return _fix_nan(ctx, handler(self, node, args))

    def _pow(self, node: sympy.Basic, base, exponent):
        ctx = self.ctx
        e = node.exp
        if e.is_Integer:
            return _fix_nan(ctx, base ** int(e))
        if e.is_Rational:
            root = self._root(node, base, int(e.q))
            return _fix_nan(ctx, root ** int(e.p))
        # A real exponent on a positive base: b^e = exp(e log b).
        return _fix_nan(ctx, ctx.exp(exponent * self._log(node, base)))

    def _root(self, node: sympy.Basic, base, q: int):
        """The positive q-th root of ``base``, an enclosure of a number that must be >= 0."""
        ctx = self.ctx
        lo, hi = base._mpi_
        if mpf_lt(hi, fzero):
            raise ComputationError(f"{_short(node)} is not real: its base is negative")

        def root(v: _Raw):  # -> ivmpf, an enclosure of v^(1/q)
            point = ctx.make_mpf((v, v))
            return ctx.sqrt(point) if q == 2 else ctx.exp(ctx.log(point) / q)

        low = fzero if not mpf_lt(fzero, lo) else root(lo)._mpi_[0]
        high = fzero if hi == fzero else root(hi)._mpi_[1]
        return ctx.make_mpf((low, high))

    def _log(self, node: sympy.Basic, arg):
        ctx = self.ctx
        lo, hi = arg._mpi_
        if not mpf_lt(fzero, hi):
            raise ComputationError(f"{_short(node)} is not real: a logarithm of a number <= 0")
        if mpf_lt(fzero, lo):
            return ctx.log(arg)
        # Not yet separated from zero: only a positive argument is real, and log is increasing.
        return ctx.make_mpf((fninf, ctx.log(ctx.make_mpf((hi, hi)))._mpi_[1]))

    def _erf(self, arg):
        # erf is increasing, so erf([a, b]) = [erf(a), erf(b)]. mpmath evaluates erf at an
        # exact binary point with a relative error of a few units in the last place of the
        # working precision. We work _ERF_GUARD_BITS bits beyond `prec` and then widen each
        # end outward by 2^-prec relative to its size: that margin is 2^32 times mpmath's
        # error, so the true erf(a) and erf(b) lie inside. erf(0) = 0 is exact and erf of
        # +-inf is +-1 exactly, so a zero result needs no widening.
        lo, hi = arg._mpi_
        wp = self.prec + _ERF_GUARD_BITS
        low = widen(mpf_erf(lo, wp, round_floor), self.prec, down=True)
        high = widen(mpf_erf(hi, wp, round_ceiling), self.prec, down=False)
        return self.ctx.make_mpf((low, high))


def widen(v: _Raw, prec: int, *, down: bool) -> _Raw:
    if v == fzero:
        return v
    delta = mpf_shift(mpf_abs(v), -prec)
    if down:
        return mpf_sub(v, delta, prec, round_floor)
    return mpf_add(v, delta, prec, round_ceiling)


def _tanh(walker: _Walker, node: sympy.Basic, args: Sequence):
    # tanh x = 1 - 2/(exp(2x) + 1): x occurs once, so interval evaluation is tight and monotone.
    ctx = walker.ctx
    return 1 - 2 / (ctx.exp(2 * args[0]) + 1)


def _abs(walker: _Walker, node: sympy.Basic, args: Sequence):
    ctx = walker.ctx
    lo, hi = args[0]._mpi_
    if not mpf_lt(lo, fzero):
        return args[0]
    if not mpf_lt(fzero, hi):
        return -args[0]
    return ctx.make_mpf((fzero, mpf_abs(lo) if mpf_lt(hi, mpf_abs(lo)) else hi))


def _extremum(pick_max: bool) -> Callable:
    # max and min are increasing in each argument: apply them to the ends separately.
    choose = max if pick_max else min

    def handler(walker: _Walker, node: sympy.Basic, args: Sequence):
        low = choose((a._mpi_[0] for a in args), key=mpmath.mp.make_mpf)
        high = choose((a._mpi_[1] for a in args), key=mpmath.mp.make_mpf)
        return walker.ctx.make_mpf((low, high))

    return handler


_FUNCTIONS: dict[type, Callable] = {
    sympy.exp: lambda w, node, args: w.ctx.exp(args[0]),
    sympy.log: lambda w, node, args: w._log(node, args[0]),
    sympy.sin: lambda w, node, args: w.ctx.sin(args[0]),
    sympy.cos: lambda w, node, args: w.ctx.cos(args[0]),
    sympy.tanh: _tanh,
    sympy.erf: lambda w, node, args: w._erf(args[0]),
    sympy.Abs: _abs,
    sympy.Max: _extremum(pick_max=True),
    sympy.Min: _extremum(pick_max=False),
}


def _operands(node: sympy.Basic) -> tuple[sympy.Basic, ...]:
    if node.is_Atom:
        return ()
    if node.is_Pow and node.exp.is_Rational:
        return (node.base,)  # a rational exponent is used exactly, never as an interval
    return tuple(node.args)


def _unbounded(value) -> bool:
    lo, hi = value._mpi_
    return lo in (fninf, finf, fnan) or hi in (fninf, finf, fnan)


def _fix_nan(ctx: MPIntervalContext, value):
    lo, hi = value._mpi_
    if lo == fnan or hi == fnan:
        return ctx.mpf(["-inf", "inf"])
    return value


def _exact_float(node: sympy.Basic) -> _Raw:
    """A Float is accepted only when its binary value is the decimal it prints as."""
    raw = node._mpf_
    try:
        exact = Fraction(*mpmath.libmp.to_rational(raw)) == Fraction(str(node))
    except (ValueError, ZeroDivisionError):
        exact = False
    if not exact:
        raise ComputationError(
            f"the Float {node} is not exact (its binary value differs from the decimal it "
            "prints as); use a Rational"
        )
    return raw


def _short(node: sympy.Basic, limit: int = 60) -> str:
    text = str(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."
