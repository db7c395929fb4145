"""``problems.tex`` and ``solutions.tex``: one student's variant per page.

Layer: presentation.  The problem sheet states each topic's data (the matrices of the
variant's walkthrough file) and its parts with the rounding they ask for; the solution
sheet shows, for every problem, the worked steps exactly as ``exacttransformer latex``
writes them (the blocks of :mod:`exacttransformer.render.mathdoc`, written by
:mod:`exacttransformer.render.latex`), followed by the key.  Both documents use the
LaTeX renderer's preamble, so they compile with pdflatex from TeX Live's base and
recommended sets; every user string (student ids, tokens) goes through its ``escape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import sympy

from ..graph.trace import Trace
from ..render.document import Options
from ..render.forms import size, tex, width
from ..render.latex import DOCUMENT_BUDGET, LatexTarget, code, escape, preamble, write_blocks
from ..render.mathdoc import step_blocks
from .answers import key_rows, tolerance
from .generator import Part, Problem, ProblemSet, Request, Variant
from .specs import Given, Math, Piece, fill

STRUT = r"\rule[-1.1em]{0pt}{2.6em}"
"""Keeps the rows of a matrix with full-size fractions apart (as ``latex`` does)."""

HEADER = "Transformer arithmetic by hand"


def _pieces(pieces: Sequence[Piece], problem: Problem) -> str:
    out = []
    for p in pieces:
        if isinstance(p, Math):
            out.append(f"${p.latex}$")
        else:
            out.append(escape(fill(p, problem.draft)))
    return "".join(out).strip()


def entry_tex(x: int | Fraction) -> str:
    """A given number in LaTeX (``-3/2`` as a fraction)."""
    if isinstance(x, Fraction):
        return tex(sympy.Rational(x.numerator, x.denominator))
    return str(x)


def given_tex(g: Given) -> str:
    body = r" \\ ".join(" & ".join(entry_tex(x) for x in row) for row in g.value)
    return f"{g.symbol.latex} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def _givens(problem: Problem) -> str:
    shown = [given_tex(g) for g in problem.draft.givens]
    if not shown:
        return ""
    lines = [r",\qquad ".join(shown[i:i + 2]) for i in range(0, len(shown), 2)]
    return r"\begin{gather*}" + "\n" + " \\\\\n".join(lines) + "\n" + r"\end{gather*}" + "\n"


def _form(part: Part) -> str:
    if part.spec.form == "exact":
        return "exactly"
    if part.spec.form == "decimals":
        return f"to {part.decimals} decimal places"
    return ""


def _tokens_line(problem: Problem) -> str:
    tokens = problem.draft.tokens
    if len(tokens) == 1:
        return ""
    listed = ", ".join(code(t) for t in tokens)
    return f"Tokens, one row each, in this order: {listed}.\n"


def _variant_header(variant: Variant, request: Request, total: int, what: str) -> str:
    who = "Student" if request.rostered else "Variant"
    return (r"\noindent{\large\bfseries " + escape(f"{HEADER}: {what}") + r"}\hfill "
            + escape(f"{who} ") + code(variant.student) + r"\par" + "\n"
            + r"\noindent{\small " + escape(f"Seed {request.seed}, variant {variant.number} of "
                                            f"{total}, {request.difficulty}") + r"\par}" + "\n")


def problem_tex(problem: Problem) -> str:
    """One problem's statement and parts (a section of the problem sheet)."""
    out = [r"\section*{" + escape(f"Problem {problem.number}: {problem.topic.title}") + "}",
           _pieces(problem.draft.facts, problem), _tokens_line(problem), _givens(problem)]
    items = []
    for part in problem.parts:
        form = _form(part)
        items.append(r"\item[(" + part.label + ")] " + escape(part.prompt[0].upper()
                                                                  + part.prompt[1:])
                     + (", " + escape(form) if form else "") + ".")
    out.append(r"\begin{itemize}" + "\n" + "\n".join(items) + "\n" + r"\end{itemize}")
    return "\n".join(x for x in out if x) + "\n"


def problems_page(variant: Variant, request: Request, total: int) -> str:
    """One variant's problem sheet (a page, or more for many topics)."""
    body = [_variant_header(variant, request, total, "problems"),
            r"\medskip\noindent Name: \rule{7cm}{0.4pt}\par"]
    body += [problem_tex(p) for p in variant.problems]
    return "\n".join(body)


