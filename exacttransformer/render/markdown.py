"""Markdown walkthrough with MathJax/KaTeX math (``$$ … $$`` and ``bmatrix``).

Layer: presentation.  Exact values are typeset by sympy's LaTeX printer (printing, not
parsing: no user text is evaluated).
"""

from __future__ import annotations

import sympy

from ..trace import Trace
from .layout import MatrixView, layout


def md_escape(text: str) -> str:
    """Escape Markdown's active characters in user text.

    >>> md_escape("a_b *c*")
    'a\\\\_b \\\\*c\\\\*'
    """
    out = []
    for ch in text:
        if ch in "\\`*_{}[]()#+-.!|<>$":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _bmatrix(view: MatrixView, approx: bool = False) -> str:
    if approx:
        rows = [" & ".join(r) for r in view.approx]
    else:
        rows = [" & ".join(sympy.latex(x) for x in r) for r in view.raw]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def render_markdown(trace: Trace, *, token: int | None = None, digits: int = 6) -> str:
    lines = [f"# {md_escape(trace.title or 'Walkthrough')}", ""]
    if trace.source:
        lines += [f"*Source:* {md_escape(trace.source)}", ""]
    lines += [f"Tokens: {', '.join('`' + t.replace('`', '') + '`' for t in trace.tokens)}. "
              "Row vectors: a projection is $x W$.", ""]
    for view in layout(trace, token=token, digits=digits):
        step = view.step
        lines.append(f"## {md_escape(view.title)}")
        lines.append("")
        if step.meaning:
            lines += [step.meaning[0].upper() + step.meaning[1:] + ".", ""]
        rows = ", ".join(md_escape(lbl) for lbl in view.result.labels)
        lines.append(f"Formula: `{step.name} = {step.formula}` (rows: {rows})")
        lines.append("")
        lines.append("$$" + _bmatrix(view.result) + "$$")
        if view.result.exact != view.result.approx:
            lines.append("$$\\approx " + _bmatrix(view.result, approx=True) + "$$")
        lines.append("")
    return "\n".join(lines)
