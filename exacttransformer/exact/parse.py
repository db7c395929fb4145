"""Exact numbers in: the whitelisted parser of number strings.

Layer: exact, the edge between text and exact sympy values. Nothing here calls ``eval``,
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

>>> parse_number("exp(3*sqrt(2)/2)"), parse_number("1/2")
(exp(3*sqrt(2)/2), 1/2)
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import sympy
from mpmath.libmp import finf, fninf

from ..errors import ComputationError, LimitError, NumberError
from .interval import enclose_raw
from .printing import PREC_CAP, PREC_START, Number, quote, raw_mag, raw_sign, sign, to_fraction

__all__ = ["parse_number", "parse_value"]

MAX_TEXT = 1000  # characters in one number string
MAX_LITERAL_DIGITS = 400  # digits in one literal
MAX_DECIMAL_EXPONENT = 400  # |n| in 1e<n>
MAX_DEPTH = 40  # nesting of parentheses, calls, signs and powers
MAX_EXPONENT = 1024  # numerator and denominator of a power's exponent
MAX_RESULT_BITS = 10_000  # estimated size of a power's result
MAX_EXP_ARGUMENT = 10_000  # |x| in exp(x)
MAX_ARGUMENT_BITS = 10_000  # |x| < 2^this in sin, cos, tanh, erf

_FUNCTIONS = ("sqrt", "exp", "log", "ln", "sin", "cos", "tanh", "erf")
_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E}
_ALLOWED = "sqrt, exp, log, ln, sin, cos, tanh, erf, pi, e"

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
        raise type(err)(f"{err} in {quote(text)}") from None
    except ComputationError as err:  # an enclosure that failed while checking a sign or size
        raise NumberError(f"{err} in {quote(text)}") from None


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
        f"got {type(value).__name__} {quote(repr(value))}"
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
        raise NumberError(f"cannot decide the sign of {what} {quote(str(x))}") from None


def _reciprocal(b: sympy.Expr) -> sympy.Expr:
    if _decided_sign(b, "the divisor") == 0:
        raise NumberError("division by zero")
    return sympy.Pow(b, -1)


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    if exponent.is_Rational:
        p, q = int(exponent.p), int(exponent.q)  # type: ignore[attr-defined]
        if abs(p) > MAX_EXPONENT or q > MAX_EXPONENT:
            raise LimitError(
                f"exponent {quote(str(exponent))} too large "
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
    prec = PREC_START
    while True:
        lo, hi = enclose_raw(x, prec)
        if raw_sign(lo) == raw_sign(hi) != 0 and lo != fninf and hi != finf:
            return max(max(m, 1 - m) for m in (raw_mag(lo), raw_mag(hi)))
        if prec >= PREC_CAP:
            raise NumberError(f"cannot bound the size of {quote(str(x))}")
        prec *= 2


def _abs_at_most(x: sympy.Expr, bound: Fraction) -> bool:
    """True when |x| <= bound is proven (False when refuted or undecided at 1024 bits)."""
    if x.is_Rational:
        return abs(Fraction(int(x.p), int(x.q))) <= bound  # type: ignore[attr-defined]
    prec = PREC_START
    while prec <= 1024:
        try:
            lo, hi = (to_fraction(v) for v in enclose_raw(x, prec))
        except LimitError:  # beyond 2^+-2^20: far too large (or too small to bother)
            return False
        if lo is not None and hi is not None:
            if -bound <= lo and hi <= bound:
                return True
            if lo > bound or hi < -bound:
                return False
        prec *= 2
    return False
