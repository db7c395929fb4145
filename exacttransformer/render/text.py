"""Plain-text walkthrough: each step as meaning, formula, numbers, exact result, decimal.

Layer: presentation (reads :mod:`exacttransformer.render.layout`).  A row over the
vocabulary (logits, probabilities, the decoding steps) is listed one word per line, since
its entries mean nothing without the words; a row of whole numbers whose columns have
names (BPE pair counts) is printed under those names.
"""

from __future__ import annotations

from ..graph.trace import Key, Trace
from .layout import MatrixView, StepView, column_labels, layout, pair_labels

LONG_OPERAND = 160
"""An operand whose exact form is longer than this (characters) and that an earlier step
printed is shown by its decimals, with the step to look up."""
ACROSS_WIDTH = 96
"""Characters per line of a row printed under its column names."""


def _row(cells: tuple[str, ...]) -> str:
    return "[" + ", ".join(cells) + "]"


def _matrix_lines(view: MatrixView, indent: str, which: str = "exact") -> list[str]:
    rows = view.exact if which == "exact" else view.approx
    if len(rows) == 1 and len(rows[0]) == 1:
        return [indent + rows[0][0]]
    width = max((len(lbl) for lbl in view.labels), default=0)
    return [f"{indent}{lbl.ljust(width)}  {_row(r)}" for lbl, r in zip(view.labels, rows, strict=True)]


def _same(view: MatrixView) -> bool:
    """True when the decimals add nothing (every entry an integer)."""
    return all(getattr(x, "is_Integer", False) for row in view.raw for x in row)


def _down(view: MatrixView, labels: tuple[str, ...], indent: str, which: str) -> list[str]:
    """One line per column label: the entry (or, with several rows, the list of them)."""
    rows = view.exact if which == "exact" else view.approx
    width = max(len(lbl) for lbl in labels)
    cells = [c[0] if len(rows) == 1 else _row(c) for c in zip(*rows, strict=True)]
    return [f"{indent}{lbl.ljust(width)}  {cell}" for lbl, cell in zip(labels, cells, strict=True)]


def _across(cells: tuple[str, ...], labels: tuple[str, ...], indent: str) -> list[str]:
    """Labels on one line and the entries right-aligned under them, wrapped."""
    lines: list[str] = []
    top = bottom = ""
    for label, cell in zip(labels, cells, strict=True):
        w = max(len(label), len(cell))
        if top and len(indent) + len(top) + 2 + w > ACROSS_WIDTH:
            lines += [indent + top.rstrip(), indent + bottom.rstrip()]
            top = bottom = ""
        top += label.rjust(w) + "  "
        bottom += cell.rjust(w) + "  "
    return [*lines, indent + top.rstrip(), indent + bottom.rstrip()]


def _sentence(text: str) -> str:
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _formula_lines(view: StepView) -> tuple[list[str], str]:
    """``name = formula``; a chain of arrows one link per line, and what the step found
    (the words after ``; ``) as a sentence of its own."""
    step = view.step
    main, _, told = step.formula.partition("; ")
    if pair_labels(step) is not None:  # the pairs head the columns below
        main = main[:main.index(" (")]
    head = f"    {step.name} = "
    links = main.split(" → ")
    lines = [head + main] if len(head + main) <= 100 or len(links) == 1 else \
        [head + links[0], *(" " * (len(head) - 2) + "→ " + link for link in links[1:])]
    return lines, ("    " + _sentence(told) if told else "")


def _operand_lines(label: str, operand: MatrixView, shown_in: int | None) -> list[str]:
    if shown_in is not None and sum(len(c) for r in operand.exact for c in r) > LONG_OPERAND:
        where = f"(exact in step {shown_in})"
        if len(operand.approx) == 1:
            row = operand.approx[0]
            text = row[0] if len(row) == 1 else _row(row)
            return [f"      {label} ≈ {text}  {where}"]
        return [f"      {label} ≈  {where}", *_matrix_lines(operand, "        ", "approx")]
    body = _matrix_lines(operand, "        ")
    if len(body) == 1 and len(operand.exact) == 1:
        return [f"      {label} = {body[0].strip()}" if len(operand.exact[0]) == 1
                else f"      {label} ({operand.labels[0]}) = {_row(operand.exact[0])}"]
    return [f"      {label} =", *body]


