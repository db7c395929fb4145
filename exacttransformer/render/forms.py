"""Exact values in their most readable printed shape, and how big that print is.

Layer: presentation.  Everything here *prints* values the trace already holds; nothing
parses user text and nothing recomputes a node.

- :func:`tex` is sympy's LaTeX printer with two textbook habits: a multiple of a square
  root over its own radicand reads as a division (``3*sqrt(2)/2`` prints ``3/\\sqrt{2}``,
  the way a score is divided by ``\\sqrt{d_k}``), and fractions inside an exponent are
  folded (``e^{3/\\sqrt{2}}``, never a fraction in a superscript).
- :func:`size` counts the symbols of a closed form (each number, function and operation
  once); forms above :data:`SIZE_LIMIT` are not printed, only their decimals.
- :func:`softmax_form` rewrites a row of softmax weights with a common exponential pulled
  out: the cat token's ``e^{3/√2}/(e^{3/√2} + 2e^{√2})`` reads ``t/(t + 2)`` with
  ``t = e^{1/√2}``.
- :func:`width` estimates the printed width (in points, 11 pt type) of a piece of math,
  so wide matrices can be elided before they overflow the page.

>>> from sympy import exp, sqrt
>>> tex(3 * sqrt(2) / 2), tex(exp(3 * sqrt(2) / 2)), size(exp(3 * sqrt(2) / 2))
('\\\\frac{3}{\\\\sqrt{2}}', 'e^{3/\\\\sqrt{2}}', 6)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter

from ..exact.printing import compare, node_count

SIZE_LIMIT = 60
"""Closed forms with more symbols than this are omitted (their decimals are shown)."""

MAX_POWER = 12
"""The largest power of ``t`` a readable softmax form may use."""

MAX_EXPONENT_SIZE = 24
"""Exponents longer than this are not rewritten (the result would not be short anyway)."""


# --------------------------------------------------------------------------- printing


def _over_sqrt(expr: sympy.Expr) -> tuple[bool, int, int, int] | None:
    """``(negative, p, q, n)`` when ``expr`` is ``r*sqrt(n)`` with ``r*n = p/q`` reading
    better as ``p / (q*sqrt(n))``: only when ``n`` divides the denominator of ``r``."""
    coeff, rest = expr.as_coeff_Mul()
    if not (coeff.is_Rational and not coeff.is_Integer and rest.is_Pow):
        return None
    if rest.exp != sympy.S.Half or not rest.base.is_Integer:
        return None
    n = int(rest.base)
    r = sympy.Rational(coeff)
    if int(r.q) % n:
        return None
    scaled = abs(r) * n
    return (bool(r < 0), int(scaled.p), int(scaled.q), n)


class _Printer(LatexPrinter):
    """sympy's LaTeX printer with divisions by square roots and folded exponents."""

    def _print_Mul(self, expr: sympy.Expr) -> str:  # type: ignore[override]
        form = _over_sqrt(expr)
        if form is None:
            return str(super()._print_Mul(expr))
        negative, p, q, n = form
        root = rf"\sqrt{{{n}}}"
        den = root if q == 1 else rf"{q} {root}"
        if self._settings["fold_short_frac"]:
            body = f"{p}/{root}" if q == 1 else f"{p}/({den})"
        else:
            body = rf"\frac{{{p}}}{{{den}}}"
        return ("- " if negative else "") + body

    def _print_ExpBase(self, expr: sympy.Expr, exp: Any = None) -> str:
        arg = str(_FOLDED.doprint(expr.args[0]))
        if r"\frac" in arg or len(arg) > 40:  # too much for a superscript
            text = r"\exp\left(" + str(self._print(expr.args[0])) + r"\right)"
        else:
            text = "e^{" + arg + "}"
        return str(self._do_exponent(text, exp))


_PRINTER = _Printer()
_FOLDED = _Printer({"fold_short_frac": True})


@lru_cache(maxsize=65536)
def tex(x: sympy.Expr) -> str:
    """LaTeX for an exact value (printing only).

    >>> from sympy import Rational, sqrt, exp
    >>> tex(Rational(-3, 4)), tex(sqrt(2) / 4), tex(2 * exp(sqrt(2)))
    ('- \\\\frac{3}{4}', '\\\\frac{1}{2 \\\\sqrt{2}}', '2 e^{\\\\sqrt{2}}')
    """
    return str(_PRINTER.doprint(x))


def folded(x: sympy.Expr) -> str:
    """Like :func:`tex`, with short fractions on one line (``3/\\sqrt{2}``)."""
    return str(_FOLDED.doprint(x))


