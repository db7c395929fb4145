"""Closed forms as text: the remembering printer prints what sympy's own printer prints.

:class:`ExactPrinter` redoes three pieces of sympy's ``StrPrinter`` with memories (the term
order of a sum, a product's factors and precedences, sort keys). The oracle below is the same
printer with those pieces put back to sympy's own methods, and no memory; the two must agree
character for character on every closed form a trace prints.
"""

from __future__ import annotations

import sympy
from sympy.printing.printer import Printer
from sympy.printing.str import StrPrinter
from test_structured import random_block

import exacttransformer as et
from exacttransformer.exact.backends import STRUCTURED
from exacttransformer.exact.closedform import ExactPrinter, closed_form, node_count
from exacttransformer.exact.lazy import DISPLAY_LIMIT, Lazy
from exacttransformer.graph.forward import forward

R = sympy.Rational


class Oracle(ExactPrinter):
    """The project's own rules (long integers, ``1/(1 + pi)/2``) over sympy's machinery."""

    _print = StrPrinter._print
    parenthesize = StrPrinter.parenthesize
    _print_Add = StrPrinter._print_Add
    _as_ordered_terms = Printer._as_ordered_terms

    def _print_product(self, expr: sympy.Mul, coeff: sympy.Rational, rest: sympy.Expr) -> str:
        return str(StrPrinter._print_Mul(self, expr))


def closed_forms(trace: object) -> list[sympy.Expr]:
    out = []
    for step in trace.steps:  # type: ignore[attr-defined]
        for row in step.value:
            for x in row:
                if isinstance(x, Lazy):
                    if x.size() > DISPLAY_LIMIT:
                        continue
                    x = x.to_sympy()
                out.append(x)
    return out


def test_every_closed_form_of_a_structured_trace_prints_as_sympy_prints_it() -> None:
    cfg, params, inputs = random_block(4, 8, 2, 2, seed=5)
    forms = closed_forms(forward(cfg, params, inputs, STRUCTURED))
    assert len(forms) > 300
    printer, oracle = ExactPrinter(), Oracle()
    compared = 0
    for x in forms:
        if node_count(x, 401) <= 400:
            assert printer.doprint(x) == oracle.doprint(x)
            compared += 1
    assert compared > 300
    # a second pass reads the memories, and prints the same
    assert [closed_form(x) for x in forms] == [closed_form(x) for x in forms]


def test_the_textbook_traces_print_as_sympy_prints_them() -> None:
    for name in ("cat", "worked_examples/journey_storm.toml"):
        forms = closed_forms(et.load(name).forward())
        printer, oracle = ExactPrinter(), Oracle()
        assert [printer.doprint(x) for x in forms] == [oracle.doprint(x) for x in forms]


def test_signs_quotients_and_powers_print_as_sympy_prints_them() -> None:
    e, pi, s2 = sympy.exp, sympy.pi, sympy.sqrt(2)
    cases = [
        -3 * e(R(1, 2)) / (1 + e(2)),
        R(-2, 3) * s2 * e(-R(5, 4)),
        R(1, 2) / (1 + pi),
        -R(7, 3) / (2 + s2) ** 2,
        (e(1) + 3) * (e(2) - 5) / 7,
        1 - e(R(1, 3)),
        -1 + e(R(1, 3)),
        s2 / (e(1) * (1 + e(3))),
        1 / sympy.sqrt(3 + e(1)),
        (1 + s2) ** R(3, 2) - sympy.erf(R(1, 5)) * sympy.tanh(s2),
        sympy.Integer(10) ** 5000 / 3 + e(R(1, 7)),
        R(3, 5) * sympy.log(2) - R(3, 5) * sympy.log(3),
    ]
    printer, oracle = ExactPrinter(), Oracle()
    for x in cases:
        assert printer.doprint(x) == oracle.doprint(x), x
    assert printer.doprint(R(1, 2) / (1 + pi)) == "1/(1 + pi)/2"


def test_node_count_counts_every_occurrence_up_to_its_cap() -> None:
    x = sympy.exp(sympy.sqrt(2)) * (1 + sympy.exp(sympy.sqrt(2))) + sympy.sqrt(2)
    full = sum(1 for _ in sympy.preorder_traversal(x))
    for cap in range(1, full + 3):
        assert node_count(x, cap) == min(full, cap)