def problems_tex(problem_set: ProblemSet) -> str:
    """The problem sheets: one page per variant, headed by the student id."""
    req, total = problem_set.request, len(problem_set.variants)
    return document(req, [problems_page(v, req, total) for v in problem_set.variants],
                    "problem sheets")


# --------------------------------------------------------------------------- solutions


def solution_trace(problem: Problem) -> Trace:
    """The steps the solution works through: the topic's nodes that were computed (not
    given), in the order the forward pass computed them."""
    trace = problem.trace
    wanted = set(problem.topic.solution)
    steps = tuple(s for s in trace.steps if s.name in wanted and not s.given)
    return Trace(steps=steps, tokens=trace.tokens, kv_tokens=trace.kv_tokens,
                 config=trace.config, backend=trace.backend, title=trace.title,
                 source=trace.source)


def worked_steps(problem: Problem) -> str:
    """The renderer's worked steps for the asked token (formula, numbers, exact, ≈)."""
    sub = solution_trace(problem)
    token = problem.draft.row if len(sub.tokens) > 1 else None
    digits = max(4, problem.shape.decimals + 2)
    opts = Options(token=token, digits=digits, budget=DOCUMENT_BUDGET, strut=STRUT)
    return write_blocks(step_blocks(sub, LatexTarget(), opts), heatmap_width_cm=12.0)


def _key_math(part: Part) -> str:
    rows = key_rows(part)
    if part.spec.form == "choice":
        return code(rows[0][0], breakable=False)
    cells = r" \\ ".join(" & ".join(r for r in row) for row in rows)
    if len(part.flat) == 1:
        return f"${cells}$"
    return rf"$\begin{{bmatrix}} {cells} \end{{bmatrix}}$"


def _exact_note(part: Part) -> str:
    """The exact values under a rounded key, when they fit on a line."""
    if part.spec.form != "decimals":
        return ""
    forms = part.flat
    if any(size(x, 40) > 24 for x in forms):
        return ""
    inner = r",\ ".join(tex(x) for x in forms)
    body = inner if len(forms) == 1 else r"\left(" + inner + r"\right)"
    if width(body, "display") > DOCUMENT_BUDGET - 40:
        return ""
    return r"\newline exactly $\displaystyle " + body + "$"


def key_tex(problem: Problem) -> str:
    items = []
    for part in problem.parts:
        tol = tolerance(part.spec.form, part.decimals)
        accept = "" if tol == "0" else escape(f" (accept ±{tol})")
        items.append(r"\item[(" + part.label + ")] " + escape(part.prompt[0].upper()
                                                                  + part.prompt[1:]) + ":"
                     + r"\newline " + _key_math(part) + accept + _exact_note(part))
    return (r"\subsection*{Key}" + "\n" + r"\begin{itemize}" + "\n" + "\n".join(items) + "\n"
            + r"\end{itemize}" + "\n")


def solution_tex(problem: Problem) -> str:
    return (r"\section*{" + escape(f"Problem {problem.number}: {problem.topic.title}") + "}\n"
            + r"{\small " + escape(f"Following “{problem.draft.token}”. Every step as the "
                                   "formula, the numbers substituted, the exact result and "
                                   "its certified decimal.") + r"\par}" + "\n"
            + worked_steps(problem) + key_tex(problem))


def solutions_page(variant: Variant, request: Request, total: int) -> str:
    """One variant's worked solutions and key."""
    body = [_variant_header(variant, request, total, "solutions")]
    body += [solution_tex(p) for p in variant.problems]
    return "\n".join(body)


def solutions_tex(problem_set: ProblemSet) -> str:
    """The solution sheets: each variant starts a new page, headed by the student id."""
    req, total = problem_set.request, len(problem_set.variants)
    return document(req, [solutions_page(v, req, total) for v in problem_set.variants],
                    "solution sheets")


def document(request: Request, pages: Sequence[str], what: str) -> str:
    """The pages as one document, each starting a new page."""
    stamp = (f"% Generated by exacttransformer problems ({what}): seed {request.seed}, "
             f"topics {','.join(request.topics)}, difficulty {request.difficulty}.\n"
             "% The same command writes the same bytes; regenerate rather than edit.\n")
    return (stamp + preamble(10) + r"\pagestyle{empty}" + "\n" + r"\begin{document}" + "\n"
            + ("\n" + r"\clearpage" + "\n").join(pages) + r"\end{document}" + "\n")
