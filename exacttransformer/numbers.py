"""Exact numbers in, proven decimals out: the whitelisted parser and certified printing.

Layer: the edge between text and exact sympy values. Nothing here calls ``eval``,
``sympify`` or ``parse_expr`` on user text: :func:`parse_number` tokenizes the string itself
and builds the value with sympy constructors.

Grammar (whitespace allowed between tokens)::

    expr   := term (("+" | "-") term)*
    term   := ("+" | "-") term | factor (("*" | "/") factor)*   # -a*b = -(a*b)
    factor := ("+" | "-") factor | power                        # 2*-3, 2^-1
    power  := atom (("^" | "**") factor)?          # right-associative: 2^3^2 = 2^9
    atom   := number | "pi" | "e" | "E" | func "(" expr ")" | "(" expr ")"
    func   := sqrt | exp | log | ln | sin | cos | tanh | erf     # ln = log
    number := 12 | 0.25 | .5 | 5. | 1e-5 | 2.5E3                # decimals are exact rationals

``^`` and ``**`` are both powers, ``-2^2`` is ``-4`` (as in Python), ``e`` and ``E`` are Euler's
number, and the Unicode minus sign ``−`` is read as ``-``. We work over the reals: the square
root or a fractional power of a negative number, the logarithm of a number <= 0, and division
by zero are :class:`NumberError`. A positive base may have an irrational exponent
(``e^sqrt(2)``, ``2^pi``).

Limits, refused with :class:`LimitError` before any heavy work: text longer than 1000
characters; a literal with more than 400 digits or a decimal exponent beyond +-400; nesting
deeper than 40; a power whose exponent has numerator or denominator above 1024, or whose result
would need more than 10,000 bits; ``exp`` of a number beyond +-10000; ``sin``, ``cos``,
``tanh``, ``erf`` of a number of 2^10000 or more.

Printing (:func:`to_sig`, :func:`to_fixed`) is correct in every digit shown. Rationals are
rounded with integer arithmetic; any other value is enclosed in an interval
(:func:`exacttransformer.interval.enclose`) at rising precision until both ends print the same
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

>>> x = parse_number("exp(3*sqrt(2)/2)")
>>> x, to_sig(x, 3), to_fixed(parse_number("1/2"), 2)
(exp(3*sqrt(2)/2), '8.34', '0.50')
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import TypeAlias, TypeVar

import sympy
from mpmath.libmp import finf, fninf, fzero

from .closedform import closed_form, int_str
from .closedform import node_count as node_count  # read by render.forms
from .errors import ComputationError, LimitError, NumberError
from .interval import enclose_raw
from .lazy import DISPLAY_LIMIT, Lazy, known_sign, proven_zero
from .lazy import const as lazy_const
from .lazy import sign as lazy_sign

__all__ = [
    "Number",
    "compare",
    "format_exact",
    "is_zero",
    "parse_number",
    "parse_value",
    "sign",
    "to_fixed",
    "to_float",
    "to_sig",
]

Number: TypeAlias = sympy.Expr

MAX_TEXT = 1000  # characters in one number string
MAX_LITERAL_DIGITS = 400  # digits in one literal
MAX_DECIMAL_EXPONENT = 400  # |n| in 1e<n>
MAX_DEPTH = 40  # nesting of parentheses, calls, signs and powers
MAX_EXPONENT = 1024  # numerator and denominator of a power's exponent
MAX_RESULT_BITS = 10_000  # estimated size of a power's result
MAX_EXP_ARGUMENT = 10_000  # |x| in exp(x)
MAX_ARGUMENT_BITS = 10_000  # |x| < 2^this in sin, cos, tanh, erf
MAX_PRINT_DIGITS = 5000  # digits asked of to_sig / to_fixed
MAX_MAGNITUDE_BITS = 1 << 20  # |log2 |x|| of a printed value (about 10^+-315000)

_FUNCTIONS = ("sqrt", "exp", "log", "ln", "sin", "cos", "tanh", "erf")
_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E}
_ALLOWED = "sqrt, exp, log, ln, sin, cos, tanh, erf, pi, e"

_PREC_START = 64
_PREC_CAP = 8192
_TINY_CAP = 1 << 17
"""The most bits spent to see a number that is proven nonzero but tiny (down to about
10^-39000), where the fixed-point enclosures of the structured engine need one bit for every
leading zero."""

_T = TypeVar("_T")
_Raw = tuple[int, int, int, int]


# --------------------------------------------------------------------------- parsing


def parse_number(text: str) -> Number:
    """The exact value of a number string such as ``"-3/4"``, ``"1e-5"``, ``"3*sqrt(2)/2"``.

    >>> parse_number("0.1"), parse_number("-3/4"), parse_number("2.5E3")
    (1/10, -3/4, 2500)
    >>> parse_number("3*sqrt(2)/2"), parse_number("e^2"), parse_number("2^-1 + ln(1)")
    (3*sqrt(2)/2, exp(2), 1/2)
    >>> parse_number("__import__('os')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    exacttransformer.errors.NumberError: unknown name '__import__' (allowed: sqrt, exp, ...
    """
    if not isinstance(text, str):
        raise NumberError(f"expected a number string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise LimitError(f"number string of {len(text)} characters (at most {MAX_TEXT})")
    if not text.strip():
        raise NumberError("empty number string: expected a number such as 3/4 or 0.25")
    try:
        return _Parser(text).parse()
    except (NumberError, LimitError) as err:
        raise type(err)(f"{err} in {_quote(text)}") from None
    except ComputationError as err:  # an enclosure that failed while checking a sign or size
        raise NumberError(f"{err} in {_quote(text)}") from None


def parse_value(value: object) -> Number:
    """The exact value of a TOML value: an integer, a float (as written) or a number string.

    >>> parse_value(3), parse_value(0.1), parse_value("sqrt(2)/2")
    (3, 1/10, sqrt(2)/2)
    >>> parse_value(True)
    Traceback (most recent call last):
    ...
    exacttransformer.errors.NumberError: expected a number, got the boolean True
    """
    if isinstance(value, bool):  # before int: bool is an int subclass
        raise NumberError(f"expected a number, got the boolean {value}")
    if isinstance(value, int):
        if abs(value) >= 10**MAX_LITERAL_DIGITS:
            raise LimitError(f"integer with more than {MAX_LITERAL_DIGITS} digits")
        return sympy.Integer(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NumberError(f"expected a finite number, got {value!r}")
        return parse_number(repr(value))  # repr is the shortest decimal that reads back
    if isinstance(value, str):
        return parse_number(value)
    raise NumberError(
        f'expected a number (an integer, a decimal or a string such as "3/4"), '
        f"got {type(value).__name__} {_quote(repr(value))}"
    )


_TOKEN = re.compile(
    r"(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^()\u2212])"
)
_NUMBER_PARTS = re.compile(r"([0-9]*)\.?([0-9]*)(?:[eE]([+-]?)([0-9]+))?")
_WORD = re.compile(r"[0-9A-Za-z_.]*")


class _Token:
    __slots__ = ("kind", "text", "pos", "value")

    def __init__(self, kind: str, text: str, pos: int, value: sympy.Expr | None = None):
        self.kind, self.text, self.pos, self.value = kind, text, pos, value


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos == end:
            return tokens
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            hint = " (the decimal point is '.')" if char == "," else ""
            raise NumberError(f"unexpected character {char!r} at position {pos}{hint}")
        kind = match.lastgroup or "op"
        word = match.group()
        if kind == "num":
            after = match.end()
            if after < end and (text[after].isalnum() or text[after] in "._"):
                bad = _WORD.match(text, pos).group()  # type: ignore[union-attr]
                raise NumberError(f"malformed number {bad!r} at position {pos}")
            tokens.append(_Token("num", word, pos, _literal(word)))
        elif kind == "name":
            if word not in _FUNCTIONS and word not in _CONSTANTS:
                raise NumberError(f"unknown name {word!r} (allowed: {_ALLOWED})")
            tokens.append(_Token("name", word, pos))
        else:
            tokens.append(_Token("op", "-" if word == "\u2212" else word, pos))
        pos = match.end()


def _literal(word: str) -> sympy.Expr:
    whole, frac, exp_sign, exp_digits = _NUMBER_PARTS.fullmatch(word).groups()  # type: ignore[union-attr]
    if len(whole) + len(frac) > MAX_LITERAL_DIGITS:
        raise LimitError(
            f"number literal with {len(whole) + len(frac)} digits (at most {MAX_LITERAL_DIGITS})"
        )
    exponent = 0
    if exp_digits is not None:
        digits = exp_digits.lstrip("0") or "0"
        if len(digits) > 4 or int(digits) > MAX_DECIMAL_EXPONENT:
            shown = digits if len(digits) <= 12 else digits[:9] + "..."
            raise LimitError(
                f"decimal exponent {exp_sign}{shown} out of range (at most +-{MAX_DECIMAL_EXPONENT})"
            )
        exponent = -int(digits) if exp_sign == "-" else int(digits)
    mantissa = int((whole + frac) or "0")
    scale = exponent - len(frac)
    if scale >= 0:
        return sympy.Integer(mantissa * 10**scale)
    return sympy.Rational(mantissa, 10**-scale)


class _Parser:
    """Recursive descent over the tokens; every step builds an exact sympy value."""

    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def parse(self) -> sympy.Expr:
        value = self.expr()
        if self.i < len(self.tokens):
            tok = self.tokens[self.i]
            raise NumberError(f"unexpected {tok.text!r} at position {tok.pos}: expected an operator")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.i].text if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        if self.i >= len(self.tokens):
            raise NumberError("unexpected end: expected a number, a name or '('")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LimitError(f"nesting deeper than {MAX_DEPTH} levels")

    def expr(self) -> sympy.Expr:
        terms = [self.term()]
        while self.peek() in ("+", "-"):
            op = self.take().text
            right = self.term()
            terms.append(right if op == "+" else -right)
        return terms[0] if len(terms) == 1 else sympy.Add(*terms)

    def term(self) -> sympy.Expr:
        # A leading sign negates the whole product, "-a*b" = -(a*b): the same value as
        # (-a)*b, and the same sympy form that sympy's printer meant (no sign distributed
        # over a sum in a).
        if self.peek() in ("+", "-"):
            op = self.take().text
            self.deeper()
            value = self.term()
            self.depth -= 1
            return -value if op == "-" else value
        # One Mul of all the factors, as sympy builds it: 2*(1 + pi)*x must not become
        # (2 + 2*pi)*x, which is what multiplying left to right would do.
        factors = [self.factor()]
        while self.peek() in ("*", "/"):
            op = self.take().text
            right = self.factor()
            factors.append(right if op == "*" else _reciprocal(right))
        return factors[0] if len(factors) == 1 else sympy.Mul(*factors)

    def factor(self) -> sympy.Expr:
        if self.peek() in ("+", "-"):  # a sign after an operator: 2*-3, 2^-1
            op = self.take().text
            self.deeper()
            value = self.factor()
            self.depth -= 1
            return -value if op == "-" else value
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            self.deeper()
            exponent = self.factor()
            self.depth -= 1
            return _power(base, exponent)
        return base

    def atom(self) -> sympy.Expr:
        tok = self.take()
        if tok.kind == "num":
            assert tok.value is not None
            return tok.value
        if tok.kind == "name":
            if tok.text in _CONSTANTS:
                return _CONSTANTS[tok.text]
            if self.peek() != "(":
                raise NumberError(f"function {tok.text!r} needs an argument in parentheses")
            self.take()
            return _apply(tok.text, self.group())
        if tok.text == "(":
            return self.group()
        raise NumberError(f"unexpected {tok.text!r} at position {tok.pos}: expected a number")

    def group(self) -> sympy.Expr:
        """The rest of a parenthesized expression, after its '('."""
        self.deeper()
        value = self.expr()
        self.depth -= 1
        if self.peek() != ")":
            found = "the end" if self.peek() is None else repr(self.peek())
            raise NumberError(f"expected ')' but found {found}")
        self.take()
        return value


def _decided_sign(x: sympy.Expr, what: str) -> int:
    try:
        return sign(x)
    except ComputationError:
        raise NumberError(f"cannot decide the sign of {what} {_quote(str(x))}") from None


def _reciprocal(b: sympy.Expr) -> sympy.Expr:
    if _decided_sign(b, "the divisor") == 0:
        raise NumberError("division by zero")
    return sympy.Pow(b, -1)


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    if exponent.is_Rational:
        p, q = int(exponent.p), int(exponent.q)  # type: ignore[attr-defined]
        if abs(p) > MAX_EXPONENT or q > MAX_EXPONENT:
            raise LimitError(
                f"exponent {_quote(str(exponent))} too large "
                f"(numerator and denominator at most {MAX_EXPONENT})"
            )
        s = _decided_sign(base, "the base")
        if s == 0:
            if p < 0:
                raise NumberError("division by zero: zero to a negative power")
            return sympy.Integer(0 if p > 0 else 1)
        if s < 0 and q > 1:
            raise NumberError(f"a negative number to the power {exponent} is not a real number")
        if _size_bits(base) * abs(p) > MAX_RESULT_BITS:
            raise LimitError(
                f"power too large: about {_size_bits(base) * abs(p)} bits (at most {MAX_RESULT_BITS})"
            )
        return sympy.Pow(base, exponent)
    if base == sympy.E:
        return _apply("exp", exponent)
    if _decided_sign(base, "the base") <= 0:
        raise NumberError(f"a power with the irrational exponent {exponent} needs a positive base")
    if not _abs_at_most(exponent, Fraction(MAX_RESULT_BITS, _size_bits(base))):
        raise LimitError(f"power too large (more than {MAX_RESULT_BITS} bits)")
    return sympy.Pow(base, exponent)


def _apply(name: str, arg: sympy.Expr) -> sympy.Expr:
    if name == "sqrt":
        s = _decided_sign(arg, "the argument of sqrt")
        if s < 0:
            raise NumberError("square root of a negative number (we work over the reals)")
        if s == 0:
            return sympy.Integer(0)
        if _size_bits(arg) > MAX_RESULT_BITS:
            raise LimitError(f"argument of sqrt too large (more than {MAX_RESULT_BITS} bits)")
        return sympy.sqrt(arg)
    if name in ("log", "ln"):
        if _decided_sign(arg, "the argument of log") <= 0:
            raise NumberError("logarithm of a number <= 0 (we work over the reals)")
        return sympy.log(arg)
    if name == "exp":
        if not _abs_at_most(arg, Fraction(MAX_EXP_ARGUMENT)):
            raise LimitError(f"argument of exp beyond +-{MAX_EXP_ARGUMENT}")
        return sympy.exp(arg)
    if not _abs_at_most(arg, Fraction(2**MAX_ARGUMENT_BITS)):
        raise LimitError(f"argument of {name} too large (at least 2^{MAX_ARGUMENT_BITS})")
    function = {"sin": sympy.sin, "cos": sympy.cos, "tanh": sympy.tanh, "erf": sympy.erf}[name]
    return function(arg)


def _size_bits(x: sympy.Expr) -> int:
    """An upper bound on the bits of a nonzero x: numerator/denominator size or |log2 |x||."""
    if x.is_Rational:
        return max(int(x.p).bit_length(), int(x.q).bit_length())  # type: ignore[attr-defined]
    prec = _PREC_START
    while True:
        lo, hi = enclose_raw(x, prec)
        if _raw_sign(lo) == _raw_sign(hi) != 0 and lo != fninf and hi != finf:
            return max(max(m, 1 - m) for m in (_raw_mag(lo), _raw_mag(hi)))
        if prec >= _PREC_CAP:
            raise NumberError(f"cannot bound the size of {_quote(str(x))}")
        prec *= 2


def _abs_at_most(x: sympy.Expr, bound: Fraction) -> bool:
    """True when |x| <= bound is proven (False when refuted or undecided at 1024 bits)."""
    if x.is_Rational:
        return abs(Fraction(int(x.p), int(x.q))) <= bound  # type: ignore[attr-defined]
    prec = _PREC_START
    while prec <= 1024:
        try:
            lo, hi = (_to_fraction(v) for v in enclose_raw(x, prec))
        except LimitError:  # beyond 2^+-2^20: far too large (or too small to bother)
            return False
        if lo is not None and hi is not None:
            if -bound <= lo and hi <= bound:
                return True
            if lo > bound or hi < -bound:
                return False
        prec *= 2
    return False


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
    start = max(_PREC_START, 4 * n + 32)

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
    start = max(_PREC_START, 4 * d + 32)
    tiny = 4 * d + 8  # below 2^-tiny a number rounds to 0 at d decimals

    def convert(raw: _Raw) -> Fraction | None:
        if raw != fzero and _raw_mag(raw) < -tiny and raw not in (finf, fninf):
            return Fraction(0)
        return _to_fraction(raw)

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
        return Fraction(_raw_sign(raw))

    def boundaries(lo: Fraction, hi: Fraction) -> list[Fraction]:
        return [Fraction(0)]

    def render(f: Fraction) -> int:
        return int(f > 0) - int(f < 0)

    return _certify(x, render, convert, boundaries, _PREC_START, "the sign")


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
        if prec >= _PREC_CAP:
            raise ComputationError(f"cannot bound {_quote(str(x))} to convert it to a float")
        prec *= 2


def format_exact(x: Number) -> str:
    """A short exact plain-text form that :func:`parse_number` reads back to the same value.

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
    cap = max(_PREC_CAP, 4 * start)
    prec = start
    last: tuple[Fraction, Fraction] | None = None
    nonzero = isinstance(x, Lazy) and bool(known_sign(x))
    while True:
        lo_raw, hi_raw = enclose_raw(x, prec)
        lo, hi = convert(lo_raw), convert(hi_raw)
        if lo is not None and hi is not None:
            # Digits before the point need bits too: a large x (fixed point) raises the cap.
            magnitude = max(_raw_mag(lo_raw) if lo else 0, _raw_mag(hi_raw) if hi else 0, 0)
            cap = max(cap, 4 * (start + magnitude))
            # So do the zeros after it: the structured engine's fixed-point enclosures see a
            # tiny x (e^-15000) only at as many bits as it has leading zeros.
            if lo > 0 or hi < 0:
                zeros = -min(_raw_mag(lo_raw), _raw_mag(hi_raw))
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
        raise ComputationError(f"cannot bound {_quote(str(x))} even at {cap} bits")
    for b in boundaries(*last):
        if _proven_equal(x, b):
            return render(b)
    raise ComputationError(
        f"cannot certify {what} of {_quote(str(x))}: it is within 2^-{cap} (relative) of a "
        "rounding boundary and could not be proven equal to it"
    )


def _proven_equal(x: sympy.Expr, b: Fraction) -> bool:
    """True only when x == b is proven by exact algebra (never by numerical evidence)."""
    if isinstance(x, Lazy):
        # The structured engine's own algebra, and no more: its values are the ones too large
        # for sympy, and simplify on their closed forms took minutes without a proof.
        return proven_zero(x - lazy_const(b))
    if b == 0 and _nonzero(x):
        return False
    diff = x - sympy.Rational(b.numerator, b.denominator)
    if diff == 0:
        return True
    if node_count(diff, SIMPLIFY_LIMIT + 1) > SIMPLIFY_LIMIT:
        return False
    try:
        if _is_algebraic(diff):
            t = sympy.Dummy("t")
            return bool(sympy.minimal_polynomial(diff, t) == t)
        return bool(sympy.simplify(diff) == 0)
    except Exception:  # noqa: BLE001 -- any failure of the algebra means "not proven"
        return False


SIMPLIFY_LIMIT = 2000
"""The largest difference (tree nodes) handed to sympy's simplify to prove a tie: its time on a
larger one has no useful bound (a 900-node gradient that is exactly 0 takes it 7 s), and a
tie that only such algebra could prove is refused with a message instead of a wait."""


def _nonzero(x: sympy.Expr) -> bool:
    """``x != 0`` by its form alone: ``e^z`` is never 0, nor a product or power of nonzero
    factors (no evaluation, so a tiny ``e^-655`` is cheap)."""
    if x.is_Rational:
        return x != 0
    if isinstance(x, sympy.exp) or x in (sympy.pi, sympy.E):
        return True
    if x.is_Mul:
        return all(_nonzero(f) for f in x.args)
    if x.is_Pow:
        return _nonzero(x.base)
    return False


def _is_algebraic(x: sympy.Basic) -> bool:
    if x.is_Rational:
        return True
    if x.is_Add or x.is_Mul:
        return all(_is_algebraic(a) for a in x.args)
    if x.is_Pow:
        return bool(x.exp.is_Rational) and _is_algebraic(x.base)
    return False


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


def _to_fraction(raw: _Raw) -> Fraction | None:
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
    return _to_fraction(raw)


def _convert_float(raw: _Raw) -> Fraction | None:
    if raw != fzero and raw[1] and abs(_raw_mag(raw)) > 1100:
        # Beyond the float range: any number this far out converts to the same float.
        big = Fraction(2) ** (1100 if _raw_mag(raw) > 0 else -1100)
        return -big if raw[0] else big
    return _to_fraction(raw)


def _float_of(f: Fraction) -> float:
    try:
        return float(f)  # int / int division: correctly rounded
    except OverflowError:
        return math.inf if f > 0 else -math.inf


def _raw_sign(raw: _Raw) -> int:
    if raw == fzero:
        return 0
    return -1 if raw[0] else 1


def _raw_mag(raw: _Raw) -> int:
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


def _quote(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return '"' + shown + '"'
