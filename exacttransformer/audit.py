"""The float-error audit: how many digits float64, float32, bfloat16 and float16 get right.

Layer: reader (reads a trace; the float values come from :mod:`exacttransformer.floatpass`,
the proven errors from :mod:`exacttransformer.accuracy`).  For every node of the forward pass
and every format, :func:`audit` reports the worst entry's and the median entry's correct
significant digits and relative errors against the exact values, and how many digits the
worst entry lost at that node: the fewest digits among the node's inputs (at most the digits
one rounding keeps, :func:`rounding_digits`) minus its own, so that rounding an exact value
once is not counted as a loss but an overflow or a cancellation is.  The
renderers give a text table, JSON, or a LaTeX document with a pgfplots figure of the digits
along the trace (and a PNG when matplotlib is installed).

>>> from exacttransformer.io.files import load
>>> report = audit(load("cat").forward(), ("float16",), arithmetic="python")
>>> cell = report.node("weights", 0, 0).cells["float16"]
>>> cell.digits, cell.median_digits, sci(cell.worst)
(2, 3, '1.0e-03')
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, suggest
from .exact import printing as numbers
from .exact.accuracy import ALL, Error, digits, relative_error, sci, upper
from .exact.floatformats import FORMATS
from .graph.floatpass import float_pass, resolve
from .graph.trace import Key, Step, Trace

EXACT_DIGITS = 8
"""Significant digits of the exact value printed beside a worst entry."""


@dataclass(frozen=True)
class Cell:
    """One node in one format."""

    worst: Error
    median: Error
    index: tuple[int, int]
    exact: str
    value: float
    lost: int = 0

    @property
    def digits(self) -> int:
        return digits(self.worst)

    @property
    def median_digits(self) -> int:
        return digits(self.median)


@dataclass(frozen=True)
class NodeAudit:
    """One node: its address, shape, inputs and one :class:`Cell` per format."""

    step: Step
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return self.step.key

    @property
    def label(self) -> str:
        return self.step.label()


@dataclass(frozen=True)
class Audit:
    """The audit of one trace."""

    title: str
    arithmetic: str
    formats: tuple[str, ...]
    nodes: tuple[NodeAudit, ...]

    def node(self, name: str, layer: int | None = None, head: int | None = None) -> NodeAudit:
        for n in self.nodes:
            if n.key == (name, layer, head):
                return n
        raise KeyError((name, layer, head))

    def losses(self, fmt: str, limit: int = 5) -> list[NodeAudit]:
        """The nodes where the worst entry lost the most digits (at least one), most first."""
        hit = [n for n in self.nodes if n.cells[fmt].lost > 0]
        hit.sort(key=lambda n: -n.cells[fmt].lost)
        return hit[:limit]


def _median(errors: list[Error]) -> Error:
    """The lower median: both ends are order statistics, so it encloses the true median."""
    k = (len(errors) - 1) // 2
    return Error(sorted(e.hi for e in errors)[k], sorted(e.lo for e in errors)[k])


def _cell(step: Step, floats: list[list[float]]) -> Cell:
    errors: list[Error] = []
    where: list[tuple[int, int]] = []
    for i, (row, frow) in enumerate(zip(step.value, floats, strict=True)):
        for j, (x, f) in enumerate(zip(row, frow, strict=True)):
            errors.append(relative_error(x, f))
            where.append((i, j))
    worst_at = max(range(len(errors)), key=lambda n: (upper(errors[n]), -n))
    i, j = where[worst_at]
    worst = Error(max(e.hi for e in errors), max(e.lo for e in errors))
    return Cell(worst=worst, median=_median(errors), index=(i, j),
                exact=numbers.to_sig(step.value[i][j], EXACT_DIGITS), value=floats[i][j])


def rounding_digits(fmt: str) -> int:
    """The correct digits one rounding to ``fmt`` keeps at least: ``floor(-log10 u)``.

    >>> [rounding_digits(f) for f in FORMATS]
    [15, 7, 2, 3]
    """
    u = FORMATS[fmt].unit_roundoff
    return digits(Error(u, u))


def _arithmetic_label(name: str) -> str:
    if name == "torch":
        import torch

        return f"torch {torch.__version__} (its CPU kernels in each dtype)"
    return "python floats (float64, each operation rounded to the format)"


def audit(trace: Trace, formats: Sequence[str] = tuple(FORMATS), nodes: Sequence[str] = (),
          arithmetic: str = "auto", title: str = "") -> Audit:
    """Measure every node of ``trace`` (or those named in ``nodes``) in each format."""
    for name in formats:
        if name not in FORMATS:
            raise InputError(f"unknown dtype {name!r}; {suggest(name, list(FORMATS))}", key="--dtype")
    arith = resolve(arithmetic)
    values = {f: float_pass(trace, FORMATS[f], arith) for f in formats}
    measured = [s for s in trace.steps if s.key in values[formats[0]]] if formats else []
    names = [s.name for s in measured]
    for name in nodes:
        if name not in names:
            raise InputError(f"no node {name!r} is measured here; {suggest(name, names)}", key="--node")
    wanted = {s.key for s in measured if not nodes or s.name in nodes}
    needed = wanted | {k for s in measured if s.key in wanted for k in s.inputs}
    cells: dict[Key, dict[str, Cell]] = {s.key: {} for s in measured if s.key in needed}
    for s in measured:
        if s.key not in needed or 0 in s.shape:
            continue
        for f in formats:
            cell = _cell(s, values[f][s.key])
            feeding = [cells[k][f].digits for k in s.inputs if k in cells and f in cells[k]]
            lost = max(0, min(feeding + [rounding_digits(f)]) - cell.digits)
            cells[s.key][f] = Cell(cell.worst, cell.median, cell.index, cell.exact, cell.value, lost)
    rows = tuple(NodeAudit(s, cells[s.key]) for s in measured if s.key in wanted and cells[s.key])
    return Audit(title or trace.title, _arithmetic_label(arith), tuple(formats), rows)


# --- rendering ------------------------------------------------------------------------------

def _digits_text(d: int) -> str:
    return "all" if d >= ALL else str(d)


def _cell_text(c: Cell) -> str:
    if c.worst.exact:
        return "exact"
    return f"{_digits_text(c.digits)}/{_digits_text(c.median_digits)} {sci(c.worst)}"


def _loss_line(n: NodeAudit, fmt: str) -> str:
    c = n.cells[fmt]
    i, j = c.index
    return (f"  {n.label}: {_digits_text(c.digits + c.lost)} -> {c.digits} digits "
            f"(entry [{i}, {j}]: exact {c.exact}, {fmt} {c.value!r})")


def render_text(report: Audit, file: str = "") -> str:
    """A table: one row per node, one column per format."""
    out = [f"Float-error audit of {file or report.title or 'the model'}",
           f"arithmetic: {report.arithmetic}",
           "each cell: correct significant digits of the worst / the median entry, and the worst",
           "relative error, proven against the exact values ('exact': no error at all)", ""]
    width = max([len("node")] + [len(n.label) for n in report.nodes]) + 2
    cols = {f: max([len(f)] + [len(_cell_text(n.cells[f])) for n in report.nodes]) + 2
            for f in report.formats}
    out.append("node".ljust(width) + "".join(f.ljust(cols[f]) for f in report.formats).rstrip())
    for n in report.nodes:
        cells = "".join(_cell_text(n.cells[f]).ljust(cols[f]) for f in report.formats)
        out.append((n.label.ljust(width) + cells).rstrip())
    out.append("")
    out.append("Where the digits are lost (the worst entry, from the node's inputs, or from one")
    out.append("rounding when they are exact, to the node):")
    for f in report.formats:
        lines = [_loss_line(n, f) for n in report.losses(f)]
        out.append(f"{f}:" + ("" if lines else " no digits lost at any node"))
        out += lines
    return "\n".join(out) + "\n"


def _cell_json(c: Cell) -> dict[str, Any]:
    return {"worst_digits": min(c.digits, ALL), "median_digits": min(c.median_digits, ALL),
            "worst_rel_error": sci(c.worst), "median_rel_error": sci(c.median),
            "worst_index": list(c.index), "worst_exact": c.exact, "worst_float": repr(c.value),
            "lost_digits": c.lost}


def render_json(report: Audit, file: str = "") -> str:
    """One object: the file, the arithmetic, the formats and every node's cells.

    Digits are whole numbers (99 stands for an exact float); errors are strings such as
    ``"3.3e-04"``, ``"0"`` or ``"inf"``; floats are Python ``repr`` strings (``"inf"``).
    """
    data = {
        "file": file, "arithmetic": report.arithmetic, "formats": list(report.formats),
        "unit_roundoff": {f: f"2^-{FORMATS[f].precision}" for f in report.formats},
        "nodes": [{"name": n.step.name, "layer": n.step.layer, "head": n.step.head,
                   "shape": list(n.step.shape),
                   "formats": {f: _cell_json(n.cells[f]) for f in report.formats}}
                  for n in report.nodes],
        "losses": {f: [n.label for n in report.losses(f)] for f in report.formats},
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


PLOT_TOP = 17
"""The digits axis of the figure ends here; an exact float is drawn at this height."""

_COLOURS = {"float64": "black", "float32": "blue", "bfloat16": "orange", "float16": "red"}
_MARKS = {"float64": "*", "float32": "square*", "bfloat16": "triangle*", "float16": "diamond*"}


def _plotted(c: Cell) -> int:
    return PLOT_TOP if c.worst.exact else min(c.digits, PLOT_TOP)


def render_latex(report: Audit, file: str = "") -> str:
    """A complete document: the table and a pgfplots figure of the worst entry's digits."""
    from .render.latex import escape

    labels = ",".join("{" + escape(n.label, mono=True) + "}" for n in report.nodes)
    plots = []
    for f in report.formats:
        coords = " ".join(f"({k},{_plotted(n.cells[f])})" for k, n in enumerate(report.nodes))
        plots.append(f"\\addplot[color={_COLOURS[f]}, mark={_MARKS[f]}] coordinates {{{coords}}};\n"
                     f"\\addlegendentry{{{f}}}")
    head = " & ".join(f"\\texttt{{{f}}}" for f in report.formats)
    body = "\n".join(
        escape(n.label, mono=True) + " & "
        + " & ".join(escape(_cell_text(n.cells[f])) for f in report.formats) + r" \\"
        for n in report.nodes)
    axis = ", ".join([
        "width=" + ("0.95\\linewidth" if len(report.nodes) > 12 else "12cm"), "height=7cm",
        f"ymin=0, ymax={PLOT_TOP}", "ylabel={correct digits (worst entry)}",
        f"xtick={{0,...,{len(report.nodes) - 1}}}", "xticklabels={" + labels + "}",
        "x tick label style={rotate=90, font=\\tiny}",
        "legend style={at={(0.5,1.03)}, anchor=south, legend columns=-1}", "grid=major",
        "ytick={0,3,...,15,17}", "yticklabels={0,3,6,9,12,15,exact}"])
    return "\n".join([
        r"\documentclass[10pt]{article}",
        r"\usepackage[margin=2cm,landscape]{geometry}",
        r"\usepackage{booktabs,longtable,amsmath}",
        r"\usepackage{pgfplots}",
        r"\pgfplotsset{compat=1.16}",
        r"\begin{document}",
        # The file's name, not its path: a path (a checkout in a deep folder) need not fit a
        # line, and the document should not depend on where the file was.
        r"\section*{Float-error audit: "
        + escape(os.path.basename(file) or report.title or "the model") + "}",
        "Arithmetic: " + escape(report.arithmetic) + ". Correct significant digits are "
        r"$\lfloor -\log_{10}(\text{relative error}) \rfloor$, proven against the exact values.",
        "",
        r"\begin{center}",
        r"\begin{tikzpicture}",
        r"\begin{axis}[" + axis + "]",
        *plots,
        r"\end{axis}",
        r"\end{tikzpicture}",
        r"\end{center}",
        "",
        r"Each cell: correct digits of the worst / the median entry, and the worst relative error.",
        "",
        r"{\small",
        r"\begin{longtable}{l" + "l" * len(report.formats) + "}",
        r"\toprule",
        r"node & " + head + r" \\",
        r"\midrule",
        body,
        r"\bottomrule",
        r"\end{longtable}}",
        r"\end{document}",
        "",
    ])


def render_png(report: Audit) -> bytes:
    """The figure as PNG bytes (needs matplotlib, which is not a dependency)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(report.nodes) + 3), 4.5))
    xs = list(range(len(report.nodes)))
    for f in report.formats:
        ax.plot(xs, [_plotted(n.cells[f]) for n in report.nodes], marker="o",
                color=_COLOURS[f], label=f)
    ax.set_xticks(xs, [n.label for n in report.nodes], rotation=90, fontsize=7)
    ax.set_ylim(0, PLOT_TOP + 0.5)
    ax.set_ylabel("correct digits (worst entry)")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
