"""Formulas, symbols and titles of the nodes a file asks for by name (:mod:`..graph.asked`).

Layer: presentation, a helper of :mod:`.mathdoc` (LaTeX and Markdown).  Each function
receives the document builder ``doc`` (a :class:`~.stepview.StepView`) and uses only its
public helpers (``operand``, ``symbol``, ``piece``).  It returns ``(formula, pieces, notes)``
as the builder's own ``_f_*`` methods (:mod:`.formulas`) do, or ``None`` when it has nothing special to say.
Only the new nodes come here, so existing files render as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..graph.asked import parse_statistic
from ..graph.trace import Step
from .forms import size, tex

PRODUCT = "_product"


STAT_TITLES = {"rowsum": "Row sums", "mean": "Row means", "var": "Row variances",
               "std": "Row standard deviations"}
STAT_LIMIT = 12
"""Largest closed form (in symbols, :func:`.forms.size`) written out in a substitution."""


def title(name: str, titles: Mapping[str, str]) -> str | None:
    """The heading of an asked-for node (None: not one); ``titles`` are the other nodes'."""
    stat = parse_statistic(name)
    if stat is not None:
        inner = titles.get(stat[1], stat[1])
        return f"{STAT_TITLES[stat[0]]}: {inner[0].lower() + inner[1:]}"
    if name.startswith("delta."):
        return f"Update of {name[len('delta.'):]}"
    if name.endswith(PRODUCT):
        base = name[:-len(PRODUCT)]
        return f"{titles.get(base, base)} before the bias"
    return None


def symbol(doc: Any, name: str, head: int | None, row: int | None) -> str | None:
    """The symbol of an asked-for node (None: not one)."""
    stat = parse_statistic(name)
    if stat is not None:
        return rf"\operatorname{{{stat[0]}}}\left({doc.symbol(stat[1], head, row)}\right)"
    if name.startswith("delta."):
        return r"\Delta " + doc.symbol(name[len("delta."):], head, None)
    if name.endswith(PRODUCT):
        return r"\check{" + doc.symbol(name[:-len(PRODUCT)], head, row) + "}"
    return None


def formula(doc: Any, step: Step, result: Any, ops: list[Any], budget: float) -> Any:
    """``(formula, pieces, notes)`` for an asked-for node, or None."""
    name = step.name
    stat = parse_statistic(name)
    if stat is not None and len(ops) == 1:
        return _statistic(doc, stat[0], ops[0], budget)
    if name in ("score_sum", "logit_sum") and len(ops) == 1:
        return _statistic(doc, "rowsum", ops[0], budget)
    if name in ("weights", "probs") and doc.trace.config.softmax == "sum" and len(ops) == 2:
        return _divided(doc, ops[0], ops[1], budget)
    if name == "sigmoid" and len(ops) == 1:
        return rf"\frac{{1}}{{1 + e^{{-{ops[0].symbol}}}}}", [], []
    if name == "bce" and len(ops) == 2:
        p, y = ops[0].symbol, r"y"
        f = (rf"-\frac{{1}}{{N}} \sum \left({y} \log {p} + (1 - {y}) \log(1 - {p})\right)")
        return f, [], [(("text", "The labels are "), ("math", r"y = " + doc.operand(ops[1], budget).tex),
                        ("text", f", and N = {sum(len(r) for r in ops[0].value)} is the number "
                                 "of outputs."),)]
    if name == "contrib" and len(ops) == 2:
        return _contributions(doc, ops[0], ops[1], budget)
    if name == "z" and step.inputs and step.inputs[0][0] == "contrib":
        return rf"\sum_j \left[{ops[0].symbol}\right]_{{j}}", [], [
            (("text", "The sum of the blocks of "), ("math", ops[0].symbol),
             ("text", ", one block per key."),)]
    if name.startswith("delta.") and len(ops) == 2:
        grad, rate = ops
        f = rf"-\eta \, {grad.symbol}"
        return f, [("", doc.piece("-" + _paren(tex(rate.value[0][0])))),
                   (r"\cdot", doc.operand(grad, budget))], [
            (("math", r"\eta"), ("text", " is the learning rate."),)]
    if step.inputs and step.inputs[0][0] == name + PRODUCT and len(ops) == 2:
        prod, bias = ops
        return (f"{prod.symbol} + {bias.symbol}",
                [("", doc.operand(prod, budget)), ("+", doc.operand(bias, budget))], [])
    if name.startswith("new.") and step.inputs and step.inputs[0][0].startswith("delta."):
        delta, weight = ops[0], ops[1]
        return (f"{weight.symbol} + {delta.symbol}",
                [("", doc.operand(weight, budget)), ("+", doc.operand(delta, budget))], [])
    return None


