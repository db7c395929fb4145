"""Plain-text walkthrough: each step as meaning, formula, numbers, exact result, decimal.

Layer: presentation (reads :mod:`exacttransformer.render.layout`).
"""

from __future__ import annotations

from ..trace import Trace
from .layout import MatrixView, StepView, layout


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


def render_step(view: StepView) -> list[str]:
    step = view.step
    lines = [view.title + (f" — {step.meaning}" if step.meaning else "")]
    if step.given:
        lines.append("    given in the file")
    else:
        lines.append(f"    {step.name} = {step.formula}")
        for label, operand in view.operands:
            body = _matrix_lines(operand, "        ")
            if len(body) == 1 and len(operand.exact) == 1:
                lines.append(f"      {label} = {body[0].strip()}" if len(operand.exact[0]) == 1
                             else f"      {label} ({operand.labels[0]}) = {_row(operand.exact[0])}")
            else:
                lines.append(f"      {label} =")
                lines.extend(body)
    lines.append("    exact:")
    lines.extend(_matrix_lines(view.result, "      "))
    if not _same(view.result):
        lines.append("    decimal:")
        lines.extend(_matrix_lines(view.result, "      ", "approx"))
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
    if token is not None:
        head.append(f"Following the token {trace.tokens[token]!r} (row {token}).")
    head.append(f"Decimals are correct to {digits} significant digits (every digit proven).")
    body: list[str] = []
    for view in layout(trace, token=token, digits=digits):
        body.append("")
        body.extend(render_step(view))
    return "\n".join(head + body) + "\n"
