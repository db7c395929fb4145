"""Closed forms as plain text: sympy's ``str`` form, printed once per distinct subexpression.

Layer: the edge between exact sympy values and text (below :mod:`exacttransformer.numbers`,
which reads it).  A whole trace prints thousands of closed forms that share their pieces: the
same exponentials, the same reciprocal of a row's sum, in every weight, every ``z`` and every
later entry.  sympy's printer prints each occurrence again, and orders the terms of every sum
by evaluating each numeric factor to a float (``Expr.as_terms``), again for each occurrence.
That was nine tenths of a whole-trace walkthrough.  :class:`ExactPrinter` keeps both:

- the text of each subexpression it has printed (the text of a sympy tree depends only on the
  tree; a top-level ``Float``, whose trailing zeros depend on the nesting level, is not kept);
- the complex value sympy's term order computes for each numeric factor.

The text is sympy's own, character for character: the order of a sum's terms is computed by
the same key from the same float values (:meth:`ExactPrinter._as_ordered_terms` follows
``Expr.as_ordered_terms``; a sum with a non-numeric factor is left to sympy), and the rest of
the printing is sympy's ``StrPrinter``.  :func:`closed_form` is what
:func:`exacttransformer.numbers.format_exact` prints with.
"""

from __future__ import annotations

import threading
from typing import Any

import sympy
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

__all__ = ["ExactPrinter", "closed_form", "int_str"]

_MEMO_LIMIT = 200_000
"""Printed subexpressions kept per printer; past it the memory starts over."""


def int_str(m: int) -> str:
    """str(m) for any size (Python refuses more than 4300 digits by default).

    >>> int_str(-(10**5000)) == "-1" + "0" * 5000
    True
    """
    if m < 0:
        return "-" + int_str(-m)
    if m.bit_length() <= 12_000:
        return str(m)
    half = int(m.bit_length() * 0.30103) // 2
    high, low = divmod(m, 10**half)
    return int_str(high) + int_str(low).rjust(half, "0")