def _statistic(doc: Any, stat: str, x: Any, budget: float) -> Any:
    """``Σ_j x_ij`` (and the mean, variance, standard deviation), with the numbers of one
    row substituted when they are short."""
    d = len(x.value[0])
    xj = rf"\left[{x.symbol}\right]_{{j}}"
    mean = rf"\frac{{1}}{{{d}}} \sum_j {xj}"
    spread = rf"\frac{{1}}{{{d}}} \sum_j \left({xj} - \mu\right)^2"
    f = {"rowsum": rf"\sum_j {xj}", "mean": mean, "var": spread,
         "std": rf"\sqrt{{{spread}}}"}[stat]
    notes = [] if stat in ("rowsum", "mean") else [
        (("math", rf"\mu = {mean}"), ("text", ", the mean of the row."),)]
    row = x.picked[0] if len(x.rows) == 1 else None
    if row is None or any(size(v, STAT_LIMIT + 1) > STAT_LIMIT for v in row):
        return f, [], notes
    terms = [tex(v) for v in row]
    if stat == "rowsum":
        text = _sum(terms)
    elif stat == "mean":
        text = rf"\frac{{1}}{{{d}}}\left({_sum(terms)}\right)"
    else:
        mu = sum(row) / d
        inner = " + ".join(rf"\left({t} - {_paren(tex(mu))}\right)^2" for t in terms)
        text = rf"\frac{{1}}{{{d}}}\left({inner}\right)"
        text = rf"\sqrt{{{text}}}" if stat == "std" else text
    piece = doc.piece(text)
    return (f, [("", piece)], notes) if piece.width <= budget else (f, [], notes)


def _divided(doc: Any, s: Any, total: Any, budget: float) -> Any:
    """``softmax = "sum"``: ``s / Σ``, with one row's numbers substituted."""
    f = rf"\frac{{{s.symbol}}}{{{total.symbol}}}"
    if len(total.rows) != 1 or size(total.picked[0][0], STAT_LIMIT + 1) > STAT_LIMIT:
        return f, [], []
    inv = doc.piece(r"\frac{1}{" + tex(total.picked[0][0]) + "}")
    return f, [("", inv), ("", doc.operand(s, budget - inv.width))], []


def _contributions(doc: Any, w: Any, v: Any, budget: float) -> Any:
    """``[α_1 v_1, …, α_m v_m]`` with one query's numbers substituted when short."""
    f = rf"\left[\alpha_{{j}} \, v_{{j}}\right]_{{j = 1 \ldots {len(v.value)}}}"
    notes = [(("text", "Key "), ("math", "j"), ("text", "'s block of columns is its weight "
                                                        "times its value vector."),)]
    if len(w.rows) != 1:
        return f, [], notes
    row = w.picked[0]
    if any(size(x, STAT_LIMIT + 1) > STAT_LIMIT for x in (*row, *(y for r in v.value for y in r))):
        return f, [], notes
    blocks = [tex(a) + r" \begin{bmatrix} " + " & ".join(tex(y) for y in vr) + r" \end{bmatrix}"
              for a, vr in zip(row, v.value, strict=True)]
    piece = doc.piece(r"\left[" + ", ".join(blocks) + r"\right]")
    return (f, [("", piece)], notes) if piece.width <= budget else (f, [], notes)


def _sum(terms: list[str]) -> str:
    out = terms[0]
    for t in terms[1:]:
        out += " - " + t[1:].lstrip() if t.startswith("-") else " + " + t
    return out


def _paren(text: str) -> str:
    return r"\left(" + text + r"\right)" if text.startswith("-") else text