def decimal_tex(text: str) -> str:
    """A certified decimal string in math notation (``1.2e-7`` -> ``1.2 \\times 10^{-7}``).

    >>> decimal_tex("8.342"), decimal_tex("-1.20e+20")
    ('8.342', '-1.20 \\\\times 10^{20}')
    """
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def size(x: sympy.Basic, cap: int = 100_000) -> int:
    """Symbols in a closed form: numbers, functions and operations each count once.

    Counting stops at ``cap`` (the caller only needs to know "more than the limit").

    >>> from sympy import exp, sqrt, Rational
    >>> size(Rational(1, 3)), size(sqrt(2)), size(exp(sqrt(2)) / (1 + exp(sqrt(2))))
    (1, 3, 13)
    """
    if not isinstance(x, sympy.Basic):  # the structured engine's values (large by construction)
        return min(cap, x.size()) if hasattr(x, "size") else cap
    return node_count(x, cap)


# --------------------------------------------------------------------------- softmax


@dataclass(frozen=True)
class SoftmaxForm:
    """Softmax rows over one symbol ``t = e^{base}``.

    ``entries[i][j]`` is a sympy expression in :data:`T` equal to the weight;
    ``divisors[i]`` is the exponent of the exponential each row was divided by.
    """

    base: sympy.Expr
    entries: tuple[tuple[sympy.Expr, ...], ...]
    divisors: tuple[sympy.Expr | None, ...]


T = sympy.Symbol("t", positive=True)


def _exponent(x: sympy.Expr) -> sympy.Expr | None:
    """``a`` when ``x`` is ``e^a`` (``1`` is ``e^0``); ``None`` otherwise."""
    if x == 1:
        return sympy.Integer(0)
    if x == sympy.E:
        return sympy.Integer(1)
    if isinstance(x, sympy.exp):
        return x.args[0]  # type: ignore[no-any-return]
    if x.is_Pow and x.base == sympy.E:
        return x.exp  # type: ignore[no-any-return]
    return None


def _rational_gcd(values: Sequence[sympy.Rational]) -> sympy.Rational:
    num = 0
    den = 1
    for v in values:
        num = sympy.igcd(num, int(v.p))
        den = sympy.ilcm(den, int(v.q))
    return sympy.Rational(num, den)


def softmax_form(exps: Sequence[Sequence[sympy.Expr]]) -> SoftmaxForm | None:
    """Rows of ``e^{a_j}`` (0 where masked) as ``t^{m_j} / Σ_k t^{m_k}``, or ``None``.

    Each row is divided by its smallest exponential; the differences of the exponents must
    all be whole multiples (at most :data:`MAX_POWER`) of one quantity ``c``, and
    ``t = e^c``.  Rows that are already rational need no ``t``.

    >>> from sympy import exp, sqrt
    >>> f = softmax_form([[exp(3 * sqrt(2) / 2), exp(sqrt(2)), exp(sqrt(2))]])
    >>> f.base, f.entries
    (sqrt(2)/2, ((t/(t + 2), 1/(t + 2), 1/(t + 2)),))
    """
    rows: list[tuple[sympy.Expr | None, list[sympy.Expr | None]]] = []
    parts: list[tuple[sympy.Rational, sympy.Expr]] = []
    for row in exps:
        exponents: list[sympy.Expr | None] = []
        for x in row:
            if x == 0:
                exponents.append(None)
                continue
            a = _exponent(x)
            if a is None or size(a, MAX_EXPONENT_SIZE + 1) > MAX_EXPONENT_SIZE:
                return None  # not an exponential, or one too long to be worth rewriting
            exponents.append(a)
        present = [a for a in exponents if a is not None]
        if not present:
            return None
        low = present[0]
        for a in present[1:]:
            if compare(a, low) < 0:
                low = a
        diffs: list[sympy.Expr | None] = []
        for a in exponents:
            d = None if a is None else sympy.expand(a - low)
            diffs.append(d)
            if d is not None and d != 0:
                content, primitive = d.as_content_primitive()
                parts.append((sympy.Rational(content), primitive))
        rows.append((low, diffs))
    if not parts:
        return None
    primitive = parts[0][1]
    if any(p != primitive for _, p in parts):
        return None
    unit = _rational_gcd([c for c, _ in parts])
    entries = []
    for _, diffs in rows:
        powers = [None if d is None else (0 if d == 0 else int(
            sympy.Rational(d.as_content_primitive()[0]) / unit)) for d in diffs]
        if max((p for p in powers if p is not None), default=0) > MAX_POWER:
            return None
        total = sympy.Add(*(T**p for p in powers if p is not None))
        entries.append(tuple(sympy.Integer(0) if p is None else T**p / total for p in powers))
    divisors = tuple(low for low, _ in rows)
    return SoftmaxForm(base=unit * primitive, entries=tuple(entries), divisors=divisors)


# --------------------------------------------------------------------------- widths