class ExactPrinter(StrPrinter):
    """sympy's str form, with integers of any length (str(int) stops at 4300 digits), and
    a memory of what it printed (see the module's notes).

    >>> ExactPrinter().doprint(sympy.sqrt(2) / 2 + sympy.exp(sympy.Rational(3, 2)))
    'sqrt(2)/2 + exp(3/2)'
    """

    def __init__(self, settings: dict[str, Any] | None = None):
        super().__init__(settings)
        self._memo: dict[sympy.Basic, str] = {}
        self._complex: dict[sympy.Basic, complex] = {}
        self._precedences: dict[sympy.Basic, int] = {}
        self._sort_keys: dict[sympy.Basic, Any] = {}

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if kwargs or not isinstance(expr, sympy.Basic) or isinstance(expr, sympy.Float):
            return str(super()._print(expr, **kwargs))
        hit = self._memo.get(expr)
        if hit is None:
            hit = str(super()._print(expr))
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
                self._complex.clear()
                self._precedences.clear()
                self._sort_keys.clear()
            self._memo[expr] = hit
        return hit

    def _precedence(self, item: Any) -> int:
        """sympy's ``precedence(item)``, once per subexpression (for a product it negates
        the product to see whether a minus sign comes out)."""
        if not isinstance(item, sympy.Basic):
            return int(precedence(item))
        hit = self._precedences.get(item)
        if hit is None:
            hit = self._precedences[item] = _precedence_of(item)
        return hit

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        """StrPrinter.parenthesize, with the precedence remembered."""
        p = self._precedence(item)
        if p < level or (not strict and p <= level):
            return f"({self._print(item)})"
        return self._print(item)

    def _print_Add(self, expr: sympy.Add, order: Any = None) -> str:
        """StrPrinter._print_Add, with the precedences remembered."""
        terms = self._as_ordered_terms(expr, order=order)
        prec = self._precedence(expr)
        parts = []
        for term in terms:
            t = self._print(term)
            if t.startswith("-") and not term.is_Add:
                sign = "-"
                t = t[1:]
            else:
                sign = "+"
            if self._precedence(term) < prec or term.is_Add:
                parts.extend([sign, f"({t})"])
            else:
                parts.extend([sign, t])
        sign = parts.pop(0)
        return ("" if sign == "+" else sign) + " ".join(parts)

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return int_str(int(expr.p))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        p, q = int_str(int(expr.p)), int_str(int(expr.q))
        return p if expr.q == 1 else f"{p}/{q}"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        # sympy prints (1/2) * (1 + pi)^-1 as "1/(2*(1 + pi))", which reads back as
        # 1/(2 + 2*pi): sympy distributes a number over a sum. Print "1/(1 + pi)/2" instead.
        coeff, rest = expr.as_coeff_Mul()
        if (
            coeff.is_Rational
            and coeff.q != 1
            and any(f.is_Pow and f.exp == -1 and f.base.is_Add for f in sympy.Mul.make_args(rest))
        ):
            numerator = sympy.Mul(sympy.Integer(coeff.p), rest)
            return f"{self._print(numerator)}/{int_str(int(coeff.q))}"
        args = expr.args
        if (not coeff.is_Rational or not expr.is_commutative or self.order in ("old", "none")
                or args[0] is sympy.S.One
                or any(isinstance(a, sympy.Number) or a.is_Pow and all(ai.is_Integer for ai in a.args)
                       for a in args[1:])):
            return str(super()._print_Mul(expr))
        return self._print_product(expr, coeff, rest)

    def _print_product(self, expr: sympy.Mul, coeff: sympy.Rational, rest: sympy.Expr) -> str:
        """StrPrinter._print_Mul for an evaluated product with a rational coefficient, with
        the precedences and the factors' sort keys remembered.

        sympy negates a negative coefficient (``_keep_coeff(-c, rest)``) and sorts the factors
        of that product by their sort keys; those factors are ``-c`` (unless it is 1) and the
        factors of ``rest``, which is what is sorted here."""
        prec = self._precedence(expr)
        sign = ""
        factors = list(sympy.Mul.make_args(rest))
        if coeff.p < 0:
            sign = "-"
            coeff = -coeff
        if coeff.p != 1 or coeff.q != 1:
            factors.insert(0, coeff)
        factors.sort(key=self._sort_key)
        num: list[sympy.Basic] = []  # items in the numerator
        den: list[sympy.Basic] = []  # items in the denominator (if any)
        pow_paren = []  # powers with exponent -1 of a product or power: parenthesized
        for item in factors:
            if isinstance(item, sympy.Pow) and _negative(item.exp.as_coeff_Mul()[0]):
                if item.exp is not sympy.S.NegativeOne:
                    den.append(_flipped(item))
                else:
                    if len(item.args[0].args) != 1 and isinstance(item.base, (sympy.Mul, sympy.Pow)):
                        pow_paren.append(item)
                    den.append(item.base)
            elif item.is_Rational and item is not sympy.S.Infinity:
                if item.p != 1:
                    num.append(sympy.Rational(item.p))
                if item.q != 1:
                    den.append(sympy.Rational(item.q))
            else:
                num.append(item)
        num = num or [sympy.S.One]
        num_str = [self.parenthesize(x, prec, strict=False) for x in num]
        den_str = [self.parenthesize(x, prec, strict=False) for x in den]
        for item in pow_paren:
            if item.base in den:
                den_str[den.index(item.base)] = f"({den_str[den.index(item.base)]})"
        if not den:
            return sign + "*".join(num_str)
        if len(den) == 1:
            return sign + "*".join(num_str) + "/" + den_str[0]
        return sign + "*".join(num_str) + "/({})".format("*".join(den_str))

    def _sort_key(self, x: sympy.Basic) -> Any:
        """``x.sort_key()``, once per subexpression; for the classes that inherit
        ``Expr.sort_key`` it is that method's own computation, with the terms of a sum
        ordered by :meth:`_ordered_terms` (whose float values are remembered)."""
        hit = self._sort_keys.get(x)
        if hit is None:
            hit = self._sort_keys[x] = self._expr_sort_key(x)
        return hit

    def _expr_sort_key(self, x: sympy.Basic) -> Any:
        if type(x).sort_key is not _EXPR_SORT_KEY:
            return x.sort_key()
        coeff, expr = x.as_coeff_Mul()
        exp = sympy.S.One
        if expr.is_Pow:
            base, exp = expr.as_base_exp()
            if base is sympy.S.Exp1:
                return x.sort_key()
            expr = base
        if expr.is_Dummy or expr.is_Atom:
            return x.sort_key()
        if expr.is_Add:
            args = self._ordered_terms(expr)
        elif expr.is_Mul:
            cpart, ncpart = expr.args_cnc()
            args = sorted(cpart, key=self._sort_key) + ncpart
        else:
            args = list(expr.args)
        if not all(isinstance(a, sympy.Basic) for a in args):
            return x.sort_key()
        keys = tuple(self._sort_key(a) for a in args)
        return expr.class_key(), (len(keys), keys), self._sort_key(exp), coeff

    def _as_ordered_terms(self, expr: Any, order: Any = None) -> list[Any]:
        """``expr.as_ordered_terms(order)``, by :meth:`_ordered_terms` for the default order
        of a sum."""
        order = order or self.order
        if order is not None or not expr.is_Add:
            return list(super()._as_ordered_terms(expr, order=order))
        return self._ordered_terms(expr)

    def _ordered_terms(self, expr: sympy.Add) -> list[Any]:
        """``expr.as_ordered_terms()``, with each numeric factor's value computed once.

        Followed for a sum of numbers (a closed form's case): sympy's special case first,
        then ``as_terms`` — each term's coefficient times its numeric factors as Python
        complex numbers, in the same order of multiplication — sorted by the same key,
        ``((im != 0, im), (re, im))``, stably.  A sum with a symbol goes to sympy.
        """
        special = _special_pair(expr)
        if special is not None:
            return special
        keyed = []
        for term in sympy.Add.make_args(expr):
            coeff_part, rest = term.as_coeff_Mul()
            coeff = self._value(coeff_part)
            if coeff is None:
                return list(expr.as_ordered_terms())
            if rest is not sympy.S.One:
                for factor in sympy.Mul.make_args(rest):
                    value = self._value(factor) if factor.is_number else None
                    if value is None:  # a symbol or a value complex() refuses: sympy's way
                        return list(expr.as_ordered_terms())
                    coeff *= value
            keyed.append((((bool(coeff.imag), coeff.imag), (coeff.real, coeff.imag)), term))
        keyed.sort(key=lambda kt: kt[0])
        return [t for _, t in keyed]

    def _value(self, factor: sympy.Basic) -> complex | None:
        hit = self._complex.get(factor)
        if hit is None:
            try:
                hit = complex(factor)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
            self._complex[factor] = hit
        return hit


