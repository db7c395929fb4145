"""Formulas, symbols and titles of the nodes a file asks for by name (:mod:`..asked`).

Layer: presentation, a helper of :mod:`.mathdoc` (LaTeX and Markdown).  Each function
receives the document builder ``doc`` (a :class:`~.mathdoc.MathDoc`) and uses only its
public helpers (``operand``, ``symbol``, ``piece``).  It returns ``(formula, pieces, notes)``
as ``MathDoc``'s own ``_f_*`` methods do, or ``None`` when it has nothing special to say.
Only the new nodes come here, so existing files render as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..trace import Step
from .forms import tex

PRODUCT = "_product"


def title(name: str, titles: Mapping[str, str]) -> str | None:
    """The heading of an asked-for node (None: not one); ``titles`` are the other nodes'."""
    if name.startswith("delta."):
        return f"Update of {name[len('delta.'):]}"
    if name.endswith(PRODUCT):
        base = name[:-len(PRODUCT)]
        return f"{titles.get(base, base)} before the bias"
    return None


def symbol(doc: Any, name: str, head: int | None, row: int | None) -> str | None:
    """The symbol of an asked-for node (None: not one)."""
    if name.startswith("delta."):
        return r"\Delta " + doc.symbol(name[len("delta."):], head, None)
    if name.endswith(PRODUCT):
        return r"\check{" + doc.symbol(name[:-len(PRODUCT)], head, row) + "}"
    return None


def formula(doc: Any, step: Step, result: Any, ops: list[Any], budget: float) -> Any:
    """``(formula, pieces, notes)`` for an asked-for node, or None."""
    name = step.name
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


def _paren(text: str) -> str:
    return r"\left(" + text + r"\right)" if text.startswith("-") else text
