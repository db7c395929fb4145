"""Markdown walkthrough with MathJax/KaTeX math (``$$ … $$``, ``aligned``, ``bmatrix``), and
the notebook display of a trace.

Layer: presentation.  The layout (formula, numbers substituted, exact result, decimal;
readable softmax forms; elided long rows) is :mod:`exacttransformer.render.mathdoc`'s, the
same as the LaTeX document's; this module only writes its blocks as Markdown.  Exact values
are typeset by sympy's LaTeX printer (printing, not parsing: no user text is evaluated), and
user text never enters math: a token that is not plain letters and digits is named by its
row (``\\#1``) inside formulas and shown as code elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..graph.trace import Trace
from .document import Block, ClaimsTable, Display, Heading, Heatmap, Items, Options, Para, Run, Table
from .mathdoc import build, step_blocks

_PLAIN = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_WORD_SAFE = re.compile(r"[A-Za-z0-9 .,:;=+*/()\[\]-]")
_WORD_MAP = {"ᵀ": "T", "·": "*", "−": "-", "√": "sqrt ", "_": r"\_"}


def md_escape(text: str) -> str:
    """Escape Markdown's active characters in user text.

    >>> md_escape("a_b *c*")
    'a\\\\_b \\\\*c\\\\*'
    """
    out = []
    for ch in text:
        if ch in "\\`*_{}[]()#+-.!|<>$~":
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+(?=[.)]))")


def md_prose(text: str, *, line_start: bool = False) -> str:
    """Lighter escaping for running text: only what is active anywhere in a line (and, at
    the start of a line, what starts a heading, list or quote).

    >>> print(md_prose("1. a_b (c) [d]", line_start=True))
    1\\. a\\_b (c) \\[d\\]
    """
    out = "".join("\\" + ch if ch in "\\`*_{}[]<>|$~" else " " if ch in "\n\r\t" else ch
                  for ch in text)
    if line_start:
        m = _LINE_START.match(out)
        if m:
            head = m.group(2)
            out = m.group(1) + (head + "\\" if head[0].isdigit() else "\\" + head) \
                + out[m.end():]
    return out


def md_code(text: str) -> str:
    """Inline code that shows ``text`` literally, whatever backticks it holds.

    >>> md_code("a`b"), md_code("")
    ('`` a`b ``', '*(empty)*')
    """
    if not text:
        return "*(empty)*"
    text = text.replace("\n", " ").replace("|", "\u2223")
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if "`" in text or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class MarkdownTarget:
    """User text inside KaTeX/MathJax math: plain words only, else the row number."""

    def token(self, index: int, text: str) -> str:
        if _PLAIN.fullmatch(text) and len(text) <= 24:
            return r"\text{" + text + "}"
        return rf"\#{index}"

    def words(self, text: str) -> str:
        return r"\text{" + _safe_words(text) + "}"


def _safe_words(text: str) -> str:
    """Text for ``\\text{…}`` in KaTeX/MathJax: letters, digits and plain punctuation."""
    out = []
    for ch in text:
        if ch in _WORD_MAP:
            out.append(_WORD_MAP[ch])
        elif _WORD_SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def _runs(runs: Sequence[Run]) -> str:
    out = []
    for n, (kind, text) in enumerate(runs):
        if kind == "math":
            out.append(f"${text}$")
        elif kind == "code":
            out.append(md_code(text))
        elif kind == "note":
            out.append("*" + md_prose(text) + "*" if text else "")
        else:
            out.append(md_prose(text, line_start=n == 0))
    return "".join(out)


def _display(block: Display) -> str:
    lines = [f"{lhs} &{rel} {rhs}" for lhs, rel, rhs in block.lines]
    return "$$\n\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}\n$$\n"


def _heatmap(block: Heatmap) -> str:
    head = "| query \\\\ key | " + " | ".join(md_code(c) for c in block.cols) + " |"
    rule = "|---|" + "---|" * len(block.cols)
    rows = []
    for i, (label, cells) in enumerate(zip(block.rows, block.cells, strict=True)):
        shown = [f"**{c}**" if i == block.highlight else c for c in cells]
        rows.append(f"| {md_code(label)} | " + " | ".join(shown) + " |")
    caption = _runs(block.caption)
    if block.highlight is not None:
        caption += " The followed token's row is in bold."
    return "\n".join([caption, "", head, rule, *rows]) + "\n"


def _claims(block: ClaimsTable) -> str:
    lines = ["| claim | printed | exact | correct rounding | verdict |", "|---|---|---|---|---|"]
    for row in block.rows:
        label = _runs(row.label) + (f" — {md_prose(row.note)}" if row.note else "")
        printed = ", ".join(md_code(t) for t, _ in row.printed)
        exact = ", ".join(f"${x}$" for x in row.exact)
        if row.exact_note:
            exact += f" (${row.exact_note}$)"
        verdict = f"**{row.verdict}**" if row.verdict else "—"
        lines.append(f"| {label} | {printed} | {exact} | {_runs(row.correct)} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_blocks(blocks: Sequence[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            main = _runs([r for r in block.runs if r[0] != "note"])
            notes = " ".join(t for k, t in block.runs if k == "note" and t)
            out.append("#" * block.level + " " + main
                       + (f" *({md_prose(notes)})*" if notes else "") + "\n")
        elif isinstance(block, Para):
            out.append(_runs(block.runs) + "\n")
        elif isinstance(block, Items):
            out.append("\n".join("- " + _runs(item) for item in block.items) + "\n")
        elif isinstance(block, Display):
            out.append(_display(block))
        elif isinstance(block, Heatmap):
            out.append(_heatmap(block))
        elif isinstance(block, ClaimsTable):
            out.append(_claims(block))
        elif isinstance(block, Table):
            out.append(_table(block))
    return "\n".join(out)


def _table(block: Table) -> str:
    def cell(runs: Sequence[Run]) -> str:
        return _runs(runs).replace("|", r"\|") if any(k == "math" for k, _ in runs) \
            else _runs(runs)

    lines = ["| " + " | ".join(cell(c) for c in block.header) + " |",
             "|" + "---|" * len(block.header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines) + "\n"


def render_markdown(trace: Trace, *, token: int | None = None, digits: int = 6,
                    max_cols: int = 10, report: Any = None, source_name: str = "") -> str:
    """The worked example as Markdown (the LaTeX document's layout, in KaTeX-ready math)."""
    opts = Options(token=token, digits=digits, max_cols=max_cols)
    return write_blocks(build(trace, MarkdownTarget(), opts, report=report,
                              source_name=source_name))


def _cell_math(runs: Sequence[Run]) -> str:
    """A table cell inside math: user text only through the safe ``\\text``."""
    return " ".join(text if kind == "math" else r"\text{" + _safe_words(text) + "}"
                    for kind, text in runs)


def render_notebook_latex(trace: Trace, *, digits: int = 4) -> str:
    """Every step as one ``aligned`` display, for ``Trace._repr_latex_`` (MathJax)."""
    lines = []
    for block in step_blocks(trace, MarkdownTarget(), Options(digits=digits)):
        if isinstance(block, Heading):
            title = "".join(t for k, t in block.runs if k == "text")
            lines.append(r"&\textbf{" + _safe_words(title) + "}")
        elif isinstance(block, Display):
            lines += [f"{lhs} &{rel} {rhs}" for lhs, rel, rhs in block.lines]
        elif isinstance(block, Table):
            lines += [r"&\quad " + r" \quad ".join(_cell_math(c) for c in row) for row in block.rows]
    return "$$\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}$$"