def _negative(c: sympy.Expr) -> bool:
    """``bool(c < 0)`` for a number (a rational's sign is read off its numerator)."""
    return c.p < 0 if c.is_Rational else bool(c < 0)


def _flipped(power: sympy.Pow) -> sympy.Basic:
    """``b**(-e)`` for ``b**e`` with a negative exponent, unevaluated (sympy's ``apow``)."""
    base, e = power.as_base_exp()
    eargs = list(sympy.Mul.make_args(e))
    if eargs[0] is sympy.S.NegativeOne:
        eargs = eargs[1:]
    else:
        eargs[0] = -eargs[0]
    return sympy.Pow(base, sympy.Mul._from_args(eargs), evaluate=False)


_MUL, _ADD = PRECEDENCE["Mul"], PRECEDENCE["Add"]
_EXPR_SORT_KEY = sympy.Expr.sort_key


def _precedence_of(item: sympy.Basic) -> int:
    """sympy's ``precedence(item)``; for a product with a rational first factor it is read
    off that factor's sign, which is what ``could_extract_minus_sign`` decides by negating
    the whole product (``-p == p`` needs a first factor that is not a nonzero rational)."""
    if type(item) is sympy.Mul and item.args[0].is_Rational and item.args[0] != 0 and not any(
            hasattr(a, "precedence") for a in item.args):
        return _ADD if item.args[0].p < 0 else _MUL
    return int(precedence(item))


def _special_pair(expr: sympy.Add) -> list[Any] | None:
    """sympy's special case of ``as_ordered_terms``: ``a + c·x`` with a number ``a > 0`` and
    a number ``c < 0`` prints as ``a - ...`` (``1 - x``), number first."""
    numeric = (sympy.Number, sympy.NumberSymbol)

    def later(x: Any) -> bool:
        return not isinstance(x, numeric)

    add_args = sorted(sympy.Add.make_args(expr), key=later)
    if len(add_args) == 2 and isinstance(add_args[0], numeric) and isinstance(add_args[1], sympy.Mul):
        mul_args = sorted(sympy.Mul.make_args(add_args[1]), key=later)
        if (len(mul_args) == 2 and isinstance(mul_args[0], sympy.Number)
                and add_args[0].is_positive and mul_args[0].is_negative):
            return add_args
    return None


_ORDERED_LIMIT = 400
"""Closed forms with more nodes than this are printed in sympy's canonical term order."""

_local = threading.local()
"""Each thread's two printers (a printer counts its nesting level while it prints)."""


def closed_form(x: sympy.Basic) -> str:
    """The str form of a sympy value, as :class:`ExactPrinter` prints it.

    >>> closed_form(sympy.Rational(1, 2) / (1 + sympy.pi))
    '1/(1 + pi)/2'
    """
    ordered = node_count(x, _ORDERED_LIMIT + 1) <= _ORDERED_LIMIT
    printers: dict[bool, ExactPrinter] | None = getattr(_local, "printers", None)
    if printers is None:
        printers = _local.printers = {}
    printer = printers.get(ordered)
    if printer is None:
        # sympy orders the terms of a sum by evaluating them numerically, which takes minutes
        # on a gradient's closed form; a long form keeps sympy's own canonical order.
        printer = printers[ordered] = ExactPrinter() if ordered else ExactPrinter({"order": "none"})
    return str(printer.doprint(x))


def node_count(x: sympy.Basic, cap: int) -> int:
    """The nodes of a sympy tree (numbers, functions and operations each once, a repeated
    subtree at each occurrence), counted up to ``cap`` (callers only ask "more than a
    limit?"). Counts of whole subtrees are remembered: a trace's closed forms share them.

    >>> node_count(sympy.sqrt(2), 100), node_count(sympy.exp(sympy.sqrt(2)) + 1, 3)
    (3, 3)
    """
    return min(_count(x, cap), cap)


_COUNTS: dict[sympy.Basic, int] = {}


def _count(x: sympy.Basic, cap: int) -> int:
    """At least ``min(nodes, cap)``; exact (and remembered) when below ``cap``."""
    hit = _COUNTS.get(x)
    if hit is not None:
        return hit
    total = 1
    for a in x.args:
        total += _count(a, cap - total)
        if total >= cap:
            return total
    if len(_COUNTS) >= _MEMO_LIMIT:
        _COUNTS.clear()
    _COUNTS[x] = total
    return total
