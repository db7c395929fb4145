"""Proven decimals out: certified printing, signs and zero tests of exact values.

Layer: exact.

Printing (:func:`to_sig`, :func:`to_fixed`) is correct in every digit shown. Rationals are
rounded with integer arithmetic; any other value is enclosed in an interval
(:func:`exacttransformer.exact.interval.enclose`) at rising precision until both ends print the same
digits, which proves them. Rounding rules:

- an exact tie (the value exactly halfway between two printable decimals) rounds half away
  from zero, as textbooks do: 1/8 to two decimals is ``0.13`` and -1/8 is ``-0.13``. A tie is
  decided exactly, also for irrational-looking forms such as ``(sqrt(2)+1)*(sqrt(2)-1)/8``
  (proved equal to the boundary by exact simplification, never by numerical evidence);
- trailing zeros are kept, they are significant: 1/2 to three significant digits is ``0.500``;
- zero prints as ``0`` under :func:`to_sig` (it has no significant digits) and as ``0.00``
  under :func:`to_fixed`; a negative number that rounds to zero prints without a sign
  (-1/1000 to two decimals is ``0.00``);
- :func:`to_sig` uses fixed-point notation when the rounded value is in [1e-6, 1e15), and
  otherwise scientific notation with an explicit exponent sign (``1.23e-7``, ``4.5e+20``);
  a large integer part is padded with zeros (1234 to two significant digits is ``1200``).

If an irrational value stays within 2^-8192 (relative) of a rounding boundary and cannot be
proven equal to it, printing raises :class:`ComputationError` rather than guess a digit.

>>> import sympy
>>> to_sig(sympy.exp(3 * sympy.sqrt(2) / 2), 3), to_fixed(sympy.Rational(1, 2), 2)
('8.34', '0.50')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import TypeAlias, TypeVar

import sympy
from mpmath.libmp import finf, fninf, fzero

from ..errors import ComputationError, LimitError, NumberError
from .algebra import proven_equal
from .closedform import closed_form, int_str
from .closedform import node_count as node_count  # re-exported by numbers, read by render.forms
from .enclosure import enclose_raw as lazy_enclose_raw
from .enclosure import known_sign, proven_zero
from .enclosure import sign as lazy_sign
from .interval import enclose_raw as sympy_enclose_raw
from .lazy import DISPLAY_LIMIT, Lazy
from .lazy import const as lazy_const

__all__ = [
    "Number",
    "compare",
    "format_exact",
    "is_zero",
    "sign",
    "to_fixed",
    "to_float",
    "to_sig",
]

Number: TypeAlias = sympy.Expr

MAX_PRINT_DIGITS = 5000  # digits asked of to_sig / to_fixed
MAX_MAGNITUDE_BITS = 1 << 20  # |log2 |x|| of a printed value (about 10^+-315000)

PREC_START = 64
PREC_CAP = 8192
_TINY_CAP = 1 << 17
"""The most bits spent to see a number that is proven nonzero but tiny (down to about
10^-39000), where the fixed-point enclosures of the structured engine need one bit for every
leading zero."""

_T = TypeVar("_T")
_Raw = tuple[int, int, int, int]


# --------------------------------------------------------------------------- printing


def to_sig(x: Number, n: int) -> str:
    """x rounded to n significant digits (ties away from zero), every digit proven.

    >>> to_sig(sympy.Rational(1, 2), 3), to_sig(sympy.sqrt(2), 4), to_sig(sympy.Integer(0), 3)
    ('0.500', '1.414', '0')
    >>> to_sig(sympy.Rational(1, 3 * 10**7), 2), to_sig(sympy.Integer(1234), 2)
    ('3.3e-8', '1200')
    """
    x = _as_expr(x)
    _check_digits(n, 1, "significant digits")
    start = max(PREC_START, 4 * n + 32)

    def render(f: Fraction) -> str:
        return _sig_string(f, n)

    def boundaries(lo: Fraction, hi: Fraction) -> list[Fraction]:
        found = {Fraction(0)} if lo <= 0 <= hi else set()
        for end in (lo, hi):
            if end:
                k = _decade(abs(end.numerator), end.denominator)
                found.update(_odd_halves(lo, hi, Fraction(10) ** (k - n + 1)))
        return sorted(found)

    return _certify(x, render, _convert_sig, boundaries, start, f"{n} significant digits")


def to_fixed(x: Number, d: int) -> str:
    """x rounded to d digits after the decimal point (ties away from zero), every digit proven.

    >>> to_fixed(sympy.Rational(1, 2), 2), to_fixed(sympy.Rational(1, 8), 2), to_fixed(8, 0)
    ('0.50', '0.13', '8')
    >>> to_fixed(sympy.Rational(-1, 8), 2), to_fixed(sympy.Rational(-1, 1000), 2)
    ('-0.13', '0.00')
    """
    x = _as_expr(x)
    _check_digits(d, 0, "decimals")
    start = max(PREC_START, 4 * d + 32)
    tiny = 4 * d + 8  # below 2^-tiny a number rounds to 0 at d decimals

    def convert(raw: _Raw) -> Fraction | None:
        if raw != fzero and raw_mag(raw) < -tiny and raw not in (finf, fninf):
            return Fraction(0)
        return to_fraction(raw)

    def render(f: Fraction) -> str:
        return _fixed_string(f, d)

    def boundaries(lo: Fraction, hi: Fraction) -> list[Fraction]:
        return _odd_halves(lo, hi, Fraction(1, 10**d))

    return _certify(x, render, convert, boundaries, start, f"{d} decimals")


def sign(x: Number) -> int:
    """-1, 0 or 1: the sign of x, proven (zero only when x is provably exactly zero).

    >>> sign(sympy.Rational(-1, 3)), sign(sympy.sqrt(2) - sympy.Rational(7, 5)), sign(0)
    (-1, 1, 0)
    """
    x = _as_expr(x)
    if x.is_Rational:
        return int(x.p > 0) - int(x.p < 0)  # type: ignore[attr-defined]
    if isinstance(x, Lazy):
        return lazy_sign(x)
    return _irrational_sign(x)


@functools.lru_cache(maxsize=4096)
def _irrational_sign(x: sympy.Expr) -> int:
    # Cached: the engine and the parser ask for the same signs (maxima, divisors) repeatedly.
    def convert(raw: _Raw) -> Fraction:
        return Fraction(raw_sign(raw))

    def boundaries(lo: Fraction, hi: Fraction) -> list[Fraction]:
        return [Fraction(0)]

    def render(f: Fraction) -> int:
        return int(f > 0) - int(f < 0)

    return _certify(x, render, convert, boundaries, PREC_START, "the sign")


def compare(a: Number, b: Number) -> int:
    """-1, 0 or 1 as a < b, a == b, a > b; proven.

    >>> compare(sympy.sqrt(2), sympy.Rational(141, 100)), compare(1, sympy.Rational(2, 2))
    (1, 0)
    """
    x, y = _as_expr(a), _as_expr(b)
    if isinstance(x, Lazy) or isinstance(y, Lazy):
        return sign(lazy_const(x) - lazy_const(y))
    return sign(x - y)


def is_zero(x: Number) -> bool:
    """True when x is provably exactly zero, False when provably nonzero.

    >>> is_zero(sympy.sqrt(8) - 2 * sympy.sqrt(2)), is_zero(sympy.pi - sympy.Rational(22, 7))
    (True, False)
    """
    return sign(x) == 0


def to_float(x: Number) -> float:
    """The float nearest to x (overflow gives +-inf); for computing, never for printing.

    >>> to_float(sympy.Rational(1, 3)) == 1 / 3, to_float(sympy.sqrt(2)) == 2 ** 0.5
    (True, True)
    """
    x = _as_expr(x)
    if x.is_Rational:
        return _float_of(Fraction(int(x.p), int(x.q)))  # type: ignore[attr-defined]
    prec = 80
    while True:
        lo, hi = (_convert_float(v) for v in enclose_raw(x, prec))
        if lo is not None and hi is not None:
            a, b = _float_of(lo), _float_of(hi)
            if a == b or prec >= 1024:
                return a if a == b else _float_of((lo + hi) / 2)
        if prec >= PREC_CAP:
            raise ComputationError(f"cannot bound {quote(str(x))} to convert it to a float")
        prec *= 2


def format_exact(x: Number) -> str:
    """A short exact plain-text form that :func:`parse_number` reads back to the same value.

    >>> from exacttransformer.exact.parse import parse_number
    >>> format_exact(parse_number("3 / sqrt(2)")), format_exact(parse_number("e^1.5"))
    ('3*sqrt(2)/2', 'exp(3/2)')
    >>> format_exact(sympy.E), parse_number(format_exact(sympy.E)) == sympy.E
    ('E', True)
    """
    x = _as_expr(x)
    if isinstance(x, Lazy):
        if x.size() > DISPLAY_LIMIT:  # the structured engine's large values: no closed form
            return repr(x)
        x = x.to_sympy()
    return closed_form(x)


# --------------------------------------------------------------------------- certification


def enclose_raw(x: sympy.Expr, prec: int) -> tuple[_Raw, _Raw]:
    """An enclosure of ``x`` with mpmath's raw endpoints: the structured engine's numbers
    carry their own (:mod:`exacttransformer.exact.enclosure`), a sympy value is walked by
    :mod:`exacttransformer.exact.interval`."""
    if isinstance(x, Lazy):
        return lazy_enclose_raw(x, prec)  # type: ignore[no-any-return]
    return sympy_enclose_raw(x, prec)


def _certify(
    x: sympy.Expr,
    render: Callable[[Fraction], _T],
    convert: Callable[[_Raw], Fraction | None],
    boundaries: Callable[[Fraction, Fraction], list[Fraction]],
    start: int,
    what: str,
) -> _T:
    """render(x), proven: both ends of an enclosure render the same, or x is a proven tie.

    ``render`` must be monotone (it is: rounding), so equal results at both ends hold for
    every number between them. ``convert`` turns an endpoint into a Fraction that renders the
    same (or None when unusable, say infinite).
    """
    if x.is_Rational:
        return render(Fraction(int(x.p), int(x.q)))  # type: ignore[attr-defined]
    cap = max(PREC_CAP, 4 * start)
    prec = start
    last: tuple[Fraction, Fraction] | None = None
    nonzero = isinstance(x, Lazy) and bool(known_sign(x))
    while True:
        lo_raw, hi_raw = enclose_raw(x, prec)
        lo, hi = convert(lo_raw), convert(hi_raw)
        if lo is not None and hi is not None:
            # Digits before the point need bits too: a large x (fixed point) raises the cap.
            magnitude = max(raw_mag(lo_raw) if lo else 0, raw_mag(hi_raw) if hi else 0, 0)
            cap = max(cap, 4 * (start + magnitude))
            # So do the zeros after it: the structured engine's fixed-point enclosures see a
            # tiny x (e^-15000) only at as many bits as it has leading zeros.
            if lo > 0 or hi < 0:
                zeros = -min(raw_mag(lo_raw), raw_mag(hi_raw))
                cap = max(cap, min(2 * (start + zeros), _TINY_CAP))
            elif nonzero:  # proven nonzero, yet within 2^-prec of 0: more bits will show it
                cap = max(cap, min(2 * prec, _TINY_CAP))
            first = render(lo)
            if first == render(hi):
                return first
            last = (lo, hi)
            if prec == 4 * start and isinstance(x, Lazy):
                # The structured engine's values: try the exact proof early (a zero built
                # along two routes), rather than after evaluating a large DAG up to the cap.
                for b in boundaries(lo, hi):
                    if _proven_equal(x, b):
                        return render(b)
        if prec >= cap:
            break
        prec *= 2
    if last is None:
        raise ComputationError(f"cannot bound {quote(str(x))} even at {cap} bits")
    for b in boundaries(*last):
        if _proven_equal(x, b):
            return render(b)
    raise ComputationError(
        f"cannot certify {what} of {quote(str(x))}: it is within 2^-{cap} (relative) of a "
        "rounding boundary and could not be proven equal to it"
    )


def _proven_equal(x: sympy.Expr, b: Fraction) -> bool:
    """True only when x == b is proven by exact algebra (never by numerical evidence)."""
    if isinstance(x, Lazy):
        # The structured engine's own algebra, and no more: its values are the ones too large
        # for sympy, and simplify on their closed forms took minutes without a proof.
        return proven_zero(x - lazy_const(b))
    return proven_equal(x, b)


def _odd_halves(lo: Fraction, hi: Fraction, unit: Fraction) -> list[Fraction]:
    """The numbers (t + 1/2) * unit in [lo, hi]: where rounding to a multiple of unit jumps."""
    first = math.ceil(lo * 2 / unit)
    last = math.floor(hi * 2 / unit)
    if last - first > 6:
        return []  # a wide enclosure even at the cap: no single boundary to test
    return [t * unit / 2 for t in range(first, last + 1) if t % 2]


# --------------------------------------------------------------------------- exact rounding


def _sig_string(f: Fraction, n: int) -> str:
    if f == 0:
        return "0"
    p, q = abs(f.numerator), f.denominator
    if abs(p.bit_length() - q.bit_length()) > MAX_MAGNITUDE_BITS:
        bits = p.bit_length() - q.bit_length()
        raise LimitError(f"value too large or too small to print (about 2^{bits})")
    k = _decade(p, q)
    shift = n - 1 - k
    num, den = (p * 10**shift, q) if shift >= 0 else (p, q * 10**-shift)
    m = (2 * num + den) // (2 * den)  # round half up on |x|: ties away from zero
    if m == 10**n:
        m, k = m // 10, k + 1
    digits = int_str(m)
    sign_text = "-" if f < 0 else ""
    if -6 <= k < 15:
        if k >= n - 1:
            return sign_text + digits + "0" * (k - n + 1)
        if k >= 0:
            return sign_text + digits[: k + 1] + "." + digits[k + 1 :]
        return sign_text + "0." + "0" * (-k - 1) + digits
    mantissa = digits[0] + ("." + digits[1:] if n > 1 else "")
    return f"{sign_text}{mantissa}e{'+' if k >= 0 else '-'}{abs(k)}"


def _fixed_string(f: Fraction, d: int) -> str:
    p, q = abs(f.numerator), f.denominator
    if p.bit_length() - q.bit_length() > 3.33 * MAX_PRINT_DIGITS:
        raise LimitError(f"value too large to print in fixed point (more than {MAX_PRINT_DIGITS} digits)")
    m = (2 * p * 10**d + q) // (2 * q)  # round half up on |x|: ties away from zero
    digits = int_str(m).rjust(d + 1, "0")
    text = digits[:-d] + "." + digits[-d:] if d else digits
    return "-" + text if f < 0 and m else text


def _decade(p: int, q: int) -> int:
    """floor(log10(p/q)) for positive integers p, q."""
    k = math.floor((p.bit_length() - q.bit_length()) * 0.30102999566398120)
    while not _at_least_pow10(p, q, k):
        k -= 1
    while _at_least_pow10(p, q, k + 1):
        k += 1
    return k


def _at_least_pow10(p: int, q: int, k: int) -> bool:
    return p >= q * 10**k if k >= 0 else p * 10**-k >= q


# --------------------------------------------------------------------------- raw endpoints


def to_fraction(raw: _Raw) -> Fraction | None:
    if raw == fzero:
        return Fraction(0)
    sign_bit, man, exp, bc = raw
    if not man:  # +-inf or nan
        return None
    if abs(exp + bc) > MAX_MAGNITUDE_BITS + 64:
        raise LimitError(f"value too large or too small to print (about 2^{exp + bc})")
    value = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
    return -value if sign_bit else value


def _convert_sig(raw: _Raw) -> Fraction | None:
    return to_fraction(raw)


def _convert_float(raw: _Raw) -> Fraction | None:
    if raw != fzero and raw[1] and abs(raw_mag(raw)) > 1100:
        # Beyond the float range: any number this far out converts to the same float.
        big = Fraction(2) ** (1100 if raw_mag(raw) > 0 else -1100)
        return -big if raw[0] else big
    return to_fraction(raw)


def _float_of(f: Fraction) -> float:
    try:
        return float(f)  # int / int division: correctly rounded
    except OverflowError:
        return math.inf if f > 0 else -math.inf


def raw_sign(raw: _Raw) -> int:
    if raw == fzero:
        return 0
    return -1 if raw[0] else 1


def raw_mag(raw: _Raw) -> int:
    """e with 2^(e-1) <= |v| < 2^e for a finite nonzero endpoint v."""
    return raw[2] + raw[3]


# --------------------------------------------------------------------------- helpers


def _as_expr(x: object) -> sympy.Expr:
    if isinstance(x, sympy.Expr):
        return x
    if isinstance(x, Lazy):  # the structured engine's numbers: enclosed and compared alike
        return x  # type: ignore[return-value]
    if isinstance(x, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(x, int):
        return sympy.Integer(x)
    if isinstance(x, Fraction):
        return sympy.Rational(x.numerator, x.denominator)
    raise TypeError(f"expected a sympy expression or an int, got {type(x).__name__}")


def _check_digits(count: object, least: int, what: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int):
        raise NumberError(f"number of {what} must be an integer, got {count!r}")
    if not least <= count <= MAX_PRINT_DIGITS:
        raise NumberError(f"number of {what} must be from {least} to {MAX_PRINT_DIGITS}, got {count}")


def quote(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return '"' + shown + '"'