# Approximate glyph widths in points for 11 pt Computer Modern.
_DIGIT = 5.5
_LETTER = 5.6
_BIN = 13.1  # a binary operator with its spaces (text and display style)
_REL = 14.0
_SCALES = (1.0, 1.0, 0.72, 0.55)  # display, text, script, scriptscript
_FRAC_STYLE = (1, 2, 3, 3)
_SUP_STYLE = (2, 2, 3, 3)
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_]|[^\\{}^_]")
_WIDE = {
    r"\cdots": 13.0, r"\ldots": 13.0, r"\vdots": 3.4, r"\ddots": 13.0, r"\cdot": 8.0,
    r"\times": 13.1, r"\quad": 11.0, r"\qquad": 22.0, r"\,": 1.8, r"\;": 3.1, r"\:": 2.4,
    r"\!": -1.8, r"\odot": 13.1, r"\top": 8.5, r"\infty": 11.0, r"\sum": 11.0,
    r"\approx": _REL, r"\max": 16.0, r"\exp": 16.0, r"\varepsilon": 5.0,
    r"\sin": 15.0, r"\cos": 16.5, r"\tan": 16.5, r"\tanh": 22.0, r"\log": 15.0, r"\ln": 10.5,
    r"\left": 2.5, r"\right": 2.5,
}
_ZERO = frozenset((r"\displaystyle", r"\textstyle", r"\big", r"\Big",
                   r"\tilde", r"\bar", r"\hat", r"\mathring", r"\mathrm", r"\mathbf", r"\operatorname",
                   r"\text", r"\texttt", r"\textup", r"\phantom", r"\mathit"))


def _groups(tokens: list[str], i: int) -> tuple[list[str], int]:
    """The tokens of the group (or single token) starting at ``i``, and the next index."""
    if i >= len(tokens):
        return [], i
    if tokens[i] != "{":
        return [tokens[i]], i + 1
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == "{":
            depth += 1
        elif tokens[j] == "}":
            depth -= 1
            if depth == 0:
                return tokens[i + 1:j], j + 1
    return tokens[i + 1:], len(tokens)


def _measure(tokens: list[str], style: int) -> float:
    scale = _SCALES[style]
    total = 0.0
    i = 0
    previous = ""
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == r"\frac":
            num, i = _groups(tokens, i)
            den, i = _groups(tokens, i)
            inner = _FRAC_STYLE[style]
            total += max(_measure(num, inner), _measure(den, inner)) + 2.4 * scale
        elif tok == r"\sqrt":
            arg, i = _groups(tokens, i)
            total += _measure(arg, style) + 9.2 * scale
        elif tok == r"\rule":  # a strut: no width
            if i < len(tokens) and tokens[i] == "[":
                while i < len(tokens) and tokens[i] != "]":
                    i += 1
                i += 1
            _, i = _groups(tokens, i)
            _, i = _groups(tokens, i)
        elif tok == r"\vphantom":
            _, i = _groups(tokens, i)
        elif tok in ("^", "_"):
            arg, i = _groups(tokens, i)
            total += _measure(arg, _SUP_STYLE[style]) + 0.6 * scale
        elif tok in (r"\text", r"\texttt", r"\mathrm", r"\operatorname", r"\textup"):
            arg, i = _groups(tokens, i)
            total += sum(_LETTER * 0.95 for t in arg if t not in "{}") * scale + 1.7 * scale
        elif tok == "{":
            arg, i = _groups(tokens, i - 1)
            total += _measure(arg, style)
        elif tok in _WIDE:
            total += _WIDE[tok] * scale
        elif tok in _ZERO or tok == "}" or tok == " ":
            pass
        elif tok in "+-":
            unary = previous in ("", "(", "[", "=", "&", "{", "^", "_")
            total += (8.6 if unary or style >= 2 else _BIN) * scale
        elif tok in "=<>":
            total += _REL * scale
        elif tok.isdigit():
            total += _DIGIT * scale
        elif tok in ".,;:":
            total += 3.1 * scale
        elif tok in "()[]|/":
            total += 4.3 * scale
        elif tok.startswith("\\"):
            total += 6.5 * scale
        else:
            total += _LETTER * scale
        if tok != " ":
            previous = tok
    return total


@lru_cache(maxsize=65536)
def width(latex: str, style: str = "text") -> float:
    """Estimated width in points of inline math (``style`` ``"display"`` or ``"text"``).

    An estimate (within about 15 %), used to decide how many matrix columns fit a line.

    >>> round(width("12")), width(r"\\frac{1}{2}") < width("12")
    (12, True)
    >>> width(r"\\rule[-1em]{0pt}{2em}\\vphantom{123}x") == width("x")
    True
    """
    tokens = _TOKEN.findall(latex)
    if latex.startswith(r"\displaystyle"):
        style = "display"
    # Calibrated against pdflatex on every worked example's values: the plain sum is within
    # -2 %/+22 % of the real width (nested fractions are the worst); 10 % errs on the wide side.
    return 1.1 * _measure(tokens, 0 if style == "display" else 1)