def render_step(view: StepView, trace: Trace | None = None,
                numbers: dict[Key, int] | None = None) -> list[str]:
    """One step's lines; with the ``trace``, vocabulary-wide rows are listed word by word,
    and with ``numbers`` (step number of each node) a long operand refers back to its step."""
    step = view.step
    lines = [view.title + (f" — {step.meaning}" if step.meaning else "")]
    if step.given:
        lines.append("    given in the file")
    else:
        formula, told = _formula_lines(view)
        lines += formula
        keys = view.operand_keys or (None,) * len(view.operands)
        for (label, operand), key in zip(view.operands, keys, strict=True):
            shown_in = numbers.get(key) if numbers is not None and key is not None else None
            lines += _operand_lines(label, operand, shown_in)
        if told:
            lines.append(told)
    found = column_labels(trace, step) if trace is not None else None
    result = view.result
    if found is None or len(found[1]) != len(result.exact[0]):
        lines.append("    exact:")
        lines.extend(_matrix_lines(result, "      "))
        if not _same(result):
            lines.append("    decimal:")
            lines.extend(_matrix_lines(result, "      ", "approx"))
        return lines
    head, labels = found
    columns = f" (one column per row: {', '.join(result.labels)})" if len(result.exact) > 1 else ""
    if _same(result) and len(result.exact) == 1:
        lines.append(f"    exact, by {head}:")
        lines += _across(result.exact[0], labels, "      ")
        return lines
    if len(result.exact) == 1 and not _same(result):
        lines.append(f"    one {head} per line: decimal, then exact")
        width = max(len(lbl) for lbl in labels)
        dec_width = max(len(c) for c in result.approx[0])
        lines += [f"      {lbl.ljust(width)}  {dec.ljust(dec_width)}  {exact}" for lbl, dec, exact
                  in zip(labels, result.approx[0], result.exact[0], strict=True)]
        return lines
    lines.append(f"    exact, one {head} per line{columns}:")
    lines += _down(result, labels, "      ", "exact")
    if not _same(result):
        lines.append(f"    decimal, one {head} per line{columns}:")
        lines += _down(result, labels, "      ", "approx")
    return lines


def render_text(trace: Trace, *, token: int | None = None, digits: int = 6) -> str:
    """The whole walkthrough as text."""
    cfg = trace.config
    head = []
    if trace.title:
        head.append(trace.title)
        head.append("=" * min(len(trace.title), 78))
    if trace.source:
        head.append(f"Source: {trace.source}")
    scale = "1/sqrt(d_k)" if cfg.scale == "sqrt_dk" else str(cfg.scale)
    head.append(
        f"Conventions: row vectors (x W); heads {cfg.heads}; scale {scale}; mask {cfg.mask}; "
        f"softmax {cfg.softmax}; activation {cfg.activation}; norm {cfg.norm}"
    )
    head.append(f"Tokens: {', '.join(trace.tokens)}")
    if trace.vocab:
        head.append(f"Vocabulary ({len(trace.vocab)} words, ids from 0): {', '.join(trace.vocab)}")
    if token is not None:
        head.append(f"Following the token {trace.tokens[token]!r} (row {token}).")
    head.append(f"Decimals are correct to {digits} significant digits (every digit proven).")
    body: list[str] = []
    numbers: dict[Key, int] = {}
    for n, view in enumerate(layout(trace, token=token, digits=digits), start=1):
        body.append("")
        body.extend(render_step(view, trace, numbers))
        numbers[view.step.key] = n
    return "\n".join(head + body) + "\n"
